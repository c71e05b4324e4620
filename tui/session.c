/* session.c - the explorer's compute thread (see session.h). */
#include "session.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audits.h"
#include "dataset.h"
#include "exportmeta.h"
#include "db.h"
#include "net.h"
#include "runlog.h"
#include "runs.h"

/* ---- snapshots -------------------------------------------------------------- */

int session_snap_alloc(struct session_snap *s, int k, int n_norms, int h, int w, int cap_hist)
{
	memset(s, 0, sizeof *s);
	s->k = k;
	s->n_norms = n_norms;
	s->h = h;
	s->w = w;
	s->npix = 3 * (size_t)h * w;
	s->cap_hist = cap_hist;
	s->probs = calloc((size_t)k, sizeof *s->probs);
	s->norms = calloc((size_t)n_norms + 1, sizeof *s->norms);
	s->x0 = calloc(s->npix, sizeof *s->x0);
	s->xadv = calloc(s->npix, sizeof *s->xadv);
	s->loss_hist = calloc((size_t)cap_hist, sizeof *s->loss_hist);
	s->index = -1;
	s->label = -1;
	if (!s->probs || !s->norms || !s->x0 || !s->xadv || !s->loss_hist) {
		session_snap_free(s);
		return -1;
	}
	return 0;
}

void session_snap_free(struct session_snap *s)
{
	free(s->probs);
	free(s->norms);
	free(s->x0);
	free(s->xadv);
	free(s->loss_hist);
	memset(s, 0, sizeof *s);
}

void session_snap_copy(struct session_snap *dst, const struct session_snap *src)
{
	float *probs = dst->probs, *x0 = dst->x0, *xadv = dst->xadv;
	double *norms = dst->norms, *hist = dst->loss_hist;

	*dst = *src;
	dst->probs = probs;
	dst->norms = norms;
	dst->x0 = x0;
	dst->xadv = xadv;
	dst->loss_hist = hist;
	memcpy(probs, src->probs, sizeof *probs * (size_t)src->k);
	memcpy(norms, src->norms, sizeof *norms * (size_t)src->n_norms);
	memcpy(x0, src->x0, sizeof *x0 * src->npix);
	memcpy(xadv, src->xadv, sizeof *xadv * src->npix);
	memcpy(hist, src->loss_hist, sizeof *hist * (size_t)src->n_hist);
}

/* ---- the session ------------------------------------------------------------- */

enum cmd_kind { CMD_OPEN, CMD_STEP, CMD_TOGGLE, CMD_RESET, CMD_PARAMS, CMD_AUDIT, CMD_RECHECK };

struct cmd {
	enum cmd_kind kind;
	int index;
	int hi;			/* CMD_AUDIT: images [index, hi) */
	int64_t run;		/* CMD_RECHECK: the exported run */
	char path[4400];	/* CMD_RECHECK: the PNG written */
	int least_likely;
	unsigned seq;
	struct attack_params p;
};

#define QUEUE_MAX 32

struct session {
	/* fixed from session_start on */
	struct net *net;
	struct dataset *data;
	struct db *db;			/* NULL: nothing is logged */
	struct runlog *log;		/* writes the runs into db */
	struct run_begin tmpl;
	int batch, wake_fd, k, n_norms, h, w, n_images;
	size_t npix;
	pthread_t thread;

	/* shared with the UI thread, under mu */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct cmd q[QUEUE_MAX];
	int q_head, q_n;
	int quit;
	int audit_stop;			/* session_audit_stop asked */
	int want_lo, want_hi, want_all;
	struct session_snap shared;
	float *pred_probs;		/* n_images * k */
	int *pred_arg;			/* n_images */
	unsigned char *pred_known;	/* n_images; written under mu by the
					   session, so it reads them freely */

	/* the session thread's own */
	struct attack *at;
	struct session_snap cur;
	unsigned long version;
	float *batch_x, *batch_out;	/* batch images, batch rows of k */
	int *batch_idx;
	int bg_next;			/* next image for background predictions */
	char err[ERR_MAX];
	/* the audit: sized when one starts */
	struct audit *au;
	struct audit_image *arecs;	/* one per image audited */
	int64_t *aruns;			/* the run of each */
	int acap;
};

static void vnotice(struct session *w, int is_err, const char *fmt, va_list ap)
{
	vsnprintf(w->cur.msg, sizeof w->cur.msg, fmt, ap);
	w->cur.msg_err = is_err;
	w->cur.msg_seq++;
}

