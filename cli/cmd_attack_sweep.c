/* cmd_attack_sweep.c - `advex attack --images A:B --eps E1,E2,...`: every
 * image of the range at every epsilon, run through one batched attack
 * (attack_batch), each attack its own run in the log; a table of the
 * success rate per epsilon with the clean accuracy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd_attack.h"
#include "dataset.h"
#include "net.h"
#include "shard.h"
#include "sweeptable.h"

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
	struct sweeptable t = { .json = a->json, .csv = a->csv };

	sweeptable_row(&t, a->eps[e], a->eps_text[e], attempted, succeeded, skipped,
		       n_skipped, clean_acc);
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
	const int *clean_pred;		/* hi - lo: the model's class for each
					   clean image (logged with its runs) */
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
	cmd_attack_set_eps(a, a->eps[w->next_e]);
	a->p.true_label = y;
	if (dataset_image(w->d, w->next_i, w->x, err) != ST_OK ||
	    attack_params_check(&a->p, w->in->n_classes, err) != ST_OK ||
	    attack_reset(at, w->x, &a->p, err) != ST_OK)
		return cli_fail("%s", err);
	dataset_image_name(w->d, w->next_i, ref, sizeof ref);
	w->logs[s].b.has_clean_pred = 1;
	w->logs[s].b.clean_pred = w->clean_pred[w->next_i - w->lo];
	w->logs[s].b.eps_text = a->eps_text[w->next_e];
	if ((rc = cmd_attack_log_begin(&w->logs[s], attack_get_params(at), w->d, ref, y,
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

	rc = cmd_attack_log_outcome(&w->logs[s], 0, &w->reps[s], attack_x_result(at));
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
		r = cmd_attack_log_outcome(&w->logs[s], 1, &rep, attack_x_result(at));
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
			stop |= cmd_attack_log_step(&w->logs[s], &w->reps[s]);
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
	for (s = 0; s < slots; s++) {
		w->logs[s] = *log;
		w->logs[s].w = NULL;
		if (cmd_attack_log_open(&w->logs[s]))
			return EXIT_FAIL;
	}
	return EXIT_OK;
}

static void sweep_free(struct sweep *w)
{
	int s;

	attack_batch_free(w->b);
	free(w->pending);
	free(w->attempted);
	free(w->succeeded);
	free(w->slot_e);
	for (s = 0; w->logs && s < w->a->batch; s++)
		cmd_attack_log_close(&w->logs[s]);
	free(w->logs);
	free(w->reps);
	free(w->x);
}

int cmd_attack_sweep(struct attack_args *a, struct net *n, struct dataset *d,
		     struct run_log *log)
{
	const struct net_info *in = net_get_info(n);
	size_t npix = 3 * (size_t)in->in_h * in->in_w;
	int lo, hi, i, e, rc = EXIT_OK, n_skipped = 0, clean_ok = 0, labelled = 0;
	float *x = malloc(sizeof *x * npix);
	int *skipped = NULL, *clean_pred = NULL;
	struct sweeptable t = { .json = a->json, .csv = a->csv };
	struct sweep w;
	char err[ERR_MAX], cn[CLI_NAME_MAX], shown[4096];

	memset(&w, 0, sizeof w);
	if (cli_fit_data(d, in, 0)) {
		free(x);
		return EXIT_FAIL;
	}
	if (source_parse_range(a->images, dataset_count(d), 0, &lo, &hi)) {
		free(x);
		return cli_usage_error("attack", "--images %s: want A:B with 0 <= A < B <= %d",
				       a->images, dataset_count(d));
	}
	/* this shard's part of the range (all of it without --shard) */
	shard_range(&a->shard, lo, hi, &lo, &hi);
	skipped = malloc(sizeof *skipped * (size_t)(hi - lo + 1));
	clean_pred = malloc(sizeof *clean_pred * (size_t)(hi - lo + 1));
	if (!x || !skipped || !clean_pred) {
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
		clean_pred[i - lo] = arg;
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
	w.clean_pred = clean_pred;
	w.clean_acc = labelled ? (double)clean_ok / labelled : 0.0;
	if ((rc = sweep_new(&w, n, log)))
		goto out;
	for (e = 0; e < a->n_eps; e++)
		w.pending[e] = hi - lo - n_skipped;
	if (!a->csv && !a->json) {
		char imgs[64];

		/* a shard of fewer images than shards may have none */
		if (hi > lo)
			snprintf(imgs, sizeof imgs, "images %d..%d", lo, hi - 1);
		else
			snprintf(imgs, sizeof imgs, "no images");
		printf("%s %s, loss %s, %s%s, %s of %s (%s), %d per batch",
		       attack_kind_name(a->p.kind), attack_norm_name(a->p.norm),
		       attack_objective_name(&a->p), a->p.target >= 0 ? "target " : "untargeted",
		       a->p.target >= 0 ? cli_class_name(in, a->p.target, cn, sizeof cn) : "",
		       imgs, cli_printable(dataset_path(d), shown, sizeof shown),
		       dataset_split(d), a->batch);
		if (a->shard.n > 1)
			printf(", shard %d of %d", a->shard.i, a->shard.n);
		printf("\n");
	}
	sweeptable_head(&t, clean_ok, labelled, n_skipped);
	rc = sweep_run(&w);
out:
	sweep_free(&w);
	free(x);
	free(skipped);
	free(clean_pred);
	return rc;
}

