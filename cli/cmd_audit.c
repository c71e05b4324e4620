/* cmd_audit.c - `advex audit`: run an attack over a range of images and
 * the checks of core/audit.h on it; a report (or --json), and the whole
 * audit in the run log (db/audits.h), each image's attack as a run. */
#include <getopt.h>
#include <limits.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "audit_json.h"
#include "audits.h"
#include "cmd_attack.h"
#include "dataset.h"
#include "db.h"
#include "jsonout.h"

enum {
	OPT_DATA = OPT_FIRST_FREE, OPT_SPLIT, OPT_IMAGES, OPT_TARGET, OPT_ATTACK,
	OPT_LOSS, OPT_NORM, OPT_EPS, OPT_BUDGETS, OPT_ALPHA, OPT_ITERS,
	OPT_MOMENTUM, OPT_RANDOM_START, OPT_EARLY_STOP, OPT_CLIP_EPS, OPT_KAPPA,
	OPT_QUERIES, OPT_NOISE_SAMPLES, OPT_DB, OPT_NO_LOG, OPT_LIST, OPT_SHOW,
	OPT_RESTARTS, OPT_QUANTIZE, OPT_STEPS, OPT_BINARY_STEPS, OPT_SHARD
};

struct audit_args {
	struct attack_args a;		/* model, data, attack, log options */
	double budgets[AUDIT_MAX_EPS];
	int n_budgets, queries, noise_samples;
	int norm_set, steps;		/* --norm given; --steps */
	int list;			/* --list */
	long long show;			/* --show ID (0: none, -1: latest) */
};

static void audit_help(void)
{
	printf("usage: advex audit [--model FILE | --arch NAME] [--data DIR] --images A:B\n"
	       "                   [--eps E] [--target T] [--attack A] [--loss L]\n"
	       "                   [--iters K] [--json] [--no-log] [options]\n\n"
	       "Why did my attack fail? Run the attack on every image in [A, B), then\n"
	       "nine checks, each with a verdict (pass / warn / fail / skipped), the\n"
	       "figure behind it and one sentence with the cause and the fix:\n"
	       "  1 the model outputs probabilities (attack the logits)\n"
	       "  2 unavailable gradients: input gradient exactly zero, and why\n"
	       "  3 silent success: an iterate was adversarial, the result is not\n"
	       "  4 incomplete optimisation: a failed attack's loss still improving over\n"
	       "    its last 10 evaluations (by > 0.05 of its range)\n"
	       "  5 unconstrained failure: where it failed, the same attack with the\n"
	       "    whole pixel range as budget must succeed\n"
	       "  6 gradient-free beats gradient-based: Square at the same budget and\n"
	       "    norm (Linf or L2)\n"
	       "  7 non-monotone budget: success must not fall as epsilon grows\n"
	       "  8 unstable predictions: loss change under +-8/255 noise (100 draws) at\n"
	       "    the clean image, and 5 forwards of each image that must agree\n"
	       "  9 export survives: each success saved as an 8-bit PNG still succeeds\n"
	       "Every image's attack is logged as a run; the audit is stored in the\n"
	       "run log (tables audits and audit_images, README).\n\n"
	       "       advex audit --list [--db FILE] [--json]\n"
	       "       advex audit --show ID|latest [--db FILE] [--json]\n"
	       "The stored audits, newest first; one stored audit's checks and images.\n\n%s"
	       "  --data DIR          STL-10, CIFAR-10 or image folder (default: the demo)\n"
	       "  --split S           test (default) or train\n"
	       "  --images A:B        images A..B-1 of the data (required)\n"
	       "  --attack A          fgsm, bim (ifgsm), pgd (default), mifgsm, apgd-ce,\n"
	       "                      apgd-dlr, square, deepfool, cw (as for advex attack)\n"
	       "  --restarts R        apgd-ce, apgd-dlr: seeded restarts\n"
	       "  --steps S, --binary-steps B   cw: Adam steps per binary step, binary steps\n"
	       "  --quantize          every iterate on the 8-bit grid of a PNG\n"
	       "  --loss L            ce (default), prob-ce, prob-naive, cw\n"
	       "  --norm N            linf (default) or l2\n"
	       "  --eps E             the budget audited (default 8/255; '8/255' accepted)\n"
	       "  --budgets E1,E2,... check 7's epsilons, ascending (default eps/4, eps/2,\n"
	       "                      eps, 2 eps)\n"
	       "  --alpha A           step size (default 2.5*eps/iters, at most eps)\n"
	       "  --iters K           iterations (default 10)\n"
	       "  --target T          class index or name: a targeted attack\n"
	       "  --early-stop        stop each attack at its first success\n"
	       "  --seed S            of random starts and noise (default 0)\n"
	       "  --clip-eps E, --kappa K, --momentum M   as for advex attack\n"
	       "  --queries Q         Square's queries for check 6 (default 1000); with\n"
	       "                      --attack square also the audited attack's\n"
	       "  --noise-samples N   check 8's draws (default 100)\n"
	       "  --json              the report as one JSON object (params, images,\n"
	       "                      checks: {KEY: {n, title, verdict, figure, detail,\n"
	       "                      sentence, n_flagged, first_image}}, summary, audit_id)\n"
	       "  --shard I/N         only shard I (0 <= I < N) of the images (the rule of\n"
	       "                      advex attack --shard); each shard stores the audit\n"
	       "                      of its own images: merge the logs with runs merge\n"
	       "  --shard slurm       I and N from the SLURM job array\n"
	       "  --db FILE           run log (default ~/.local/share/advex/runs.db); %%i,\n"
	       "                      %%n: the shard and the shard count\n"
	       "  --no-log            record nothing\n"
	       "  --list              list the stored audits\n"
	       "  --show ID|latest    print a stored audit (--json: as stored, with run ids)\n"
	       "Exit status: 0 when the audit ran (whatever its verdicts), 1 on a\n"
	       "runtime error, 2 on a usage error.\n",
	       source_model_help);
}

