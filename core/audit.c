/* audit.c - the attack audit (see audit.h).
 *
 * One image at a time: the clean output (check 1) and its determinism
 * (check 8), the audited attack on one struct attack while recording what
 * its steps show (checks 2-4), the clean image under noise (8), its result as
 * an 8-bit PNG (9), then the side attacks on a second struct attack
 * (5-7), so the audited attack's end point and report stay readable.
 */
#define _POSIX_C_SOURCE 200809L
#include "audit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "loss.h"
#include "rng.h"

struct audit {
	struct net *net;		/* borrowed */
	struct attack *at;		/* the audited attack */
	struct attack *side;		/* unconstrained, Square, budgets */
	struct audit_params p;
	size_t n;			/* pixels */
	int k, h, w, c;
	int out_is_probs;
	float *row;			/* k: the clean output */
	float *probs;			/* k: loss_eval's */
	float *xr;			/* n: the returned point */
	float *xn;			/* n: a noisy point */
	double *hist;			/* the audited attack's losses */
	int hist_cap;
};

/* What the audited attack's steps show, gathered in its callback. */
struct track {
	struct audit *au;
	attack_cb cb;
	void *user;
	int n_hist;
	int ever_success;
	struct audit_image *rec;
};

static const char *const verdict_names[] = { "pass", "warn", "fail", "skipped" };

const char *audit_verdict_name(enum audit_verdict v)
{
	return (unsigned)v <= AUDIT_SKIPPED ? verdict_names[v] : "?";
}

struct audit_params audit_params_default(const struct attack_params *ap)
{
	struct audit_params p;

	memset(&p, 0, sizeof p);
	p.attack = *ap;
	p.noise_samples = 100;
	p.random_passes = 5;
	p.square_queries = 1000;
	return p;
}

/* The audited attack at another budget: the step scales with eps, so the
 * schedule (iterations x step / eps) is the same. */
static struct attack_params at_budget(const struct attack_params *p, double eps)
{
	struct attack_params q = *p;

	q.alpha = p->alpha * (eps / p->eps);
	if (q.alpha > eps)
		q.alpha = eps;
	q.eps = eps;
	return q;
}

/* The whole pixel range as the budget: Linf 1; L2 the diagonal of the
 * unit cube, sqrt(C*H*W), which reaches every image. */
static double whole_range(const struct audit *au)
{
	return au->p.attack.norm == ATTACK_LINF ? 1.0 : sqrt((double)au->n);
}

/* Square at the audited budget and norm (its iterations are its queries);
 * 0 when it cannot run there. */
static int square_params(const struct audit *au, struct attack_params *q)
{
	char err[ERR_MAX];

	*q = au->p.attack;
	q->kind = ATTACK_SQUARE;
	q->iters = au->p.square_queries;
	q->early_stop = 1;
	return attack_params_check(q, au->k, err) == ST_OK;
}

/* Budgets for check 7: as given (ascending, each usable), or eps/4, eps/2,
 * eps, 2 eps (Linf: those <= 1). */
static enum status set_budgets(struct audit *au, int k, char *err)
{
	struct audit_params *p = &au->p;
	double e = p->attack.eps, f[4] = { 0.25, 0.5, 1.0, 2.0 };
	enum status st;
	int i;

	if (!p->n_eps)
		for (i = 0; i < 4; i++)
			if (p->attack.norm == ATTACK_L2 || f[i] * e <= 1.0)
				p->eps[p->n_eps++] = f[i] * e;
	if (p->n_eps < 1 || p->n_eps > AUDIT_MAX_EPS)
		return status_set(err, ST_ERR_ARG, "the audit takes 1..%d budgets, not %d",
				  AUDIT_MAX_EPS, p->n_eps);
	for (i = 0; i < p->n_eps; i++) {
		struct attack_params q = at_budget(&p->attack, p->eps[i]);

		if (i && !(p->eps[i] > p->eps[i - 1]))
			return status_set(err, ST_ERR_ARG,
					  "budget %g after %g: the epsilons must ascend",
					  p->eps[i], p->eps[i - 1]);
		if ((st = attack_params_check(&q, k, err)) != ST_OK)
			return st;
	}
	return ST_OK;
}

