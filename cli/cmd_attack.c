/* cmd_attack.c - `advex attack`: run an attack on one image (a per-step
 * table) or on a range of dataset images at several epsilons (the success
 * rate per epsilon, the curve researchers plot). Every run, and every step
 * of it, goes to the run log (db/) unless --no-log. */
#define _XOPEN_SOURCE 700	/* realpath */

#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "attack.h"
#include "cli.h"
#include "dataset.h"
#include "db.h"
#include "image.h"
#include "npy.h"
#include "runs.h"

enum {
	OPT_DATA = OPT_FIRST_FREE, OPT_SPLIT, OPT_IMAGE, OPT_IMAGES, OPT_TARGET,
	OPT_ATTACK, OPT_LOSS, OPT_NORM, OPT_EPS, OPT_ALPHA, OPT_ITERS,
	OPT_MOMENTUM, OPT_RANDOM_START, OPT_EARLY_STOP, OPT_CLIP_EPS,
	OPT_KAPPA, OPT_OUT, OPT_CSV, OPT_QUIET, OPT_DB, OPT_NO_LOG, OPT_NPY_OUT,
	OPT_BATCH
};

#define MAX_EPS 64
#define DEFAULT_BATCH 8
#define SMALL_NET_FLOP 1e9	/* below: default --batch 1 */

struct attack_args {
	struct cli_model_opts mo;
	const char *data, *split, *image, *images, *target, *out, *npy_out;
	const char *db;			/* --db FILE */
	int no_log;
	int resize;			/* --resize */
	const char *eps_text[MAX_EPS];	/* as given, for tables */
	double eps[MAX_EPS];
	int n_eps, alpha_set, json, csv, quiet;
	int batch;			/* --batch: attacks per forward/backward */
	struct attack_params p;
};

static void attack_help(void)
{
	printf("usage: advex attack (--model FILE | --arch NAME) --image REF [options]\n"
	       "       advex attack (--model FILE | --arch NAME) --data DIR --images A:B\n"
	       "                    --eps E1,E2,... [options]\n\n"
	       "Run a gradient attack. With --image: one image, a table of every step\n"
	       "(iteration, loss, target probability, prediction, gradient norm, zero\n"
	       "fraction), the diagnosis when the gradient vanishes, and a summary.\n"
	       "With --images A:B: every dataset image in [A, B) at every epsilon, and\n"
	       "the success rate per epsilon with the clean accuracy.\n\n%s"
	       "  --data DIR          STL-10 or CIFAR-10 binary directory, or a folder of\n"
	       "                      class folders of PNGs\n"
	       "  --split S           train, test (default) or unlabeled (STL-10)\n"
	       "  --resize            resample the data's images to the model's input size\n"
	       "                      (bilinear, as PyTorch's interpolate(align_corners=False))\n"
	       "  --image REF         a dataset index (with --data) or a PNG file\n"
	       "  --images A:B        dataset images A..B-1 (batch mode)\n"
	       "  --target CLASS      class to reach, by name or index; none: untargeted\n"
	       "                      (push the true label's loss up)\n"
	       "  --attack K          fgsm, ifgsm (= bim), pgd (default), mifgsm\n"
	       "  --loss L            ce (default: cross-entropy on logits), prob-ce (Keras:\n"
	       "                      clipped probabilities), prob-naive (log of the float32\n"
	       "                      softmax), cw (Carlini-Wagner margin)\n"
	       "  --norm N            linf (default; sign step) or l2 (normalized step)\n"
	       "  --eps E             radius in pixel units of [0,1]; '8/255' accepted;\n"
	       "                      a comma list in batch mode (default 8/255)\n"
	       "  --alpha A           step size (default 2.5*eps/iters, at most eps)\n"
	       "  --iters K           iterations (default 10; fgsm: 1)\n"
	       "  --momentum M        MI-FGSM decay (default 1)\n"
	       "  --random-start      start at a random point of the eps-ball (pgd always)\n"
	       "  --seed S            seed of the random start (default 0); with --arch it\n"
	       "                      also seeds the weights\n"
	       "  --early-stop        stop when the target (untargeted: any wrong class) is\n"
	       "                      predicted\n"
	       "  --clip-eps E        prob-ce clip (default 1e-7, as Keras)\n"
	       "  --kappa K           cw confidence margin (default 0)\n"
	       "  --out FILE.png      write the adversarial image (8-bit RGB, parameters in\n"
	       "                      tEXt chunks)\n"
	       "  --npy-out FILE.npy  write the adversarial image unquantized: NumPy float32\n"
	       "                      1x3xHxW, pixels in [0,1]\n"
	       "  --json              JSON lines: one per step ({\"type\":\"step\", iter, loss,\n"
	       "                      target_prob, pred, grad_l2, grad_linf, zero_fraction,\n"
	       "                      pert_linf, pert_l2, diagnosis}) and a summary; batch:\n"
	       "                      one object per epsilon with eps, attempted, succeeded,\n"
	       "                      success_rate, skipped, skipped_images, clean_accuracy\n"
	       "  --csv               batch mode: CSV table\n"
	       "  --quiet             no per-step table / progress bar\n"
	       "  --db FILE           the run log every run and step is recorded in\n"
	       "                      (default $XDG_DATA_HOME/advex/runs.db, else\n"
	       "                      ~/.local/share/advex/runs.db); see advex runs\n"
	       "  --no-log            record nothing\n"
	       "  --batch N           batch mode: attack N images at a time, one forward and\n"
	       "                      one backward for all of them per step (default %d\n"
	       "                      for networks of 1 GFLOP or more per image, such as\n"
	       "                      VGG16, 1 below, such as the demo model; at most %d;\n"
	       "                      1: one image at a time). Each image gets\n"
	       "                      the computation it gets alone: the results and run log\n"
	       "                      are those of --batch 1 up to the float rounding of the\n"
	       "                      network's batched kernels (see man advex)\n"
	       "Ctrl-C stops the attack after the step in flight; the run (batch mode:\n"
	       "every run in flight) is recorded as interrupted (exit 1).\n",
	       cli_model_help, DEFAULT_BATCH, CLI_MAX_BATCH);
}