/* "E1,E2,...": each an epsilon ('8/255' accepted). */
static int parse_budgets(struct audit_args *u, char *list)
{
	char *tok, *save = NULL;

	u->n_budgets = 0;
	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (u->n_budgets == AUDIT_MAX_EPS)
			return cli_usage_error("audit", "--budgets: at most %d", AUDIT_MAX_EPS);
		if (cli_parse_eps(tok, &u->budgets[u->n_budgets++]))
			return cli_usage_error("audit", "--budgets: '%s' is not a number or fraction",
					       tok);
	}
	return u->n_budgets ? EXIT_OK : cli_usage_error("audit", "--budgets is empty");
}

static int parse_num(const char *opt, const char *s, double *v)
{
	if (cli_parse_eps(s, v))
		return cli_usage_error("audit", "%s: '%s' is not a number", opt, s);
	return EXIT_OK;
}

static int parse_opt(struct audit_args *u, int c, char *arg)
{
	struct attack_args *a = &u->a;
	char err[ERR_MAX];
	long v;

	switch (c) {
	case OPT_DATA: a->data = arg; return EXIT_OK;
	case OPT_SPLIT: a->split = arg; return EXIT_OK;
	case OPT_IMAGES: a->images = arg; return EXIT_OK;
	case OPT_TARGET: a->target = arg; return EXIT_OK;
	case OPT_JSON: a->json = 1; return EXIT_OK;
	case OPT_DB: a->db = arg; return EXIT_OK;
	case OPT_NO_LOG: a->no_log = 1; return EXIT_OK;
	case OPT_EARLY_STOP: a->p.early_stop = 1; return EXIT_OK;
	case OPT_RANDOM_START: a->p.random_start = 1; return EXIT_OK;
	case OPT_ATTACK:
		if (attack_kind_parse(arg, &a->p.kind, err) != ST_OK)
			return cli_usage_error("audit", "%s", err);
		return EXIT_OK;
	case OPT_NORM:
		if (attack_norm_parse(arg, &a->p.norm, err) != ST_OK)
			return cli_usage_error("audit", "%s", err);
		u->norm_set = 1;
		return EXIT_OK;
	case OPT_QUANTIZE: a->p.quantize = 1; return EXIT_OK;
	case OPT_SHARD:
		if (shard_parse(arg, &a->shard, err) != ST_OK)
			return cli_usage_error("audit", "--shard %s", err);
		a->sharded = 1;
		return EXIT_OK;
	case OPT_RESTARTS:
		if ((v = source_parse_long(arg, 1, 1000000)) < 0)
			return cli_usage_error("audit", "--restarts: '%s' is not a count (1..1000000)",
					       arg);
		a->p.restarts = (int)v;
		return EXIT_OK;
	case OPT_STEPS:
		if ((v = source_parse_long(arg, 1, 1000000)) < 0)
			return cli_usage_error("audit", "--steps: '%s' is not a count (1..1000000)", arg);
		u->steps = (int)v;
		return EXIT_OK;
	case OPT_BINARY_STEPS:
		if ((v = source_parse_long(arg, 1, 1000)) < 0)
			return cli_usage_error("audit", "--binary-steps: '%s' is not a count (1..1000)",
					       arg);
		a->p.binary_steps = (int)v;
		return EXIT_OK;
	case OPT_LOSS:
		if (loss_mode_parse(arg, &a->p.loss.mode, err) != ST_OK)
			return cli_usage_error("audit", "%s", err);
		return EXIT_OK;
	case OPT_EPS:
		if (cli_parse_eps(arg, &a->eps[0]))
			return cli_usage_error("audit", "--eps: '%s' is not a number or fraction "
					       "(one budget; check 7's list is --budgets)", arg);
		a->n_eps = 1;
		return EXIT_OK;
	case OPT_BUDGETS: return parse_budgets(u, arg);
	case OPT_ALPHA: a->alpha_set = 1; return parse_num("--alpha", arg, &a->p.alpha);
	case OPT_MOMENTUM: return parse_num("--momentum", arg, &a->p.momentum);
	case OPT_CLIP_EPS: return parse_num("--clip-eps", arg, &a->p.loss.clip_eps);
	case OPT_KAPPA: return parse_num("--kappa", arg, &a->p.loss.kappa);
	case OPT_ITERS:
		if ((v = source_parse_long(arg, 1, 1000000)) < 0)
			return cli_usage_error("audit", "--iters: '%s' is not a count >= 1", arg);
		a->p.iters = (int)v;
		return EXIT_OK;
	case OPT_QUERIES:
		if ((v = source_parse_long(arg, 1, 10000000)) < 0)
			return cli_usage_error("audit", "--queries: '%s' is not a count >= 1", arg);
		u->queries = (int)v;
		return EXIT_OK;
	case OPT_NOISE_SAMPLES:
		if ((v = source_parse_long(arg, 1, 100000)) < 0)
			return cli_usage_error("audit", "--noise-samples wants 1..100000");
		u->noise_samples = (int)v;
		return EXIT_OK;
	case OPT_LIST: u->list = 1; return EXIT_OK;
	case OPT_SHOW:
		if (!strcmp(arg, "latest"))
			u->show = -1;
		else if ((v = source_parse_long(arg, 1, LONG_MAX)) < 0)
			return cli_usage_error("audit", "--show wants an audit id or 'latest', not '%s'",
					       arg);
		else
			u->show = v;
		return EXIT_OK;
	case 'h': audit_help(); exit(EXIT_OK);
	default: return cli_usage_error("audit", "unknown option");
	}
}