static enum status check_params(struct audit *au, int k, char *err)
{
	const struct audit_params *p = &au->p;
	struct attack_params q;
	enum status st;

	if ((st = attack_params_check(&p->attack, k, err)) != ST_OK)
		return st;
	q = at_budget(&p->attack, whole_range(au));
	if ((st = attack_params_check(&q, k, err)) != ST_OK)
		return st;
	if (p->noise_samples < 1 || p->noise_samples > 100000)
		return status_set(err, ST_ERR_ARG, "noise samples %d: use 1..100000",
				  p->noise_samples);
	if (p->random_passes < 2 || p->random_passes > 1000)
		return status_set(err, ST_ERR_ARG, "random passes %d: use 2..1000",
				  p->random_passes);
	if (p->square_queries < 1 || p->square_queries > 10000000)
		return status_set(err, ST_ERR_ARG, "Square queries %d: use 1..10000000",
				  p->square_queries);
	return set_budgets(au, k, err);
}

enum status audit_new(struct net *net, const struct audit_params *p,
		      struct audit **out, char *err)
{
	const struct net_info *in = net_get_info(net);
	struct audit *au;
	enum status st;

	*out = NULL;
	au = calloc(1, sizeof *au);
	if (!au)
		return status_set(err, ST_ERR_NOMEM, "out of memory for the audit");
	au->net = net;
	au->p = *p;
	au->c = in->in_c;
	au->h = in->in_h;
	au->w = in->in_w;
	au->n = (size_t)in->in_c * in->in_h * in->in_w;
	au->k = in->n_classes;
	au->out_is_probs = in->outputs_probs;
	if ((st = check_params(au, in->n_classes, err)) != ST_OK) {
		audit_free(au);
		return st;
	}
	/* every evaluation of the audited attack: iters + 1 per restart or
	 * binary step (Square: one per query), and the end point */
	au->hist_cap = p->attack.iters * (p->attack.restarts > 1 ? p->attack.restarts : 1) *
		(p->attack.binary_steps > 1 ? p->attack.binary_steps : 1) + 2 *
		(p->attack.restarts > 1 ? p->attack.restarts : 1) *
		(p->attack.binary_steps > 1 ? p->attack.binary_steps : 1) + 2;
	au->row = malloc(sizeof(float) * (size_t)au->k);
	au->probs = malloc(sizeof(float) * (size_t)au->k);
	au->xr = malloc(sizeof(float) * au->n);
	au->xn = malloc(sizeof(float) * au->n);
	au->hist = malloc(sizeof(double) * (size_t)au->hist_cap);
	if (!au->row || !au->probs || !au->xr || !au->xn || !au->hist) {
		audit_free(au);
		return status_set(err, ST_ERR_NOMEM, "out of memory for the audit buffers");
	}
	if ((st = attack_new(net, &au->at, err)) != ST_OK ||
	    (st = attack_new(net, &au->side, err)) != ST_OK) {
		audit_free(au);
		return st;
	}
	*out = au;
	return ST_OK;
}

void audit_free(struct audit *au)
{
	if (!au)
		return;
	attack_free(au->at);
	attack_free(au->side);
	free(au->row);
	free(au->probs);
	free(au->xr);
	free(au->xn);
	free(au->hist);
	free(au);
}

const struct audit_params *audit_get_params(const struct audit *au)
{
	return &au->p;
}

struct attack *audit_attack(struct audit *au)
{
	return au->at;
}

/* ---- one image ----------------------------------------------------------- */

static int adversarial(const struct attack_params *p, int label, int pred)
{
	return p->target >= 0 ? pred == p->target : pred != label;
}

/* Checks 1 and 8b: the clean row, and whether forwards repeat it. */
static void clean_checks(struct audit *au, const float *x0, struct audit_image *rec)
{
	const float *z = net_forward(au->net, x0, 1);
	double sum = 0.0;
	int i, in01 = 1;

	memcpy(au->row, z, sizeof(float) * (size_t)au->k);
	for (i = 0; i < au->k; i++) {
		sum += au->row[i];
		in01 = in01 && au->row[i] >= 0.0f && au->row[i] <= 1.0f;
	}
	rec->row_sum = sum;
	rec->outputs_probs = au->out_is_probs || (in01 && fabs(sum - 1.0) < 1e-3);
	rec->clean_pred = loss_argmax(au->k, au->row);
	rec->random = 0;
	for (i = 1; i < au->p.random_passes && !rec->random; i++)
		rec->random = memcmp(net_forward(au->net, x0, 1), au->row,
				     sizeof(float) * (size_t)au->k) != 0;
}

