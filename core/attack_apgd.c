/* attack_apgd.c - APGD-CE and APGD-DLR (Croce & Hein 2020, "Reliable
 * evaluation of adversarial robustness with an ensemble of diverse
 * parameter-free attacks", Algorithm 1), Linf and L2, behind the method
 * table of attack_impl.h.
 *
 * Per restart: a random start x_0 (Linf: x0 + eps * t / max|t|, t uniform
 * in [-1,1]; L2: x0 + eps * t / ||t||, t Gaussian; clipped to [0,1]), then
 * iters moves z = P(x_k + eta * s(grad)), x_{k+1} = P(x_k + a (z - x_k) +
 * (1 - a)(x_k - x_{k-1})) with a = 1 for the first move and 0.75 after
 * (s = sign for Linf, grad / (||grad|| + 1e-12) for L2; P the projection
 * onto the ball and [0,1], written for L2 as AutoAttack writes it), eta =
 * 2 eps at first. At the checkpoints - every 0.22 N iterations at first,
 * each segment 0.03 N shorter down to 0.06 N (integers, at least 1, as
 * AutoAttack: p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)) - eta is
 * halved and the iterate goes back to the best point (with its gradient)
 * when the loss rose in at most 75% of the segment's iterations, or when
 * the last checkpoint did not halve and the best loss has not grown since.
 *
 * One departure from AutoAttack's code, following the paper: the first
 * segment's count compares the first iterate's loss with the start's
 * (AutoAttack's code compares it with a zero from an unfilled array).
 *
 * The losses, all maximised (the report's loss is this one):
 *   ce          CE(z, y); targeted: -CE(z, t) (see ce_exact: its gradient
 *               without the cancellation of p_y - 1 on a confident model;
 *               AutoAttack's autograd has it)
 *   dlr         -(z_y - max_{i!=y} z_i) / (z_pi1 - z_pi3 + 1e-12)
 *   dlr, target -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12)
 * with pi the outputs sorted in decreasing order and y the true label.
 *
 * Restarts: restart r starts from attack_restart_seed(seed, r); an attack
 * that has succeeded makes no further restart (AutoAttack restarts only
 * the points still classified correctly).
 */
#include <math.h>
#include <string.h>

#include "attack_impl.h"
#include "loss.h"
#include "rng.h"

enum { W_OLD, W_BEST, W_GRAD_BEST, W_Z };	/* work[] buffers */

/* ---- the losses -------------------------------------------------------- */

/* Indices of the four largest of z (k >= 2; missing ones -1), in
 * decreasing order; ties go to the lower index. */
static void top4(const float *z, int k, int top[4])
{
	int i, j;

	top[0] = top[1] = top[2] = top[3] = -1;
	for (i = 0; i < k; i++)
		for (j = 0; j < 4; j++)
			if (top[j] < 0 || z[i] > z[top[j]]) {
				memmove(top + j + 1, top + j, sizeof *top * (size_t)(3 - j));
				top[j] = i;
				break;
			}
}

static double dlr(const struct attack *a, const float *z, float *dout)
{
	int top[4], y = a->st.apgd.label, t = a->p.target, i;
	double num, den;

	top4(z, a->k, top);
	for (i = 0; i < a->k; i++)
		dout[i] = 0.0f;
	if (t < 0) {
		int other = top[0] == y ? top[1] : top[0];

		num = (double)z[y] - z[other];
		den = (double)z[top[0]] - z[top[2]] + 1e-12;
		dout[y] += (float)(-1.0 / den);
		dout[other] += (float)(1.0 / den);
		dout[top[0]] += (float)(num / (den * den));
		dout[top[2]] += (float)(-num / (den * den));
	} else {
		num = (double)z[y] - z[t];
		den = (double)z[top[0]] - 0.5 * ((double)z[top[2]] + z[top[3]]) + 1e-12;
		dout[y] += (float)(-1.0 / den);
		dout[t] += (float)(1.0 / den);
		dout[top[0]] += (float)(num / (den * den));
		dout[top[2]] += (float)(-0.5 * num / (den * den));
		dout[top[3]] += (float)(-0.5 * num / (den * den));
	}
	return -num / den;
}