static int parse(int argc, char **argv, struct audit_args *u)
{
	static const struct option longopts[] = {
		SOURCE_MODEL_OPTIONS,
		{ "data", required_argument, NULL, OPT_DATA },
		{ "split", required_argument, NULL, OPT_SPLIT },
		{ "images", required_argument, NULL, OPT_IMAGES },
		{ "target", required_argument, NULL, OPT_TARGET },
		{ "attack", required_argument, NULL, OPT_ATTACK },
		{ "loss", required_argument, NULL, OPT_LOSS },
		{ "norm", required_argument, NULL, OPT_NORM },
		{ "eps", required_argument, NULL, OPT_EPS },
		{ "budgets", required_argument, NULL, OPT_BUDGETS },
		{ "alpha", required_argument, NULL, OPT_ALPHA },
		{ "iters", required_argument, NULL, OPT_ITERS },
		{ "momentum", required_argument, NULL, OPT_MOMENTUM },
		{ "random-start", no_argument, NULL, OPT_RANDOM_START },
		{ "early-stop", no_argument, NULL, OPT_EARLY_STOP },
		{ "clip-eps", required_argument, NULL, OPT_CLIP_EPS },
		{ "kappa", required_argument, NULL, OPT_KAPPA },
		{ "queries", required_argument, NULL, OPT_QUERIES },
		{ "noise-samples", required_argument, NULL, OPT_NOISE_SAMPLES },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "db", required_argument, NULL, OPT_DB },
		{ "no-log", no_argument, NULL, OPT_NO_LOG },
		{ "list", no_argument, NULL, OPT_LIST },
		{ "restarts", required_argument, NULL, OPT_RESTARTS },
		{ "shard", required_argument, NULL, OPT_SHARD },
		{ "quantize", no_argument, NULL, OPT_QUANTIZE },
		{ "steps", required_argument, NULL, OPT_STEPS },
		{ "binary-steps", required_argument, NULL, OPT_BINARY_STEPS },
		{ "show", required_argument, NULL, OPT_SHOW },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct attack_args *a = &u->a;
	char err[ERR_MAX];
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		int r = cli_model_opt(&a->mo, "audit", c, optarg);

		if (r < 0)
			return EXIT_USAGE;
		if (c == OPT_SEED)
			a->p.seed = a->mo.seed;
		if (!r && (rc = parse_opt(u, c, optarg)))
			return rc;
	}
	if (optind < argc)
		return cli_usage_error("audit", "unexpected argument '%s'", argv[optind]);
	if (u->list || u->show) {
		if (a->no_log || a->images)
			return cli_usage_error("audit", "--list and --show read the log: no --images, "
					       "no --no-log");
		return EXIT_OK;
	}
	if (!a->images)
		return cli_usage_error("audit", "give --images A:B");
	if (a->db && a->no_log)
		return cli_usage_error("audit", "give --db FILE or --no-log, not both");
	if (a->db) {
		if (shard_expand(a->db, &a->shard, a->db_path, sizeof a->db_path, err) != ST_OK)
			return cli_usage_error("audit", "--db %s", err);
		a->db = a->db_path;
	}
	if (a->p.kind == ATTACK_FGSM)
		a->p.iters = 1;
	/* Square's iterations are its queries: as many as check 6's */
	if (a->p.kind == ATTACK_SQUARE)
		a->p.iters = u->queries ? u->queries : 1000;
	if (u->steps && a->p.kind != ATTACK_CW)
		return cli_usage_error("audit", "--steps is for --attack cw");
	if (u->steps)
		a->p.iters = u->steps;
	if (a->p.kind == ATTACK_CW && !u->norm_set)
		a->p.norm = ATTACK_L2;
	if (a->p.kind == ATTACK_DEEPFOOL && a->target)
		return cli_usage_error("audit", "--target: deepfool is untargeted");
	if (a->p.restarts > 1 && a->p.kind != ATTACK_APGD_CE && a->p.kind != ATTACK_APGD_DLR)
		return cli_usage_error("audit", "--restarts is for --attack apgd-ce or apgd-dlr");
	cmd_attack_set_eps(a, a->n_eps ? a->eps[0] : 8.0 / 255);
	return EXIT_OK;
}

