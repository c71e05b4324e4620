/* attack.c - the attack engine, one iteration at a time (see attack.h).
 *
 * A step is: forward, loss, backward, statistics and diagnosis, then the
 * update and the projection. All of it runs on buffers sized in attack_new,
 * because an interactive explorer steps thousands of times.
 */
#define _POSIX_C_SOURCE 200809L
#include "attack.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "rng.h"

struct attack {
	struct net *net;	/* borrowed */
	int k;			/* classes */
	int out_is_probs;
	size_t n;		/* pixels of one image, C*H*W */
	float *x0, *x_adv;	/* n each */
	float *grad;		/* n: dLoss/dpixels of the last evaluation */
	float *acc;		/* n: MI-FGSM momentum */
	float *out, *probs, *dout; /* k each */
	struct attack_params p;
	struct rng rng;
	int label;		/* true label in use, -1 unknown */
	int iter;		/* updates made */
	int stopped;		/* early stop reached */
	int ready;		/* a reset succeeded */
	char diag[DIAG_EXPLAIN_MAX];
};

static const char *const kind_names[ATTACK_N_KINDS] = {
	[ATTACK_FGSM] = "fgsm",
	[ATTACK_BIM] = "bim",
	[ATTACK_PGD] = "pgd",
	[ATTACK_MIFGSM] = "mifgsm",
};

const char *attack_kind_name(enum attack_kind k)
{
	return (unsigned)k < ATTACK_N_KINDS ? kind_names[k] : "?";
}

const char *attack_norm_name(enum attack_norm n)
{
	return n == ATTACK_LINF ? "linf" : n == ATTACK_L2 ? "l2" : "?";
}

enum status attack_kind_parse(const char *s, enum attack_kind *out, char *err)
{
	int i;

	if (s && (!strcmp(s, "ifgsm") || !strcmp(s, "i-fgsm")))
		s = "bim";
	else if (s && !strcmp(s, "mi-fgsm"))
		s = "mifgsm";
	for (i = 0; s && i < ATTACK_N_KINDS; i++)
		if (!strcmp(s, kind_names[i])) {
			*out = (enum attack_kind)i;
			return ST_OK;
		}
	return status_set(err, ST_ERR_ARG,
			  "unknown attack '%s': use fgsm, bim, pgd or mifgsm",
			  s ? s : "");
}

enum status attack_norm_parse(const char *s, enum attack_norm *out, char *err)
{
	if (s && !strcmp(s, "linf")) {
		*out = ATTACK_LINF;
		return ST_OK;
	}
	if (s && !strcmp(s, "l2")) {
		*out = ATTACK_L2;
		return ST_OK;
	}
	return status_set(err, ST_ERR_ARG, "unknown norm '%s': use linf or l2",
			  s ? s : "");
}

struct attack_params attack_params_default(void)
{
	struct attack_params p;

	memset(&p, 0, sizeof p);
	p.kind = ATTACK_PGD;
	p.loss = loss_params_default();
	p.norm = ATTACK_LINF;
	p.eps = 8.0 / 255.0;
	p.alpha = 2.0 / 255.0;
	p.iters = 10;
	p.momentum = 1.0;
	p.target = -1;
	p.true_label = -1;
	return p;
}

static enum status check_class(int c, int n_classes, const char *what,
			       char *err)
{
	if (c < -1 || c >= n_classes)
		return status_set(err, ST_ERR_ARG,
				  "%s %d is out of range: the model has %d classes (0..%d)",
				  what, c, n_classes, n_classes - 1);
	return ST_OK;
}

static enum status check_sizes(const struct attack_params *p, char *err)
{
	if (p->norm == ATTACK_LINF && !(p->eps > 0.0 && p->eps <= 1.0))
		return status_set(err, ST_ERR_ARG,
				  "epsilon %g is out of range: Linf epsilon must be in (0, 1] "
				  "(pixel units; 8/255 = 0.0314)", p->eps);
	if (p->norm == ATTACK_L2 && !(p->eps > 0.0 && isfinite(p->eps)))
		return status_set(err, ST_ERR_ARG,
				  "epsilon %g is out of range: L2 epsilon must be > 0", p->eps);
	if (p->kind != ATTACK_FGSM && !(p->alpha > 0.0 && p->alpha <= p->eps))
		return status_set(err, ST_ERR_ARG,
				  p->alpha > p->eps ?
				  "step size alpha %g is larger than epsilon %g: every step would "
				  "overshoot the eps-ball and be projected back; use alpha <= epsilon" :
				  "step size alpha %g is out of range: it must be in (0, epsilon %g]",
				  p->alpha, p->eps);
	if (p->iters < 1)
		return status_set(err, ST_ERR_ARG,
				  "iterations %d: an attack needs at least 1", p->iters);
	if (!(p->momentum >= 0.0 && isfinite(p->momentum)))
		return status_set(err, ST_ERR_ARG, "momentum %g must be >= 0",
				  p->momentum);
	return ST_OK;
}

