/* attack.c - the attack engine, one iteration at a time (see attack.h),
 * and the update of the gradient kinds FGSM, BIM, PGD and MI-FGSM. APGD
 * and Square live in attack_apgd.c and attack_square.c behind the method
 * table of attack_impl.h.
 *
 * A step is: forward, the kind's objective, backward (when the kind needs
 * a gradient), statistics and diagnosis, the best point, then the kind's
 * update, the projection and the 8-bit grid when asked. All of it runs on
 * buffers sized in attack_new, because an interactive explorer steps
 * thousands of times.
 */
#define _POSIX_C_SOURCE 200809L
#include "attack.h"
#include "attack_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "rng.h"


static const struct attack_method *method_of(enum attack_kind k);

static const char *const kind_names[ATTACK_N_KINDS] = {
	[ATTACK_FGSM] = "fgsm",
	[ATTACK_BIM] = "bim",
	[ATTACK_PGD] = "pgd",
	[ATTACK_MIFGSM] = "mifgsm",
	[ATTACK_APGD_CE] = "apgd-ce",
	[ATTACK_APGD_DLR] = "apgd-dlr",
	[ATTACK_SQUARE] = "square",
	[ATTACK_DEEPFOOL] = "deepfool",
	[ATTACK_CW] = "cw",
};

const char *attack_kind_name(enum attack_kind k)
{
	return (unsigned)k < ATTACK_N_KINDS ? kind_names[k] : "?";
}

const char *attack_norm_name(enum attack_norm n)
{
	return n == ATTACK_LINF ? "linf" : n == ATTACK_L2 ? "l2" : "?";
}

const char *attack_objective_name(const struct attack_params *p)
{
	switch (p->kind) {
	case ATTACK_APGD_CE: return "ce";
	case ATTACK_APGD_DLR: return p->target >= 0 ? "dlr-targeted" : "dlr";
	case ATTACK_SQUARE: return p->target >= 0 ? "ce" : "margin";
	case ATTACK_DEEPFOOL: return "margin";
	case ATTACK_CW: return "cw";
	default: return loss_mode_name(p->loss.mode);
	}
}

int attack_uses_loss(enum attack_kind k)
{
	return k == ATTACK_FGSM || k == ATTACK_BIM || k == ATTACK_PGD || k == ATTACK_MIFGSM;
}

int attack_uses_alpha(enum attack_kind k)
{
	return k == ATTACK_BIM || k == ATTACK_PGD || k == ATTACK_MIFGSM;
}

int attack_uses_eps(enum attack_kind k)
{
	return k != ATTACK_DEEPFOOL && k != ATTACK_CW;
}

const char *attack_iters_name(enum attack_kind k)
{
	switch (k) {
	case ATTACK_SQUARE: return "queries";
	case ATTACK_CW: return "Adam steps";
	case ATTACK_DEEPFOOL: return "max iters";
	default: return "iters";
	}
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
			  "unknown attack '%s': use fgsm, bim, pgd, mifgsm, apgd-ce, "
			  "apgd-dlr, square, deepfool or cw",
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
	p.restarts = 1;
	p.binary_steps = 9;
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
	if (p->kind != ATTACK_FGSM && p->kind < ATTACK_APGD_CE &&
	    !(p->alpha > 0.0 && p->alpha <= p->eps))
		return status_set(err, ST_ERR_ARG,
				  p->alpha > p->eps ?
				  "step size alpha %g is larger than epsilon %g: every step would "
				  "overshoot the eps-ball and be projected back; use alpha <= epsilon" :
				  "step size alpha %g is out of range: it must be in (0, epsilon %g]",
				  p->alpha, p->eps);
	if (p->iters < 1)
		return status_set(err, ST_ERR_ARG,
				  "iterations %d: an attack needs at least 1", p->iters);
	if (p->restarts < 1 || p->restarts > 1000000)
		return status_set(err, ST_ERR_ARG,
				  "restarts %d: give 1 to 1000000", p->restarts);
	if (p->kind == ATTACK_CW && (p->binary_steps < 1 || p->binary_steps > 1000))
		return status_set(err, ST_ERR_ARG,
				  "binary steps %d: give 1 to 1000", p->binary_steps);
	if (p->kind == ATTACK_CW && p->norm != ATTACK_L2)
		return status_set(err, ST_ERR_ARG,
				  "cw is the Carlini-Wagner L2 attack: use --norm l2");
	if (p->kind == ATTACK_DEEPFOOL && p->target >= 0)
		return status_set(err, ST_ERR_ARG,
				  "deepfool is untargeted: it moves to the nearest class");
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
	int i, nomem = 0;

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
	a->x_best = calloc(n, sizeof(float));
	for (i = 0; i < ATTACK_N_WORK; i++)
		if (!(a->work[i] = calloc(n, sizeof(float))))
			nomem = 1;
	a->c = in->in_c;
	a->h = in->in_h;
	a->w = in->in_w;
	a->grad = calloc(n, sizeof(float));
	a->acc = calloc(n, sizeof(float));
	a->out = calloc(k, sizeof(float));
	a->probs = calloc(k, sizeof(float));
	a->dout = calloc(k, sizeof(float));
	a->p = attack_params_default();
	a->label = -1;
	a->m = method_of(ATTACK_PGD);
	if (nomem || !a->x0 || !a->x_adv || !a->x_best || !a->grad || !a->acc ||
	    !a->out || !a->probs || !a->dout) {
		attack_free(a);
		return status_set(err, ST_ERR_NOMEM,
				  "out of memory for the attack buffers (%zu pixels)", n);
	}
	*out = a;
	return ST_OK;
}