/* Why the gradient at x0 is zero, from what the loss saw. */
static void zero_cause(const struct attack_report *r, char *cause, size_t n)
{
	const struct loss_info *li = &r->loss_info;

	snprintf(cause, n, "%s",
		 li->cls_clipped || (li->flat && li->mode == LOSS_PROB_CE) ? "clip" :
		 li->cls_underflow ? "underflow" :
		 li->flat ? "margin" : "network");
}

static int track_cb(const struct attack_report *r, void *user)
{
	struct track *t = user;
	struct audit_image *rec = t->rec;

	if (t->n_hist < t->au->hist_cap)
		t->au->hist[t->n_hist++] = r->loss;
	t->ever_success |= r->success;
	if (t->n_hist == 1) {
		/* a kind that takes no gradient (Square) cannot lose it */
		rec->grad_zero = !r->has_grad ? -1 :
			r->grad.n > 0 && r->grad.n_zero == r->grad.n;
		if (rec->grad_zero)
			zero_cause(r, rec->cause, sizeof rec->cause);
	}
	return t->cb ? t->cb(r, t->user) : 0;
}

/* Check 4: how much the attacker's objective (the loss, descending for a
 * targeted attack, ascending otherwise) improved over the last AUDIT_TAIL
 * evaluations, scaled to [0,1] by its range over the whole run. -1 when
 * the run is too short or a loss is not finite. */
static double tail_improvement(const double *h, int n, int targeted)
{
	double lo = INFINITY, hi = -INFINITY, a, b;
	int i, first = n - AUDIT_TAIL;

	if (n < 2)
		return -1.0;
	if (first < 0)
		first = 0;
	for (i = 0; i < n; i++) {
		if (!isfinite(h[i]))
			return -1.0;
		lo = h[i] < lo ? h[i] : lo;
		hi = h[i] > hi ? h[i] : hi;
	}
	if (hi == lo)
		return 0.0;
	a = (h[first] - lo) / (hi - lo);
	b = (h[n - 1] - lo) / (hi - lo);
	return targeted ? a - b : b - a;
}

/* Check 8a: the mean relative change of the attack's loss at the clean
 * image x0 (its output in au->row) under uniform noise of +-AUDIT_NOISE_R,
 * clipped to [0,1]. At x0, not at the attack's result: a result on the
 * decision boundary (an early stop, DeepFool) moves under any noise. */
static double noise_change(struct audit *au, const float *x0,
			   const struct attack_params *q, int label, uint64_t seed)
{
	int untargeted = q->target < 0, cls = untargeted ? label : q->target, s;
	double l0 = loss_eval(&q->loss, au->k, au->row, au->out_is_probs, cls, untargeted,
			      au->probs, NULL, NULL);
	double sum = 0.0, scale = fabs(l0) > 1e-3 ? fabs(l0) : 1e-3;
	struct rng rng;
	size_t i;

	if (!isfinite(l0))
		return 0.0;
	rng_seed(&rng, seed);
	for (s = 0; s < au->p.noise_samples; s++) {
		const float *z;
		double l;

		for (i = 0; i < au->n; i++) {
			float v = x0[i] + (float)(AUDIT_NOISE_R *
						      (2.0 * rng_uniform(&rng) - 1.0));

			au->xn[i] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
		}
		z = net_forward(au->net, au->xn, 1);
		l = loss_eval(&q->loss, au->k, z, au->out_is_probs, cls, untargeted,
			      au->probs, NULL, NULL);
		if (isfinite(l))
			sum += fabs(l - l0) / scale;
	}
	return sum / au->p.noise_samples;
}