static int parse_eps_list(struct attack_args *a, char *list)
{
	char *tok, *save = NULL;

	a->n_eps = 0;
	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (a->n_eps == MAX_EPS)
			return cli_usage_error("attack", "at most %d epsilons", MAX_EPS);
		int r = cli_parse_eps(tok, &a->eps[a->n_eps]);

		if (r)
			return cli_usage_error("attack", r == -2 ?
					       "--eps: '%s' is too small or too large to represent" :
					       "--eps: '%s' is not a number or fraction", tok);
		a->eps_text[a->n_eps++] = tok;
	}
	return a->n_eps ? EXIT_OK : cli_usage_error("attack", "--eps is empty");
}

/* alpha defaults to 2.5*eps/iters (Madry et al.'s choice), at most eps. */
static void set_eps(struct attack_args *a, double eps)
{
	a->p.eps = eps;
	if (!a->alpha_set) {
		a->p.alpha = 2.5 * eps / (a->p.iters > 0 ? a->p.iters : 1);
		if (a->p.alpha > eps)
			a->p.alpha = eps;
	}
}

/* Every epsilon with the other parameters, before any file is read: a
 * value the attack cannot take is a usage error (exit 2) like a malformed
 * one. The target class and true label are checked against the model
 * later. */
static int check_params(struct attack_args *a)
{
	struct attack_args q = *a;
	char err[ERR_MAX];
	int e;

	for (e = 0; e < (a->n_eps ? a->n_eps : 1); e++) {
		set_eps(&q, a->n_eps ? a->eps[e] : 8.0 / 255);
		if (attack_params_check(&q.p, 1, err) != ST_OK)
			return a->n_eps ? cli_usage_error("attack", "--eps %s: %s",
							  a->eps_text[e], err)
					: cli_usage_error("attack", "%s", err);
	}
	return EXIT_OK;
}

static int parse_number(const char *opt, const char *s, double *v)
{
	int r = cli_parse_eps(s, v);

	if (r)
		return cli_usage_error("attack", r == -2 ?
				       "%s: '%s' is too small or too large to represent" :
				       "%s: '%s' is not a number", opt, s);
	return EXIT_OK;
}