static enum status check_loss(const struct loss_params *lp, char *err)
{
	if ((unsigned)lp->mode >= LOSS_N_MODES)
		return status_set(err, ST_ERR_ARG, "unknown loss mode %d", (int)lp->mode);
	if (!(lp->kappa >= 0.0 && isfinite(lp->kappa)))
		return status_set(err, ST_ERR_ARG, "kappa %g must be >= 0", lp->kappa);
	if (!(lp->clip_eps > 0.0 && lp->clip_eps < 0.5))
		return status_set(err, ST_ERR_ARG,
				  "clip epsilon %g is out of range: it must be in (0, 0.5)",
				  lp->clip_eps);
	return ST_OK;
}

enum status attack_params_check(const struct attack_params *p, int n_classes,
				char *err)
{
	enum status st;

	if ((unsigned)p->kind >= ATTACK_N_KINDS)
		return status_set(err, ST_ERR_ARG, "unknown attack kind %d", (int)p->kind);
	if (p->norm != ATTACK_LINF && p->norm != ATTACK_L2)
		return status_set(err, ST_ERR_ARG, "unknown norm %d", (int)p->norm);
	if ((st = check_sizes(p, err)) != ST_OK ||
	    (st = check_loss(&p->loss, err)) != ST_OK ||
	    (st = check_class(p->target, n_classes, "target class", err)) != ST_OK ||
	    (st = check_class(p->true_label, n_classes, "true label", err)) != ST_OK)
		return st;
	if (p->target >= 0 && p->target == p->true_label)
		return status_set(err, ST_ERR_ARG,
				  "target class %d is the true label: a targeted attack needs "
				  "another class", p->target);
	return ST_OK;
}

enum status attack_new(struct net *net, struct attack **out, char *err)
{
	const struct net_info *in = net_get_info(net);
	struct attack *a;
	size_t n = (size_t)in->in_c * in->in_h * in->in_w, k = (size_t)in->n_classes;

	*out = NULL;
	if (in->n_classes < 2)
		return status_set(err, ST_ERR_ARG,
				  "the model has %d class: an attack needs at least 2",
				  in->n_classes);
	a = calloc(1, sizeof *a);
	if (!a)
		return status_set(err, ST_ERR_NOMEM, "out of memory for the attack");
	a->net = net;
	a->k = in->n_classes;
	a->out_is_probs = in->outputs_probs;
	a->n = n;
	a->x0 = malloc(sizeof(float) * n);
	a->x_adv = malloc(sizeof(float) * n);
	a->grad = calloc(n, sizeof(float));
	a->acc = calloc(n, sizeof(float));
	a->out = calloc(k, sizeof(float));
	a->probs = calloc(k, sizeof(float));
	a->dout = calloc(k, sizeof(float));
	a->p = attack_params_default();
	a->label = -1;
	if (!a->x0 || !a->x_adv || !a->grad || !a->acc || !a->out || !a->probs ||
	    !a->dout) {
		attack_free(a);
		return status_set(err, ST_ERR_NOMEM,
				  "out of memory for the attack buffers (%zu pixels)", n);
	}
	*out = a;
	return ST_OK;
}

void attack_free(struct attack *a)
{
	if (!a)
		return;
	free(a->x0);
	free(a->x_adv);
	free(a->grad);
	free(a->acc);
	free(a->out);
	free(a->probs);
	free(a->dout);
	free(a);
}

/* ---- geometry ------------------------------------------------------------ */

static float clamp01(float v)
{
	return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
}

static void project_linf(struct attack *a)
{
	float eps = (float)a->p.eps, *x = a->x_adv;
	const float *x0 = a->x0;
	size_t i;

	for (i = 0; i < a->n; i++) {
		float v = x[i];

		v = v < x0[i] - eps ? x0[i] - eps : v > x0[i] + eps ? x0[i] + eps : v;
		x[i] = clamp01(v);
	}
}

