/* cmd_runs.c - `advex runs`: browse the run log that `advex attack` writes:
 * list, show (with the step table), compare side by side, export the
 * images again without recomputing, delete. */
#define _POSIX_C_SOURCE 200809L

#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "db.h"
#include "diag.h"
#include "image.h"
#include "jsonout.h"
#include "runs.h"
#include "cmd_runs.h"

enum {
	OPT_DB = OPT_FIRST_FREE, OPT_STATUS, OPT_LIMIT, OPT_STEPS, OPT_OUT,
	OPT_PERTURBATION, OPT_CLEAN, OPT_MODEL_FILTER
};

#define MAX_COMPARE 16

static void runs_help(void)
{
	printf("usage: advex runs list [--model M] [--status S] [--limit N] [--json]\n"
	       "       advex runs show ID [--steps] [--json]\n"
	       "       advex runs compare ID ID [ID...]\n"
	       "       advex runs export ID [--out ADV.png] [--perturbation PERT.png]\n"
	       "                            [--clean CLEAN.png]\n"
	       "       advex runs delete ID...\n"
	       "       advex runs merge --into ALL.db PART.db...\n"
	       "       advex runs sweep [--json | --csv]\n"
	       "       advex runs plot --out FILE.png [--kind sweep|loss|hist]\n"
	       "                       [--runs ID,ID...] [--step K]\n\n"
	       "Browse the run log: every `advex attack` run, its parameters, outcome\n"
	       "and every step, in one SQLite file you may also query yourself.\n\n"
	       "  --db FILE           the run log (every subcommand; default\n"
	       "                      $XDG_DATA_HOME/advex/runs.db, else\n"
	       "                      ~/.local/share/advex/runs.db)\n"
	       "list                  newest first, one line per run\n"
	       "  --model M           runs of models whose path contains M (or whose\n"
	       "                      SHA-256 starts with M)\n"
	       "  --status S          running, done, interrupted or failed\n"
	       "  --limit N           at most N runs\n"
	       "  --json              JSON lines, one object per run\n"
	       "show ID               parameters, outcome, final probabilities, and when\n"
	       "                      the gradient vanished\n"
	       "  --steps             and the table of every step\n"
	       "  --json              one JSON object (with \"steps\" when --steps)\n"
	       "compare ID ID...      side by side: the parameters that differ, the\n"
	       "                      outcome, the loss per iteration, the final\n"
	       "                      probabilities\n"
	       "export ID             write the stored images again, pixel for pixel:\n"
	       "  --out FILE          the adversarial image\n"
	       "  --perturbation FILE adversarial - clean, amplified so that the\n"
	       "                      largest change reaches 0 or 1 around mid-gray\n"
	       "                      0.5; the factor is printed and kept in the tEXt\n"
	       "                      chunk advex.perturbation_scale\n"
	       "  --clean FILE        the clean image\n"
	       "delete ID...          remove runs with their steps and images\n"
	       "merge --into ALL.db PART.db...\n"
	       "                      copy the runs of each PART log (e.g. the shards of\n"
	       "                      attack --shard) into ALL.db (created if needed),\n"
	       "                      one transaction per part, with their steps, images,\n"
	       "                      exports, and the audits: runs and audits ALL.db has\n"
	       "                      (same UUID) are skipped, so merging again changes\n"
	       "                      nothing; a run whose writer died is merged as\n"
	       "                      interrupted, one still being written is left out;\n"
	       "                      the same model file (SHA-256) or data source is\n"
	       "                      shared; a PART from a newer advex is refused and\n"
	       "                      left as it is. Says what it merged from each part\n"
	       "sweep                 the success rate per epsilon of every sweep in the\n"
	       "                      log (per model, data, attack, loss, norm, target,\n"
	       "                      iterations), the table advex attack --images A:B\n"
	       "                      prints, recomputed from the finished runs\n"
	       "  --json              JSON lines: attack's keys after the sweep's (model,\n"
	       "                      model_sha256, data, split, attack, loss, norm,\n"
	       "                      target, iters)\n"
	       "  --csv               CSV: the same columns\n"
	       "plot --out FILE.png   draw the log as a PNG (900x500; written through a\n"
	       "                      temporary name):\n"
	       "  --kind sweep        success rate versus epsilon, one line per sweep\n"
	       "                      (the default)\n"
	       "  --kind loss         loss per iteration of the runs given with --runs\n"
	       "                      (default: the last run)\n"
	       "  --kind hist         the histogram of log10|gradient| at step --step\n"
	       "                      (default: the last) of each run of --runs\n"
	       "  --runs ID,ID...     the runs to draw (loss, hist; at most 8)\n"
	       "  --step K            the iteration whose histogram to draw\n\n"
	       "Exit status: 0 done, 1 failure (e.g. no such run), 2 usage error.\n");
}

/* ---- shared ------------------------------------------------------------------ */

static int parse_id(const char *s, int64_t *id)
{
	long v = source_parse_long(s, 1, LONG_MAX);

	if (v < 0)
		return cli_usage_error("runs", "'%s' is not a run id", s);
	*id = v;
	return EXIT_OK;
}

/* Open the log; unlike `advex attack`, browsing never creates one, and
 * needs no write access (write: 0) - only delete writes. */
