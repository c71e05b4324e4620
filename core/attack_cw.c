/* attack_cw.c - Carlini & Wagner's L2 attack (2017, "Towards evaluating
 * the robustness of neural networks"), behind the method table of
 * attack_impl.h.
 *
 * x = (tanh(w) + 1) / 2 keeps every pixel in [0,1]; w starts at
 * atanh((2 x0 - 1) * 0.999999). Each binary step minimises
 * ||x - x0||_2^2 + c f(x) with iters steps of Adam (lr 0.01, betas 0.9,
 * 0.999, epsilon 1e-8) from that start, f the margin of the logits
 * max(z_y - max_{i!=y} z_i, -kappa) (targeted: max(max_{i!=t} z_i - z_t,
 * -kappa)), kappa = --kappa. Between binary steps c moves as in the
 * authors' code: after a binary step with a successful iterate hi = c,
 * else lo = c; then c = (lo + hi) / 2 when hi is set, else c * 10; c
 * starts at 1e-3. No early abort within a binary step. A success is a
 * misclassified iterate (targeted: the target predicted), whatever kappa;
 * the result is the successful iterate with the smallest L2 perturbation
 * over every binary step (the engine's best point of a minimal attack).
 * eps does not bound it.
 *
 * w, and Adam's m and v, live in float buffers (work[]); the arithmetic on
 * them is double.
 */
#include <math.h>
#include <string.h>

#include "attack_impl.h"

#define CW_LR 0.01
#define CW_BETA1 0.9
#define CW_BETA2 0.999
#define CW_ADAM_EPS 1e-8
#define CW_C0 1e-3

enum { W_W, W_M, W_V };	/* work[] buffers */

/* x = (tanh(w) + 1) / 2 into x_adv. */
static void x_of_w(struct attack *a)
{
	size_t i;

	for (i = 0; i < a->n; i++)
		a->x_adv[i] = (float)(0.5 * (tanh((double)a->work[W_W][i]) + 1.0));
}

/* A binary step's start: w at x0, Adam's moments zero. */
static void binary_start(struct attack *a)
{
	struct attack_cw *s = &a->st.cw;
	size_t i;

	for (i = 0; i < a->n; i++)
		a->work[W_W][i] = (float)atanh((2.0 * a->x0[i] - 1.0) * 0.999999);
	memset(a->work[W_M], 0, sizeof(float) * a->n);
	memset(a->work[W_V], 0, sizeof(float) * a->n);
	s->t = 0;
	s->found = 0;
	x_of_w(a);
}

static void cw_reset(struct attack *a, int fresh)
{
	struct attack_cw *s = &a->st.cw;

	s->c = CW_C0;
	s->lo = 0.0;
	s->hi = -1.0;		/* not set */
	s->bstep = 0;
	if (fresh) {
		binary_start(a);
	} else {	/* go on from x_adv */
		size_t i;

		for (i = 0; i < a->n; i++)
			a->work[W_W][i] = (float)atanh((2.0 * a->x_adv[i] - 1.0) * 0.999999);
		memset(a->work[W_M], 0, sizeof(float) * a->n);
		memset(a->work[W_V], 0, sizeof(float) * a->n);
		s->t = 0;
		s->found = 0;
	}
}

/* ||x - x0||^2 + c f(z); dout = c df/dz (the distance's gradient is added
 * in the update, in pixel space). */
static double cw_objective(struct attack *a, const float *x, const float *z,
			   float *dout)
{
	const struct attack_cw *s = &a->st.cw;
	int t = a->p.target, y = t >= 0 ? t : a->label, o = -1, i;
	double d2 = 0.0, m, kappa = a->p.loss.kappa;
	size_t j;

	for (i = 0; i < a->k; i++) {
		dout[i] = 0.0f;
		if (i != y && (o < 0 || z[i] > z[o]))
			o = i;
	}
	/* untargeted: z_y - z_o; targeted: z_o - z_t */
	m = t >= 0 ? (double)z[o] - z[y] : (double)z[y] - z[o];
	if (m > -kappa) {
		dout[y] = (float)(t >= 0 ? -s->c : s->c);
		dout[o] = (float)(t >= 0 ? s->c : -s->c);
	} else {
		m = -kappa;
	}
	for (j = 0; j < a->n; j++) {
		double d = (double)x[j] - a->x0[j];

		d2 += d * d;
	}
	return d2 + s->c * m;
}

static enum loss_mode cw_report_mode(const struct attack *a)
{
	(void)a;
	return LOSS_CW;
}

static void adam_step(struct attack *a)
{
	struct attack_cw *s = &a->st.cw;
	float *w = a->work[W_W], *m = a->work[W_M], *v = a->work[W_V];
	double b1t, b2t;
	size_t i;

	s->t++;
	b1t = 1.0 - pow(CW_BETA1, s->t);
	b2t = 1.0 - pow(CW_BETA2, s->t);
	for (i = 0; i < a->n; i++) {
		double th = tanh((double)w[i]), x = 0.5 * (th + 1.0);
		double gx = 2.0 * (x - a->x0[i]) + (isfinite(a->grad[i]) ? a->grad[i] : 0.0);
		double g = gx * 0.5 * (1.0 - th * th);
		double mi = CW_BETA1 * m[i] + (1.0 - CW_BETA1) * g;
		double vi = CW_BETA2 * v[i] + (1.0 - CW_BETA2) * g * g;

		m[i] = (float)mi;
		v[i] = (float)vi;
		w[i] = (float)(w[i] - CW_LR * (mi / b1t) / (sqrt(vi / b2t) + CW_ADAM_EPS));
	}
	x_of_w(a);
}

static int cw_update(struct attack *a, const struct attack_report *rep)
{
	struct attack_cw *s = &a->st.cw;

	s->found |= rep->success;
	if (s->t < a->p.iters) {
		adam_step(a);
		return 1;
	}
	/* the binary step is over: the next constant, the start again */
	if (s->found)
		s->hi = s->hi < 0.0 ? s->c : fmin(s->hi, s->c);
	else
		s->lo = fmax(s->lo, s->c);
	s->c = s->hi >= 0.0 ? 0.5 * (s->lo + s->hi) : s->c * 10.0;
	s->bstep++;
	binary_start(a);
	return 1;
}

/* iters Adam steps per binary step, and one update more between two
 * binary steps (back to the start). */
static int cw_total_iters(const struct attack *a)
{
	return a->p.binary_steps * a->p.iters + a->p.binary_steps - 1;
}

const struct attack_method attack_cw_method = {
	.reset = cw_reset,
	.objective = cw_objective,
	.report_mode = cw_report_mode,
	.update = cw_update,
	.total_iters = cw_total_iters,
	.descends = 1,
	.returns_best = 1,
	.minimal = 1,
};