/* Rescale x - x0 onto the L2 ball, then clip to [0,1]: the clip only moves
 * components toward x0 (x0 is in [0,1]), so it cannot leave the ball. */
static void project_l2(struct attack *a)
{
	float *x = a->x_adv;
	const float *x0 = a->x0;
	double l2, s;
	size_t i;

	diag_perturbation(x, x0, a->n, NULL, &l2);
	s = l2 > a->p.eps ? a->p.eps / l2 : 1.0;
	for (i = 0; i < a->n; i++) {
		if (s < 1.0)
			x[i] = x0[i] + (float)(s * ((double)x[i] - x0[i]));
		x[i] = clamp01(x[i]);
	}
}

/* Onto the eps-ball around x0, then onto [0,1]. */
static void project(struct attack *a)
{
	if (a->p.norm == ATTACK_LINF)
		project_linf(a);
	else
		project_l2(a);
}

/* x_adv = a uniform point of the eps-ball around x0, clipped to [0,1]. */
static void random_start(struct attack *a)
{
	double eps = a->p.eps, nrm = 0.0, r;
	size_t i;

	if (a->p.norm == ATTACK_LINF) {
		for (i = 0; i < a->n; i++)
			a->x_adv[i] = clamp01(a->x0[i] +
					      (float)(eps * (2.0 * rng_uniform(&a->rng) - 1.0)));
		return;
	}
	/* a uniform direction (normalised Gaussian) at radius eps * u^(1/n) */
	for (i = 0; i < a->n; i++) {
		a->grad[i] = (float)rng_normal(&a->rng);
		nrm += (double)a->grad[i] * a->grad[i];
	}
	nrm = sqrt(nrm);
	r = eps * pow(rng_uniform(&a->rng), 1.0 / (double)a->n);
	for (i = 0; i < a->n; i++) {
		a->x_adv[i] = clamp01(a->x0[i] + (float)(r * a->grad[i] / nrm));
		a->grad[i] = 0.0f;
	}
}

/* ---- evaluation ---------------------------------------------------------- */

static int argmax(const float *v, int k)
{
	int i, best = 0;

	for (i = 1; i < k; i++)
		if (v[i] > v[best])
			best = i;
	return best;
}

/* The label an untargeted attack moves away from: given, or else the
 * prediction at x0 (one forward, once). */
static void resolve_label(struct attack *a)
{
	if (a->p.true_label >= 0)
		a->label = a->p.true_label;
	else if (a->label < 0 && a->p.target < 0)
		a->label = argmax(net_forward(a->net, a->x0, 1), a->k);
}


/* The loss part of an evaluation at x_adv from the model's output row z
 * (k values): rep's loss, prediction and success, and dLoss/doutput in
 * a->dout for the backward. */
static void eval_output(struct attack *a, const float *z,
			struct attack_report *rep)
{
	int untargeted = a->p.target < 0;
	int cls = untargeted ? a->label : a->p.target;

	memcpy(a->out, z, sizeof(float) * (size_t)a->k);
	rep->iter = a->iter;
	rep->cls = cls;
	rep->loss = loss_eval(&a->p.loss, a->k, a->out, a->out_is_probs, cls,
			      untargeted, a->probs, a->dout, &rep->loss_info);
	rep->logits = a->out;
	rep->probs = a->probs;
	rep->pred = argmax(a->out, a->k);
	rep->target_prob = a->probs[cls];
	rep->success = untargeted ? rep->pred != cls : rep->pred == cls;
}

/* The gradient part, once a->grad holds dLoss/dpixels: statistics and the
 * diagnosis. layer_norms: this image's norms from the backward (a batched
 * backward's whole-batch norms would explain the wrong image). */
static void eval_grad(struct attack *a, const double *layer_norms,
		      struct attack_report *rep)
{
	const struct net_info *in = net_get_info(a->net);
	struct diag_input di;

	diag_grad_stats(a->grad, a->n, &rep->grad);
	rep->layer_norms = layer_norms;
	rep->n_layers = in->n_layers;
	di.loss = &a->p.loss;
	di.li = &rep->loss_info;
	di.loss_value = rep->loss;
	di.classes = in->classes;
	di.grad = &rep->grad;
	di.net = a->net;
	diag_explain_image(&di, layer_norms, a->diag, sizeof a->diag);
	rep->diagnosis = a->diag;
	rep->updated = 0;
}