/* Check 9: the returned point through an 8-bit PNG and back. 1 still
 * adversarial, 0 not, -1 when it cannot be measured (not 3 channels). */
static int export_survives(struct audit *au, const struct attack_params *q,
			   int label, char *err)
{
	unsigned char *png = NULL;
	float *pix = NULL;
	size_t len;
	int h, w, ok;

	if (au->c != 3)
		return -1;
	if (image_encode_png(au->xr, au->h, au->w, NULL, NULL, 0, &png, &len, err) != ST_OK)
		return -2;
	if (image_decode_png(png, len, &pix, &h, &w, err) != ST_OK) {
		free(png);
		return -2;
	}
	free(png);
	ok = adversarial(q, label, loss_argmax(au->k, net_forward(au->net, pix, 1)));
	free(pix);
	return ok;
}

/* A side attack from x0 to its end; its success there. */
static int side_run(struct audit *au, const float *x0, const struct attack_params *q,
		    char *err)
{
	struct attack_report r;

	if (attack_reset(au->side, x0, q, err) != ST_OK)
		return -2;
	attack_run(au->side, NULL, NULL);
	attack_evaluate(au->side, &r);
	return r.success;
}

/* DeepFool and C&W look for the smallest perturbation: no budget to vary
 * or lift, and their result sits on the decision boundary, where any
 * noise moves the loss. */
static int minimal_kind(enum attack_kind k)
{
	return k == ATTACK_DEEPFOOL || k == ATTACK_CW;
}

/* Checks 5-7 on the second attack. */
static enum status side_checks(struct audit *au, const float *x0,
			       const struct attack_params *q,
			       struct audit_image *rec, char *err)
{
	struct attack_params u;
	int j;

	if (minimal_kind(q->kind))
		return ST_OK;
	if (!rec->success) {
		u = at_budget(q, whole_range(au));
		u.early_stop = 1;
		if ((rec->unconstrained = side_run(au, x0, &u, err)) < -1)
			return ST_ERR_ARG;
		if (q->kind != ATTACK_SQUARE && square_params(au, &u)) {
			u.true_label = q->true_label;
			if ((rec->square = side_run(au, x0, &u, err)) < -1)
				return ST_ERR_ARG;
		}
	}
	for (j = 0; j < au->p.n_eps; j++) {
		struct attack_params b = at_budget(q, au->p.eps[j]);

		rec->budget[j] = au->p.eps[j] == q->eps ? rec->success
						       : side_run(au, x0, &b, err);
		if (rec->budget[j] < -1)
			return ST_ERR_ARG;
	}
	return ST_OK;
}

static void rec_begin(struct audit_image *rec, int index)
{
	int j;

	memset(rec, 0, sizeof *rec);
	rec->index = index;
	rec->tail_improvement = -1.0;
	rec->unconstrained = rec->square = rec->export_ok = -1;
	for (j = 0; j < AUDIT_MAX_EPS; j++)
		rec->budget[j] = -1;
}

enum status audit_image(struct audit *au, int index, const float *x0,
			int label, attack_cb cb, void *user,
			struct attack_report *final, struct audit_image *rec,
			int *cancelled, char *err)
{
	struct track t = { .au = au, .cb = cb, .user = user, .rec = rec };
	struct attack_params q = au->p.attack;
	struct attack_report fin;
	enum status st;

	*cancelled = 0;
	rec_begin(rec, index);
	clean_checks(au, x0, rec);
	rec->label = label >= 0 ? label : rec->clean_pred;
	q.true_label = rec->label;
	if (q.target == q.true_label)
		return status_set(err, ST_ERR_ARG,
				  "image %d: its label is the target class", index);
	if ((st = attack_reset(au->at, x0, &q, err)) != ST_OK)
		return st;
	if (attack_run(au->at, track_cb, &t) == 1) {
		*cancelled = 1;
		return ST_OK;
	}
	attack_evaluate(au->at, &fin);
	if (t.n_hist < au->hist_cap)
		au->hist[t.n_hist++] = fin.loss;
	rec->success = fin.success;
	rec->ever_success = t.ever_success || fin.success;
	rec->iters = attack_iter(au->at);
	rec->final_loss = fin.loss;
	rec->pert_linf = fin.pert_linf;
	rec->pert_l2 = fin.pert_l2;
	if (!rec->success)
		rec->tail_improvement = tail_improvement(au->hist, t.n_hist, q.target >= 0);
	fin.layer_norms = NULL;
	if (final)
		*final = fin;
	memcpy(au->xr, attack_x_result(au->at), sizeof(float) * au->n);
	rec->noise_change = noise_change(au, x0, &q, rec->label,
					 q.seed ^ (0x9E3779B97F4A7C15ULL * (uint64_t)(index + 1)));
	if (rec->success &&
	    (rec->export_ok = export_survives(au, &q, rec->label, err)) < -1)
		return ST_ERR_NOMEM;
	return side_checks(au, x0, &q, rec, err);
}

