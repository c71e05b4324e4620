/* runs.h - attack runs in the run log: begin a run, log each step as it
 * happens (one transaction each: a crash loses at most the step in flight),
 * finish it (runs.c), read runs, steps and images back (runs_read.c), and
 * delete runs. Comparing and exporting are the front ends' work with what
 * these return; db/runlog.h drives one run from begin to end.
 *
 * A run records the model (path, SHA-256 of the file, architecture
 * summary), the data source (path, kind, split), the image reference and
 * true label, and every attack parameter; each step records the loss,
 * prediction, target probability, all class probabilities, gradient norms,
 * zero fraction, the log10|g| histogram, the per-layer gradient norms, the
 * perturbation norms, the diagnosis and the step time; the finished run
 * keeps its final prediction and probabilities, perturbation norms, wall
 * time and the adversarial image (PNG bytes), so it can be re-exported
 * without recomputing. The clean image is stored as PNG bytes at the
 * start, so the perturbation can be re-exported too.
 *
 * Tables (db.c has the exact schema): models, datasets, runs, steps,
 * images. Vectors (probabilities, histogram, layer norms, class names) are
 * JSON arrays (written and read with jansson), so SQLite's json_each /
 * json_extract can query them; a NaN is stored as NULL (SQLite has no NaN)
 * and read back as NaN, an infinity in an array as +-1e308 and read back
 * as infinite.
 */
#ifndef ADVEX_RUNS_H
#define ADVEX_RUNS_H

#include <stddef.h>
#include <stdint.h>

#include "attack.h"
#include "db.h"
#include "diag.h"
#include "status.h"

/* What a run starts from. Strings are copied. */
struct run_begin {
	const char *model_path;		/* as given (made absolute when possible);
					   "builtin:NAME" for a built-in */
	const char *model_sha256;	/* hex, 64 chars; NULL: computed from
					   model_path (not for builtin:) */
	const char *model_arch;		/* one-line summary, e.g. "vgg-compact 98730 params" */
	const char *data_path;		/* NULL for a PNG given directly */
	const char *data_kind;		/* "stl10", "cifar10", "imagedir", "png" */
	const char *data_split;
	const char *image_ref;		/* "17" or "test_X.bin#17" or a PNG path */
	int true_label;			/* -1 unknown */
	int n_classes;
	const char *const *classes;	/* n_classes names */
	const struct attack_params *params;
	int h, w;			/* image size */
	const float *x0;		/* the clean image (3,h,w), stored as
					   PNG bytes; NULL: not stored */
	int has_clean_pred;		/* 0: the clean prediction is unknown */
	int clean_pred;			/* the model's class for x0 (the sweep
					   table's clean accuracy) */
	const char *eps_text;		/* epsilon as the user wrote it
					   ("8/255"); NULL: unknown */
};

/* Insert a run with status 'running' owned by this process (it holds the
 * run's lock, db.h, until runs_finish or until it dies); *id is its row
 * id. The model file is hashed before the write lock is taken, and only
 * when the log has no hash for it at its current size and mtime. */
enum status runs_begin(struct db *db, const struct run_begin *b, int64_t *id,
		       char *err);
/* Record one step (committed at once, unless the caller holds a
 * transaction open with db_begin). */
enum status runs_step(struct db *db, int64_t id, const struct attack_report *r,
		      int n_classes, char *err);
/* Close a run: status "done", "interrupted" or "failed"; final: the
 * evaluation at the end point (attack_evaluate), NULL when there is none;
 * x_adv: the adversarial image (3,h,w) stored as PNG bytes (NULL: none);
 * wall_s: seconds the run took. Releases the run's lock. */
enum status runs_finish(struct db *db, int64_t id, const char *status,
			const struct attack_report *final, const float *x_adv,
			double wall_s, char *err);

/* A run as stored, for listing and showing. Text that does not fit is cut
 * short. */
struct run_row {
	int64_t id;
	char uuid[40];			/* random, RFC 4122 v4 (runs merge) */
	char created[32];		/* ISO 8601 UTC */
	char ended[32];			/* "" while running or when it died */
	char status[16];		/* on a db_open_read connection, a
					   dead writer's 'running' run reads
					   'interrupted' */
	int writer_pid;
	char model_path[1024], model_sha256[65], model_arch[256];
	char data_path[1024], data_kind[16], data_split[64];
	char image_ref[1024];
	int true_label, target, n_classes;	/* -1: unknown / untargeted */
	int h, w;
	char attack[16], loss[16], norm[8];
	double eps, alpha, momentum, clip_eps, kappa;
	int iters, random_start, early_stop;
	int64_t seed;
	int steps;			/* steps logged */
	int success;			/* -1 while unknown */
	int final_iter;			/* updates made; -1 while unknown */
	int final_pred;			/* -1 while unknown */
	double final_loss, final_target_prob, pert_linf, pert_l2, wall_s;
					/* NaN while unknown */
	char final_diagnosis[DIAG_EXPLAIN_MAX];	/* "" when none */
	int clean_pred;			/* -1: unknown */
	char eps_text[32];		/* "" when unknown */
	int restarts, binary_steps;	/* -1: unknown (logged before schema 4) */
	int quantize;			/* 0/1; -1: unknown */
	char objective[16];		/* attack_objective_name; "" when unknown */
};

