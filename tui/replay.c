/* replay.c - a logged run replayed read-only in the Attack layout: its
 * steps are read from the log into a struct replay, and the cursor's step
 * is laid into a snapshot that attackview.c draws as it draws the live
 * session. */
#include "tui.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "runs.h"

static void free_steps(struct replay *r)
{
	int i;

	for (i = 0; i < r->n_steps; i++) {
		free(r->steps[i].probs);
		free(r->steps[i].norms);
		free(r->steps[i].diagnosis);
	}
	free(r->steps);
	r->steps = NULL;
	r->n_steps = 0;
}

void replay_close(struct app *a)
{
	struct replay *r = &a->replay;

	free_steps(r);
	session_snap_free(&r->snap);
	free(r->row);
	free(r->names);
	free(r->name_ptrs);
	free(r->final_probs);
	memset(r, 0, sizeof *r);
}

struct step_load {
	struct replay *r;
	int cap, failed;
};

static int add_step(const struct run_step *s, void *user)
{
	struct step_load *l = user;
	struct replay *r = l->r;
	struct replay_step *st;
	int i;

	if (r->n_steps == l->cap) {
		int cap = l->cap ? 2 * l->cap : 32;
		struct replay_step *ns = realloc(r->steps, sizeof *ns * (size_t)cap);

		if (!ns) {
			l->failed = 1;
			return 1;
		}
		r->steps = ns;
		l->cap = cap;
	}
	st = &r->steps[r->n_steps];
	memset(st, 0, sizeof *st);
	st->iter = s->iter;
	st->loss = s->loss;
	st->pred = s->pred;
	st->target_prob = s->target_prob;
	st->pert_linf = s->pert_linf;
	st->pert_l2 = s->pert_l2;
	st->step_ms = s->step_ms;
	st->grad.l1 = s->grad_l1;
	st->grad.l2 = s->grad_l2;
	st->grad.linf = s->grad_linf;
	st->grad.zero_frac = s->zero_frac;
	st->grad.n_zero = (size_t)s->n_zero;
	st->grad.n_nan = (size_t)s->n_nan;
	st->grad.n_inf = (size_t)s->n_inf;
	st->grad.n_tiny = (size_t)s->n_tiny;
	st->grad.n_huge = (size_t)s->n_huge;
	for (i = 0; i < DIAG_HIST_BINS; i++)
		st->grad.hist[i] = s->hist ? (size_t)s->hist[i] : 0;
	st->probs = calloc((size_t)(s->n_classes > 0 ? s->n_classes : 1), sizeof *st->probs);
	st->norms = calloc((size_t)s->n_layer_norms + 1, sizeof *st->norms);
	st->diagnosis = strdup(s->diagnosis ? s->diagnosis : "");
	if (!st->probs || !st->norms || !st->diagnosis) {
		free(st->probs);
		free(st->norms);
		free(st->diagnosis);
		l->failed = 1;
		return 1;
	}
	if (s->probs)
		memcpy(st->probs, s->probs, sizeof *st->probs * (size_t)s->n_classes);
	if (s->layer_norms)
		memcpy(st->norms, s->layer_norms, sizeof *st->norms * (size_t)s->n_layer_norms);
	st->n_norms = s->n_layer_norms;
	r->n_steps++;
	return 0;
}

/* Point the snapshot at step r->cursor. */
static void replay_fill(struct app *a)
{
	struct replay *r = &a->replay;
	struct session_snap *s = &r->snap;
	const struct replay_step *st;
	int k = s->k;

	if (!r->n_steps) {
		s->have_eval = 0;
		return;
	}
	st = &r->steps[r->cursor];
	s->have_eval = 1;
	s->eval_iter = st->iter;
	s->loss = st->loss;
	s->pred = st->pred >= 0 && st->pred < k ? st->pred : 0;
	s->target_prob = st->target_prob;
	s->grad = st->grad;
	s->grad.n = s->npix;
	s->success = s->p.target >= 0 ? st->pred == s->p.target : st->pred != s->label;
	s->step_ms = st->step_ms;
	/* the image shown is the run's final one: its perturbation */
	s->pert_linf = isnan(r->row->pert_linf) ? st->pert_linf : r->row->pert_linf;
	s->pert_l2 = isnan(r->row->pert_l2) ? st->pert_l2 : r->row->pert_l2;
	memcpy(s->probs, st->probs, sizeof *s->probs * (size_t)k);
	memset(s->norms, 0, sizeof *s->norms * (size_t)s->n_norms);
	memcpy(s->norms, st->norms, sizeof *s->norms * (size_t)(st->n_norms < s->n_norms ?
								  st->n_norms : s->n_norms));
	snprintf(s->diagnosis, sizeof s->diagnosis, "%s", st->diagnosis);
}

/* Decode a stored PNG of the run's size into dst; 0 or -1. */
static int load_png(struct app *a, int64_t id, int adv, float *dst, int h, int w)
{
	unsigned char *png = NULL;
	size_t len = 0;
	float *pix = NULL;
	int ph, pw, rc = -1;
	char err[ERR_MAX];
	enum status st = adv ? runs_adv_png(a->db, id, &png, &len, err) :
		runs_clean_png(a->db, id, &png, &len, err);

	if (st == ST_OK && png && len &&
	    image_decode_png(png, len, &pix, &ph, &pw, err) == ST_OK && ph == h && pw == w) {
		memcpy(dst, pix, sizeof *dst * 3 * (size_t)h * w);
		rc = 0;
	}
	free(png);
	free(pix);
	return rc;
}