/* ---- verdicts ------------------------------------------------------------ */

static const struct {
	const char *key, *title;
} check_names[AUDIT_N_CHECKS] = {
	[AUDIT_PROBS] = { "probabilities", "Model outputs probabilities" },
	[AUDIT_GRADIENTS] = { "unavailable_gradients", "Unavailable gradients" },
	[AUDIT_SILENT] = { "silent_success", "Silent success" },
	[AUDIT_INCOMPLETE] = { "incomplete_optimisation", "Incomplete optimisation" },
	[AUDIT_UNCONSTRAINED] = { "unconstrained_failure", "Unconstrained attack failure" },
	[AUDIT_GRAD_FREE] = { "gradient_free", "Gradient-free beats gradient-based" },
	[AUDIT_BUDGET] = { "non_monotone_budget", "Non-monotone budget" },
	[AUDIT_UNSTABLE_PRED] = { "unstable_predictions", "Unstable predictions" },
	[AUDIT_EXPORT] = { "export_survives", "Export survives" },
};

const char *audit_check_key(enum audit_check_id id)
{
	return (unsigned)id < AUDIT_N_CHECKS ? check_names[id].key : "?";
}

const char *audit_check_title(enum audit_check_id id)
{
	return (unsigned)id < AUDIT_N_CHECKS ? check_names[id].title : "?";
}

/* Count the records pred() picks; the first one's index. */
static int flag(struct audit_check *c, const struct audit_image *recs, int n,
		int (*pred)(const struct audit_image *))
{
	int i;

	c->n_flagged = 0;
	c->first_image = -1;
	for (i = 0; i < n; i++)
		if (pred(&recs[i]) && !c->n_flagged++)
			c->first_image = recs[i].index;
	return c->n_flagged;
}

static void fraction(struct audit_check *c, int of, const char *what)
{
	c->figure = of ? (double)c->n_flagged / of : 0.0;
	snprintf(c->figure_text, sizeof c->figure_text, "%d/%d %s (%.0f%%)",
		 c->n_flagged, of, what, 100.0 * c->figure);
}

static int is_probs(const struct audit_image *r) { return r->outputs_probs; }
static int is_zero(const struct audit_image *r) { return r->grad_zero > 0; }
static int is_silent(const struct audit_image *r) { return r->ever_success && !r->success; }
static int is_failed(const struct audit_image *r) { return !r->success; }
static int is_incomplete(const struct audit_image *r)
{
	return !r->success && r->tail_improvement > AUDIT_TAIL_RANGE;
}
static int is_unc_fail(const struct audit_image *r) { return r->unconstrained == 0; }
static int has_unc(const struct audit_image *r) { return r->unconstrained >= 0; }
static int is_square_win(const struct audit_image *r) { return r->square == 1; }
static int has_square(const struct audit_image *r) { return r->square >= 0; }
static int is_random(const struct audit_image *r) { return r->random; }
static int is_unstable(const struct audit_image *r) { return r->noise_change > AUDIT_UNSTABLE; }
static int is_lost(const struct audit_image *r) { return r->export_ok == 0; }
static int has_export(const struct audit_image *r) { return r->export_ok >= 0; }