/* ---- the run ----------------------------------------------------------------- */

struct audit_run {
	struct audit_args *u;
	struct net *n;
	struct dataset *d;
	struct run_log *log;
	struct audit *au;
	struct audit_image *recs;
	int64_t *run_ids;
	int n_recs, n_skipped;
	float *x;
};

static int on_step(const struct attack_report *r, void *user)
{
	return cmd_attack_log_step(user, r);
}

/* One image: its attack logged as a run, then the checks. */
static int audit_one(struct audit_run *w, int i)
{
	struct attack_report fin;
	char err[ERR_MAX], ref[64];
	int y = dataset_label(w->d, i), cancelled, rc;
	struct audit_image *rec = &w->recs[w->n_recs];
	struct attack_params q = *attack_get_params(audit_attack(w->au));
	enum status st;

	if (w->u->a.p.target >= 0 && y == w->u->a.p.target) {
		w->n_skipped++;
		return EXIT_OK;
	}
	if (dataset_image(w->d, i, w->x, err) != ST_OK)
		return cli_fail("%s", err);
	q = w->u->a.p;
	q.true_label = y;
	dataset_image_name(w->d, i, ref, sizeof ref);
	if ((rc = cmd_attack_log_begin(w->log, &q, w->d, ref, y, w->x)))
		return rc;
	st = audit_image(w->au, i, w->x, y, on_step, w->log, &fin, rec, &cancelled, err);
	w->run_ids[w->n_recs] = cmd_attack_log_id(w->log);
	if (st != ST_OK) {
		cmd_attack_log_outcome(w->log, 1, NULL, NULL);
		return cli_fail("image %d: %s", i, err);
	}
	if ((rc = cmd_attack_log_outcome(w->log, cancelled, &fin,
					 attack_x_result(audit_attack(w->au)))) || cancelled)
		return rc ? rc : EXIT_FAIL;
	w->n_recs++;
	if (!w->u->a.json && isatty(2))
		fprintf(stderr, "\raudited %d images", w->n_recs);
	return EXIT_OK;
}