int cmd_runs_open_log(const char *path, int write, struct db **db)
{
	char buf[4096], err[ERR_MAX];
	struct stat sb;

	if (!path)
		path = db_default_path(buf, sizeof buf);
	if (stat(path, &sb) != 0)
		return cli_fail("%s: no run log there (advex attack writes one)", path);
	if ((write ? db_open(path, db, err) : db_open_read(path, db, err)) != ST_OK)
		return cli_fail("%s", err);
	return EXIT_OK;
}

/* A run with its class names and final probabilities. */
struct run_view {
	struct run_row row;
	char (*names)[64];	/* row.n_classes, as logged (for JSON) */
	char (*shown)[256];	/* the same through cli_printable (text) */
	float *probs;		/* n_probs final probabilities */
	int n_probs;
};

static void view_free(struct run_view *v)
{
	if (!v)
		return;
	free(v->names);
	free(v->shown);
	free(v->probs);
	free(v);
}

static int view_load(struct db *db, int64_t id, struct run_view **out)
{
	struct run_view *v = calloc(1, sizeof *v);
	char err[ERR_MAX];
	int k, i;

	*out = NULL;
	if (!v)
		return cli_fail("out of memory");
	if (runs_get(db, id, &v->row, err) != ST_OK) {
		free(v);
		return cli_fail("%s", err);
	}
	k = v->row.n_classes > 0 ? v->row.n_classes : 1;
	v->names = calloc((size_t)k, sizeof *v->names);
	v->shown = calloc((size_t)k, sizeof *v->shown);
	v->probs = calloc((size_t)k, sizeof *v->probs);
	if (!v->names || !v->shown || !v->probs) {
		view_free(v);
		return cli_fail("out of memory");
	}
	if (runs_classes(db, id, v->names, k, err) != ST_OK ||
	    runs_final_probs(db, id, v->probs, k, &v->n_probs, err) != ST_OK) {
		view_free(v);
		return cli_fail("%s", err);
	}
	for (i = 0; i < k; i++)
		cli_printable(v->names[i], v->shown[i], sizeof v->shown[i]);
	*out = v;
	return EXIT_OK;
}

/* For text output (escaped); class_raw for JSON, which escapes itself. */
static const char *class_name(const struct run_view *v, int c)
{
	if (c < 0 || c >= v->row.n_classes)
		return "-";
	return v->names[c][0] ? v->shown[c] : "?";
}

static const char *class_raw(const struct run_view *v, int c)
{
	if (c < 0 || c >= v->row.n_classes)
		return "-";
	return v->names[c][0] ? v->names[c] : "?";
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');

	return s && s[1] ? s + 1 : p;
}

/* A number for JSON: NaN (unknown) is null. */
static json_t *json_num(double v)
{
	return isfinite(v) ? json_real(v) : isnan(v) ? json_null() :
	       json_string(v > 0 ? "inf" : "-inf");
}

static json_t *json_index(int c)
{
	return c >= 0 ? json_integer(c) : json_null();
}

static json_t *json_class(const struct run_view *v, int c)
{
	return c >= 0 ? json_string(class_raw(v, c)) : json_null();
}

static void print_json_line(json_t *o, size_t flags)
{
	char *s = jsonout_dumps(o, flags | JSON_PRESERVE_ORDER);

	if (s)
		puts(s);
	free(s);
	json_decref(o);
}

/* The run as one JSON object (without steps). */
static json_t *run_json(const struct run_view *v)
{
	const struct run_row *r = &v->row;
	json_t *o = json_object(), *probs = json_array();
	int i;

	json_object_set_new(o, "id", json_integer(r->id));
	json_object_set_new(o, "uuid", json_string(r->uuid));
	json_object_set_new(o, "created", json_string(r->created));
	json_object_set_new(o, "ended", r->ended[0] ? json_string(r->ended) : json_null());
	json_object_set_new(o, "status", json_string(r->status));
	json_object_set_new(o, "writer_pid", json_integer(r->writer_pid));
	json_object_set_new(o, "model", json_pack("{s:s, s:s?, s:s}", "path", r->model_path,
			    "sha256", r->model_sha256[0] ? r->model_sha256 : NULL,
			    "arch", r->model_arch));
	json_object_set_new(o, "data", r->data_path[0] ?
			    json_pack("{s:s, s:s, s:s}", "path", r->data_path, "kind",
				      r->data_kind, "split", r->data_split) : json_null());
	json_object_set_new(o, "image", json_string(r->image_ref));
	json_object_set_new(o, "size", json_pack("[i,i]", r->h, r->w));
	json_object_set_new(o, "true_label", json_index(r->true_label));
	json_object_set_new(o, "true_label_name", json_class(v, r->true_label));
	json_object_set_new(o, "target", json_index(r->target));
	json_object_set_new(o, "target_name", json_class(v, r->target));
	json_object_set_new(o, "attack", json_string(r->attack));
	json_object_set_new(o, "loss", json_string(r->loss));
	json_object_set_new(o, "norm", json_string(r->norm));
	json_object_set_new(o, "eps", json_num(r->eps));
	json_object_set_new(o, "alpha", json_num(r->alpha));
	json_object_set_new(o, "iters", json_integer(r->iters));
	json_object_set_new(o, "momentum", json_num(r->momentum));
	json_object_set_new(o, "random_start", json_boolean(r->random_start > 0));
	json_object_set_new(o, "seed", json_integer(r->seed));
	json_object_set_new(o, "clip_eps", json_num(r->clip_eps));
	json_object_set_new(o, "kappa", json_num(r->kappa));
	json_object_set_new(o, "early_stop", json_boolean(r->early_stop > 0));
	json_object_set_new(o, "restarts", json_index(r->restarts));
	json_object_set_new(o, "binary_steps", json_index(r->binary_steps));
	json_object_set_new(o, "quantize", r->quantize < 0 ? json_null() :
			    json_boolean(r->quantize));
	json_object_set_new(o, "objective", r->objective[0] ?
			    json_string(r->objective) : json_null());
	json_object_set_new(o, "n_steps", json_integer(r->steps));
	json_object_set_new(o, "success", r->success < 0 ? json_null() :
			    json_boolean(r->success));
	json_object_set_new(o, "final_iter", r->final_iter < 0 ? json_null() :
			    json_integer(r->final_iter));
	json_object_set_new(o, "final_pred", json_index(r->final_pred));
	json_object_set_new(o, "final_pred_name", json_class(v, r->final_pred));
	json_object_set_new(o, "final_loss", json_num(r->final_loss));
	json_object_set_new(o, "final_target_prob", json_num(r->final_target_prob));
	for (i = 0; i < v->n_probs; i++)
		json_array_append_new(probs, json_num(v->probs[i]));
	json_object_set_new(o, "final_probs", v->n_probs ? probs : (json_decref(probs), json_null()));
	json_object_set_new(o, "pert_linf", json_num(r->pert_linf));
	json_object_set_new(o, "pert_l2", json_num(r->pert_l2));
	json_object_set_new(o, "wall_s", json_num(r->wall_s));
	json_object_set_new(o, "final_diagnosis", r->final_diagnosis[0] ?
			    json_string(r->final_diagnosis) : json_null());
	return o;
}