static void evaluate(struct attack *a, struct attack_report *rep)
{
	eval_output(a, net_forward(a->net, a->x_adv, 1), rep);
	net_backward(a->net, a->dout, a->grad);
	eval_grad(a, net_grad_norms_image(a->net, 0), rep);
}

/* ---- the update ---------------------------------------------------------- */

static double finite_or_zero(float v)
{
	return isfinite(v) ? (double)v : 0.0;
}

static double norm_of(const float *v, size_t n, int l1)
{
	double s = 0.0;
	size_t i;

	for (i = 0; i < n; i++) {
		double d = finite_or_zero(v[i]);

		s += l1 ? fabs(d) : d * d;
	}
	return l1 ? s : sqrt(s);
}

/* MI-FGSM: acc = mu * acc + sgn * g / ||g||_1, in the ascent direction. */
static void accumulate(struct attack *a, double sgn)
{
	double l1 = norm_of(a->grad, a->n, 1), mu = a->p.momentum;
	size_t i;

	for (i = 0; i < a->n; i++)
		a->acc[i] = (float)(mu * a->acc[i] +
				    (l1 > 0.0 ? sgn * finite_or_zero(a->grad[i]) / l1 : 0.0));
}

/* x_adv += step * sign(sgn * v); sign(0) = 0, so a component with no
 * gradient stays where it is. */
static void move_linf(struct attack *a, const float *v, double sgn, double step)
{
	float s = (float)(sgn * step);
	size_t i;

	for (i = 0; i < a->n; i++) {
		double d = finite_or_zero(v[i]);

		if (d != 0.0)
			a->x_adv[i] += d > 0.0 ? s : -s;
	}
}

/* x_adv += step * sgn * v / ||v||_2; nothing when v is zero. */
static void move_l2(struct attack *a, const float *v, double sgn, double step)
{
	double nrm = norm_of(v, a->n, 0);
	size_t i;

	if (nrm == 0.0)
		return;
	for (i = 0; i < a->n; i++)
		a->x_adv[i] += (float)(sgn * step * finite_or_zero(v[i]) / nrm);
}

static void move(struct attack *a, const float *v, double sgn, double step)
{
	if (a->p.norm == ATTACK_LINF)
		move_linf(a, v, sgn, step);
	else
		move_l2(a, v, sgn, step);
}

static void update(struct attack *a)
{
	/* a targeted attack descends its loss; an untargeted one ascends */
	double sgn = a->p.target >= 0 ? -1.0 : 1.0;
	double step = a->p.kind == ATTACK_FGSM ? a->p.eps : a->p.alpha;

	if (a->p.kind == ATTACK_MIFGSM) {
		accumulate(a, sgn);
		move(a, a->acc, 1.0, step);
	} else {
		move(a, a->grad, sgn, step);
	}
	project(a);
	a->iter++;
}

static int total_iters(const struct attack *a)
{
	return a->p.kind == ATTACK_FGSM ? 1 : a->p.iters;
}

int attack_finished(const struct attack *a)
{
	return a->stopped || a->iter >= total_iters(a);
}

static void report_begin(struct attack_report *rep)
{
	memset(rep, 0, sizeof *rep);
	rep->diagnosis = "";
}

/* The report's tail once rep holds the evaluation at x_adv (and the
 * update, if any, is done): finished, perturbation; not its time. */
static void evaluate_end(struct attack *a, struct attack_report *rep)
{
	rep->finished = attack_finished(a);
	diag_perturbation(a->x_adv, a->x0, a->n, &rep->pert_linf, &rep->pert_l2);
}

/* The rest of a step: the early stop, the update, the report's tail. */
static void step_end(struct attack *a, struct attack_report *rep)
{
	if (a->p.early_stop && rep->success)
		a->stopped = 1;
	if (!attack_finished(a)) {
		update(a);
		rep->updated = 1;
	}
	evaluate_end(a, rep);
}

int attack_step(struct attack *a, struct attack_report *rep)
{
	struct attack_report local;
	double t0 = clock_ms();

	if (!rep)
		rep = &local;
	report_begin(rep);
	if (!a->ready)
		return -1;
	evaluate(a, rep);
	step_end(a, rep);
	rep->step_ms = clock_ms() - t0;
	return rep->finished;
}