static const char *mark(int v)
{
	return v < 0 ? "-" : v ? "yes" : "no";
}

static void print_images(const struct audit_run *w)
{
	const struct net_info *in = net_get_info(w->n);
	char a[CLI_NAME_MAX], b[CLI_NAME_MAX];
	int i;

	printf("%6s %-12s %-12s %-7s %-9s %-6s %-9s %-7s %-7s %7s %6s\n", "image", "label",
	       "clean pred", "success", "gradient", "tail", "unconstr", "square", "export",
	       "noise", "run");
	for (i = 0; i < w->n_recs; i++) {
		const struct audit_image *r = &w->recs[i];
		char tail[16];

		snprintf(tail, sizeof tail, r->tail_improvement < 0 ? "-" : "%.3f",
			 r->tail_improvement);
		printf("%6d %-12s %-12s %-7s %-9s %-6s %-9s %-7s %-7s %7.3f %6lld\n", r->index,
		       cli_class_name(in, r->label, a, sizeof a),
		       cli_class_name(in, r->clean_pred, b, sizeof b),
		       r->success ? "yes" : r->ever_success ? "lost" : "no",
		       r->grad_zero > 0 ? r->cause : "ok", tail, mark(r->unconstrained),
		       mark(r->square), mark(r->export_ok), r->noise_change,
		       (long long)w->run_ids[i]);
	}
}

static void print_report(const struct audit_run *w, const struct audit_check *checks,
			 int64_t audit_id)
{
	const struct audit_params *p = audit_get_params(w->au);
	int i, cnt[4] = { 0 };
	char shown[4096];

	printf("audit: %s %s, loss %s, eps %.6g, %d iterations, %s; images %s of %s (%s), "
	       "%d audited, %d skipped (label is the target)\n\n",
	       attack_kind_name(p->attack.kind), attack_norm_name(p->attack.norm),
	       attack_objective_name(&p->attack), p->attack.eps, p->attack.iters,
	       p->attack.target >= 0 ? "targeted" : "untargeted", w->u->a.images,
	       cli_printable(dataset_path(w->d), shown, sizeof shown), dataset_split(w->d),
	       w->n_recs, w->n_skipped);
	print_images(w);
	printf("\n");
	for (i = 0; i < AUDIT_N_CHECKS; i++) {
		const struct audit_check *c = &checks[i];

		cnt[c->verdict]++;
		printf("%d. %-36s %-7s %s\n   %s\n", i + 1, c->title,
		       audit_verdict_name(c->verdict), c->figure_text, c->sentence);
		if (c->first_image >= 0 && c->verdict != AUDIT_PASS)
			printf("   first: image %d\n", c->first_image);
	}
	printf("\n%d fail, %d warn, %d pass, %d skipped", cnt[AUDIT_FAIL], cnt[AUDIT_WARN],
	       cnt[AUDIT_PASS], cnt[AUDIT_SKIPPED]);
	if (audit_id > 0)
		printf("; stored as audit %lld", (long long)audit_id);
	printf("\n");
}