/* ---- list ----------------------------------------------------------------------- */

struct list_ctx {
	struct db *db;
	int json, n, rc;
};

static int list_one(const struct run_row *r, void *user)
{
	struct list_ctx *c = user;
	struct run_view *v;
	char when[20], what[64], result[80];

	if ((c->rc = view_load(c->db, r->id, &v)))
		return 1;
	c->n++;
	if (c->json) {
		print_json_line(run_json(v), 0);
		view_free(v);
		return 0;
	}
	/* 2025-01-02T03:04:05.678Z -> 2025-01-02 03:04:05 */
	snprintf(when, sizeof when, "%.10s %.8s", r->created, r->created + 11);
	snprintf(what, sizeof what, "%s/%s/%s eps %.4g", r->attack,
		 run_row_objective(r), r->norm, r->eps);
	if (r->success < 0)
		snprintf(result, sizeof result, "-");
	else
		snprintf(result, sizeof result, "%s -> %s", r->success ? "success" : "no",
			 class_name(v, r->final_pred));
	printf("%5lld  %s  %-11s  %-20.20s  %-18.18s  %-28s  %-10.10s  %4d/%-4d  %s\n",
	       (long long)r->id, when, r->status, base_name(r->model_path),
	       base_name(r->image_ref), what, r->target >= 0 ? class_name(v, r->target) :
	       "(untarg.)", r->steps, r->iters, result);
	view_free(v);
	return 0;
}

static int runs_cmd_list(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "db", required_argument, NULL, OPT_DB },
		{ "model", required_argument, NULL, OPT_MODEL_FILTER },
		{ "status", required_argument, NULL, OPT_STATUS },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct runs_filter f = { 0 };
	struct list_ctx c = { 0 };
	const char *path = NULL;
	char err[ERR_MAX];
	long v;
	int o;

	while ((o = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (o) {
		case OPT_DB: path = optarg; break;
		case OPT_MODEL_FILTER: f.model = optarg; break;
		case OPT_STATUS:
			if (strcmp(optarg, "running") && strcmp(optarg, "done") &&
			    strcmp(optarg, "interrupted") && strcmp(optarg, "failed"))
				return cli_usage_error("runs", "--status: running, done, "
						       "interrupted or failed, not '%s'", optarg);
			f.status = optarg;
			break;
		case OPT_LIMIT:
			if ((v = source_parse_long(optarg, 1, INT_MAX)) < 0)
				return cli_usage_error("runs", "--limit: '%s' is not a count", optarg);
			f.limit = (int)v;
			break;
		case OPT_JSON: c.json = 1; break;
		case 'h': runs_help(); return EXIT_OK;
		default: return cli_usage_error("runs", "unknown option");
		}
	}
	if (optind < argc)
		return cli_usage_error("runs", "list: unexpected argument '%s'", argv[optind]);
	if ((o = cmd_runs_open_log(path, 0, &c.db)))
		return o;
	if (!c.json)
		printf("%5s  %-19s  %-11s  %-20s  %-18s  %-28s  %-10s  %9s  %s\n", "ID",
		       "CREATED (UTC)", "STATUS", "MODEL", "IMAGE", "ATTACK", "TARGET",
		       "STEPS", "RESULT");
	if (runs_list(c.db, &f, list_one, &c, err) != ST_OK)
		c.rc = cli_fail("%s", err);
	db_close(c.db);
	return c.rc;
}

/* ---- show ------------------------------------------------------------------------ */

/* Where the gradient died: the first step whose input gradient is zero,
 * vanishing or not finite. */
struct vanish {
	int found, iter;
	double linf, zero_frac;
	char diagnosis[DIAG_EXPLAIN_MAX];
};