static void v_probs(struct audit_check *c, const struct audit_image *r, int n)
{
	int i, first = 0;

	for (i = n - 1; i >= 0; i--)
		if (r[i].outputs_probs)
			first = i;
	flag(c, r, n, is_probs);
	fraction(c, n, "images with a probability row");
	c->verdict = c->n_flagged ? AUDIT_FAIL : AUDIT_PASS;
	snprintf(c->sentence, sizeof c->sentence, c->n_flagged ?
		 "The model's outputs are probabilities (a softmax at the end; the first row "
		 "sums to %.4f): a loss on them saturates, clips or underflows and its gradient "
		 "vanishes, so attack the logits - re-import with tools/advex-import, which "
		 "removes a final softmax, and use --loss ce." :
		 "The outputs are logits (the first row sums to %.4f), which is what the losses "
		 "expect.", n ? r[first].row_sum : 0.0);
}

static void v_gradients(struct audit_check *c, const struct audit_image *r, int n)
{
	int i, clip = 0, under = 0, margin = 0, net = 0;

	flag(c, r, n, is_zero);
	fraction(c, n, "images with an all-zero input gradient");
	for (i = 0; i < n; i++)
		if (r[i].grad_zero > 0) {
			clip += !strcmp(r[i].cause, "clip");
			under += !strcmp(r[i].cause, "underflow");
			margin += !strcmp(r[i].cause, "margin");
			net += !strcmp(r[i].cause, "network");
		}
	c->verdict = !c->n_flagged ? AUDIT_PASS : c->n_flagged * 2 < n ? AUDIT_WARN : AUDIT_FAIL;
	if (!c->n_flagged)
		snprintf(c->sentence, sizeof c->sentence,
			 "Every image has a gradient to follow at its start.");
	else
		snprintf(c->sentence, sizeof c->sentence,
			 "A zero gradient gives a gradient attack no direction, so it cannot move "
			 "these images (causes: %d probability clip, %d underflow, %d loss margin "
			 "reached, %d dead units in the network): attack the logits with --loss ce, "
			 "or use a gradient-free attack (--attack square).",
			 clip, under, margin, net);
}

static void v_silent(struct audit_check *c, const struct audit_image *r, int n)
{
	flag(c, r, n, is_silent);
	fraction(c, n, "images adversarial at some iterate but not at the end");
	c->verdict = c->n_flagged ? AUDIT_FAIL : AUDIT_PASS;
	snprintf(c->sentence, sizeof c->sentence, c->n_flagged ?
		 "The attack passed through an adversarial point and then left it, so it "
		 "reports failures that are successes: keep the best point (--early-stop, or an "
		 "attack that tracks it such as apgd-ce)." :
		 "No attack left an adversarial point it had found.");
}

static void v_incomplete(struct audit_check *c, const struct audit_image *r, int n)
{
	int failed = 0, i;

	for (i = 0; i < n; i++)
		failed += !r[i].success;
	flag(c, r, n, is_incomplete);
	fraction(c, failed, "failed images whose loss was still improving");
	c->verdict = !failed ? AUDIT_SKIPPED : c->n_flagged ? AUDIT_WARN : AUDIT_PASS;
	snprintf(c->sentence, sizeof c->sentence, !failed ?
		 "No image failed, so there is no unfinished optimisation to look for." :
		 c->n_flagged ?
		 "On these failed images the loss improved by more than 5%% of its range over "
		 "the last 10 evaluations: the attack was stopped while still making progress; "
		 "give it more iterations (--iters) or a larger step." :
		 "Where the attack failed, its loss had levelled off: more iterations alone "
		 "would not help.");
}

static void v_unconstrained(struct audit_check *c, const struct audit_params *p,
			    const struct audit_image *r, int n)
{
	struct audit_check tmp = *c;
	int ran = flag(&tmp, r, n, has_unc);

	flag(c, r, n, is_unc_fail);
	fraction(c, ran, "failed images the attack cannot break even with the whole pixel range");
	c->verdict = !ran ? AUDIT_SKIPPED : c->n_flagged ? AUDIT_FAIL : AUDIT_PASS;
	snprintf(c->sentence, sizeof c->sentence, !ran ?
		 (minimal_kind(p->attack.kind) ?
		  "A minimal-perturbation attack has no budget to lift: not measured." :
		  "No image failed, so the unconstrained attack was not needed.") :
		 c->n_flagged ?
		 "With the whole pixel range as its budget any image can be turned into any "
		 "other, yet the attack failed: its failures come from the attack (a flat or "
		 "misleading loss, too few steps), not from robustness - change the loss "
		 "(--loss ce or cw) or the attack before trusting the robust accuracy." :
		 "Given the whole pixel range the attack succeeds on every image it failed on: "
		 "it is able to optimise, and its failures at epsilon mean something.");
}