int attack_run(struct attack *a, attack_cb cb, void *user)
{
	struct attack_report rep;
	int fin;

	do {
		fin = attack_step(a, &rep);
		if (fin < 0)
			return -1;
		if (cb && cb(&rep, user))
			return 1;
	} while (!fin);
	return 0;
}

void attack_evaluate(struct attack *a, struct attack_report *rep)
{
	double t0 = clock_ms();

	report_begin(rep);
	if (!a->ready)
		return;
	evaluate(a, rep);
	evaluate_end(a, rep);
	rep->step_ms = clock_ms() - t0;
}

/* ---- state changes ------------------------------------------------------- */

static enum status check_image(const float *x, size_t n, char *err)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!(x[i] >= 0.0f && x[i] <= 1.0f))
			return status_set(err, ST_ERR_ARG,
					  "pixel %zu of the image is %g: pixels must be in [0, 1]",
					  i, (double)x[i]);
	return ST_OK;
}

enum status attack_reset(struct attack *a, const float *x0,
			 const struct attack_params *p, char *err)
{
	enum status st;

	if ((st = attack_params_check(p, a->k, err)) != ST_OK ||
	    (st = check_image(x0, a->n, err)) != ST_OK)
		return st;
	a->p = *p;
	memcpy(a->x0, x0, sizeof(float) * a->n);
	memcpy(a->x_adv, x0, sizeof(float) * a->n);
	memset(a->acc, 0, sizeof(float) * a->n);
	memset(a->grad, 0, sizeof(float) * a->n);
	a->iter = 0;
	a->stopped = 0;
	a->label = -1;
	resolve_label(a);
	rng_seed(&a->rng, p->seed);
	if (p->kind == ATTACK_PGD || (p->random_start && p->kind != ATTACK_FGSM))
		random_start(a);
	a->ready = 1;
	return ST_OK;
}

enum status attack_set_params(struct attack *a, const struct attack_params *p,
			      char *err)
{
	enum status st;

	if (!a->ready)
		return status_set(err, ST_ERR_ARG, "the attack has no image yet: reset it first");
	if ((st = attack_params_check(p, a->k, err)) != ST_OK)
		return st;
	/* the accumulated direction belongs to the old objective */
	if (p->kind != a->p.kind || p->target != a->p.target ||
	    p->loss.mode != a->p.loss.mode)
		memset(a->acc, 0, sizeof(float) * a->n);
	if (p->true_label != a->p.true_label)
		a->label = -1;
	a->p = *p;
	resolve_label(a);
	project(a);
	a->stopped = 0;
	return ST_OK;
}

/* ---- accessors ------------------------------------------------------------ */

const float *attack_x_adv(const struct attack *a)
{
	return a->x_adv;
}

const float *attack_x0(const struct attack *a)
{
	return a->x0;
}

const float *attack_grad(const struct attack *a)
{
	return a->grad;
}

size_t attack_n_pixels(const struct attack *a)
{
	return a->n;
}

int attack_iter(const struct attack *a)
{
	return a->iter;
}

int attack_label(const struct attack *a)
{
	return a->label;
}

const struct attack_params *attack_get_params(const struct attack *a)
{
	return &a->p;
}

/* ---- several attacks per forward/backward ---------------------------------- */

struct attack_batch {
	struct net *net;	/* borrowed */
	int max;		/* slots */
	size_t n;		/* pixels of one image */
	int k;			/* classes */
	struct attack **slot;	/* max attacks, owned */
	enum attack_op *op;	/* max: what each slot does */
	int *in_batch;		/* max: the slots of this step, in row order */
	float *x;		/* (max, n): the x_adv gathered for the forward */
	float *dout;		/* (max, k): dLoss/doutput, row by row */
	float *dx;		/* (max, n): dLoss/dpixels from the backward */
};

enum status attack_batch_new(struct net *net, int max,
			     struct attack_batch **out, char *err)
{
	const struct net_info *in = net_get_info(net);
	struct attack_batch *b;
	enum status st = ST_OK;
	int s;