static void note_vanish(struct vanish *v, const struct run_step *s)
{
	int dead = !(s->grad_linf >= DIAG_VANISH_LINF) || s->zero_frac >= 1.0 ||
		   s->n_nan > 0 || s->n_inf > 0;

	if (v->found || !dead)
		return;
	v->found = 1;
	v->iter = s->iter;
	v->linf = s->grad_linf;
	v->zero_frac = s->zero_frac;
	snprintf(v->diagnosis, sizeof v->diagnosis, "%s", s->diagnosis);
}

struct show_ctx {
	const struct run_view *v;
	int table, json;
	json_t *steps;
	struct vanish vanish;
};

static json_t *step_json(const struct run_view *v, const struct run_step *s)
{
	json_t *o = json_object(), *p = json_array(), *h = json_array(), *ln = json_array();
	int i;

	for (i = 0; i < s->n_classes; i++)
		json_array_append_new(p, json_num(s->probs[i]));
	for (i = 0; i < DIAG_HIST_BINS; i++)
		json_array_append_new(h, json_integer(s->hist[i]));
	for (i = 0; i < s->n_layer_norms; i++)
		json_array_append_new(ln, json_num(s->layer_norms[i]));
	json_object_set_new(o, "iter", json_integer(s->iter));
	json_object_set_new(o, "loss", json_num(s->loss));
	json_object_set_new(o, "pred", json_integer(s->pred));
	json_object_set_new(o, "pred_name", json_string(class_raw(v, s->pred)));
	json_object_set_new(o, "target_prob", json_num(s->target_prob));
	json_object_set_new(o, "probs", p);
	json_object_set_new(o, "grad_l1", json_num(s->grad_l1));
	json_object_set_new(o, "grad_l2", json_num(s->grad_l2));
	json_object_set_new(o, "grad_linf", json_num(s->grad_linf));
	json_object_set_new(o, "zero_fraction", json_num(s->zero_frac));
	json_object_set_new(o, "log10_grad_hist", h);
	json_object_set_new(o, "n_zero", json_integer(s->n_zero));
	json_object_set_new(o, "n_nan", json_integer(s->n_nan));
	json_object_set_new(o, "n_inf", json_integer(s->n_inf));
	json_object_set_new(o, "n_tiny", json_integer(s->n_tiny));
	json_object_set_new(o, "n_huge", json_integer(s->n_huge));
	json_object_set_new(o, "layer_grad_norms", ln);
	json_object_set_new(o, "pert_linf", json_num(s->pert_linf));
	json_object_set_new(o, "pert_l2", json_num(s->pert_l2));
	json_object_set_new(o, "diagnosis", s->diagnosis[0] ? json_string(s->diagnosis) :
			    json_null());
	json_object_set_new(o, "step_ms", json_num(s->step_ms));
	return o;
}

static int show_step(const struct run_step *s, void *user)
{
	struct show_ctx *c = user;

	note_vanish(&c->vanish, s);
	if (c->json && c->steps)
		json_array_append_new(c->steps, step_json(c->v, s));
	else if (c->table) {
		printf("%5d  %12.6g  %11.4g  %-12s %11.4g  %11.4g  %6.2f%%  %9.4g  %7.1fms\n",
		       s->iter, s->loss, s->target_prob, class_name(c->v, s->pred),
		       s->grad_l2, s->grad_linf, 100 * s->zero_frac, s->pert_linf, s->step_ms);
		if (s->diagnosis[0]) {
			/* a diagnosis quotes class names */
			char why[sizeof s->diagnosis * 4];

			printf("       diagnosis: %s\n",
			       cli_printable(s->diagnosis, why, sizeof why));
		}
	}
	return 0;
}

static void print_show_head(const struct run_view *v)
{
	const struct run_row *r = &v->row;
	/* paths and the model's source come from files: escaped */
	char sh[4][4096];

	printf("run          %lld  %s  (created %s", (long long)r->id, r->status, r->created);
	if (r->ended[0])
		printf(", ended %s", r->ended);
	if (isfinite(r->wall_s))
		printf(", %.3f s", r->wall_s);
	printf(", writer pid %d)\n", r->writer_pid);
	printf("model        %s\n", cli_printable(r->model_path, sh[0], sizeof sh[0]));
	if (r->model_sha256[0])
		printf("             sha256 %s\n", r->model_sha256);
	printf("             %s\n", cli_printable(r->model_arch, sh[1], sizeof sh[1]));
	if (r->data_path[0])
		printf("data         %s (%s, split %s)\n",
		       cli_printable(r->data_path, sh[2], sizeof sh[2]), r->data_kind,
		       r->data_split[0] ? r->data_split : "-");
	printf("image        %s %dx%d, true label %s\n",
	       cli_printable(r->image_ref, sh[3], sizeof sh[3]), r->w, r->h,
	       r->true_label >= 0 ? class_name(v, r->true_label) : "unknown");
	printf("attack       %s %s, loss %s, eps %.6g, alpha %.6g, iters %d\n", r->attack,
	       r->norm, r->loss, r->eps, r->alpha, r->iters);
	printf("             momentum %g, random start %s, seed %lld, clip eps %g, "
	       "kappa %g, early stop %s\n", r->momentum, r->random_start ? "yes" : "no",
	       (long long)r->seed, r->clip_eps, r->kappa, r->early_stop ? "yes" : "no");
	if (r->quantize >= 0)	/* unknown in logs from before schema 4 */
		printf("             objective %s, restarts %d, binary steps %d, "
		       "quantize %s\n", r->objective[0] ? r->objective : "?",
		       r->restarts, r->binary_steps, r->quantize ? "yes" : "no");
	printf("target       %s\n", r->target >= 0 ? class_name(v, r->target) :
	       "(untargeted: push the true label's loss up)");
}