static void v_grad_free(struct audit_check *c, const struct audit_params *p,
			const struct audit_image *r, int n)
{
	struct audit_check tmp = *c;
	int ran = flag(&tmp, r, n, has_square), failed = flag(&tmp, r, n, is_failed);

	flag(c, r, n, is_square_win);
	fraction(c, ran, "failed images that Square breaks at the same epsilon");
	c->verdict = !ran ? AUDIT_SKIPPED : c->n_flagged ? AUDIT_FAIL : AUDIT_PASS;
	snprintf(c->sentence, sizeof c->sentence, !ran ?
		 (p->attack.kind == ATTACK_SQUARE ?
		  "The audited attack is Square itself: it needs no gradient." :
		  minimal_kind(p->attack.kind) ?
		  "A minimal-perturbation attack has no budget for Square to match: not measured." :
		  failed ? "Square cannot run with this audit's parameters, so no "
			   "gradient-free attack was compared." :
			   "No image failed, so no gradient-free attack was needed.") :
		 c->n_flagged ?
		 "An attack that only reads the model's outputs succeeded where the gradient "
		 "attack failed: the gradient is masked (zero, clipped or misleading) and the "
		 "apparent robustness is not real - report the gradient-free result, or fix the "
		 "gradient (--loss ce on logits)." :
		 "Square, which needs no gradient, did no better: the gradient is not hiding "
		 "adversarial examples at this budget.");
}

static void v_budget(struct audit_check *c, const struct audit_params *p,
		     const struct audit_image *r, int n)
{
	int j, i, worst = -1, cnt[AUDIT_MAX_EPS] = { 0 }, measured = 0;
	double drop = 0.0;

	for (j = 0; j < p->n_eps; j++)
		for (i = 0; i < n; i++) {
			cnt[j] += r[i].budget[j] == 1;
			measured += r[i].budget[j] >= 0;
		}
	for (j = 1; j < p->n_eps; j++)
		if (n && (double)(cnt[j - 1] - cnt[j]) / n > drop) {
			drop = (double)(cnt[j - 1] - cnt[j]) / n;
			worst = j;
		}
	c->n_flagged = 0;
	c->first_image = -1;
	for (i = 0; worst > 0 && i < n; i++)
		if (r[i].budget[worst - 1] == 1 && r[i].budget[worst] != 1 &&
		    !c->n_flagged++)
			c->first_image = r[i].index;
	c->figure = drop;
	if (worst > 0)
		snprintf(c->figure_text, sizeof c->figure_text,
			 "success %d/%d at eps %.4g but %d/%d at eps %.4g", cnt[worst - 1], n,
			 p->eps[worst - 1], cnt[worst], n, p->eps[worst]);
	else
		snprintf(c->figure_text, sizeof c->figure_text,
			 "success %d/%d at eps %.4g up to %d/%d at eps %.4g", cnt[0], n,
			 p->eps[0], cnt[p->n_eps - 1], n, p->eps[p->n_eps - 1]);
	c->verdict = p->n_eps < 2 || !measured ? AUDIT_SKIPPED : worst > 0 ? AUDIT_FAIL :
		AUDIT_PASS;
	snprintf(c->sentence, sizeof c->sentence, c->verdict == AUDIT_SKIPPED ?
		 (minimal_kind(p->attack.kind) ?
		  "A minimal-perturbation attack has no budget: its perturbation is the result." :
		  n ? "One budget only: give several epsilons to see the curve." :
		  "No image audited.") :
		 worst > 0 ?
		 "A larger budget contains every smaller one, so the success rate cannot truly "
		 "fall as epsilon grows: the attack overshoots or follows a saturated loss at "
		 "the larger step - use more iterations with a smaller step, or a loss on the "
		 "logits." :
		 "The success rate never falls as epsilon grows.");
}