int replay_open(struct app *a, int64_t id)
{
	struct replay *r = &a->replay;
	struct step_load l = { r, 0, 0 };
	struct attack_params p = attack_params_default();
	struct session_snap *s;
	char err[ERR_MAX];
	int i, k, max_norms = 0, max_iter = 0;

	replay_close(a);
	r->row = malloc(sizeof *r->row);
	if (!r->row || runs_get(a->db, id, r->row, err) != ST_OK) {
		app_message(a, R_BAD, "%s", r->row ? err : "out of memory");
		replay_close(a);
		return -1;
	}
	k = r->row->n_classes > 0 ? r->row->n_classes : 1;
	r->names = calloc((size_t)k, sizeof *r->names);
	r->name_ptrs = calloc((size_t)k, sizeof *r->name_ptrs);
	r->final_probs = calloc((size_t)k, sizeof *r->final_probs);
	if (!r->names || !r->name_ptrs || !r->final_probs ||
	    runs_classes(a->db, id, r->names, k, err) != ST_OK ||
	    runs_final_probs(a->db, id, r->final_probs, k, &r->n_final, err) != ST_OK ||
	    runs_steps(a->db, id, add_step, &l, err) != ST_OK || l.failed) {
		app_message(a, R_BAD, "run %lld: %s", (long long)id, l.failed ? "out of memory" : err);
		replay_close(a);
		return -1;
	}
	for (i = 0; i < k; i++)
		r->name_ptrs[i] = r->names[i];
	for (i = 0; i < r->n_steps; i++) {
		if (r->steps[i].n_norms > max_norms)
			max_norms = r->steps[i].n_norms;
		if (r->steps[i].iter > max_iter)
			max_iter = r->steps[i].iter;
	}
	if (r->row->final_iter > max_iter)
		max_iter = r->row->final_iter;
	if (session_snap_alloc(&r->snap, k, max_norms > 0 ? max_norms : 1, r->row->h, r->row->w,
			max_iter + 2)) {
		app_message(a, R_BAD, "out of memory");
		replay_close(a);
		return -1;
	}
	s = &r->snap;
	s->n_norms = max_norms;
	if (load_png(a, id, 0, s->x0, s->h, s->w))
		app_message(a, R_WARN, "run %lld stored no clean image", (long long)id);
	r->have_adv = !load_png(a, id, 1, s->xadv, s->h, s->w);
	if (!r->have_adv)
		memcpy(s->xadv, s->x0, sizeof *s->x0 * s->npix);
	attack_kind_parse(r->row->attack, &p.kind, err);
	loss_mode_parse(r->row->loss, &p.loss.mode, err);
	attack_norm_parse(r->row->norm, &p.norm, err);
	p.eps = r->row->eps;
	p.alpha = r->row->alpha;
	p.iters = r->row->iters;
	p.momentum = r->row->momentum;
	p.loss.clip_eps = r->row->clip_eps;
	p.loss.kappa = r->row->kappa;
	p.random_start = r->row->random_start;
	p.early_stop = r->row->early_stop;
	if (r->row->restarts >= 1)	/* -1: logged before schema 4 */
		p.restarts = r->row->restarts;
	if (r->row->binary_steps >= 1)
		p.binary_steps = r->row->binary_steps;
	p.quantize = r->row->quantize > 0;
	p.seed = (uint64_t)r->row->seed;
	p.target = r->row->target;
	p.true_label = r->row->true_label;
	s->p = p;
	s->loaded = 1;
	s->label = r->row->true_label;
	s->cls = p.target >= 0 ? p.target : s->label;
	snprintf(s->image_name, sizeof s->image_name, "%.255s", r->row->image_ref);
	s->finished = !strcmp(r->row->status, "done");
	s->iter = r->row->final_iter >= 0 ? r->row->final_iter :
		r->n_steps ? r->steps[r->n_steps - 1].iter + 1 : 0;
	s->n_hist = max_iter + 1;
	for (i = 0; i < s->n_hist; i++)
		s->loss_hist[i] = NAN;
	for (i = 0; i < r->n_steps; i++)
		s->loss_hist[r->steps[i].iter] = r->steps[i].loss;
	if (r->row->final_iter >= 0 && !isnan(r->row->final_loss))
		s->loss_hist[r->row->final_iter] = r->row->final_loss;
	r->cursor = r->n_steps ? r->n_steps - 1 : 0;
	r->row_id = id;
	replay_fill(a);
	r->active = 1;
	a->screen = SCREEN_ATTACK;
	return 0;
}

int replay_key(struct app *a, int key)
{
	struct replay *r = &a->replay;

	switch (key) {
	case 'h': case KEY_FN(KEY_LEFT): case 'k': case KEY_FN(KEY_UP):
		if (r->cursor > 0)
			r->cursor--;
		break;
	case 'l': case KEY_FN(KEY_RIGHT): case 'j': case KEY_FN(KEY_DOWN):
		if (r->cursor < r->n_steps - 1)
			r->cursor++;
		break;
	case KEY_FN(KEY_HOME): case 'g':
		r->cursor = 0;
		break;
	case KEY_FN(KEY_END): case 'G':
		r->cursor = r->n_steps ? r->n_steps - 1 : 0;
		break;
	case K_ESC: case 127: case KEY_FN(KEY_BACKSPACE):
		replay_close(a);
		a->screen = SCREEN_RUNS;
		return 1;
	default:
		return 0;
	}
	replay_fill(a);
	return 1;
}