/* CE(z, c) and its gradient without cancellation: when c is the top
 * output, p_c - 1 computed as such is 0 in double once the others' sum
 * falls below 1e-16 - the gradient then loses its c component, and APGD
 * its direction, on a confident model (the demo). There CE =
 * log1p(S), S = sum_{i!=c} exp(z_i - z_c), dz_i = exp(z_i - z_c) / (1+S),
 * dz_c = -S / (1+S). Otherwise loss_ce (p_c is then far from 1). */
static double ce_exact(int k, const float *z, int c, float *dout)
{
	double s = 0.0;
	int i;

	for (i = 0; i < k; i++)
		if (i != c && z[i] >= z[c])
			return loss_ce(k, z, c, NULL, dout);
	for (i = 0; i < k; i++)
		if (i != c)
			s += exp((double)z[i] - z[c]);
	for (i = 0; i < k; i++)
		dout[i] = (float)(i == c ? -s / (1.0 + s) : exp((double)z[i] - z[c]) / (1.0 + s));
	return log1p(s);
}

static double apgd_objective(struct attack *a, const float *x, const float *z,
				float *dout)
{
	double l;
	int i;

	(void)x;
	if (a->p.kind == ATTACK_APGD_DLR)
		return dlr(a, z, dout);
	if (a->p.target < 0)
		return ce_exact(a->k, z, a->st.apgd.label, dout);
	l = ce_exact(a->k, z, a->p.target, dout);
	for (i = 0; i < a->k; i++)
		dout[i] = -dout[i];
	return -l;
}

static enum loss_mode apgd_report_mode(const struct attack *a)
{
	return a->p.kind == ATTACK_APGD_DLR ? LOSS_CW : LOSS_CE;
}

/* ---- the schedule -------------------------------------------------------- */

static int at_least_1(double v)
{
	return v >= 1.0 ? (int)v : 1;
}

static void schedule_start(struct attack *a)
{
	struct attack_apgd *s = &a->st.apgd;
	int n = a->p.iters;

	s->step = 2.0 * a->p.eps;
	s->seg_len = at_least_1(0.22 * n);
	s->seg_min = at_least_1(0.06 * n);
	s->seg_decr = at_least_1(0.03 * n);
	s->seg_count = 0;
	s->n_incr = 0;
	s->reduced_last = 1;
	s->it = 0;
	s->started = 0;
}

/* t_i of the random start: uniform in [-1,1] (Linf) or Gaussian (L2). */
static double start_draw(struct attack *a)
{
	return a->p.norm == ATTACK_LINF ? 2.0 * rng_uniform(&a->rng) - 1.0 :
	       rng_normal(&a->rng);
}

/* The random start of the current restart (the generator seeded): two
 * passes over the same draws (the generator's state replayed), the first
 * for the norm of t, so t needs no buffer and keeps its double value. */
static void random_start(struct attack *a)
{
	struct rng saved = a->rng;
	double m = 0.0, eps = a->p.eps;
	size_t i;

	for (i = 0; i < a->n; i++) {
		double t = start_draw(a);

		m = a->p.norm == ATTACK_LINF ? fmax(m, fabs(t)) : m + t * t;
	}
	if (a->p.norm == ATTACK_L2)
		m = sqrt(m);
	a->rng = saved;
	for (i = 0; i < a->n; i++)
		a->x_adv[i] = attack_clamp01((float)(a->x0[i] + eps * start_draw(a) / (m + 1e-12)));
}

static void apgd_reset(struct attack *a, int fresh)
{
	struct attack_apgd *s = &a->st.apgd;

	s->label = a->label;
	s->restart = 0;
	schedule_start(a);
	if (fresh) {
		rng_seed(&a->rng, attack_restart_seed(a->p.seed, 0));
		random_start(a);
	}
	memcpy(a->work[W_OLD], a->x_adv, sizeof(float) * a->n);
}

static double finite_or_zero(float v)
{
	return isfinite(v) ? (double)v : 0.0;
}

/* Bookkeeping after the evaluation at x_adv: the best point and, at a
 * checkpoint, the step size and the return to the best point. */