static void v_unstable(struct audit_check *c, const struct audit_params *p,
		       const struct audit_image *r, int n)
{
	struct audit_check tmp = *c;
	int rnd = flag(&tmp, r, n, is_random), i, measured = 0;
	double mean = 0.0;

	flag(c, r, n, rnd ? is_random : is_unstable);
	for (i = 0; i < n; i++)
		if (r[i].noise_change >= 0) {
			mean += r[i].noise_change;
			measured++;
		}
	mean /= measured ? measured : 1;
	c->figure = rnd ? (double)rnd / (n ? n : 1) : mean;
	if (rnd)
		snprintf(c->figure_text, sizeof c->figure_text,
			 "%d/%d images gave different outputs in %d forward passes", rnd, n,
			 p->random_passes);
	else if (!measured)
		snprintf(c->figure_text, sizeof c->figure_text,
			 "%d forwards agree on each of %d images; noise not measured", p->random_passes, n);
	else
		snprintf(c->figure_text, sizeof c->figure_text,
			 "mean relative loss change %.3g under +-8/255 noise; %d/%d images above %.2g",
			 mean, c->n_flagged, measured, AUDIT_UNSTABLE);
	c->verdict = rnd ? AUDIT_FAIL : c->n_flagged ? AUDIT_WARN : AUDIT_PASS;
	snprintf(c->sentence, sizeof c->sentence, rnd ?
		 "The same image gives different outputs from one forward to the next (dropout "
		 "or another random layer left on), so every gradient is of a different model: "
		 "put the model in inference mode, or attack the expectation over its "
		 "randomness (EOT)." :
		 !measured && n ?
		 "Repeated forwards agree. The result of a minimal-perturbation attack sits on "
		 "the decision boundary, where any noise moves the loss: not measured." :
		 c->n_flagged ?
		 "Noise far below the budget changes the loss a lot around the clean image: "
		 "the loss surface is rough, so single gradients mislead - average gradients "
		 "over noise (EOT) or use a gradient-free attack." :
		 "The loss barely moves under small noise, and repeated forwards agree.");
}

static void v_export(struct audit_check *c, const struct audit_image *r, int n)
{
	struct audit_check tmp = *c;
	int ran = flag(&tmp, r, n, has_export);

	flag(c, r, n, is_lost);
	fraction(c, ran, "successes lost once saved as an 8-bit PNG");
	c->verdict = !ran ? AUDIT_SKIPPED : c->n_flagged ? AUDIT_WARN : AUDIT_PASS;
	snprintf(c->sentence, sizeof c->sentence, !ran ?
		 "No success to export." :
		 c->n_flagged ?
		 "Rounding to the 256 levels a PNG stores moved these images back across the "
		 "decision boundary, so the saved files are not adversarial: attack with "
		 "--quantize (every iterate on the 8-bit grid) or with a little more margin." :
		 "Every adversarial image is still adversarial after the round trip through an "
		 "8-bit PNG.");
}

void audit_verdicts(const struct audit *au, const struct audit_image *recs,
		    int n, struct audit_check *checks)
{
	int i;

	for (i = 0; i < AUDIT_N_CHECKS; i++) {
		memset(&checks[i], 0, sizeof checks[i]);
		checks[i].id = (enum audit_check_id)i;
		checks[i].key = check_names[i].key;
		checks[i].title = check_names[i].title;
	}
	v_probs(&checks[AUDIT_PROBS], recs, n);
	v_gradients(&checks[AUDIT_GRADIENTS], recs, n);
	v_silent(&checks[AUDIT_SILENT], recs, n);
	v_incomplete(&checks[AUDIT_INCOMPLETE], recs, n);
	v_unconstrained(&checks[AUDIT_UNCONSTRAINED], &au->p, recs, n);
	v_grad_free(&checks[AUDIT_GRAD_FREE], &au->p, recs, n);
	v_budget(&checks[AUDIT_BUDGET], &au->p, recs, n);
	v_unstable(&checks[AUDIT_UNSTABLE_PRED], &au->p, recs, n);
	v_export(&checks[AUDIT_EXPORT], recs, n);
}