/* What a run optimised, for display: its objective when known (schema
 * 4), else its loss column. */
const char *run_row_objective(const struct run_row *r);

struct runs_filter {
	const char *model;		/* substring of model_path or prefix of
					   its SHA-256, or NULL */
	const char *status;		/* exact, or NULL */
	int limit;			/* 0: all */
};

/* Rows newest first; cb returns non-zero to stop. cb may query the log,
 * but not through runs_list itself. */
enum status runs_list(struct db *db, const struct runs_filter *f,
		      int (*cb)(const struct run_row *r, void *user), void *user,
		      char *err);
/* One run; "RUN 42: no such run in FILE" when there is none. */
enum status runs_get(struct db *db, int64_t id, struct run_row *r, char *err);
/* Class names of a run (its n_classes names, at most max, into names[i],
 * each cut to 63 bytes). */
enum status runs_classes(struct db *db, int64_t id, char (*names)[64], int max,
			 char *err);
/* The final probabilities (the run's n_classes, at most max, into probs);
 * *n is 0 while the run has no outcome. */
enum status runs_final_probs(struct db *db, int64_t id, float *probs, int max,
			     int *n, char *err);

/* One logged step, for tables, plots and replay. Arrays point into
 * memory valid during the callback only. */
struct run_step {
	int iter;
	double loss;
	int pred;
	double target_prob;
	const float *probs;		/* n_classes */
	int n_classes;
	double grad_l1, grad_l2, grad_linf, zero_frac;
	const int64_t *hist;		/* DIAG_HIST_BINS */
	int64_t n_zero, n_nan, n_inf, n_tiny, n_huge;
	const double *layer_norms;	/* n_layer_norms */
	int n_layer_norms;
	double pert_linf, pert_l2;
	const char *diagnosis;		/* "" when none */
	double step_ms;
};
/* Steps in the order they were logged; cb returns non-zero to stop. cb
 * may query the log, but not through runs_steps itself. */
enum status runs_steps(struct db *db, int64_t id,
		       int (*cb)(const struct run_step *s, void *user), void *user,
		       char *err);

/* The stored adversarial and clean images as PNG bytes (malloc'd, caller
 * frees). */
enum status runs_adv_png(struct db *db, int64_t id, unsigned char **png,
			 size_t *len, char *err);
enum status runs_clean_png(struct db *db, int64_t id, unsigned char **png,
			   size_t *len, char *err);

/* ---- the sweep table (runs_sweep.c) ------------------------------------------ */

/* One epsilon of a sweep, recomputed from the log. */
struct runs_sweep_row {
	double eps;
	char eps_text[32];		/* as the user wrote it; "" unknown */
	int attempted, succeeded;	/* finished ('done') attacks */
};

/* The runs of one model on one data source with one attack, loss, norm,
 * target and iteration count, at every epsilon logged. Strings and rows
 * are valid during the callback only. */
struct runs_sweep_group {
	const char *model_path, *model_sha256;	/* sha256 "" for a built-in */
	const char *data_path, *data_split;	/* "" for PNG files */
	const char *attack, *loss, *norm;
	int target;			/* -1: untargeted */
	int iters;
	int images;			/* distinct images attacked */
	int labelled, clean_ok;		/* of those: with a known label and
					   clean prediction; predicted right */
	int n_rows;
	const struct runs_sweep_row *rows;	/* by increasing eps */
};

/* The success rate per epsilon of every sweep in the log, as `advex
 * attack --images A:B --eps ...` counts it: each image's finished attack
 * at each epsilon once (the last one logged, should an image have been
 * attacked again with the same parameters); runs not 'done' are not
 * counted. Groups in order of model path, data, attack, loss, norm,
 * target, iterations; cb returns non-zero to stop. */
enum status runs_sweep(struct db *db,
		       int (*cb)(const struct runs_sweep_group *g, void *user),
		       void *user, char *err);

/* Delete a run with its steps and images (and a model or data source no
 * run uses any more). A run whose writer is still alive is refused. */
enum status runs_delete(struct db *db, int64_t id, char *err);

#endif