/* A notice for the status line. */
static void notice(struct session *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The same, for a refusal or an error. */
static void complain(struct session *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void notice(struct session *w, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vnotice(w, 0, fmt, ap);
	va_end(ap);
}

static void complain(struct session *w, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vnotice(w, 1, fmt, ap);
	va_end(ap);
}

/* Hand the current state to the UI and wake it. */
static void publish(struct session *w)
{
	ssize_t r;

	pthread_mutex_lock(&w->mu);
	w->cur.version = ++w->version;
	session_snap_copy(&w->shared, &w->cur);
	pthread_mutex_unlock(&w->mu);
	/* a full pipe already means "wake up" */
	do
		r = write(w->wake_fd, "", 1);
	while (r < 0 && errno == EINTR);
}

/* Take in one evaluation (a step's, or attack_evaluate's). */
static void record(struct session *w, const struct attack_report *r, int is_step)
{
	struct session_snap *c = &w->cur;

	c->have_eval = 1;
	c->eval_iter = r->iter;
	c->loss = r->loss;
	c->li = r->loss_info;
	c->cls = r->cls;
	c->pred = r->pred;
	c->success = r->success;
	c->target_prob = r->target_prob;
	c->grad = r->grad;
	c->pert_linf = r->pert_linf;
	c->pert_l2 = r->pert_l2;
	c->step_ms = r->step_ms;
	snprintf(c->diagnosis, sizeof c->diagnosis, "%s", r->diagnosis ? r->diagnosis : "");
	if (r->probs)
		memcpy(c->probs, r->probs, sizeof *c->probs * (size_t)c->k);
	if (r->layer_norms && r->n_layers + 1 == c->n_norms)
		memcpy(c->norms, r->layer_norms, sizeof *c->norms * (size_t)c->n_norms);
	if (r->iter >= 0 && r->iter < c->cap_hist) {
		while (c->n_hist <= r->iter)
			c->loss_hist[c->n_hist++] = NAN;
		c->loss_hist[r->iter] = r->loss;
	}
	c->iter = attack_iter(w->at);
	c->finished = attack_finished(w->at);
	memcpy(c->xadv, attack_x_adv(w->at), sizeof *c->xadv * c->npix);
	if (is_step)
		c->avg_step_ms = c->avg_step_ms > 0 ? 0.8 * c->avg_step_ms + 0.2 * r->step_ms :
			r->step_ms;
}

/* Evaluate at the current image without moving it, so what is shown is the
 * image shown. */
static void sync_eval(struct session *w)
{
	struct attack_report r;

	attack_evaluate(w->at, &r);
	record(w, &r, 0);
}

/* A write to the log failed: stop, mark the run failed if possible, and
 * tell the UI, which ends the explorer. */
static void db_failure(struct session *w)
{
	snprintf(w->cur.db_err, sizeof w->cur.db_err, "%s", w->err);
	w->cur.db_failed = 1;
	w->cur.running = 0;
	w->cur.failed_run = w->cur.run_id;
	w->cur.failed_marked = runlog_fail(w->log, NULL, NULL);
	w->cur.run_id = 0;
}

static int begin_run(struct session *w)
{
	struct run_begin b = w->tmpl;

	if (!w->db || w->cur.run_id)
		return 0;
	b.params = attack_get_params(w->at);
	b.true_label = w->cur.label;
	b.image_ref = w->cur.image_name;
	b.x0 = attack_x0(w->at);
	if (runlog_begin(w->log, &b, w->err) != ST_OK) {
		db_failure(w);
		return -1;
	}
	w->cur.run_id = runlog_id(w->log);
	w->cur.run_steps = 0;
	w->cur.last_run_id = w->cur.run_id;
	w->cur.runs_logged++;
	return 0;
}

/* End the open run (if any) with status; evaluates at the end point. */
static void end_run(struct session *w, const char *status)
{
	struct attack_report r;

	if (!w->cur.run_id)
		return;
	attack_evaluate(w->at, &r);
	record(w, &r, 0);
	if (runlog_finish(w->log, status, &r, attack_x_result(w->at), w->err) != ST_OK) {
		db_failure(w);
		return;
	}
	w->cur.run_id = 0;
}

static void do_step(struct session *w)
{
	struct attack_report r;
	int fin;

	if (!w->cur.loaded) {
		notice(w, "no image open: pick one in Browse (Enter)");
		w->cur.running = 0;
		return;
	}
	/* one run open at a time in the log: the audit's, image by image */
	if (w->cur.aud.state == SAUDIT_RUNNING) {
		notice(w, "an audit is running (Audit screen, x stops it): no steps until it ends");
		w->cur.running = 0;
		return;
	}
	if (attack_finished(w->at)) {
		notice(w, "finished at iteration %d: i raises the iterations (and goes on), r resets",
		       attack_iter(w->at));
		w->cur.running = 0;
		return;
	}
	if (begin_run(w))
		return;
	fin = attack_step(w->at, &r);
	if (fin < 0) {
		complain(w, "the attack was never reset");
		w->cur.running = 0;
		return;
	}
	record(w, &r, 1);
	if (w->cur.run_id) {
		if (runlog_step(w->log, &r, w->err) != ST_OK) {
			db_failure(w);
			return;
		}
		w->cur.run_steps++;
	}
	if (fin) {
		w->cur.running = 0;
		if (w->cur.run_id) {
			int64_t id = w->cur.run_id;

			end_run(w, "done");
			if (!w->cur.db_failed)
				notice(w, "finished: %s after %d iteration%s; run %lld logged",
				       w->cur.success ? "success" : "no success",
				       attack_iter(w->at), attack_iter(w->at) == 1 ? "" : "s",
				       (long long)id);
		} else {
			sync_eval(w);
		}
	} else if (!w->cur.running) {
		sync_eval(w);
	}
}

/* The story's target: the most likely class whose probability is below
 * the 1e-7 clip of probability cross-entropy (the dog's "airplane" at
 * 2.98e-08) - the one where prob-ce goes flat yet ce still reaches it; the
 * least likely class when no class is that unlikely. */
static int least_likely(struct session *w, const float *x0, int label)
{
	const float *z = net_forward(w->net, x0, 1);
	double zmax = z[0], lse = 0.0;
	int i, best = -1, least = -1;

	for (i = 1; i < w->k; i++)
		if (z[i] > zmax)
			zmax = z[i];
	for (i = 0; i < w->k; i++)
		lse += exp((double)z[i] - zmax);
	lse = zmax + log(lse);
	for (i = 0; i < w->k; i++) {
		if (i == label)
			continue;
		if (least < 0 || z[i] < z[least])
			least = i;
		if ((double)z[i] - lse < log(1e-7) && (best < 0 || z[i] > z[best]))
			best = i;
	}
	return best >= 0 ? best : least;
}

static void do_open(struct session *w, const struct cmd *c)
{
	struct attack_params p = c->p;
	float *x0 = w->batch_x;		/* free between prediction batches */

	end_run(w, "interrupted");
	w->cur.running = 0;
	if (w->cur.db_failed)
		return;
	if (c->index < 0 || c->index >= w->n_images ||
	    dataset_image(w->data, c->index, x0, w->err) != ST_OK) {
		complain(w, "%s", c->index < 0 || c->index >= w->n_images ?
		       "no such image" : w->err);
		return;
	}
	w->cur.index = c->index;
	w->cur.label = dataset_label(w->data, c->index);
	if (w->cur.label >= w->k)
		w->cur.label = -1;
	dataset_image_name(w->data, c->index, w->cur.image_name,
			   (int)sizeof w->cur.image_name);
	p.true_label = w->cur.label;
	if (c->least_likely)
		p.target = least_likely(w, x0, w->cur.label);
	if (attack_reset(w->at, x0, &p, w->err) != ST_OK) {
		complain(w, "%s", w->err);
		w->cur.loaded = 0;
		return;
	}
	memcpy(w->cur.x0, x0, sizeof *x0 * w->npix);
	w->cur.loaded = 1;
	w->cur.p = *attack_get_params(w->at);
	w->cur.n_hist = 0;
	w->cur.avg_step_ms = 0;
	sync_eval(w);
}

static void do_reset(struct session *w)
{
	if (!w->cur.loaded)
		return;
	end_run(w, "interrupted");
	w->cur.running = 0;
	if (w->cur.db_failed)
		return;
	if (attack_reset(w->at, w->cur.x0, &w->cur.p, w->err) != ST_OK) {
		complain(w, "%s", w->err);
		return;
	}
	w->cur.n_hist = 0;
	sync_eval(w);
	notice(w, "reset to the clean image");
}

/* Are p and q the same experiment, whatever their iteration counts? */
static int params_same_but_iters(const struct attack_params *p, const struct attack_params *q)
{
	return p->kind == q->kind && p->loss.mode == q->loss.mode &&
		p->loss.clip_eps == q->loss.clip_eps && p->loss.kappa == q->loss.kappa &&
		p->norm == q->norm && p->eps == q->eps && p->alpha == q->alpha &&
		p->momentum == q->momentum && p->random_start == q->random_start &&
		p->seed == q->seed && p->target == q->target && p->early_stop == q->early_stop;
}

static void do_params(struct session *w, const struct attack_params *p)
{
	if (attack_params_check(p, w->k, w->err) != ST_OK) {
		complain(w, "%s", w->err);
		return;
	}
	if (!w->cur.loaded) {
		w->cur.p = *p;
		return;
	}
	/* After a finished run, new parameters mean a new experiment: it
	 * starts from the clean image, so nothing on screen mixes the old
	 * run's result with the new parameters. Only more iterations go on
	 * from where the finished run stopped (a new run). */
	if (attack_finished(w->at) && !w->cur.run_id && !(p->iters > w->cur.p.iters &&
	    params_same_but_iters(p, &w->cur.p))) {
		int64_t last = w->cur.last_run_id;

		if (attack_reset(w->at, w->cur.x0, p, w->err) != ST_OK) {
			complain(w, "%s", w->err);
			return;
		}
		w->cur.p = *attack_get_params(w->at);
		w->cur.n_hist = 0;
		w->cur.running = 0;
		sync_eval(w);
		if (last)
			notice(w, "new parameters after a finished run: back to the clean image, "
			       "the next step begins a new run (run %lld stays logged)", (long long)last);
		else
			notice(w, "new parameters: back to the clean image");
		return;
	}
	/* a loss of another kind is on another scale: its curve starts anew */
	if (p->loss.mode != w->cur.p.loss.mode) {
		int i;

		for (i = 0; i < w->cur.n_hist; i++)
			w->cur.loss_hist[i] = NAN;
	}
	/* the logged run keeps the parameters it began with */
	if (w->cur.run_id) {
		int64_t id = w->cur.run_id;

		end_run(w, "interrupted");
		if (w->cur.db_failed)
			return;
		notice(w, "parameters changed: run %lld ended as interrupted; the next step "
		       "begins a new run from the current image", (long long)id);
	}
	if (attack_set_params(w->at, p, w->err) != ST_OK) {
		complain(w, "%s", w->err);
		return;
	}
	w->cur.p = *attack_get_params(w->at);
	if (!w->cur.running)
		sync_eval(w);
}

/* ---- the audit ------------------------------------------------------------------ */

struct audit_step_ctx {
	struct session *w;
	int failed;		/* a log write failed */
};

/* Each step of the audited attack goes to the log; a stop or quit cuts it
 * short. */
static int audit_on_step(const struct attack_report *r, void *user)
{
	struct audit_step_ctx *c = user;
	struct session *w = c->w;
	int stop;

	if (runlog_step(w->log, r, w->err) != ST_OK) {
		c->failed = 1;
		return 1;
	}
	pthread_mutex_lock(&w->mu);
	stop = w->quit || w->audit_stop;
	pthread_mutex_unlock(&w->mu);
	return stop;
}

/* The verdicts so far, and the run behind each check's first image. */
static void audit_verdicts_now(struct session *w)
{
	struct session_audit *u = &w->cur.aud;
	int i, j;

	audit_verdicts(w->au, w->arecs, u->n_done, u->checks);
	for (i = 0; i < AUDIT_N_CHECKS; i++) {
		u->first_run[i] = 0;
		for (j = 0; j < u->n_done; j++)
			if (w->arecs[j].index == u->checks[i].first_image)
				u->first_run[i] = w->aruns[j];
	}
}

static void do_audit(struct session *w, const struct cmd *c)
{
	struct session_audit *u = &w->cur.aud;
	struct audit_params ap = audit_params_default(&c->p);
	int n = c->hi - c->index;

	end_run(w, "interrupted");
	w->cur.running = 0;
	if (w->cur.db_failed)
		return;
	if (c->index < 0 || n < 1 || c->hi > w->n_images) {
		complain(w, "audit: images %d..%d are not in the data (0..%d)", c->index,
			 c->hi - 1, w->n_images - 1);
		return;
	}
	audit_free(w->au);
	w->au = NULL;
	if (n > w->acap) {
		struct audit_image *r = realloc(w->arecs, sizeof *r * (size_t)n);
		int64_t *id = r ? realloc(w->aruns, sizeof *id * (size_t)n) : NULL;

		if (r)
			w->arecs = r;
		if (!r || !id) {
			complain(w, "audit: out of memory for %d images", n);
			return;
		}
		w->aruns = id;
		w->acap = n;
	}
	if (audit_new(w->net, &ap, &w->au, w->err) != ST_OK) {
		complain(w, "audit: %s", w->err);
		return;
	}
	memset(u, 0, sizeof *u);
	u->state = SAUDIT_RUNNING;
	u->lo = c->index;
	u->hi = c->hi;
	u->next = c->index;
	u->p = c->p;
	pthread_mutex_lock(&w->mu);
	w->audit_stop = 0;
	pthread_mutex_unlock(&w->mu);
	audit_verdicts_now(w);
	notice(w, "auditing image%s %d..%d", n == 1 ? "" : "s", c->index, c->hi - 1);
}

/* The end: verdicts, and the audit stored (when the log is on). */
static void audit_finish(struct session *w)
{
	struct session_audit *u = &w->cur.aud;
	int fails = 0, warns = 0, i;

	audit_verdicts_now(w);
	u->state = SAUDIT_DONE;
	for (i = 0; i < AUDIT_N_CHECKS; i++) {
		fails += u->checks[i].verdict == AUDIT_FAIL;
		warns += u->checks[i].verdict == AUDIT_WARN;
	}
	if (w->db && audits_save(w->db, audit_get_params(w->au), w->arecs, w->aruns, u->n_done,
				 u->checks, &u->audit_id, w->err) != ST_OK) {
		db_failure(w);
		return;
	}
	notice(w, "audit of %d image%s: %d fail, %d warn%s%lld", u->n_done,
	       u->n_done == 1 ? "" : "s", fails, warns, u->audit_id ? "; stored as audit " : "",
	       (long long)u->audit_id);
}

/* One image of the running audit: its attack logged as a run, then the
 * checks. */
static void audit_next(struct session *w)
{
	struct session_audit *u = &w->cur.aud;
	struct audit_step_ctx ctx = { .w = w };
	struct attack_params q = u->p;
	struct attack_report fin;
	struct run_begin b = w->tmpl;
	char name[256];
	float *x = w->batch_x;
	int i = u->next++, y = dataset_label(w->data, i), cancelled;
	enum status st;

	if (y >= w->k)
		y = -1;
	if ((q.target >= 0 && y == q.target) || dataset_image(w->data, i, x, w->err) != ST_OK) {
		u->n_skipped++;
		goto next;
	}
	q.true_label = y;
	dataset_image_name(w->data, i, name, (int)sizeof name);
	b.params = &q;
	b.true_label = y;
	b.image_ref = name;
	b.x0 = x;
	if (w->db && runlog_begin(w->log, &b, w->err) != ST_OK) {
		db_failure(w);
		return;
	}
	st = audit_image(w->au, i, x, y, w->db ? audit_on_step : NULL, &ctx, &fin,
			 &w->arecs[u->n_done], &cancelled, w->err);
	if (ctx.failed) {
		db_failure(w);
		return;
	}
	w->aruns[u->n_done] = runlog_id(w->log);
	if (w->db && runlog_finish(w->log, st == ST_OK && !cancelled ? "done" : "interrupted",
				   st == ST_OK ? &fin : NULL,
				   attack_x_result(audit_attack(w->au)), w->err) != ST_OK) {
		db_failure(w);
		return;
	}
	if (st != ST_OK || cancelled) {
		u->state = SAUDIT_STOPPED;
		if (st != ST_OK)
			complain(w, "audit stopped at image %d: %s", i, w->err);
		else
			notice(w, "audit stopped after %d image%s (not stored)", u->n_done,
			       u->n_done == 1 ? "" : "s");
		return;
	}
	u->n_done++;
	audit_verdicts_now(w);
next:
	if (u->next >= u->hi)
		audit_finish(w);
}

/* An exported PNG read back and classified again (index: the true
 * label; hi: the image was adversarial on screen): said, and logged with
 * its run. */
static void do_recheck(struct session *w, const struct cmd *c)
{
	const struct net_info *in = net_get_info(w->net);
	int pred, ok;

	if (exportmeta_recheck(w->net, c->path, &c->p, c->index, &pred, &ok, w->err) != ST_OK) {
		complain(w, "exported, but reading it back failed: %s", w->err);
		return;
	}
	if (w->db && c->run > 0 && exports_record(w->db, c->run, c->path, pred, ok,
						  w->err) != ST_OK) {
		db_failure(w);
		return;
	}
	if (!c->hi)
		notice(w, "exported %s: read back, predicted %s (the attack had not succeeded)",
		       c->path, in->classes[pred]);
	else if (ok)
		notice(w, "exported %s: read back, still adversarial at 8 bits (%s)", c->path,
		       in->classes[pred]);
	else
		complain(w, "exported %s, but read back it is NOT adversarial at 8 bits (%s): "
			 "rounding to 256 levels undid the attack", c->path, in->classes[pred]);
}

static void handle(struct session *w, const struct cmd *c)
{
	switch (c->kind) {
	case CMD_OPEN:
		do_open(w, c);
		w->cur.params_ack = c->seq;
		break;
	case CMD_STEP:
		if (w->cur.running) {
			w->cur.running = 0;
			sync_eval(w);
		} else {
			do_step(w);
		}
		break;
	case CMD_TOGGLE:
		if (w->cur.running) {
			w->cur.running = 0;
			sync_eval(w);
		} else if (!w->cur.loaded) {
			notice(w, "no image open: pick one in Browse (Enter)");
		} else if (attack_finished(w->at)) {
			notice(w, "finished at iteration %d: i raises the iterations (and goes on), r resets",
			       attack_iter(w->at));
		} else {
			w->cur.running = 1;
		}
		break;
	case CMD_RESET:
		do_reset(w);
		break;
	case CMD_PARAMS:
		do_params(w, &c->p);
		w->cur.params_ack = c->seq;
		break;
	case CMD_AUDIT:
		do_audit(w, c);
		break;
	case CMD_RECHECK:
		do_recheck(w, c);
		break;
	}
}

/* ---- predictions for Browse --------------------------------------------------- */

/* Up to batch images without a prediction: the wanted range first, then
 * (when all are wanted) the rest in order. Under mu. */
static int pick_batch(struct session *w)
{
	int n = 0, i;

	for (i = w->want_lo; i < w->want_hi && i < w->n_images && n < w->batch; i++)
		if (i >= 0 && !w->pred_known[i])
			w->batch_idx[n++] = i;
	if (w->want_all)
		for (; w->bg_next < w->n_images && n < w->batch; w->bg_next++)
			if (!w->pred_known[w->bg_next]) {
				int dup = 0, j;

				for (j = 0; j < n; j++)
					dup |= w->batch_idx[j] == w->bg_next;
				if (!dup)
					w->batch_idx[n++] = w->bg_next;
			}
	return n;
}

static void predict(struct session *w, int n)
{
	const struct net_info *in = net_get_info(w->net);
	const float *z;
	int i, j, got = 0;

	for (i = 0; i < n; i++) {
		if (dataset_image(w->data, w->batch_idx[i], w->batch_x + (size_t)got * w->npix,
				  w->err) != ST_OK)
			continue;	/* left unknown: Browse shows "?" */
		w->batch_idx[got++] = w->batch_idx[i];
	}
	if (!got)
		return;
	z = net_forward(w->net, w->batch_x, got);
	for (i = 0; i < got; i++) {
		const float *row = z + (size_t)i * w->k;
		float *out = w->batch_out + (size_t)i * w->k;
		double mx = row[0], sum = 0.0;

		if (in->outputs_probs) {
			memcpy(out, row, sizeof *out * (size_t)w->k);
			continue;
		}
		for (j = 1; j < w->k; j++)
			if (row[j] > mx)
				mx = row[j];
		for (j = 0; j < w->k; j++)
			sum += exp((double)row[j] - mx);
		for (j = 0; j < w->k; j++)
			out[j] = (float)(exp((double)row[j] - mx) / sum);
	}
	pthread_mutex_lock(&w->mu);
	for (i = 0; i < got; i++) {
		int idx = w->batch_idx[i], arg = 0;
		const float *out = w->batch_out + (size_t)i * w->k;

		for (j = 1; j < w->k; j++)
			if (out[j] > out[arg])
				arg = j;
		memcpy(w->pred_probs + (size_t)idx * w->k, out, sizeof *out * (size_t)w->k);
		w->pred_arg[idx] = arg;
		if (!w->pred_known[idx]) {
			w->pred_known[idx] = 1;
			w->cur.preds_done++;
		}
	}
	pthread_mutex_unlock(&w->mu);
}

/* ---- the thread ----------------------------------------------------------------- */

static void *session_thread(void *arg)
{
	struct session *w = arg;
	struct cmd c;
	int n;

	pthread_mutex_lock(&w->mu);
	while (!w->quit && !w->cur.db_failed) {
		if (w->q_n) {
			c = w->q[w->q_head];
			w->q_head = (w->q_head + 1) % QUEUE_MAX;
			w->q_n--;
			w->shared.busy = 1;
			pthread_mutex_unlock(&w->mu);
			handle(w, &c);
			publish(w);
			pthread_mutex_lock(&w->mu);
			continue;
		}
		if (w->cur.running) {
			pthread_mutex_unlock(&w->mu);
			do_step(w);
			publish(w);
			pthread_mutex_lock(&w->mu);
			continue;
		}
		if (w->cur.aud.state == SAUDIT_RUNNING) {
			if (w->audit_stop) {
				w->cur.aud.state = SAUDIT_STOPPED;
				pthread_mutex_unlock(&w->mu);
				notice(w, "audit stopped after %d image%s (not stored)",
				       w->cur.aud.n_done, w->cur.aud.n_done == 1 ? "" : "s");
			} else {
				pthread_mutex_unlock(&w->mu);
				audit_next(w);
			}
			publish(w);
			pthread_mutex_lock(&w->mu);
			continue;
		}
		if ((n = pick_batch(w)) > 0) {
			pthread_mutex_unlock(&w->mu);
			predict(w, n);
			publish(w);
			pthread_mutex_lock(&w->mu);
			continue;
		}
		pthread_cond_wait(&w->cv, &w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	if (!w->cur.db_failed) {
		w->cur.running = 0;
		end_run(w, "interrupted");
		publish(w);
	}
	return NULL;
}

static void push(struct session *w, const struct cmd *c)
{
	pthread_mutex_lock(&w->mu);
	if (w->q_n) {
		struct cmd *last = &w->q[(w->q_head + w->q_n - 1) % QUEUE_MAX];

		/* a burst of parameter changes: only the latest matters */
		if (last->kind == CMD_PARAMS && c->kind == CMD_PARAMS) {
			*last = *c;
			goto out;
		}
	}
	if (w->q_n < QUEUE_MAX) {
		w->q[(w->q_head + w->q_n) % QUEUE_MAX] = *c;
		w->q_n++;
	}
out:
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void session_open(struct session *w, int index, const struct attack_params *p,
		 int least_likely, unsigned seq)
{
	struct cmd c = { .kind = CMD_OPEN, .index = index, .least_likely = least_likely,
			 .seq = seq, .p = *p };

	push(w, &c);
}

void session_step(struct session *w)
{
	struct cmd c = { .kind = CMD_STEP };

	push(w, &c);
}

void session_toggle_run(struct session *w)
{
	struct cmd c = { .kind = CMD_TOGGLE };

	push(w, &c);
}

void session_reset(struct session *w)
{
	struct cmd c = { .kind = CMD_RESET };

	push(w, &c);
}

void session_params(struct session *w, const struct attack_params *p, unsigned seq)
{
	struct cmd c = { .kind = CMD_PARAMS, .seq = seq, .p = *p };

	push(w, &c);
}

void session_audit(struct session *w, int lo, int hi, const struct attack_params *p)
{
	struct cmd c = { .kind = CMD_AUDIT, .index = lo, .hi = hi, .p = *p };

	push(w, &c);
}

void session_recheck(struct session *w, const char *path, int64_t run,
		     const struct attack_params *p, int label, int was_adversarial)
{
	struct cmd c = { .kind = CMD_RECHECK, .index = label, .hi = was_adversarial,
			 .run = run, .p = *p };

	snprintf(c.path, sizeof c.path, "%s", path);
	push(w, &c);
}

void session_audit_stop(struct session *w)
{
	pthread_mutex_lock(&w->mu);
	w->audit_stop = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void session_want(struct session *w, int lo, int hi, int all)
{
	pthread_mutex_lock(&w->mu);
	if (lo != w->want_lo || hi != w->want_hi || all != w->want_all) {
		w->want_lo = lo;
		w->want_hi = hi;
		w->want_all = all;
		pthread_cond_signal(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
}

int session_sync(struct session *w, struct session_snap *dst)
{
	int newer;

	pthread_mutex_lock(&w->mu);
	newer = w->shared.version != dst->version || w->shared.busy != dst->busy;
	if (newer)
		session_snap_copy(dst, &w->shared);
	pthread_mutex_unlock(&w->mu);
	return newer;
}

int session_pred(struct session *w, int i, float *probs, int *pred, float *conf)
{
	int known;

	if (i < 0 || i >= w->n_images)
		return 0;
	pthread_mutex_lock(&w->mu);
	known = w->pred_known[i];
	if (known) {
		const float *pr = w->pred_probs + (size_t)i * w->k;

		if (probs)
			memcpy(probs, pr, sizeof *probs * (size_t)w->k);
		if (pred)
			*pred = w->pred_arg[i];
		if (conf)
			*conf = pr[w->pred_arg[i]];
	}
	pthread_mutex_unlock(&w->mu);
	return known;
}

static void free_session(struct session *w)
{
	audit_free(w->au);
	free(w->arecs);
	free(w->aruns);
	runlog_free(w->log);
	attack_free(w->at);
	session_snap_free(&w->cur);
	session_snap_free(&w->shared);
	free(w->pred_probs);
	free(w->pred_arg);
	free(w->pred_known);
	free(w->batch_x);
	free(w->batch_out);
	free(w->batch_idx);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w);
}

enum status session_start(const struct session_setup *s, struct session **out,
			 char *err)
{
	const struct net_info *in = net_get_info(s->net);
	struct session *w = calloc(1, sizeof *w);
	size_t n;
	enum status st;

	*out = NULL;
	if (!w)
		return status_set(err, ST_ERR_NOMEM, "out of memory for the explorer");
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->net = s->net;
	w->data = s->data;
	w->db = s->db;
	w->tmpl = *s->tmpl;
	w->batch = s->batch > 0 ? s->batch : 1;
	w->wake_fd = s->wake_fd;
	w->k = in->n_classes;
	w->n_norms = in->n_layers + 1;
	w->h = in->in_h;
	w->w = in->in_w;
	w->npix = 3 * (size_t)w->h * w->w;
	w->n_images = dataset_count(s->data);
	n = (size_t)(w->n_images > 0 ? w->n_images : 1);
	if ((st = runlog_new(w->db, &w->log, err)) != ST_OK ||
	    (st = attack_new(w->net, &w->at, err)) != ST_OK) {
		free_session(w);
		return st;
	}
	w->pred_probs = calloc(n * (size_t)w->k, sizeof *w->pred_probs);
	w->pred_arg = calloc(n, sizeof *w->pred_arg);
	w->pred_known = calloc(n, 1);
	w->batch_x = malloc(sizeof *w->batch_x * w->npix * (size_t)w->batch);
	w->batch_out = malloc(sizeof *w->batch_out * (size_t)w->k * (size_t)w->batch);
	w->batch_idx = malloc(sizeof *w->batch_idx * (size_t)w->batch);
	if (!w->pred_probs || !w->pred_arg || !w->pred_known || !w->batch_x ||
	    !w->batch_out || !w->batch_idx ||
	    session_snap_alloc(&w->cur, w->k, w->n_norms, w->h, w->w, SESSION_MAX_ITERS + 2) ||
	    session_snap_alloc(&w->shared, w->k, w->n_norms, w->h, w->w, SESSION_MAX_ITERS + 2)) {
		free_session(w);
		return status_set(err, ST_ERR_NOMEM, "out of memory for the explorer");
	}
	if (pthread_create(&w->thread, NULL, session_thread, w)) {
		free_session(w);
		return status_set(err, ST_ERR_NOMEM, "cannot start the compute thread");
	}
	*out = w;
	return ST_OK;
}

void session_stop(struct session *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->quit = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	free_session(w);
}