	*out = NULL;
	if (max < 1 || max > in->max_batch)
		return status_set(err, ST_ERR_ARG,
				  "a batch of %d attacks needs a net created for at least "
				  "that many images (it has max_batch %d)", max, in->max_batch);
	b = calloc(1, sizeof *b);
	if (!b)
		return status_set(err, ST_ERR_NOMEM, "out of memory for the attack batch");
	b->net = net;
	b->max = max;
	b->n = (size_t)in->in_c * in->in_h * in->in_w;
	b->k = in->n_classes;
	b->slot = calloc((size_t)max, sizeof *b->slot);
	b->op = calloc((size_t)max, sizeof *b->op);
	b->in_batch = calloc((size_t)max, sizeof *b->in_batch);
	b->x = malloc(sizeof(float) * b->n * (size_t)max);
	b->dout = malloc(sizeof(float) * (size_t)b->k * (size_t)max);
	b->dx = malloc(sizeof(float) * b->n * (size_t)max);
	if (!b->slot || !b->op || !b->in_batch || !b->x || !b->dout || !b->dx) {
		attack_batch_free(b);
		return status_set(err, ST_ERR_NOMEM,
				  "out of memory for a batch of %d attacks", max);
	}
	for (s = 0; s < max && st == ST_OK; s++)
		st = attack_new(net, &b->slot[s], err);
	if (st != ST_OK) {
		attack_batch_free(b);
		return st;
	}
	*out = b;
	return ST_OK;
}

void attack_batch_free(struct attack_batch *b)
{
	int s;

	if (!b)
		return;
	for (s = 0; b->slot && s < b->max; s++)
		attack_free(b->slot[s]);
	free(b->slot);
	free(b->op);
	free(b->in_batch);
	free(b->x);
	free(b->dout);
	free(b->dx);
	free(b);
}

int attack_batch_max(const struct attack_batch *b)
{
	return b->max;
}

struct attack *attack_batch_attack(struct attack_batch *b, int s)
{
	return s >= 0 && s < b->max ? b->slot[s] : NULL;
}

enum status attack_batch_set_op(struct attack_batch *b, int s,
				enum attack_op op, char *err)
{
	if (s < 0 || s >= b->max)
		return status_set(err, ST_ERR_ARG, "slot %d of a batch of %d", s, b->max);
	if (op != ATTACK_OP_NONE && op != ATTACK_OP_STEP && op != ATTACK_OP_EVALUATE)
		return status_set(err, ST_ERR_ARG, "unknown slot operation %d", (int)op);
	if (op != ATTACK_OP_NONE && !b->slot[s]->ready)
		return status_set(err, ST_ERR_ARG,
				  "slot %d has no image yet: reset its attack first", s);
	b->op[s] = op;
	return ST_OK;
}

enum attack_op attack_batch_op(const struct attack_batch *b, int s)
{
	return s >= 0 && s < b->max ? b->op[s] : ATTACK_OP_NONE;
}

/* The x_adv of the busy slots, row by row; returns how many. */
static int batch_gather(struct attack_batch *b, struct attack_report *reps)
{
	int s, m = 0;

	for (s = 0; s < b->max; s++) {
		if (b->op[s] == ATTACK_OP_NONE)
			continue;
		report_begin(&reps[s]);
		memcpy(b->x + (size_t)m * b->n, b->slot[s]->x_adv, sizeof(float) * b->n);
		b->in_batch[m++] = s;
	}
	return m;
}

int attack_batch_step(struct attack_batch *b, struct attack_report *reps)
{
	double t0 = clock_ms(), ms;
	const float *z;
	int m = batch_gather(b, reps), j;

	if (!m)
		return 0;
	z = net_forward(b->net, b->x, m);
	for (j = 0; j < m; j++) {
		struct attack *a = b->slot[b->in_batch[j]];

		eval_output(a, z + (size_t)j * b->k, &reps[b->in_batch[j]]);
		memcpy(b->dout + (size_t)j * b->k, a->dout, sizeof(float) * (size_t)b->k);
	}
	net_backward(b->net, b->dout, b->dx);
	for (j = 0; j < m; j++) {
		int s = b->in_batch[j];
		struct attack *a = b->slot[s];

		memcpy(a->grad, b->dx + (size_t)j * b->n, sizeof(float) * b->n);
		eval_grad(a, net_grad_norms_image(b->net, j), &reps[s]);
		if (b->op[s] == ATTACK_OP_STEP)
			step_end(a, &reps[s]);
		else
			evaluate_end(a, &reps[s]);
	}
	ms = (clock_ms() - t0) / m;
	for (j = 0; j < m; j++)
		reps[b->in_batch[j]].step_ms = ms;
	return m;
}