static void print_show_outcome(const struct run_view *v, const struct vanish *vn)
{
	const struct run_row *r = &v->row;
	char why[4096];
	int i;

	if (r->success < 0)
		printf("outcome      none recorded (%s)\n", r->status);
	else {
		printf("outcome      %s: predicted %s after %d iteration%s\n",
		       r->success ? "success" : "no success", class_name(v, r->final_pred),
		       r->final_iter, r->final_iter == 1 ? "" : "s");
		printf("             %s = %.4g, loss %.6g\n", r->target >= 0 ? "p(target)" :
		       "p(true label)", r->final_target_prob, r->final_loss);
		printf("perturbation Linf %.6g  L2 %.6g\n", r->pert_linf, r->pert_l2);
	}
	if (r->final_diagnosis[0])
		printf("diagnosis    %s\n", cli_printable(r->final_diagnosis, why, sizeof why));
	printf("steps        %d logged", r->steps);
	if (!strcmp(r->attack, "square"))
		/* the Square attack takes no gradient while it steps: its
		 * steps' gradient fields are zeros, not a dead gradient */
		printf("%s\n", r->steps ? "; no gradient (score-based attack)" : "");
	else if (vn->found)
		printf("; the gradient died at iteration %d (Linf %.3g, %.1f%% zeros)%s%s\n",
		       vn->iter, vn->linf, 100 * vn->zero_frac, vn->diagnosis[0] ? ": " : "",
		       cli_printable(vn->diagnosis, why, sizeof why));
	else
		printf("%s\n", r->steps ? "; the gradient never vanished" : "");
	if (v->n_probs) {
		printf("final probabilities\n");
		for (i = 0; i < v->n_probs; i++)
			printf("  %-12s %.6g%s\n", class_name(v, i), v->probs[i],
			       i == r->final_pred ? "  <- predicted" : "");
	}
}

