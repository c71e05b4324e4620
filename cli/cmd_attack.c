/* cmd_attack.c - `advex attack`: run an attack on one image (a per-step
 * table, cmd_attack_one.c) or on a range of dataset images at several
 * epsilons (the success rate per epsilon, the curve researchers plot;
 * cmd_attack_sweep.c). Every run, and every step of it, goes to the run
 * log (cmd_attack_log.c) unless --no-log. This file: the options. */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_attack.h"
#include "dataset.h"
#include "db.h"
#include "net.h"

#define DEFAULT_BATCH 8
#define SMALL_NET_FLOP 1e9	/* below: default --batch 1 */

enum {
	OPT_DATA = OPT_FIRST_FREE, OPT_SPLIT, OPT_IMAGE, OPT_IMAGES, OPT_TARGET,
	OPT_ATTACK, OPT_LOSS, OPT_NORM, OPT_EPS, OPT_ALPHA, OPT_ITERS,
	OPT_MOMENTUM, OPT_RANDOM_START, OPT_EARLY_STOP, OPT_CLIP_EPS,
	OPT_KAPPA, OPT_OUT, OPT_CSV, OPT_QUIET, OPT_DB, OPT_NO_LOG, OPT_NPY_OUT,
	OPT_BATCH, OPT_RESTARTS, OPT_QUERIES, OPT_QUANTIZE, OPT_STEPS, OPT_BINARY_STEPS, OPT_SHARD
};