static void print_json(const struct audit_run *w, const struct audit_check *checks,
		       int64_t audit_id)
{
	json_t *o = audit_json_report(audit_get_params(w->au), w->recs, w->n_recs, checks);
	json_t *im = json_object_get(o, "images");
	char *s;
	int i;

	for (i = 0; i < w->n_recs; i++)
		json_object_set_new(json_array_get(im, (size_t)i), "run_id",
				    w->run_ids[i] > 0 ? json_integer(w->run_ids[i]) : json_null());
	json_object_set_new(o, "audit_id", audit_id > 0 ? json_integer(audit_id) : json_null());
	s = jsonout_dumps(o, JSON_PRESERVE_ORDER);
	if (s)
		puts(s);
	free(s);
	json_decref(o);
}

static int finish(struct audit_run *w)
{
	struct audit_check checks[AUDIT_N_CHECKS];
	int64_t audit_id = 0;
	char err[ERR_MAX];

	if (!w->u->a.json && isatty(2))
		fprintf(stderr, "\r\033[K");
	audit_verdicts(w->au, w->recs, w->n_recs, checks);
	if (w->log->db && audits_save(w->log->db, audit_get_params(w->au), w->recs, w->run_ids,
				      w->n_recs, checks, &audit_id, err) != ST_OK)
		return cli_fail("%s", err);
	if (w->u->a.json)
		print_json(w, checks, audit_id);
	else
		print_report(w, checks, audit_id);
	return EXIT_OK;
}

static int run(struct audit_run *w)
{
	const struct net_info *in = net_get_info(w->n);
	struct audit_params p = audit_params_default(&w->u->a.p);
	char err[ERR_MAX];
	int lo, hi, i, rc = EXIT_OK;

	if (source_parse_range(w->u->a.images, dataset_count(w->d), 0, &lo, &hi))
		return cli_usage_error("audit", "--images %s: want A:B with 0 <= A < B <= %d",
				       w->u->a.images, dataset_count(w->d));
	shard_range(&w->u->a.shard, lo, hi, &lo, &hi);
	memcpy(p.eps, w->u->budgets, sizeof p.eps);
	p.n_eps = w->u->n_budgets;
	if (w->u->queries)
		p.square_queries = w->u->queries;
	if (w->u->noise_samples)
		p.noise_samples = w->u->noise_samples;
	if (audit_new(w->n, &p, &w->au, err) != ST_OK)
		return cli_usage_error("audit", "%s", err);
	w->recs = calloc((size_t)(hi > lo ? hi - lo : 1), sizeof *w->recs);
	w->run_ids = calloc((size_t)(hi > lo ? hi - lo : 1), sizeof *w->run_ids);
	w->x = malloc(sizeof(float) * (size_t)in->in_c * in->in_h * in->in_w);
	if (!w->recs || !w->run_ids || !w->x)
		return cli_fail("out of memory");
	for (i = lo; i < hi && rc == EXIT_OK; i++)
		rc = audit_one(w, i);
	return rc ? rc : finish(w);
}

/* ---- stored audits ------------------------------------------------------------ */

static void put_json(json_t *o)
{
	char *s = jsonout_dumps(o, JSON_PRESERVE_ORDER);

	if (s)
		puts(s);
	free(s);
}