static int runs_cmd_show(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "db", required_argument, NULL, OPT_DB },
		{ "steps", no_argument, NULL, OPT_STEPS },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct show_ctx c = { 0 };
	struct run_view *v = NULL;
	struct db *db = NULL;
	const char *path = NULL;
	char err[ERR_MAX];
	int64_t id = 0;
	int o, rc, steps = 0;

	while ((o = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (o) {
		case OPT_DB: path = optarg; break;
		case OPT_STEPS: steps = 1; break;
		case OPT_JSON: c.json = 1; break;
		case 'h': runs_help(); return EXIT_OK;
		default: return cli_usage_error("runs", "unknown option");
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("runs", "show wants one run ID");
	if ((rc = parse_id(argv[optind], &id)) || (rc = cmd_runs_open_log(path, 0, &db)))
		return rc;
	if ((rc = view_load(db, id, &v)))
		goto out;
	c.v = v;
	if (!c.json) {
		print_show_head(v);
		if (steps)
			printf("\n%5s  %12s  %11s  %-12s %11s  %11s  %7s  %9s  %9s\n", "iter",
			       "loss", v->row.target >= 0 ? "p(target)" : "p(true)",
			       "prediction", "grad L2", "grad Linf", "zero", "pert Linf", "time");
	}
	c.table = steps;
	c.steps = c.json && steps ? json_array() : NULL;
	if (runs_steps(db, id, show_step, &c, err) != ST_OK) {
		rc = cli_fail("%s", err);
		json_decref(c.steps);
		goto out;
	}
	if (c.json) {
		json_t *obj = run_json(v);

		if (c.steps)
			json_object_set_new(obj, "steps", c.steps);
		print_json_line(obj, JSON_INDENT(2));
	} else {
		if (steps)
			printf("\n");
		print_show_outcome(v, &c.vanish);
	}
out:
	view_free(v);
	db_close(db);
	return rc;
}

/* ---- compare ---------------------------------------------------------------------- */

/* The loss at each iteration of one run (iter -> loss; NaN where none). */
struct loss_curve {
	double *loss;
	int n;		/* iterations covered: 0 .. n-1 */
};

static int collect_loss(const struct run_step *s, void *user)
{
	struct loss_curve *c = user;

	if (s->iter < 0 || s->iter > 10000000)
		return 0;
	if (s->iter >= c->n) {
		int n = s->iter + 1, i;
		double *g = realloc(c->loss, sizeof *g * (size_t)(n > 2 * c->n ? n : 2 * c->n));

		if (!g)
			return 1;
		for (i = c->n; i < (n > 2 * c->n ? n : 2 * c->n); i++)
			g[i] = NAN;
		c->loss = g;
		c->n = n;
	}
	if (isnan(c->loss[s->iter]))
		c->loss[s->iter] = s->loss;
	return 0;
}

/* One parameter of every run as text; printed when they differ, else
 * listed once under "same". */
static void unknown_or_int(char *buf, size_t n, int v)
{
	if (v < 0)
		snprintf(buf, n, "?");
	else
		snprintf(buf, n, "%d", v);
}

static void param_text(const struct run_view *v, int k, char *buf, size_t n)
{
	const struct run_row *r = &v->row;

	switch (k) {
	case 0: snprintf(buf, n, "%.100s", base_name(r->model_path)); break;
	case 1: snprintf(buf, n, "%.12s", r->model_sha256[0] ? r->model_sha256 : "-"); break;
	case 2: snprintf(buf, n, "%.100s", base_name(r->image_ref)); break;
	case 3: snprintf(buf, n, "%s", r->true_label >= 0 ? class_name(v, r->true_label) : "?"); break;
	case 4: snprintf(buf, n, "%s", r->target >= 0 ? class_name(v, r->target) : "(untargeted)"); break;
	case 5: snprintf(buf, n, "%s", r->attack); break;
	case 6: snprintf(buf, n, "%s", r->loss); break;
	case 7: snprintf(buf, n, "%s", r->norm); break;
	case 8: snprintf(buf, n, "%.6g", r->eps); break;
	case 9: snprintf(buf, n, "%.6g", r->alpha); break;
	case 10: snprintf(buf, n, "%d", r->iters); break;
	case 11: snprintf(buf, n, "%g", r->momentum); break;
	case 12: snprintf(buf, n, "%s", r->random_start ? "yes" : "no"); break;
	case 13: snprintf(buf, n, "%lld", (long long)r->seed); break;
	case 14: snprintf(buf, n, "%g", r->clip_eps); break;
	case 15: snprintf(buf, n, "%g", r->kappa); break;
	case 16: snprintf(buf, n, "%s", r->early_stop ? "yes" : "no"); break;
	case 17: snprintf(buf, n, "%s", r->objective[0] ? r->objective : "?"); break;
	case 18: unknown_or_int(buf, n, r->restarts); break;
	case 19: unknown_or_int(buf, n, r->binary_steps); break;
	default: snprintf(buf, n, "%s", r->quantize < 0 ? "?" : r->quantize ? "yes" : "no");
		break;
	}
}

static const char *const param_names[] = {
	"model", "model sha256", "image", "true label", "target", "attack", "loss",
	"norm", "eps", "alpha", "iters", "momentum", "random start", "seed",
	"clip eps", "kappa", "early stop", "objective", "restarts", "binary steps",
	"quantize"
};
#define N_PARAMS ((int)(sizeof param_names / sizeof param_names[0]))

static void print_params(struct run_view *const *v, int n)
{
	char a[128], b[128], same[1024] = "";
	size_t used = 0;
	int k, i, differ;

	printf("parameters that differ\n");
	for (k = 0; k < N_PARAMS; k++) {
		param_text(v[0], k, a, sizeof a);
		for (differ = 0, i = 1; i < n; i++) {
			param_text(v[i], k, b, sizeof b);
			differ |= strcmp(a, b) != 0;
		}
		if (!differ) {
			int w = snprintf(same + used, sizeof same - used, "%s%s %s",
					 used ? ", " : "", param_names[k], a);

			if (w > 0 && used + (size_t)w < sizeof same)
				used += (size_t)w;
			continue;
		}
		printf("  %-14s", param_names[k]);
		for (i = 0; i < n; i++) {
			param_text(v[i], k, b, sizeof b);
			printf(" %-18.18s", b);
		}
		printf("\n");
	}
	printf("the same in all: %s\n", used ? same : "(nothing)");
}

static void print_outcomes(struct run_view *const *v, int n)
{
	static const char *const rows[] = {
		"status", "success", "prediction", "p(target)", "final loss",
		"iterations", "pert Linf", "pert L2", "wall s"
	};
	int k, i;

	printf("\noutcome\n");
	for (k = 0; k < (int)(sizeof rows / sizeof rows[0]); k++) {
		printf("  %-14s", rows[k]);
		for (i = 0; i < n; i++) {
			const struct run_row *r = &v[i]->row;
			char buf[64];

			switch (k) {
			case 0: snprintf(buf, sizeof buf, "%s", r->status); break;
			case 1: snprintf(buf, sizeof buf, "%s", r->success < 0 ? "-" :
					 r->success ? "yes" : "no"); break;
			case 2: snprintf(buf, sizeof buf, "%s", class_name(v[i], r->final_pred)); break;
			case 3: snprintf(buf, sizeof buf, "%.6g", r->final_target_prob); break;
			case 4: snprintf(buf, sizeof buf, "%.6g", r->final_loss); break;
			case 5: snprintf(buf, sizeof buf, "%d", r->final_iter); break;
			case 6: snprintf(buf, sizeof buf, "%.6g", r->pert_linf); break;
			case 7: snprintf(buf, sizeof buf, "%.6g", r->pert_l2); break;
			default: snprintf(buf, sizeof buf, "%.3f", r->wall_s); break;
			}
			printf(" %-18.18s", buf);
		}
		printf("\n");
	}
}

static void print_run_header(struct run_view *const *v, int n, const char *first)
{
	char buf[32];
	int i;

	printf("  %-14s", first);
	for (i = 0; i < n; i++) {
		snprintf(buf, sizeof buf, "run %lld", (long long)v[i]->row.id);
		printf(" %-18s", buf);
	}
	printf("\n");
}

static void print_losses(struct run_view *const *v, const struct loss_curve *c, int n)
{
	int it, i, max = 0;

	for (i = 0; i < n; i++)
		if (c[i].n > max)
			max = c[i].n;
	printf("\nloss per iteration\n");
	print_run_header(v, n, "iter");
	for (it = 0; it < max; it++) {
		int any = 0;

		for (i = 0; i < n; i++)
			any |= it < c[i].n && !isnan(c[i].loss[it]);
		if (!any)
			continue;
		printf("  %-14d", it);
		for (i = 0; i < n; i++) {
			if (it < c[i].n && !isnan(c[i].loss[it]))
				printf(" %-18.9g", c[i].loss[it]);
			else
				printf(" %-18s", "-");
		}
		printf("\n");
	}
}

static void print_final_probs(struct run_view *const *v, int n)
{
	int k, i, max = 0;

	for (i = 0; i < n; i++)
		if (v[i]->n_probs > max)
			max = v[i]->n_probs;
	printf("\nfinal probabilities\n");
	print_run_header(v, n, "class");
	for (k = 0; k < max; k++) {
		printf("  %-14.14s", class_name(v[0], k));
		for (i = 0; i < n; i++) {
			if (k < v[i]->n_probs)
				printf(" %-18.6g", v[i]->probs[k]);
			else
				printf(" %-18s", "-");
		}
		printf("\n");
	}
}

static int runs_cmd_compare(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "db", required_argument, NULL, OPT_DB },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct run_view *v[MAX_COMPARE] = { 0 };
	struct loss_curve c[MAX_COMPARE];
	struct db *db = NULL;
	const char *path = NULL;
	char err[ERR_MAX];
	int64_t ids[MAX_COMPARE];
	int o, rc = EXIT_OK, n, i;

	while ((o = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (o) {
		case OPT_DB: path = optarg; break;
		case 'h': runs_help(); return EXIT_OK;
		default: return cli_usage_error("runs", "unknown option");
		}
	}
	n = argc - optind;
	if (n < 2 || n > MAX_COMPARE)
		return cli_usage_error("runs", "compare wants 2 to %d run IDs", MAX_COMPARE);
	for (i = 0; i < n; i++)
		if ((rc = parse_id(argv[optind + i], &ids[i])))
			return rc;
	if ((rc = cmd_runs_open_log(path, 0, &db)))
		return rc;
	memset(c, 0, sizeof c);
	for (i = 0; i < n && !rc; i++) {
		rc = view_load(db, ids[i], &v[i]);
		if (!rc && runs_steps(db, ids[i], collect_loss, &c[i], err) != ST_OK)
			rc = cli_fail("%s", err);
	}
	if (!rc) {
		print_run_header(v, n, "");
		print_params(v, n);
		print_outcomes(v, n);
		print_losses(v, c, n);
		print_final_probs(v, n);
	}
	for (i = 0; i < n; i++) {
		view_free(v[i]);
		free(c[i].loss);
	}
	db_close(db);
	return rc;
}

/* ---- export ------------------------------------------------------------------------ */

static int load_png(struct db *db, int64_t id, int adv, float **pix, int *h, int *w)
{
	unsigned char *png;
	size_t len;
	char err[ERR_MAX];
	enum status st;

	st = adv ? runs_adv_png(db, id, &png, &len, err) :
	     runs_clean_png(db, id, &png, &len, err);
	if (st != ST_OK)
		return cli_fail("%s", err);
	st = image_decode_png(png, len, pix, h, w, err);
	free(png);
	if (st != ST_OK)
		return cli_fail("RUN %lld in %s: stored %s image: %s", (long long)id,
				db_path(db), adv ? "adversarial" : "clean", err);
	return EXIT_OK;
}

/* Write pix with the run's parameters in tEXt chunks, plus extra ones. */
static int write_with_text(const char *path, const float *pix, int h, int w,
			   const struct run_row *r, const char *role,
			   const char *const *xkeys, const char *const *xvals, int nx)
{
	const char *keys[12] = { "advex.run", "advex.image", "advex.attack", "advex.loss",
				 "advex.norm", "advex.eps", "advex.source", "advex.model" };
	const char *vals[12];
	char id[32], eps[32], err[ERR_MAX];
	int i, n = 8;

	snprintf(id, sizeof id, "%lld", (long long)r->id);
	snprintf(eps, sizeof eps, "%.9g", r->eps);
	vals[0] = id;
	vals[1] = role;
	vals[2] = r->attack;
	vals[3] = r->loss;
	vals[4] = r->norm;
	vals[5] = eps;
	vals[6] = r->image_ref;
	vals[7] = r->model_path;
	for (i = 0; i < nx && n < 12; i++, n++) {
		keys[n] = xkeys[i];
		vals[n] = xvals[i];
	}
	if (image_write_png(path, pix, h, w, keys, vals, n, err) != ST_OK)
		return cli_fail("%s", err);
	return EXIT_OK;
}

/* 0.5 + scale * (adv - clean), scale = 0.5 / max|adv - clean|: the
 * largest change reaches black or white. */
static int export_perturbation(const char *out, const float *adv, const float *clean,
			       int h, int w, const struct run_row *r)
{
	size_t i, n = 3 * (size_t)h * w;
	float *p = malloc(sizeof *p * n);
	double m = 0, scale;
	char sc[64], desc[256];
	const char *keys[] = { "advex.perturbation_scale", "advex.perturbation" };
	const char *vals[] = { sc, desc };
	int rc;

	if (!p)
		return cli_fail("out of memory");
	for (i = 0; i < n; i++)
		if (fabs((double)adv[i] - clean[i]) > m)
			m = fabs((double)adv[i] - clean[i]);
	scale = m > 0 ? 0.5 / m : 0;
	for (i = 0; i < n; i++)
		p[i] = (float)(0.5 + scale * ((double)adv[i] - clean[i]));
	snprintf(sc, sizeof sc, "%.9g", scale);
	snprintf(desc, sizeof desc, "pixel = 0.5 + %.9g * (adversarial - clean); "
		 "max |adversarial - clean| = %.9g (%.4g/255); eps %.9g (%s)",
		 scale, m, m * 255, r->eps, r->norm);
	rc = write_with_text(out, p, h, w, r, "perturbation", keys, vals, 2);
	if (!rc) {
		if (m > 0)
			printf("perturbation %s: (adversarial - clean) x %.4g around mid-gray "
			       "(max |change| %.4g = %.4g/255; eps %.4g); the factor is in its "
			       "tEXt chunk advex.perturbation_scale\n", out, scale, m, m * 255,
			       r->eps);
		else
			printf("perturbation %s: the images are identical (plain mid-gray; "
			       "advex.perturbation_scale 0)\n", out);
	}
	free(p);
	return rc;
}

static int runs_cmd_export(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "db", required_argument, NULL, OPT_DB },
		{ "out", required_argument, NULL, OPT_OUT },
		{ "perturbation", required_argument, NULL, OPT_PERTURBATION },
		{ "clean", required_argument, NULL, OPT_CLEAN },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *path = NULL, *out = NULL, *pert = NULL, *clean = NULL;
	float *adv_pix = NULL, *clean_pix = NULL;
	struct run_row *r = NULL;
	struct db *db = NULL;
	char err[ERR_MAX];
	int64_t id = 0;
	int o, rc, h = 0, w = 0, h2, w2;

	while ((o = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (o) {
		case OPT_DB: path = optarg; break;
		case OPT_OUT: out = optarg; break;
		case OPT_PERTURBATION: pert = optarg; break;
		case OPT_CLEAN: clean = optarg; break;
		case 'h': runs_help(); return EXIT_OK;
		default: return cli_usage_error("runs", "unknown option");
		}
	}
	if (optind != argc - 1)
		return cli_usage_error("runs", "export wants one run ID");
	if (!out && !pert && !clean)
		return cli_usage_error("runs", "export: give --out, --perturbation or --clean");
	if ((rc = cli_check_outputs(out, pert, clean)))
		return rc;
	if ((rc = parse_id(argv[optind], &id)) || (rc = cmd_runs_open_log(path, 0, &db)))
		return rc;
	r = malloc(sizeof *r);
	if (!r) {
		rc = cli_fail("out of memory");
		goto out;
	}
	if (runs_get(db, id, r, err) != ST_OK) {
		rc = cli_fail("%s", err);
		goto out;
	}
	if ((out || pert) && (rc = load_png(db, id, 1, &adv_pix, &h, &w)))
		goto out;
	if ((clean || pert) && (rc = load_png(db, id, 0, &clean_pix, &h2, &w2)))
		goto out;
	if (adv_pix && clean_pix && (h != h2 || w != w2)) {
		rc = cli_fail("RUN %lld in %s: the stored images differ in size", (long long)id,
			      db_path(db));
		goto out;
	}
	if (out && !(rc = write_with_text(out, adv_pix, h, w, r, "adversarial", NULL, NULL, 0)))
		printf("adversarial  %s\n", out);
	if (!rc && clean && !(rc = write_with_text(clean, clean_pix, h2, w2, r, "clean",
						       NULL, NULL, 0)))
		printf("clean        %s\n", clean);
	if (!rc && pert)
		rc = export_perturbation(pert, adv_pix, clean_pix, h, w, r);
out:
	free(adv_pix);
	free(clean_pix);
	free(r);
	db_close(db);
	return rc;
}

/* ---- delete ------------------------------------------------------------------------ */

static int runs_cmd_delete(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "db", required_argument, NULL, OPT_DB },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *path = NULL;
	struct db *db = NULL;
	char err[ERR_MAX];
	int64_t id = 0;
	int o, i, rc = EXIT_OK;

	while ((o = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (o) {
		case OPT_DB: path = optarg; break;
		case 'h': runs_help(); return EXIT_OK;
		default: return cli_usage_error("runs", "unknown option");
		}
	}
	if (optind == argc)
		return cli_usage_error("runs", "delete wants run IDs");
	for (i = optind; i < argc; i++)
		if ((o = parse_id(argv[i], &id)))
			return o;
	if ((o = cmd_runs_open_log(path, 1, &db)))
		return o;
	/* each run on its own: one missing id does not keep the others */
	for (i = optind; i < argc; i++) {
		parse_id(argv[i], &id);
		if (runs_delete(db, id, err) != ST_OK)
			rc = cli_fail("%s", err);
		else
			printf("deleted run %lld\n", (long long)id);
	}
	db_close(db);
	return rc;
}

/* ---- dispatch ------------------------------------------------------------------------ */

int cmd_runs(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(int argc, char **argv);
	} subs[] = {
		{ "list", runs_cmd_list }, { "show", runs_cmd_show },
		{ "compare", runs_cmd_compare }, { "export", runs_cmd_export },
		{ "delete", runs_cmd_delete }, { "merge", cmd_runs_merge },
		{ "sweep", cmd_runs_sweep }, { "plot", cmd_runs_plot },
	};
	size_t i;

	if (argc < 2)
		return cli_usage_error("runs", "list, show, compare, export, delete, merge, "
				       "sweep or plot?");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		runs_help();
		return EXIT_OK;
	}
	for (i = 0; i < sizeof subs / sizeof subs[0]; i++)
		if (!strcmp(argv[1], subs[i].name))
			return subs[i].run(argc - 1, argv + 1);
	return cli_usage_error("runs", "unknown subcommand '%s' (list, show, compare, "
			       "export, delete, merge, sweep, plot)", argv[1]);
}