void attack_free(struct attack *a)
{
	int i;

	if (!a)
		return;
	for (i = 0; i < ATTACK_N_WORK; i++)
		free(a->work[i]);
	free(a->x_best);
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

float attack_clamp01(float v)
{
	return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
}

static void project_linf(struct attack *a, float *x)
{
	float eps = (float)a->p.eps;
	const float *x0 = a->x0;
	size_t i;

	for (i = 0; i < a->n; i++) {
		float v = x[i];

		v = v < x0[i] - eps ? x0[i] - eps : v > x0[i] + eps ? x0[i] + eps : v;
		x[i] = attack_clamp01(v);
	}
}

/* Rescale x - x0 onto the L2 ball, then clip to [0,1]: the clip only moves
 * components toward x0 (x0 is in [0,1]), so it cannot leave the ball. */
static void project_l2(struct attack *a, float *x)
{
	const float *x0 = a->x0;
	double l2, s;
	size_t i;

	diag_perturbation(x, x0, a->n, NULL, &l2);
	s = l2 > a->p.eps ? a->p.eps / l2 : 1.0;
	for (i = 0; i < a->n; i++) {
		if (s < 1.0)
			x[i] = x0[i] + (float)(s * ((double)x[i] - x0[i]));
		x[i] = attack_clamp01(x[i]);
	}
}

void attack_project_l2_aa(struct attack *a, float *x)
{
	const float *x0 = a->x0;
	double l2 = 0.0, s;
	size_t i;

	for (i = 0; i < a->n; i++) {
		double d = (double)x[i] - x0[i];

		l2 += d * d;
	}
	l2 = sqrt(l2);
	s = (l2 < a->p.eps ? l2 : a->p.eps) / (l2 + 1e-12);
	for (i = 0; i < a->n; i++)
		x[i] = attack_clamp01((float)(x0[i] + s * ((double)x[i] - x0[i])));
}

/* Onto the eps-ball around x0, then onto [0,1]. */
void attack_project(struct attack *a, float *x)
{
	if (a->p.norm == ATTACK_LINF)
		project_linf(a, x);
	else
		project_l2(a, x);
}

static double grid_round(double v)
{
	return nearbyint(v * 255.0) / 255.0;
}

float attack_quantize_linf(float v, float x0, double eps)
{
	double lo = ceil(255.0 * fmax(0.0, (double)x0 - eps) - 1e-9) / 255.0;
	double hi = floor(255.0 * fmin(1.0, (double)x0 + eps) + 1e-9) / 255.0;
	double q = grid_round(v);

	if (lo > hi)	/* no grid point in the ball: stay at the clean pixel */
		return x0;
	return (float)(q < lo ? lo : q > hi ? hi : q);
}

/* --quantize: x onto the 8-bit grid, inside the ball (attack.h's rule).
 * The slack 1e-9 in attack_quantize_linf keeps a grid point that eps
 * reaches exactly (8/255 from an 8-bit x0) from being lost to rounding. */
static void quantize(struct attack *a, float *x)
{
	const float *x0 = a->x0;
	/* a minimal-perturbation attack has no ball: only the grid */
	double l2 = 0.0, eps = a->m->minimal ? INFINITY : a->p.eps;
	size_t i;

	if (a->p.norm == ATTACK_LINF) {
		for (i = 0; i < a->n; i++)
			x[i] = attack_quantize_linf(x[i], x0[i], eps);
		return;
	}
	for (i = 0; i < a->n; i++) {
		double q = grid_round(x[i]) - x0[i];

		l2 += q * q;
	}
	if (sqrt(l2) <= eps) {
		for (i = 0; i < a->n; i++)
			x[i] = (float)grid_round(x[i]);
		return;
	}
	for (i = 0; i < a->n; i++) {
		double d = (double)x[i] - x0[i];
		/* the grid point between x0 and x nearest x (x0 on the grid);
		 * x0 itself when there is none */
		double t = (d >= 0.0 ? floor(255.0 * x[i] + 1e-9) : ceil(255.0 * x[i] - 1e-9)) / 255.0;

		x[i] = (d >= 0.0 ? t >= x0[i] : t <= x0[i]) ? (float)t : x0[i];
	}
}

/* x_adv = a uniform point of the eps-ball around x0, clipped to [0,1]. */
static void random_start(struct attack *a)
{
	double eps = a->p.eps, nrm = 0.0, r;
	size_t i;

	if (a->p.norm == ATTACK_LINF) {
		for (i = 0; i < a->n; i++)
			a->x_adv[i] = attack_clamp01(a->x0[i] +
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
		a->x_adv[i] = attack_clamp01(a->x0[i] + (float)(r * a->grad[i] / nrm));
		a->grad[i] = 0.0f;
	}
}

/* ---- evaluation ---------------------------------------------------------- */

/* The label an untargeted attack moves away from: given, or else the
 * prediction at x0 (one forward, once). */
static void resolve_label(struct attack *a)
{
	if (a->p.true_label >= 0)
		a->label = a->p.true_label;
	else if (a->label < 0 && (a->p.target < 0 || a->p.kind == ATTACK_APGD_DLR))
		/* targeted DLR is about the true label too */
		a->label = loss_argmax(a->k, net_forward(a->net, a->x0, 1));
}


/* The loss part of an evaluation at x_adv from the model's output row z
 * (k values): rep's loss, prediction and success, and dLoss/doutput in
 * a->dout for the backward. */
static void eval_output(struct attack *a, const float *x, const float *z,
			struct attack_report *rep)
{
	int untargeted = a->p.target < 0;
	int cls = untargeted ? a->label : a->p.target;

	memcpy(a->out, z, sizeof(float) * (size_t)a->k);
	rep->iter = a->iter;
	rep->cls = cls;
	/* loss_eval always: the probabilities and loss_info of the report
	 * and the diagnosis; a kind's own objective then replaces the loss
	 * and its gradient */
	a->loss_used = a->p.loss;
	if (a->m->objective)
		a->loss_used.mode = a->m->report_mode(a);
	rep->loss = loss_eval(&a->loss_used, a->k, a->out, a->out_is_probs, cls,
			      untargeted, a->probs, a->dout, &rep->loss_info);
	if (a->m->objective)
		rep->loss = a->m->objective(a, x, a->out, a->dout);
	rep->queries = ++a->queries;
	rep->logits = a->out;
	rep->probs = a->probs;
	rep->pred = loss_argmax(a->k, a->out);
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
	di.loss = &a->loss_used;
	di.li = &rep->loss_info;
	di.loss_value = rep->loss;
	di.classes = in->classes;
	di.grad = &rep->grad;
	di.net = a->net;
	diag_explain_image(&di, layer_norms, a->diag, sizeof a->diag);
	rep->diagnosis = a->diag;
	rep->updated = 0;
	rep->has_grad = 1;
}

/* The objective the best point maximises: the loss the kind ascends. */
static double best_score(const struct attack *a, double loss)
{
	double s = a->m->ascends ? loss : a->m->descends ? -loss :
		   a->p.target >= 0 ? -loss : loss;

	return isnan(s) ? -INFINITY : s;
}

/* Keep x (just evaluated into rep) when it beats the best point so far:
 * success first, then the objective. Fills rep's best_* fields. */
static void track_best(struct attack *a, const float *x,
		       struct attack_report *rep)
{
	double score = best_score(a, rep->loss), linf, l2;

	diag_perturbation(x, a->x0, a->n, &linf, &l2);
	/* a minimal attack's successes rank by their perturbation */
	if (a->m->minimal && rep->success)
		score = -(a->p.norm == ATTACK_L2 ? l2 : linf);
	if (!a->has_best || rep->success > a->best_success ||
	    (rep->success == a->best_success && score > a->best_score)) {
		if (x != a->x_best)
			memcpy(a->x_best, x, sizeof(float) * a->n);
		a->has_best = 1;
		a->best_success = rep->success;
		a->best_score = score;
		a->best_loss = rep->loss;
		a->best_iter = rep->iter;
		a->best_linf = linf;
		a->best_l2 = l2;
	}
	rep->best_loss = a->best_loss;
	rep->best_success = a->best_success;
	rep->best_iter = a->best_iter;
	rep->best_pert_linf = a->best_linf;
	rep->best_pert_l2 = a->best_l2;
}

/* No gradient this step (Square): the report says so. */
static void eval_no_grad(struct attack_report *rep)
{
	memset(&rep->grad, 0, sizeof rep->grad);
	rep->layer_norms = NULL;
	rep->diagnosis = "";
	rep->updated = 0;
	rep->has_grad = 0;
}

static int step_needs_grad(const struct attack *a)
{
	return !a->m->needs_grad || a->m->needs_grad(a);
}

/* Forward (and backward when need_grad) of x, x_adv or x_best. */
static void evaluate(struct attack *a, const float *x, int need_grad,
		     struct attack_report *rep)
{
	eval_output(a, x, net_forward(a->net, x, 1), rep);
	if (need_grad) {
		net_backward(a->net, a->dout, a->grad);
		eval_grad(a, net_grad_norms_image(a->net, 0), rep);
	} else {
		eval_no_grad(rep);
	}
	track_best(a, x, rep);
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

double attack_l2(const float *v, size_t n)
{
	return norm_of(v, n, 0);
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

static int classic_update(struct attack *a, const struct attack_report *rep)
{
	/* a targeted attack descends its loss; an untargeted one ascends */
	double sgn = a->p.target >= 0 ? -1.0 : 1.0;
	double step = a->p.kind == ATTACK_FGSM ? a->p.eps : a->p.alpha;

	(void)rep;
	if (a->p.kind == ATTACK_MIFGSM) {
		accumulate(a, sgn);
		move(a, a->acc, 1.0, step);
	} else {
		move(a, a->grad, sgn, step);
	}
	attack_project(a, a->x_adv);
	return 1;
}

static int classic_total_iters(const struct attack *a)
{
	return a->p.kind == ATTACK_FGSM ? 1 : a->p.iters;
}

static void classic_reset(struct attack *a, int fresh)
{
	if (fresh && (a->p.kind == ATTACK_PGD || (a->p.random_start && a->p.kind != ATTACK_FGSM)))
		random_start(a);
}

/* FGSM, BIM, PGD and MI-FGSM: the loss of p.loss, the last iterate. */
static const struct attack_method classic_method = {
	.reset = classic_reset,
	.update = classic_update,
	.total_iters = classic_total_iters,
};

static const struct attack_method *method_of(enum attack_kind k)
{
	switch (k) {
	case ATTACK_APGD_CE:
	case ATTACK_APGD_DLR:
		return &attack_apgd_method;
	case ATTACK_SQUARE:
		return &attack_square_method;
	case ATTACK_DEEPFOOL:
		return &attack_deepfool_method;
	case ATTACK_CW:
		return &attack_cw_method;
	default:
		return &classic_method;
	}
}

static int can_update(const struct attack *a)
{
	return !a->stopped && a->iter < a->m->total_iters(a);
}

/* A kind that returns its best point must also have evaluated its last
 * iterate: then the step after the last update evaluates it (without an
 * update) and only that step finishes. */
int attack_finished(const struct attack *a)
{
	return a->stopped || (a->iter >= a->m->total_iters(a) &&
			      (!a->m->returns_best || a->evaluated == a->iter));
}

static void report_begin(struct attack_report *rep)
{
	memset(rep, 0, sizeof *rep);
	rep->diagnosis = "";
}

/* The report's tail once rep holds the evaluation at x (and the update,
 * if any, is done): finished, perturbation of x; not its time. */
static void evaluate_end(struct attack *a, const float *x,
			 struct attack_report *rep)
{
	rep->finished = attack_finished(a);
	diag_perturbation(x, a->x0, a->n, &rep->pert_linf, &rep->pert_l2);
}

/* The rest of a step: the early stop, the kind's update, the 8-bit grid,
 * the report's tail. */
static void step_end(struct attack *a, struct attack_report *rep)
{
	a->evaluated = a->iter;
	if (a->p.early_stop && rep->success)
		a->stopped = 1;
	if (can_update(a)) {
		if (a->m->update(a, rep)) {
			if (a->p.quantize)
				quantize(a, a->x_adv);
			a->iter++;
			rep->updated = 1;
		} else {
			a->stopped = 1;
		}
	}
	evaluate_end(a, a->x_adv, rep);
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
	if (a->m->prepare && can_update(a)) {
		a->m->prepare(a);
		a->queries++;
	}
	evaluate(a, a->x_adv, step_needs_grad(a), rep);
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
	evaluate(a, attack_x_result(a), 1, rep);
	evaluate_end(a, attack_x_result(a), rep);
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

/* DLR divides by gaps between sorted outputs: the third (targeted: the
 * fourth) largest must exist. */
static enum status check_kind_classes(const struct attack_params *p, int k,
				      char *err)
{
	int need = p->kind == ATTACK_APGD_DLR ? (p->target >= 0 ? 4 : 3) : 2;

	if (k < need)
		return status_set(err, ST_ERR_ARG,
				  "apgd-dlr needs a model with at least %d classes (%s); "
				  "this one has %d: use apgd-ce", need,
				  p->target >= 0 ? "targeted" : "untargeted", k);
	return ST_OK;
}

enum status attack_reset(struct attack *a, const float *x0,
			 const struct attack_params *p, char *err)
{
	enum status st;

	if ((st = attack_params_check(p, a->k, err)) != ST_OK ||
	    (st = check_kind_classes(p, a->k, err)) != ST_OK ||
	    (st = check_image(x0, a->n, err)) != ST_OK)
		return st;
	a->p = *p;
	a->m = method_of(p->kind);
	memcpy(a->x0, x0, sizeof(float) * a->n);
	memcpy(a->x_adv, x0, sizeof(float) * a->n);
	memset(a->acc, 0, sizeof(float) * a->n);
	memset(a->grad, 0, sizeof(float) * a->n);
	a->iter = 0;
	a->stopped = 0;
	a->label = -1;
	a->queries = 0;
	a->evaluated = -1;
	a->has_best = 0;
	memcpy(a->x_best, x0, sizeof(float) * a->n);
	resolve_label(a);
	rng_seed(&a->rng, p->seed);
	a->m->reset(a, 1);
	if (p->quantize)
		quantize(a, a->x_adv);
	a->ready = 1;
	return ST_OK;
}

enum status attack_set_params(struct attack *a, const struct attack_params *p,
			      char *err)
{
	enum status st;

	if (!a->ready)
		return status_set(err, ST_ERR_ARG, "the attack has no image yet: reset it first");
	if ((st = attack_params_check(p, a->k, err)) != ST_OK ||
	    (st = check_kind_classes(p, a->k, err)) != ST_OK)
		return st;
	/* the accumulated direction belongs to the old objective */
	if (p->kind != a->p.kind || p->target != a->p.target ||
	    p->loss.mode != a->p.loss.mode)
		memset(a->acc, 0, sizeof(float) * a->n);
	if (p->true_label != a->p.true_label)
		a->label = -1;
	a->p = *p;
	a->m = method_of(p->kind);
	resolve_label(a);
	attack_project(a, a->x_adv);
	if (p->quantize)
		quantize(a, a->x_adv);
	/* the best point was judged by the old objective and ball; APGD's
	 * schedule and Square's accepted point start over here */
	a->has_best = 0;
	a->evaluated = -1;
	memcpy(a->x_best, a->x_adv, sizeof(float) * a->n);
	a->m->reset(a, 0);
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

const float *attack_x_best(const struct attack *a)
{
	return a->x_best;
}

const float *attack_x_result(const struct attack *a)
{
	return a->m->returns_best && a->has_best ? a->x_best : a->x_adv;
}

long attack_queries(const struct attack *a)
{
	return a->queries;
}

int attack_returns_best(const struct attack *a)
{
	return a->m->returns_best;
}

uint64_t attack_restart_seed(uint64_t seed, int r)
{
	return seed + (uint64_t)r * 0x9e3779b97f4a7c15ull;
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
		struct attack *a = b->slot[s];

		if (b->op[s] == ATTACK_OP_NONE)
			continue;
		report_begin(&reps[s]);
		memcpy(b->x + (size_t)m * b->n, b->op[s] == ATTACK_OP_STEP ? a->x_adv :
		       attack_x_result(a), sizeof(float) * b->n);
		b->in_batch[m++] = s;
	}
	return m;
}

/* Whether slot s takes a gradient in this batch step: an evaluation always
 * (the end point's diagnosis), a step when its kind needs one. */
static int slot_needs_grad(const struct attack_batch *b, int s)
{
	return b->op[s] == ATTACK_OP_EVALUATE || step_needs_grad(b->slot[s]);
}

int attack_batch_step(struct attack_batch *b, struct attack_report *reps)
{
	double t0 = clock_ms(), ms;
	const float *z;
	int m = batch_gather(b, reps), j, any_grad = 0;

	if (!m)
		return 0;
	/* the kinds that run the net themselves do it now, before the batch's
	 * forward and backward fill it with every slot's data */
	for (j = 0; j < m; j++) {
		struct attack *a = b->slot[b->in_batch[j]];

		if (b->op[b->in_batch[j]] == ATTACK_OP_STEP && a->m->prepare && can_update(a)) {
			a->m->prepare(a);
			a->queries++;
		}
	}
	z = net_forward(b->net, b->x, m);
	for (j = 0; j < m; j++) {
		int s = b->in_batch[j], g = slot_needs_grad(b, s);
		struct attack *a = b->slot[s];

		eval_output(a, b->x + (size_t)j * b->n, z + (size_t)j * b->k, &reps[s]);
		track_best(a, b->x + (size_t)j * b->n, &reps[s]);
		/* a row that wants no gradient sends none back: its dx row
		 * is then zero and unused */
		if (g)
			memcpy(b->dout + (size_t)j * b->k, a->dout, sizeof(float) * (size_t)b->k);
		else
			memset(b->dout + (size_t)j * b->k, 0, sizeof(float) * (size_t)b->k);
		any_grad |= g;
	}
	if (any_grad)
		net_backward(b->net, b->dout, b->dx);
	for (j = 0; j < m; j++) {
		int s = b->in_batch[j];
		struct attack *a = b->slot[s];

		if (any_grad && slot_needs_grad(b, s)) {
			memcpy(a->grad, b->dx + (size_t)j * b->n, sizeof(float) * b->n);
			eval_grad(a, net_grad_norms_image(b->net, j), &reps[s]);
		} else {
			eval_no_grad(&reps[s]);
		}
		if (b->op[s] == ATTACK_OP_STEP)
			step_end(a, &reps[s]);
		else
			evaluate_end(a, b->x + (size_t)j * b->n, &reps[s]);
	}
	ms = (clock_ms() - t0) / m;
	for (j = 0; j < m; j++)
		reps[b->in_batch[j]].step_ms = ms;
	return m;
}