static const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static void print_stored(json_t *o)
{
	json_t *params = json_object_get(o, "params"), *checks = json_object_get(o, "checks");
	json_t *c, *im;
	const char *key;
	char buf[1024];
	size_t i;

	printf("audit %lld, %s: %s %s, loss %s, eps %.6g, %lld iterations\n\n",
	       (long long)json_integer_value(json_object_get(o, "id")), jstr(o, "created"),
	       jstr(params, "attack"), jstr(params, "norm"), jstr(params, "loss"),
	       json_number_value(json_object_get(params, "eps")),
	       (long long)json_integer_value(json_object_get(params, "iters")));
	json_object_foreach(checks, key, c)
		printf("%lld. %-36s %-7s %s\n   %s\n",
		       (long long)json_integer_value(json_object_get(c, "n")),
		       cli_printable(jstr(c, "title"), buf, sizeof buf), jstr(c, "verdict"),
		       jstr(c, "detail"), jstr(c, "sentence"));
	printf("\nimage  run   success\n");
	json_array_foreach(json_object_get(o, "images"), i, im)
		printf("%5lld  %-5lld %s\n", (long long)json_integer_value(json_object_get(im, "index")),
		       (long long)json_integer_value(json_object_get(im, "run_id")),
		       json_is_true(json_object_get(im, "success")) ? "yes" : "no");
}

static int stored(const struct audit_args *u)
{
	struct db *db = NULL;
	char path[4096], err[ERR_MAX];
	json_t *o = NULL, *e;
	enum status st;
	size_t i;

	if (db_open_read(u->a.db ? u->a.db : db_default_path(path, sizeof path), &db, err) != ST_OK)
		return cli_fail("%s", err);
	st = u->list ? audits_list(db, &o, err)
		     : audits_load(db, u->show < 0 ? 0 : u->show, &o, err);
	db_close(db);
	if (st != ST_OK)
		return cli_fail("%s", err);
	if (u->a.json)
		put_json(o);
	else if (!u->list)
		print_stored(o);
	else if (!json_array_size(o))
		printf("no audits in the log\n");
	else
		json_array_foreach(o, i, e)
			printf("%5lld  %s  %-8s eps %-9.4g %3lld images  %lld fail, %lld warn, %lld pass\n",
			       (long long)json_integer_value(json_object_get(e, "id")),
			       jstr(e, "created"), jstr(e, "attack"),
			       json_number_value(json_object_get(e, "eps")),
			       (long long)json_integer_value(json_object_get(e, "n_images")),
			       (long long)json_integer_value(json_object_get(e, "fail")),
			       (long long)json_integer_value(json_object_get(e, "warn")),
			       (long long)json_integer_value(json_object_get(e, "pass")));
	json_decref(o);
	return EXIT_OK;
}

int cmd_audit(int argc, char **argv)
{
	struct audit_args u = { .a = { .mo = { .seed = 1 }, .p = attack_params_default(),
				       .shard = { 0, 1 } } };
	struct audit_run w = { .u = &u };
	char path[4096], err[ERR_MAX];
	int rc;

	u.a.p.seed = 0;
	if ((rc = parse(argc, argv, &u)))
		return rc;
	if (u.list || u.show)
		return stored(&u);
	w.log = calloc(1, sizeof *w.log);
	if (!w.log)
		return cli_fail("out of memory");
	if (!u.a.no_log && db_open(u.a.db ? u.a.db : db_default_path(path, sizeof path),
				   &w.log->db, err) != ST_OK) {
		free(w.log);
		return cli_fail("%s", err);
	}
	if ((rc = cmd_attack_log_open(w.log)))
		goto out;
	source_set_threads(u.a.mo.threads);
	if ((rc = cli_load_net(&u.a.mo, "audit", 1, 0, &w.n)) ||
	    (rc = cli_open_data(u.a.data, u.a.split, &w.d)) ||
	    (rc = cli_fit_data(w.d, net_get_info(w.n), 0)))
		goto out;
	if (u.a.target && (u.a.p.target = cli_class_index(net_get_info(w.n), u.a.target)) < 0) {
		rc = EXIT_USAGE;
		goto out;
	}
	cmd_attack_log_model(w.log, &u.a, net_get_info(w.n));
	cmd_attack_log_catch_signals();
	rc = run(&w);
out:
	audit_free(w.au);
	free(w.recs);
	free(w.run_ids);
	free(w.x);
	dataset_close(w.d);
	net_free(w.n);
	cmd_attack_log_close(w.log);
	db_close(w.log->db);
	free(w.log);
	return rc;
}