static int parse(int argc, char **argv, struct attack_args *a)
{
	static const struct option longopts[] = {
		CLI_MODEL_OPTIONS,
		{ "data", required_argument, NULL, OPT_DATA },
		{ "split", required_argument, NULL, OPT_SPLIT },
		{ "image", required_argument, NULL, OPT_IMAGE },
		{ "images", required_argument, NULL, OPT_IMAGES },
		{ "target", required_argument, NULL, OPT_TARGET },
		{ "attack", required_argument, NULL, OPT_ATTACK },
		{ "loss", required_argument, NULL, OPT_LOSS },
		{ "norm", required_argument, NULL, OPT_NORM },
		{ "eps", required_argument, NULL, OPT_EPS },
		{ "alpha", required_argument, NULL, OPT_ALPHA },
		{ "iters", required_argument, NULL, OPT_ITERS },
		{ "momentum", required_argument, NULL, OPT_MOMENTUM },
		{ "random-start", no_argument, NULL, OPT_RANDOM_START },
		{ "early-stop", no_argument, NULL, OPT_EARLY_STOP },
		{ "clip-eps", required_argument, NULL, OPT_CLIP_EPS },
		{ "kappa", required_argument, NULL, OPT_KAPPA },
		{ "out", required_argument, NULL, OPT_OUT },
		{ "npy-out", required_argument, NULL, OPT_NPY_OUT },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "csv", no_argument, NULL, OPT_CSV },
		{ "quiet", no_argument, NULL, OPT_QUIET },
		{ "db", required_argument, NULL, OPT_DB },
		{ "no-log", no_argument, NULL, OPT_NO_LOG },
		{ "batch", required_argument, NULL, OPT_BATCH },
		CLI_RESIZE_OPTION,
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	char err[ERR_MAX];
	long v;
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		int r = cli_model_opt(&a->mo, "attack", c, optarg);

		if (r < 0)
			return EXIT_USAGE;
		if (c == OPT_SEED)
			a->p.seed = a->mo.seed;
		if (r)
			continue;
		rc = EXIT_OK;
		switch (c) {
		case OPT_DATA: a->data = optarg; break;
		case OPT_SPLIT: a->split = optarg; break;
		case OPT_IMAGE: a->image = optarg; break;
		case OPT_IMAGES: a->images = optarg; break;
		case OPT_TARGET: a->target = optarg; break;
		case OPT_OUT: a->out = optarg; break;
		case OPT_NPY_OUT: a->npy_out = optarg; break;
		case OPT_JSON: a->json = 1; break;
		case OPT_CSV: a->csv = 1; break;
		case OPT_QUIET: a->quiet = 1; break;
		case OPT_DB: a->db = optarg; break;
		case OPT_NO_LOG: a->no_log = 1; break;
		case OPT_RESIZE: a->resize = 1; break;
		case OPT_RANDOM_START: a->p.random_start = 1; break;
		case OPT_EARLY_STOP: a->p.early_stop = 1; break;
		case OPT_ATTACK:
			if (attack_kind_parse(optarg, &a->p.kind, err) != ST_OK)
				return cli_usage_error("attack", "%s", err);
			break;
		case OPT_NORM:
			if (attack_norm_parse(optarg, &a->p.norm, err) != ST_OK)
				return cli_usage_error("attack", "%s", err);
			break;
		case OPT_LOSS:
			if (loss_mode_parse(optarg, &a->p.loss.mode, err) != ST_OK)
				return cli_usage_error("attack", "%s", err);
			break;
		case OPT_EPS: rc = parse_eps_list(a, optarg); break;
		case OPT_ALPHA:
			rc = parse_number("--alpha", optarg, &a->p.alpha);
			a->alpha_set = 1;
			break;
		case OPT_MOMENTUM: rc = parse_number("--momentum", optarg, &a->p.momentum); break;
		case OPT_CLIP_EPS: rc = parse_number("--clip-eps", optarg, &a->p.loss.clip_eps); break;
		case OPT_KAPPA: rc = parse_number("--kappa", optarg, &a->p.loss.kappa); break;
		case OPT_ITERS:
			if ((v = cli_parse_long(optarg, 0, 1000000)) < 0)
				return cli_usage_error("attack", "--iters: '%s' is not a count", optarg);
			a->p.iters = (int)v;
			break;
		case OPT_BATCH:
			if ((v = cli_parse_long(optarg, 1, CLI_MAX_BATCH)) < 0)
				return cli_usage_error("attack", "--batch wants 1..%d", CLI_MAX_BATCH);
			a->batch = (int)v;
			break;
		case 'h': attack_help(); exit(EXIT_OK);
		default: return cli_usage_error("attack", "unknown option");
		}
		if (rc)
			return rc;
	}
	if (optind < argc)
		return cli_usage_error("attack", "unexpected argument '%s'", argv[optind]);
	if (!!a->image == !!a->images)
		return cli_usage_error("attack", "give --image REF (one image) or --images A:B (batch)");
	if ((rc = cli_check_outputs(a->out, a->npy_out, NULL)))
		return rc;
	if (a->images && !a->data)
		return cli_usage_error("attack", "--images needs --data");
	if (a->image && a->n_eps > 1)
		return cli_usage_error("attack", "several epsilons need --images A:B");
	if (a->db && a->no_log)
		return cli_usage_error("attack", "give --db FILE or --no-log, not both");
	if (a->p.kind == ATTACK_FGSM)
		a->p.iters = 1;
	if (a->batch && !a->images)
		return cli_usage_error("attack", "--batch is for batch mode (--images A:B)");
	if (a->image && (rc = cli_check_image_ref("attack", a->image)))
		return rc;
	return check_params(a);
}

/* Slots of the batch sweep: --batch, but no more than the sweep has
 * attacks (from the A:B text; run_batch checks it against the data), so a
 * short sweep does not size the net for images it never holds. */
static int sweep_slots(const struct attack_args *a)
{
	long lo, hi, want = a->batch ? a->batch : DEFAULT_BATCH;
	char *end;

	lo = strtol(a->images, &end, 10);
	if (*end == ':') {
		hi = strtol(end + 1, &end, 10);
		if (hi > lo && lo >= 0 && (hi - lo) * a->n_eps < want)
			want = (hi - lo) * a->n_eps;
	}
	return (int)want;
}

/* ---- the run log ----------------------------------------------------------- */

/* Set by SIGINT/SIGTERM. The step callback sees it and cancels, so the run
 * is finished as 'interrupted' rather than left half-written. A handler can
 * reach nothing but a file-scope flag, hence not part of a context. */