static void record(struct attack *a, double loss)
{
	struct attack_apgd *s = &a->st.apgd;
	size_t nb = sizeof(float) * a->n;
	int osc;

	if (!s->started) {
		s->started = 1;
		s->loss_best = s->loss_best_last = s->prev_loss = loss;
		memcpy(a->work[W_BEST], a->x_adv, nb);
		memcpy(a->work[W_GRAD_BEST], a->grad, nb);
		return;
	}
	if (loss > s->prev_loss)
		s->n_incr++;
	s->prev_loss = loss;
	if (loss > s->loss_best) {
		s->loss_best = loss;
		memcpy(a->work[W_BEST], a->x_adv, nb);
		memcpy(a->work[W_GRAD_BEST], a->grad, nb);
	}
	if (++s->seg_count < s->seg_len)
		return;
	osc = s->n_incr <= 0.75 * s->seg_len ||
	      (!s->reduced_last && s->loss_best_last >= s->loss_best);
	s->reduced_last = osc;
	s->loss_best_last = s->loss_best;
	if (osc) {
		s->step /= 2.0;
		memcpy(a->x_adv, a->work[W_BEST], nb);
		memcpy(a->grad, a->work[W_GRAD_BEST], nb);
	}
	s->seg_len = s->seg_len - s->seg_decr > s->seg_min ?
		     s->seg_len - s->seg_decr : s->seg_min;
	s->seg_count = 0;
	s->n_incr = 0;
}

static float clamp_ball(float v, float x0, float eps)
{
	v = v < x0 - eps ? x0 - eps : v > x0 + eps ? x0 + eps : v;
	return attack_clamp01(v);
}

static void move_linf(struct attack *a, double mom)
{
	const struct attack_apgd *s = &a->st.apgd;
	float eps = (float)a->p.eps, *x = a->x_adv, *old = a->work[W_OLD];
	const float *x0 = a->x0;
	size_t i;

	for (i = 0; i < a->n; i++) {
		double g = finite_or_zero(a->grad[i]), xi = x[i];
		float z = clamp_ball((float)(xi + s->step * (g > 0.0 ? 1.0 : g < 0.0 ? -1.0 : 0.0)),
				     x0[i], eps);
		double v = xi + (z - xi) * mom + (xi - old[i]) * (1.0 - mom);

		old[i] = x[i];
		x[i] = clamp_ball((float)v, x0[i], eps);
	}
}

static void move_l2(struct attack *a, double mom)
{
	const struct attack_apgd *s = &a->st.apgd;
	float *x = a->x_adv, *old = a->work[W_OLD], *z = a->work[W_Z];
	double gn = attack_l2(a->grad, a->n);
	size_t i;

	for (i = 0; i < a->n; i++)
		z[i] = (float)(x[i] + s->step * finite_or_zero(a->grad[i]) / (gn + 1e-12));
	attack_project_l2_aa(a, z);
	for (i = 0; i < a->n; i++) {
		double xi = x[i], v = xi + (z[i] - xi) * mom + (xi - old[i]) * (1.0 - mom);

		old[i] = x[i];
		x[i] = (float)v;
	}
	attack_project_l2_aa(a, x);
}

static int apgd_update(struct attack *a, const struct attack_report *rep)
{
	struct attack_apgd *s = &a->st.apgd;

	record(a, rep->loss);
	if (s->it == a->p.iters) {	/* this restart is over */
		if (a->best_success || s->restart + 1 >= a->p.restarts)
			return 0;
		s->restart++;
		schedule_start(a);
		rng_seed(&a->rng, attack_restart_seed(a->p.seed, s->restart));
		random_start(a);
		memcpy(a->work[W_OLD], a->x_adv, sizeof(float) * a->n);
		return 1;
	}
	if (a->p.norm == ATTACK_LINF)
		move_linf(a, s->it ? 0.75 : 1.0);
	else
		move_l2(a, s->it ? 0.75 : 1.0);
	s->it++;
	return 1;
}

/* iters moves per restart, and one move more between two restarts (to
 * the next random start). */
static int apgd_total_iters(const struct attack *a)
{
	return a->p.restarts * a->p.iters + a->p.restarts - 1;
}

const struct attack_method attack_apgd_method = {
	.reset = apgd_reset,
	.objective = apgd_objective,
	.report_mode = apgd_report_mode,
	.update = apgd_update,
	.total_iters = apgd_total_iters,
	.ascends = 1,
	.returns_best = 1,
};