static void attack_help(void)
{
	printf("usage: advex attack (--model FILE | --arch NAME) --image REF [options]\n"
	       "       advex attack (--model FILE | --arch NAME) --data DIR --images A:B\n"
	       "                    --eps E1,E2,... [--shard I/N | --shard slurm] [options]\n\n"
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
	       "  --attack K          fgsm, ifgsm (= bim), pgd (default), mifgsm,\n"
	       "                      apgd-ce, apgd-dlr (APGD, Croce & Hein 2020: own step\n"
	       "                      size schedule, momentum 0.75, returns the best point;\n"
	       "                      --alpha and --loss do not apply), square (Square\n"
	       "                      attack, Linf or L2: random search on the outputs'\n"
	       "                      margin, no gradient; Linf: squares of +-eps; L2:\n"
	       "                      pairs of windows, the perturbation kept on the\n"
	       "                      eps-sphere before the [0,1] clip; returns the best\n"
	       "                      point), deepfool\n"
	       "                      (DeepFool: untargeted, overshoot 0.02, the 10 top\n"
	       "                      classes; --iters is its maximum; no eps-ball: it\n"
	       "                      reports the smallest perturbation it found), cw\n"
	       "                      (Carlini-Wagner L2: tanh variables, Adam lr 0.01,\n"
	       "                      binary search on the constant from 1e-3, margin\n"
	       "                      --kappa; L2 only, the default norm for it; no\n"
	       "                      eps-ball: the smallest successful perturbation)\n"
	       "  --steps N           cw: Adam steps per binary step (= --iters)\n"
	       "  --binary-steps B    cw: binary steps on the constant (default 9)\n"
	       "  --restarts R        apgd-*: R runs of --iters iterations, restart r from\n"
	       "                      a random start seeded from --seed and r (default 1)\n"
	       "  --queries Q         square: the query budget (= --iters; default 10)\n"
	       "  --quantize          every iterate on the 8-bit grid round(255 x)/255,\n"
	       "                      kept in the eps-ball and [0,1] (see man advex)\n"
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
	       "                      ~/.local/share/advex/runs.db); see advex runs.\n"
	       "                      %%i is replaced by the shard, %%n by the shard\n"
	       "                      count (0 and 1 without --shard), %%%% by %%\n"
	       "  --shard I/N         batch mode: only shard I (0 <= I < N) of the images:\n"
	       "                      [A, B) cut into N contiguous blocks whose sizes\n"
	       "                      differ by at most one; each image's results are\n"
	       "                      those of the unsharded run (merge the shards' logs\n"
	       "                      with advex runs merge, see the table with advex\n"
	       "                      runs sweep)\n"
	       "  --shard slurm       the same with I = SLURM_ARRAY_TASK_ID -\n"
	       "                      SLURM_ARRAY_TASK_MIN, N = SLURM_ARRAY_TASK_COUNT\n"
	       "                      (a job array's task; the array's ids must be\n"
	       "                      consecutive, e.g. --array=0-7 or 1-8)\n"
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
	       source_model_help, DEFAULT_BATCH, CLI_MAX_BATCH);
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
		cmd_attack_set_eps(&q, a->n_eps ? a->eps[e] : 8.0 / 255);
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
		SOURCE_MODEL_OPTIONS,
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
		{ "restarts", required_argument, NULL, OPT_RESTARTS },
		{ "queries", required_argument, NULL, OPT_QUERIES },
		{ "quantize", no_argument, NULL, OPT_QUANTIZE },
		{ "steps", required_argument, NULL, OPT_STEPS },
		{ "binary-steps", required_argument, NULL, OPT_BINARY_STEPS },
		{ "shard", required_argument, NULL, OPT_SHARD },
		SOURCE_RESIZE_OPTION,
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	char err[ERR_MAX];
	long v;
	int c, rc, queries = 0, iters_set = 0, steps = 0, binary_set = 0, norm_set = 0;

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
			norm_set = 1;
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
			if ((v = source_parse_long(optarg, 0, 1000000)) < 0)
				return cli_usage_error("attack", "--iters: '%s' is not a count", optarg);
			a->p.iters = (int)v;
			iters_set = 1;
			break;
		case OPT_QUANTIZE: a->p.quantize = 1; break;
		case OPT_STEPS:
			if ((v = source_parse_long(optarg, 1, 1000000)) < 0)
				return cli_usage_error("attack", "--steps: '%s' is not a count "
						       "(1..1000000)", optarg);
			steps = (int)v;
			break;
		case OPT_BINARY_STEPS:
			if ((v = source_parse_long(optarg, 1, 1000)) < 0)
				return cli_usage_error("attack", "--binary-steps: '%s' is not a "
						       "count (1..1000)", optarg);
			a->p.binary_steps = (int)v;
			binary_set = 1;
			break;
		case OPT_RESTARTS:
			if ((v = source_parse_long(optarg, 1, 1000000)) < 0)
				return cli_usage_error("attack", "--restarts: '%s' is not a count "
						       "(1..1000000)", optarg);
			a->p.restarts = (int)v;
			break;
		case OPT_QUERIES:
			if ((v = source_parse_long(optarg, 1, 1000000)) < 0)
				return cli_usage_error("attack", "--queries: '%s' is not a count "
						       "(1..1000000)", optarg);
			queries = (int)v;
			break;
		case OPT_BATCH:
			if ((v = source_parse_long(optarg, 1, CLI_MAX_BATCH)) < 0)
				return cli_usage_error("attack", "--batch wants 1..%d", CLI_MAX_BATCH);
			a->batch = (int)v;
			break;
		case OPT_SHARD:
			if (shard_parse(optarg, &a->shard, err) != ST_OK)
				return cli_usage_error("attack", "%s", err);
			a->sharded = 1;
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
	if (a->image && a->n_eps > 1)
		return cli_usage_error("attack", "several epsilons need --images A:B");
	if (a->db && a->no_log)
		return cli_usage_error("attack", "give --db FILE or --no-log, not both");
	if (a->p.kind == ATTACK_FGSM)
		a->p.iters = 1;
	if (queries && a->p.kind != ATTACK_SQUARE)
		return cli_usage_error("attack", "--queries is for --attack square");
	if (queries && iters_set && queries != a->p.iters)
		return cli_usage_error("attack", "--queries %d and --iters %d: square's "
				       "queries are its iterations, give one", queries,
				       a->p.iters);
	if (queries)
		a->p.iters = queries;
	if ((steps || binary_set) && a->p.kind != ATTACK_CW)
		return cli_usage_error("attack", "--steps and --binary-steps are for --attack cw");
	if (steps && iters_set && steps != a->p.iters)
		return cli_usage_error("attack", "--steps %d and --iters %d: cw's steps are its "
				       "iterations, give one", steps, a->p.iters);
	if (steps)
		a->p.iters = steps;
	if (a->p.kind == ATTACK_CW && !norm_set)
		a->p.norm = ATTACK_L2;
	if (a->p.kind == ATTACK_DEEPFOOL && a->target)
		return cli_usage_error("attack", "--target: deepfool is untargeted (it moves "
				       "to the nearest class)");
	if (a->p.restarts > 1 && a->p.kind != ATTACK_APGD_CE &&
	    a->p.kind != ATTACK_APGD_DLR)
		return cli_usage_error("attack", "--restarts is for --attack apgd-ce or apgd-dlr");
	if (a->batch && !a->images)
		return cli_usage_error("attack", "--batch is for batch mode (--images A:B)");
	if (a->sharded && !a->images)
		return cli_usage_error("attack", "--shard is for batch mode (--images A:B)");
	if (a->db) {
		if (shard_expand(a->db, &a->shard, a->db_path, sizeof a->db_path, err) != ST_OK)
			return cli_usage_error("attack", "--db %s", err);
		a->db = a->db_path;
	}
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
		if (hi > lo && lo >= 0 && hi <= INT32_MAX) {
			int slo, shi;

			shard_range(&a->shard, (int)lo, (int)hi, &slo, &shi);
			if ((long)(shi - slo) * a->n_eps < want)
				want = shi > slo ? (long)(shi - slo) * a->n_eps : 1;
		}
	}
	return (int)want;
}

void cmd_attack_set_eps(struct attack_args *a, double eps)
{
	a->p.eps = eps;
	if (!a->alpha_set) {
		a->p.alpha = 2.5 * eps / (a->p.iters > 0 ? a->p.iters : 1);
		if (a->p.alpha > eps)
			a->p.alpha = eps;
	}
}

int cmd_attack(int argc, char **argv)
{
	struct attack_args a = { .mo = { .seed = 1 }, .p = attack_params_default(),
				 .shard = { 0, 1 } };
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
	if ((rc = cmd_attack_log_open(log)))
		goto out;
	source_set_threads(a.mo.threads);
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
	if ((a.data || a.images || source_is_index(a.image)) &&
	    (rc = cli_open_data(a.data, a.split, &d)))
		goto out;
	/* without --resize the size is checked where the data is used: a
	 * PNG --image does not need --data's images to fit */
	if (d && a.resize && (rc = cli_fit_data(d, net_get_info(n), 1)))
		goto out;
	cmd_attack_log_model(log, &a, net_get_info(n));
	cmd_attack_log_catch_signals();
	rc = a.images ? cmd_attack_sweep(&a, n, d, log) : cmd_attack_one(&a, n, d, log);
out:
	dataset_close(d);
	net_free(n);
	cmd_attack_log_close(log);
	db_close(log->db);
	free(log);
	return rc;
}