static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* SA_RESETHAND: a second Ctrl-C kills at once, should the first be stuck
 * (in a long wait for another process's write lock, say). */
static void catch_stop_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop_signal;
	sa.sa_flags = SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/* The run being recorded, and what the log needs besides the attack. */
struct run_log {
	struct db *db;			/* NULL: --no-log */
	int64_t id;			/* the run being written; 0: none */
	int failed;			/* a step could not be logged: err says why */
	char err[ERR_MAX];
	struct timespec t0;		/* when the run began */
	struct run_begin b;		/* the model's fields filled once */
	char model_path[4096], arch[256], ref[4096];
};

/* Where the model came from, and a one-line summary of it. */
static void log_model(struct run_log *l, const struct attack_args *a,
		      const struct net_info *in)
{
	char data[4096];
	int demo, n = 0;

	if (a->mo.arch) {
		snprintf(l->model_path, sizeof l->model_path, "builtin:%s", a->mo.arch);
		n = snprintf(l->arch, sizeof l->arch, "%s, weights seed %lu: ",
			     a->mo.arch, a->mo.seed);
	} else if (a->mo.model) {
		snprintf(l->model_path, sizeof l->model_path, "%s", a->mo.model);
	} else if (cli_default_source(data, l->model_path, sizeof l->model_path, &demo)) {
		snprintf(l->model_path, sizeof l->model_path, "(unknown)");
	}
	if (n < 0 || (size_t)n >= sizeof l->arch)
		n = 0;
	snprintf(l->arch + n, sizeof l->arch - (size_t)n,
		 "%dx%dx%d -> %d classes, %d layers, %zu parameters%s%s", in->in_c,
		 in->in_h, in->in_w, in->n_classes, in->n_layers, in->n_params,
		 !a->mo.arch && in->source && in->source[0] ? "; " : "",
		 !a->mo.arch && in->source ? in->source : "");
	l->b.model_path = l->model_path;
	l->b.model_arch = l->arch;
	l->b.n_classes = in->n_classes;
	l->b.classes = in->classes;
	l->b.h = in->in_h;
	l->b.w = in->in_w;
}

/* Begin a run on x0: image `ref` of dataset d, or the PNG file ref (d NULL). */
static int log_begin(struct run_log *l, const struct attack_params *p,
		     const struct dataset *d, const char *ref, int label,
		     const float *x0)
{
	char *abs = NULL;

	l->id = 0;
	if (!l->db)
		return EXIT_OK;
	l->b.params = p;
	l->b.true_label = label;
	l->b.x0 = x0;
	if (d) {
		l->b.data_path = dataset_path(d);
		l->b.data_kind = dataset_kind_name(dataset_kind(d));
		l->b.data_split = dataset_split(d);
		l->b.image_ref = ref;
	} else {
		abs = realpath(ref, NULL);
		snprintf(l->ref, sizeof l->ref, "%s", abs ? abs : ref);
		free(abs);
		l->b.data_path = NULL;
		l->b.data_kind = "png";
		l->b.data_split = NULL;
		l->b.image_ref = l->ref;
	}
	if (runs_begin(l->db, &l->b, &l->id, l->err) != ST_OK)
		return cli_fail("%s", l->err);
	clock_gettime(CLOCK_MONOTONIC, &l->t0);
	return EXIT_OK;
}

/* Log one step; non-zero cancels the attack (a log error, or Ctrl-C). */
static int log_step(struct run_log *l, const struct attack_report *r)
{
	if (l->db && l->id && !l->failed &&
	    runs_step(l->db, l->id, r, l->b.n_classes, l->err) != ST_OK)
		l->failed = 1;
	return l->failed || stop_requested;
}

/* Close the run as status; x_adv NULL when there is no image to keep. */
static int log_finish(struct run_log *l, const char *status,
		      const struct attack_report *final, const float *x_adv)
{
	struct timespec t1;
	double wall;

	if (!l->db || !l->id)
		return EXIT_OK;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	wall = (double)(t1.tv_sec - l->t0.tv_sec) + (t1.tv_nsec - l->t0.tv_nsec) / 1e9;
	if (runs_finish(l->db, l->id, status, final, x_adv, wall, l->err) != ST_OK)
		return cli_fail("%s", l->err);
	return EXIT_OK;
}

/* After attack_run: record how it ended and say what went wrong, if
 * anything. cancelled: attack_run's 1. */
static int log_outcome(struct run_log *l, int cancelled,
		       const struct attack_report *final, const float *x_adv)
{
	char ignored[ERR_MAX];

	if (l->failed) {
		/* best effort: if this fails too, the next open of the log
		 * marks the run interrupted */
		if (l->db && l->id)
			runs_finish(l->db, l->id, "failed", final, x_adv, 0.0, ignored);
		return cli_fail("%s", l->err);
	}
	if (log_finish(l, cancelled ? "interrupted" : "done", final, x_adv))
		return EXIT_FAIL;
	if (cancelled) {
		if (l->id)
			return cli_fail("interrupted: run %lld recorded as interrupted in %s",
					(long long)l->id, db_path(l->db));
		return cli_fail("interrupted");
	}
	return EXIT_OK;
}

/* ---- one image ----------------------------------------------------------- */

struct single_ctx {
	const struct net_info *in;
	int json, quiet;
	struct run_log *log;
};

static void print_step_json(const struct net_info *in, const struct attack_report *r,
			    const char *type, long long run_id)
{
	json_t *o = json_pack("{s:s, s:i, s:f, s:f, s:i, s:s, s:f, s:f, s:f, s:f, s:f, s:f, s:b, s:f}",
			      "type", type, "iter", r->iter, "loss", r->loss,
			      "target_prob", r->target_prob, "pred", r->pred,
			      "pred_name", in->classes[r->pred], "grad_l2", r->grad.l2,
			      "grad_linf", r->grad.linf, "zero_fraction", r->grad.zero_frac,
			      "pert_linf", r->pert_linf, "pert_l2", r->pert_l2,
			      "step_ms", r->step_ms, "success", r->success,
			      "grad_l1", r->grad.l1);
	char *s;

	json_object_set_new(o, "diagnosis", r->diagnosis && r->diagnosis[0] ?
			    json_string(r->diagnosis) : json_null());
	if (run_id > 0)
		json_object_set_new(o, "run_id", json_integer(run_id));
	if (isinf(r->loss) || isnan(r->loss))
		json_object_set_new(o, "loss", json_string(isnan(r->loss) ? "nan" : "inf"));
	s = json_dumps(o, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(8));
	if (s)
		puts(s);
	free(s);
	json_decref(o);
}

static int on_step(const struct attack_report *r, void *user)
{
	const struct single_ctx *c = user;
	char cn[CLI_NAME_MAX], why[4096];

	if (log_step(c->log, r))
		return 1;
	if (c->json) {
		print_step_json(c->in, r, "step", 0);
		return 0;
	}
	if (c->quiet)
		return 0;
	printf("%4d  %12.6g  %11.4g  %-12s %11.4g  %6.2f%%  %9.4g  %7.1fms\n", r->iter,
	       r->loss, r->target_prob, cli_class_name(c->in, r->pred, cn, sizeof cn), r->grad.l2,
	       100 * r->grad.zero_frac, r->pert_linf, r->step_ms);
	if (r->diagnosis && r->diagnosis[0])
		printf("      diagnosis: %s\n", cli_printable(r->diagnosis, why, sizeof why));
	return 0;
}

static int write_png(const struct attack_args *a, const struct attack *at,
		     const struct net_info *in, const char *src, int target)
{
	const struct attack_params *p = attack_get_params(at);
	char eps[64], alpha[64], iters[32], err[ERR_MAX];
	const char *keys[] = { "advex.attack", "advex.loss", "advex.norm", "advex.eps",
			       "advex.alpha", "advex.iterations", "advex.target",
			       "advex.source", "advex.model" };
	const char *vals[9];

	snprintf(eps, sizeof eps, "%.9g (%s)", p->eps, a->eps_text[0] ? a->eps_text[0] : "");
	snprintf(alpha, sizeof alpha, "%.9g", p->alpha);
	snprintf(iters, sizeof iters, "%d", attack_iter(at));
	vals[0] = attack_kind_name(p->kind);
	vals[1] = loss_mode_name(p->loss.mode);
	vals[2] = attack_norm_name(p->norm);
	vals[3] = eps;
	vals[4] = alpha;
	vals[5] = iters;
	vals[6] = target >= 0 ? in->classes[target] : "(untargeted)";
	vals[7] = src;
	vals[8] = a->mo.used;
	if (image_write_png(a->out, attack_x_adv(at), in->in_h, in->in_w, keys, vals,
			    9, err) != ST_OK)
		return cli_fail("%s", err);
	return EXIT_OK;
}

static void print_summary(const struct attack_args *a, const struct net_info *in,
			  const struct attack_report *r, int label,
			  const struct run_log *log)
{
	const struct attack_params *p = &a->p;
	char cn[CLI_NAME_MAX], why[4096];

	if (a->json) {
		print_step_json(in, r, "summary", (long long)log->id);
		return;
	}
	printf("\nresult       %s: predicted %s (p = %.4g) after %d iteration%s\n",
	       r->success ? "success" : "no success", cli_class_name(in, r->pred, cn, sizeof cn),
	       r->probs[r->pred], r->iter, r->iter == 1 ? "" : "s");
	printf("             %s = %.4g (loss %.6g)\n", p->target >= 0 ? "p(target)" :
	       "p(true label)", r->target_prob, r->loss);
	printf("perturbation Linf %.6g  L2 %.6g  (eps %.6g, %s)\n", r->pert_linf,
	       r->pert_l2, p->eps, attack_norm_name(p->norm));
	if (label >= 0)
		printf("true label   %s\n", cli_class_name(in, label, cn, sizeof cn));
	if (r->diagnosis && r->diagnosis[0])
		printf("diagnosis    %s\n", cli_printable(r->diagnosis, why, sizeof why));
	if (log->id)
		printf("run log      run %lld in %s\n", (long long)log->id, db_path(log->db));
}

static int run_single(struct attack_args *a, struct net *n, struct dataset *d,
		      struct run_log *log)
{
	const struct net_info *in = net_get_info(n);
	float *x = malloc(sizeof *x * 3 * (size_t)in->in_h * in->in_w);
	struct single_ctx ctx = { in, a->json, a->quiet, log };
	struct attack_report rep;
	struct attack *at = NULL;
	char name[512], err[ERR_MAX], cn[CLI_NAME_MAX], shown[sizeof name * 4];
	int label, rc, cancelled;
	/* as cli_load_image decides: a number names a dataset image */
	int from_data = d && cli_parse_long(a->image, 0, INT_MAX) >= 0;

	if (!x)
		return cli_fail("out of memory");
	rc = cli_load_image(a->image, d, in, x, &label, name, sizeof name);
	if (rc)
		goto out;
	a->p.true_label = label;
	set_eps(a, a->n_eps ? a->eps[0] : 8.0 / 255);
	if (attack_params_check(&a->p, in->n_classes, err) != ST_OK ||
	    attack_new(n, &at, err) != ST_OK || attack_reset(at, x, &a->p, err) != ST_OK) {
		rc = cli_fail("%s", err);
		goto out;
	}
	if (!a->json && !a->quiet) {
		printf("attack %s %s eps %.6g alpha %.6g iters %d, loss %s, %s%s\n",
		       attack_kind_name(a->p.kind), attack_norm_name(a->p.norm), a->p.eps,
		       a->p.alpha, a->p.iters, loss_mode_name(a->p.loss.mode),
		       a->p.target >= 0 ? "target " : "untargeted",
		       a->p.target >= 0 ? cli_class_name(in, a->p.target, cn, sizeof cn) : "");
		printf("image  %s%s%s\n\n", cli_printable(name, shown, sizeof shown),
		       label >= 0 ? ", true label " : "",
		       label >= 0 ? cli_class_name(in, label, cn, sizeof cn) : "");
		printf("%4s  %12s  %11s  %-12s %11s  %7s  %9s  %9s\n", "iter", "loss",
		       a->p.target >= 0 ? "p(target)" : "p(true)", "prediction",
		       "grad L2", "zero", "pert Linf", "time");
	}
	rc = log_begin(log, &a->p, from_data ? d : NULL, from_data ? name : a->image,
		       label, attack_x0(at));
	if (rc)
		goto out;
	cancelled = attack_run(at, on_step, &ctx) == 1;
	attack_evaluate(at, &rep);
	if (!log->failed)
		print_summary(a, in, &rep, attack_label(at), log);
	rc = log_outcome(log, cancelled, &rep, attack_x_adv(at));
	if (!rc && a->out)
		rc = write_png(a, at, in, name, a->p.target);
	if (!rc && a->npy_out) {
		int shape[4] = { 1, 3, in->in_h, in->in_w };

		if (npy_write_f32(a->npy_out, shape, 4, attack_x_adv(at), err) != ST_OK)
			rc = cli_fail("%s", err);
	}
out:
	attack_free(at);
	free(x);
	return rc;
}

/* ---- batch: images x epsilons ---------------------------------------------- */

static int parse_range(const char *s, int count, int *lo, int *hi)
{
	char *end;
	long a = strtol(s, &end, 10), b;

	if (end == s || *end != ':')
		return -1;
	s = end + 1;
	b = strtol(s, &end, 10);
	if (end == s || *end || a < 0 || b <= a || b > count)
		return -1;
	*lo = (int)a;
	*hi = (int)b;
	return 0;
}

static void progress(int done, int total, double eps, int ok, int tty)
{
	int i, fill = total ? 30 * done / total : 30;
	char bar[31];

	for (i = 0; i < 30; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[30] = 0;
	if (tty)
		fprintf(stderr, "\r\033[Keps %.4g [%s] %d/%d succeeded %d", eps, bar,
			done, total, ok);
}

static void print_batch_row(const struct attack_args *a, int e, int attempted,
			    int succeeded, const int *skipped, int n_skipped,
			    double clean_acc)
{
	double rate = attempted ? (double)succeeded / attempted : 0.0;
	int i;

	if (a->json) {
		json_t *o = json_pack("{s:f, s:s, s:i, s:i, s:f, s:i, s:f}", "eps", a->eps[e],
				      "eps_text", a->eps_text[e], "attempted", attempted,
				      "succeeded", succeeded, "success_rate", rate,
				      "skipped", n_skipped, "clean_accuracy", clean_acc);
		json_t *sk = json_array();
		char *s;

		for (i = 0; i < n_skipped; i++)
			json_array_append_new(sk, json_integer(skipped[i]));
		json_object_set_new(o, "skipped_images", sk);
		s = json_dumps(o, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(8));
		if (s)
			puts(s);
		free(s);
		json_decref(o);
	} else if (a->csv) {
		printf("%.8g,%s,%d,%d,%.6f,%d,%.6f\n", a->eps[e], a->eps_text[e], attempted,
		       succeeded, rate, n_skipped, clean_acc);
	} else {
		printf("%-12s %10d %10d %11.1f%%\n", a->eps_text[e], attempted, succeeded,
		       100 * rate);
	}
	fflush(stdout);
}

/* A batch sweep: the (epsilon, image) attacks in the order of the table,
 * eps by eps, image by image, run through an attack_batch of --batch
 * slots. A slot steps its attack to the end, is evaluated there (the
 * run's outcome), then takes the next attack, so the batch stays full
 * until the sweep runs out. Each slot writes its own run. */
struct sweep {
	struct attack_args *a;
	const struct net_info *in;
	struct dataset *d;
	struct attack_batch *b;
	int lo, hi, tty;
	int next_e, next_i;		/* the next attack to start */
	int row;			/* the next table row to print */
	int shown;			/* attacks done when progress last drew */
	int *pending;			/* n_eps: attacks not finished */
	int *attempted, *succeeded;	/* n_eps */
	int *slot_e;			/* per slot: the epsilon of its attack */
	struct run_log *logs;		/* per slot: the run it writes */
	struct attack_report *reps;	/* per slot */
	float *x;			/* one image, to load */
	const int *skipped;
	int n_skipped;
	double clean_acc;
};

static int skip_image(const struct sweep *w, int i)
{
	return w->a->p.target >= 0 && dataset_label(w->d, i) == w->a->p.target;
}

/* Advance (e, i) to the next image to attack from (e, i) on; 0 when the
 * sweep has none left. */
static int next_attack(const struct sweep *w, int *e, int *i)
{
	for (; *e < w->a->n_eps; (*e)++, *i = w->lo)
		for (; *i < w->hi; (*i)++)
			if (!skip_image(w, *i))
				return 1;
	return 0;
}

/* Put the next attack of the sweep into slot s and begin its run, or
 * leave the slot empty when there is none. */
static int sweep_fill(struct sweep *w, int s)
{
	struct attack *at = attack_batch_attack(w->b, s);
	struct attack_args *a = w->a;
	char err[ERR_MAX], ref[512];
	int y, rc;

	if (!next_attack(w, &w->next_e, &w->next_i)) {
		attack_batch_set_op(w->b, s, ATTACK_OP_NONE, err);
		return EXIT_OK;
	}
	y = dataset_label(w->d, w->next_i);
	set_eps(a, a->eps[w->next_e]);
	a->p.true_label = y;
	if (dataset_image(w->d, w->next_i, w->x, err) != ST_OK ||
	    attack_params_check(&a->p, w->in->n_classes, err) != ST_OK ||
	    attack_reset(at, w->x, &a->p, err) != ST_OK)
		return cli_fail("%s", err);
	dataset_image_name(w->d, w->next_i, ref, sizeof ref);
	if ((rc = log_begin(&w->logs[s], attack_get_params(at), w->d, ref, y,
			    attack_x0(at))))
		return rc;
	w->slot_e[s] = w->next_e;
	w->next_i++;
	attack_batch_set_op(w->b, s, ATTACK_OP_STEP, err);
	return EXIT_OK;
}

/* Print the rows whose epsilon has no attack left, in table order. */
static void sweep_rows(struct sweep *w)
{
	int done;

	while (w->row < w->a->n_eps && !w->pending[w->row]) {
		if (w->tty)
			fputs("\r\033[K", stderr);
		print_batch_row(w->a, w->row, w->attempted[w->row], w->succeeded[w->row],
				w->skipped, w->n_skipped, w->clean_acc);
		w->row++;
	}
	if (w->row < w->a->n_eps) {
		done = w->hi - w->lo - w->pending[w->row];
		if (done != w->shown)
			progress(done, w->hi - w->lo, w->a->eps[w->row],
				 w->succeeded[w->row], w->tty);
		w->shown = done;
	}
}

/* Slot s has its outcome in reps[s]: close its run, count it, and empty
 * the slot. */
static int sweep_done(struct sweep *w, int s)
{
	struct attack *at = attack_batch_attack(w->b, s);
	int e = w->slot_e[s], rc;
	char err[ERR_MAX];

	rc = log_outcome(&w->logs[s], 0, &w->reps[s], attack_x_adv(at));
	attack_batch_set_op(w->b, s, ATTACK_OP_NONE, err);
	if (rc)
		return rc;
	w->attempted[e]++;
	w->succeeded[e] += w->reps[s].success;
	w->pending[e]--;
	return EXIT_OK;
}

/* Stopped (Ctrl-C, a log error, a failed start): every attack still in a
 * slot is evaluated where it is and its run finished as interrupted
 * (failed when its own log write failed), as one attack alone would be.
 * Returns rc, or the first error of these. */
static int sweep_abandon(struct sweep *w, int rc)
{
	struct attack_report rep;
	char err[ERR_MAX];
	int s, r;

	if (w->tty)
		fputs("\r\033[K", stderr);
	for (s = 0; s < attack_batch_max(w->b); s++) {
		struct attack *at = attack_batch_attack(w->b, s);

		if (attack_batch_op(w->b, s) == ATTACK_OP_NONE)
			continue;
		attack_batch_set_op(w->b, s, ATTACK_OP_NONE, err);
		if (!w->logs[s].db)
			continue;
		attack_evaluate(at, &rep);
		r = log_outcome(&w->logs[s], 1, &rep, attack_x_adv(at));
		rc = rc ? rc : r;
	}
	/* nothing logged: Ctrl-C has not been said yet */
	return rc ? rc : cli_fail("interrupted");
}

/* The outcome of one batched step, slot by slot: log the steps, close the
 * runs evaluated at their end point and start the next attacks, send the
 * finished ones to their end-point evaluation. Non-zero: the sweep
 * stopped (its message said). */
static int sweep_after_step(struct sweep *w)
{
	int s, rc = EXIT_OK, stop = 0;
	char err[ERR_MAX];

	for (s = 0; s < attack_batch_max(w->b); s++)
		if (attack_batch_op(w->b, s) == ATTACK_OP_STEP)
			stop |= log_step(&w->logs[s], &w->reps[s]);
	for (s = 0; s < attack_batch_max(w->b) && !rc; s++) {
		enum attack_op op = attack_batch_op(w->b, s);

		if (op == ATTACK_OP_EVALUATE) {
			if (!(rc = sweep_done(w, s)) && !stop)
				rc = sweep_fill(w, s);
		} else if (op == ATTACK_OP_STEP && w->reps[s].finished && !stop) {
			attack_batch_set_op(w->b, s, ATTACK_OP_EVALUATE, err);
		}
	}
	return rc || stop ? sweep_abandon(w, rc) : EXIT_OK;
}

static int sweep_run(struct sweep *w)
{
	int s, rc = EXIT_OK;

	for (s = 0; s < attack_batch_max(w->b) && !rc; s++)
		rc = sweep_fill(w, s);
	if (rc)
		return sweep_abandon(w, rc);
	sweep_rows(w);
	while (attack_batch_step(w->b, w->reps) > 0) {
		if ((rc = sweep_after_step(w)))
			return rc;
		sweep_rows(w);
	}
	return EXIT_OK;
}

/* Allocate the sweep's per-slot and per-epsilon state. */
static int sweep_new(struct sweep *w, struct net *n, const struct run_log *log)
{
	int s, slots = w->a->batch, ne = w->a->n_eps;
	char err[ERR_MAX];

	if (attack_batch_new(n, slots, &w->b, err) != ST_OK)
		return cli_fail("%s", err);
	w->pending = calloc((size_t)ne, sizeof *w->pending);
	w->attempted = calloc((size_t)ne, sizeof *w->attempted);
	w->succeeded = calloc((size_t)ne, sizeof *w->succeeded);
	w->slot_e = calloc((size_t)slots, sizeof *w->slot_e);
	w->logs = calloc((size_t)slots, sizeof *w->logs);
	w->reps = calloc((size_t)slots, sizeof *w->reps);
	w->x = malloc(sizeof *w->x * 3 * (size_t)w->in->in_h * w->in->in_w);
	if (!w->pending || !w->attempted || !w->succeeded || !w->slot_e ||
	    !w->logs || !w->reps || !w->x)
		return cli_fail("out of memory");
	/* every slot writes its own runs of the same model into the same log */
	for (s = 0; s < slots; s++)
		w->logs[s] = *log;
	return EXIT_OK;
}

static void sweep_free(struct sweep *w)
{
	attack_batch_free(w->b);
	free(w->pending);
	free(w->attempted);
	free(w->succeeded);
	free(w->slot_e);
	free(w->logs);
	free(w->reps);
	free(w->x);
}

static int run_batch(struct attack_args *a, struct net *n, struct dataset *d,
		     struct run_log *log)
{
	const struct net_info *in = net_get_info(n);
	size_t npix = 3 * (size_t)in->in_h * in->in_w;
	int lo, hi, i, e, rc = EXIT_OK, n_skipped = 0, clean_ok = 0, labelled = 0;
	float *x = malloc(sizeof *x * npix);
	int *skipped = NULL;
	struct sweep w;
	char err[ERR_MAX], cn[CLI_NAME_MAX], shown[4096];

	memset(&w, 0, sizeof w);
	if (cli_fit_data(d, in, 0)) {
		free(x);
		return EXIT_FAIL;
	}
	if (parse_range(a->images, dataset_count(d), &lo, &hi)) {
		free(x);
		return cli_usage_error("attack", "--images %s: want A:B with 0 <= A < B <= %d",
				       a->images, dataset_count(d));
	}
	skipped = malloc(sizeof *skipped * (size_t)(hi - lo));
	if (!x || !skipped) {
		rc = cli_fail("out of memory");
		goto out;
	}
	/* clean accuracy and the images whose label already is the target */
	for (i = lo; i < hi; i++) {
		int y = dataset_label(d, i), k, arg = 0;
		const float *z;

		if (dataset_image(d, i, x, err) != ST_OK) {
			rc = cli_fail("%s", err);
			goto out;
		}
		z = net_forward(n, x, 1);
		for (k = 1; k < in->n_classes; k++)
			if (z[k] > z[arg])
				arg = k;
		labelled += y >= 0;
		clean_ok += y >= 0 && arg == y;
		if (a->p.target >= 0 && y == a->p.target)
			skipped[n_skipped++] = i;
	}
	w.a = a;
	w.in = in;
	w.d = d;
	w.lo = w.next_i = lo;
	w.hi = hi;
	w.tty = isatty(2) && !a->quiet && !a->json && !a->csv;
	w.shown = -1;
	w.skipped = skipped;
	w.n_skipped = n_skipped;
	w.clean_acc = labelled ? (double)clean_ok / labelled : 0.0;
	if ((rc = sweep_new(&w, n, log)))
		goto out;
	for (e = 0; e < a->n_eps; e++)
		w.pending[e] = hi - lo - n_skipped;
	if (a->csv)
		printf("eps,eps_text,attempted,succeeded,success_rate,skipped,clean_accuracy\n");
	else if (!a->json)
		printf("%s %s, loss %s, %s%s, images %d..%d of %s (%s), %d per batch\n"
		       "clean accuracy %.2f%% (%d of %d); %d skipped (true label is the target)\n\n"
		       "%-12s %10s %10s %12s\n",
		       attack_kind_name(a->p.kind), attack_norm_name(a->p.norm),
		       loss_mode_name(a->p.loss.mode), a->p.target >= 0 ? "target " : "untargeted",
		       a->p.target >= 0 ? cli_class_name(in, a->p.target, cn, sizeof cn) : "", lo, hi - 1,
		       cli_printable(dataset_path(d), shown, sizeof shown), dataset_split(d), a->batch,
		       labelled ? 100.0 * clean_ok / labelled : 0.0, clean_ok, labelled,
		       n_skipped, "eps", "attempted", "succeeded", "success rate");
	rc = sweep_run(&w);
out:
	sweep_free(&w);
	free(x);
	free(skipped);
	return rc;
}

int cmd_attack(int argc, char **argv)
{
	struct attack_args a = { .mo = { .seed = 1 }, .p = attack_params_default() };
	struct run_log *log = NULL;
	struct dataset *d = NULL;
	struct net *n = NULL;
	char path[4096], err[ERR_MAX];
	int rc, batch_given;

	a.p.seed = 0;
	if ((rc = parse(argc, argv, &a)))
		return rc;
	if (!a.n_eps) {
		a.eps[0] = 8.0 / 255;
		a.eps_text[0] = "8/255";
		a.n_eps = 1;
	}
	/* the log first: an unwritable one fails before any work */
	log = calloc(1, sizeof *log);
	if (!log)
		return cli_fail("out of memory");
	if (!a.no_log && db_open(a.db ? a.db : db_default_path(path, sizeof path),
				 &log->db, err) != ST_OK) {
		free(log);
		return cli_fail("%s", err);
	}
	cli_set_threads(a.mo.threads);
	batch_given = a.batch > 0;
	a.batch = a.images ? sweep_slots(&a) : 1;
	if ((rc = cli_load_net(&a.mo, "attack", a.batch, 0, &n)))
		goto out;
	/* A small network gains nothing from batching (the demo model: 0.07
	 * GFLOP, 0.83 ms a step alone, 0.92 ms per image in batches of 8),
	 * so without --batch it runs one image at a time. */
	if (!batch_given && cli_forward_flop(n) < SMALL_NET_FLOP)
		a.batch = 1;
	if (a.target) {
		a.p.target = cli_class_index(net_get_info(n), a.target);
		if (a.p.target < 0) {
			rc = EXIT_USAGE;
			goto out;
		}
	}
	if ((a.data || cli_is_index(a.image)) &&
	    (rc = cli_open_data(a.data, a.split, &d)))
		goto out;
	/* without --resize the size is checked where the data is used: a
	 * PNG --image does not need --data's images to fit */
	if (d && a.resize && (rc = cli_fit_data(d, net_get_info(n), 1)))
		goto out;
	log_model(log, &a, net_get_info(n));
	catch_stop_signals();
	rc = a.images ? run_batch(&a, n, d, log) : run_single(&a, n, d, log);
out:
	dataset_close(d);
	net_free(n);
	db_close(log->db);
	free(log);
	return rc;
}
