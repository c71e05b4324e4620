/* attack_deepfool.c - DeepFool (Moosavi-Dezfooli, Fawzi & Frossard 2016),
 * L2 and Linf, untargeted, behind the method table of attack_impl.h.
 *
 * Each iteration linearises the model at x: for the candidate classes k
 * (the DEEPFOOL_CANDIDATES highest outputs other than the label y, as
 * foolbox's candidates), f_k = z_k - z_y and w_k = grad f_k; it takes the
 * class l with the smallest |f_l| / ||w_l|| (the dual norm: L2 for L2, L1
 * for Linf) and adds to the total perturbation r = (|f_l| + 1e-4) w_l /
 * ||w_l||_2^2 (L2) or (|f_l| + 1e-4) sign(w_l) / ||w_l||_1 (Linf); the
 * iterate is clip(x0 + (1 + overshoot) r_total, 0, 1) with overshoot 0.02.
 * It stops at the first iterate that is misclassified, or after iters
 * iterations. eps does not bound it: DeepFool looks for the smallest
 * perturbation, and reports it (pert_l2, pert_linf).
 *
 * The candidates' gradients take one backward each: the prepare hook runs a
 * batch-1 forward of x_adv and those backwards before the engine's own
 * evaluation (alone or in a batch), so nothing another slot of a batch
 * holds in the net is overwritten, and keeps only the chosen class's
 * gradient (work[W_BEST]); a batch step costs such a slot one forward and
 * up to DEEPFOOL_CANDIDATES backwards more (none once x_adv is fooled).
 */
#include <math.h>
#include <string.h>

#include "attack_impl.h"
#include "loss.h"

#define DEEPFOOL_CANDIDATES 10
#define DEEPFOOL_OVERSHOOT 0.02

enum { W_GRAD, W_BEST, W_TOTAL };	/* work[] buffers */

static void deepfool_reset(struct attack *a, int fresh)
{
	a->st.df.have = 0;
	if (fresh)
		memset(a->work[W_TOTAL], 0, sizeof(float) * a->n);
	else	/* go on from x_adv: its perturbation is the total so far */
		for (size_t i = 0; i < a->n; i++)
			a->work[W_TOTAL][i] = (float)(((double)a->x_adv[i] - a->x0[i]) /
						      (1.0 + DEEPFOOL_OVERSHOOT));
}

/* The margin z_y - max_{k!=y} z_k, driven to 0 and below. */
static double deepfool_objective(struct attack *a, const float *x, const float *z,
				float *dout)
{
	(void)x;
	return loss_margin(a->k, z, a->label, dout);
}

static enum loss_mode deepfool_report_mode(const struct attack *a)
{
	(void)a;
	return LOSS_CW;
}

static double dual_norm(const struct attack *a, const float *w)
{
	double s = 0.0;
	size_t i;

	for (i = 0; i < a->n; i++)
		s += a->p.norm == ATTACK_L2 ? (double)w[i] * w[i] : fabs((double)w[i]);
	return a->p.norm == ATTACK_L2 ? sqrt(s) : s;
}

/* Before the evaluation at x_adv: the candidates' linearisation, the
 * chosen class's f and w. */
static void deepfool_prepare(struct attack *a)
{
	struct attack_deepfool *s = &a->st.df;
	const float *z = net_forward(a->net, a->x_adv, 1);
	int y = a->label, used[DEEPFOOL_CANDIDATES], nc = 0, c, i;
	float *dout = a->dout;

	s->have = 0;
	/* already fooled (the engine's rule: the first maximum is not y): the
	 * update will stop, so the backwards would be wasted (all of them on
	 * an image the model misclassifies from the start, one set on every
	 * success). Should the engine's evaluation, batched, round a near-tie
	 * the other way, the attack stops there unfooled, as it would with no
	 * class to move toward. */
	if (loss_argmax(a->k, z) != y)
		return;
	for (c = 0; c < DEEPFOOL_CANDIDATES && c < a->k - 1; c++) {
		int best = -1, j;

		for (i = 0; i < a->k; i++) {
			int taken = i == y;

			for (j = 0; j < nc && !taken; j++)
				taken = used[j] == i;
			if (!taken && (best < 0 || z[i] > z[best]))
				best = i;
		}
		used[nc++] = best;
	}
	/* z belongs to the net; f_k before the backwards reuse nothing of it */
	for (c = 0; c < nc; c++) {
		int k = used[c];
		double f = (double)z[k] - z[y], wn, ratio;

		for (i = 0; i < a->k; i++)
			dout[i] = 0.0f;
		dout[k] = 1.0f;
		dout[y] = -1.0f;
		net_backward(a->net, dout, a->work[W_GRAD]);
		wn = dual_norm(a, a->work[W_GRAD]);
		if (!(wn > 0.0) || !isfinite(wn))
			continue;
		ratio = fabs(f) / wn;
		if (!s->have || ratio < s->ratio) {
			s->have = 1;
			s->ratio = ratio;
			s->f = f;
			s->wnorm = wn;
			memcpy(a->work[W_BEST], a->work[W_GRAD], sizeof(float) * a->n);
		}
	}
}

static int deepfool_update(struct attack *a, const struct attack_report *rep)
{
	struct attack_deepfool *s = &a->st.df;
	const float *w = a->work[W_BEST];
	float *tot = a->work[W_TOTAL];
	double step;
	size_t i;

	if (rep->success || !s->have)	/* fooled, or no class to move toward */
		return 0;
	if (a->p.norm == ATTACK_L2) {
		step = (fabs(s->f) + 1e-4) / (s->wnorm * s->wnorm);
		for (i = 0; i < a->n; i++)
			tot[i] += (float)(step * w[i]);
	} else {
		step = (fabs(s->f) + 1e-4) / s->wnorm;
		for (i = 0; i < a->n; i++)
			tot[i] += (float)(w[i] > 0.0f ? step : w[i] < 0.0f ? -step : 0.0);
	}
	for (i = 0; i < a->n; i++)
		a->x_adv[i] = attack_clamp01((float)(a->x0[i] +
					      (1.0 + DEEPFOOL_OVERSHOOT) * (double)tot[i]));
	return 1;
}

static int deepfool_total_iters(const struct attack *a)
{
	return a->p.iters;
}

const struct attack_method attack_deepfool_method = {
	.reset = deepfool_reset,
	.prepare = deepfool_prepare,
	.objective = deepfool_objective,
	.report_mode = deepfool_report_mode,
	.update = deepfool_update,
	.total_iters = deepfool_total_iters,
	.descends = 1,
	.returns_best = 1,
	.minimal = 1,
};
