/* loss.c - the four loss modes and their gradients (see loss.h).
 *
 * The prob modes deliberately compute in float32, as Keras and PyTorch do
 * on probabilities: their failures (a clip with no gradient, a softmax that
 * underflows to 0) are the thing advex must reproduce, so nothing here is
 * made more robust than the code it imitates.
 */
#include "loss.h"

#include <math.h>
#include <string.h>

#include "act.h"

static const char *const loss_names[LOSS_N_MODES] = {
	[LOSS_CE] = "ce",
	[LOSS_PROB_CE] = "prob-ce",
	[LOSS_PROB_NAIVE] = "prob-naive",
	[LOSS_CW] = "cw",
};

const char *loss_mode_name(enum loss_mode m)
{
	return (unsigned)m < LOSS_N_MODES ? loss_names[m] : "?";
}

enum status loss_mode_parse(const char *s, enum loss_mode *out, char *err)
{
	int i;

	for (i = 0; s && i < LOSS_N_MODES; i++)
		if (!strcmp(s, loss_names[i])) {
			*out = (enum loss_mode)i;
			return ST_OK;
		}
	return status_set(err, ST_ERR_ARG,
			  "unknown loss '%s': use ce, prob-ce, prob-naive or cw",
			  s ? s : "");
}

struct loss_params loss_params_default(void)
{
	struct loss_params p = { LOSS_CE, LOSS_CLIP_EPS_DEFAULT, 0.0 };

	return p;
}

int loss_argmax(int k, const float *z)
{
	int i, best = 0;

	for (i = 1; i < k; i++)
		if (z[i] > z[best])
			best = i;
	return best;
}

double loss_margin(int k, const float *z, int y, float *dz)
{
	int o = -1, i;

	for (i = 0; i < k; i++) {
		dz[i] = 0.0f;
		if (i != y && (o < 0 || z[i] > z[o]))
			o = i;
	}
	if (o < 0)	/* k == 1: no other class */
		return 0.0;
	dz[y] = 1.0f;
	dz[o] = -1.0f;
	return (double)z[y] - z[o];
}

double loss_ce(int k, const float *z, int target, float *probs, float *dz)
{
	double m = z[0], sum = 0.0, lse;
	int i;

	for (i = 1; i < k; i++)
		if (z[i] > m)
			m = z[i];
	for (i = 0; i < k; i++)
		sum += exp((double)z[i] - m);
	lse = m + log(sum);
	for (i = 0; i < k; i++) {
		double p = exp((double)z[i] - lse);
		if (probs)
			probs[i] = (float)p;
		if (dz)
			dz[i] = (float)(p - (i == target ? 1.0 : 0.0));
	}
	return lse - z[target];
}

/* Margin facts of the raw output row, the same for every mode. */
static void row_facts(int k, const float *out, int cls, struct loss_info *li)
{
	double top = out[0], best = -HUGE_VAL;
	int i;

	li->runner_up = -1;
	for (i = 0; i < k; i++) {
		if (out[i] > top)
			top = out[i];
		if (i != cls && (li->runner_up < 0 || out[i] > best)) {
			best = out[i];
			li->runner_up = i;
		}
	}
	li->logit_gap = top - (double)out[cls];
	li->margin = best - (double)out[cls];
}

/* The probabilities the prob modes work on: float32 softmax, or the row. */
static void prob_row(int k, const float *out, int out_is_probs, float *probs)
{
	if (out_is_probs)
		memcpy(probs, out, sizeof *probs * (size_t)k);
	else
		act_softmax_forward(1, k, out, probs);
}

/* dLoss/dp (in dout) -> dLoss/dout: through the float32 softmax when the
 * row was logits; the net's own softmax layer does it otherwise. */
static void through_softmax(int k, int out_is_probs, const float *probs,
			    float *dout)
{
	if (!out_is_probs)
		act_softmax_backward(1, k, probs, dout, dout);
}

static double prob_ce(const struct loss_params *lp, int k, const float *out,
		      int out_is_probs, int cls, float *probs, float *dout,
		      struct loss_info *li)
{
	float eps = (float)lp->clip_eps, hi = 1.0f - eps, sum = 0.0f, q, qc;
	int i;

	prob_row(k, out, out_is_probs, probs);
	for (i = 0; i < k; i++)
		sum += probs[i];
	for (i = 0; i < k; i++) {
		float qi = probs[i] / sum;

		li->n_clipped += qi < eps || qi > hi;
	}
	q = probs[cls] / sum;
	li->p_cls = q;
	li->cls_clipped = q < eps ? -1 : q > hi ? 1 : 0;
	li->flat = li->cls_clipped != 0;
	qc = q < eps ? eps : q > hi ? hi : q;
	if (dout) {
		memset(dout, 0, sizeof *dout * (size_t)k);
		/* a clip passes no gradient: leave dout all zero */
		if (!li->cls_clipped) {
			float g = -1.0f / q;

			/* q = p_cls / sum: dq/dp_j = (delta_j - q) / sum */
			for (i = 0; i < k; i++)
				dout[i] = g * ((i == cls ? 1.0f : 0.0f) - q) / sum;
			through_softmax(k, out_is_probs, probs, dout);
		}
	}
	return -log((double)qc);
}

static double prob_naive(int k, const float *out, int out_is_probs, int cls,
			 float *probs, float *dout, struct loss_info *li)
{
	float p;

	prob_row(k, out, out_is_probs, probs);
	p = probs[cls];
	li->p_cls = p;
	if (dout) {
		memset(dout, 0, sizeof *dout * (size_t)k);
		/* -1/0 = -inf, and the softmax backward then meets -inf * 0 */
		dout[cls] = -1.0f / p;
		through_softmax(k, out_is_probs, probs, dout);
	}
	return -log((double)p);
}

static double cw(const struct loss_params *lp, int k, const float *out,
		 int out_is_probs, int cls, int untargeted, float *probs,
		 float *dout, struct loss_info *li)
{
	double m = li->margin, loss;
	int active;

	if (out_is_probs)
		memcpy(probs, out, sizeof *probs * (size_t)k);
	else
		loss_ce(k, out, cls, probs, NULL);
	li->p_cls = probs[cls];
	/* targeted: push the margin down to -kappa; untargeted: push it up to
	 * +kappa. Beyond that the loss is flat by construction. */
	if (untargeted) {
		active = m <= lp->kappa;
		loss = active ? m : lp->kappa;
	} else {
		active = m >= -lp->kappa;
		loss = active ? m : 0.0 - lp->kappa;	/* 0 - 0 is +0 */
	}
	li->flat = !active;
	if (dout) {
		memset(dout, 0, sizeof *dout * (size_t)k);
		if (active && li->runner_up >= 0) {
			dout[li->runner_up] = 1.0f;
			dout[cls] = -1.0f;
		}
	}
	return loss;
}

static double ce(int k, const float *out, int out_is_probs, int cls,
		 float *probs, float *dout, struct loss_info *li)
{
	double loss;

	/* on a probability row this is the user's mistake, done faithfully */
	loss = loss_ce(k, out, cls, out_is_probs ? NULL : probs, dout);
	if (out_is_probs)
		memcpy(probs, out, sizeof *probs * (size_t)k);
	li->p_cls = probs[cls];
	return loss;
}

double loss_eval(const struct loss_params *lp, int k, const float *out,
		 int out_is_probs, int cls, int untargeted, float *probs,
		 float *dout, struct loss_info *info)
{
	struct loss_info li;
	double loss;
	int i;

	memset(&li, 0, sizeof li);
	li.mode = lp->mode;
	li.cls = cls;
	li.untargeted = !!untargeted;
	li.out_is_probs = !!out_is_probs;
	row_facts(k, out, cls, &li);
	switch (lp->mode) {
	case LOSS_PROB_CE:
		loss = prob_ce(lp, k, out, out_is_probs, cls, probs, dout, &li);
		break;
	case LOSS_PROB_NAIVE:
		loss = prob_naive(k, out, out_is_probs, cls, probs, dout, &li);
		break;
	case LOSS_CW:
		loss = cw(lp, k, out, out_is_probs, cls, untargeted, probs, dout,
			  &li);
		break;
	case LOSS_CE:
	default:
		loss = ce(k, out, out_is_probs, cls, probs, dout, &li);
		break;
	}
	for (i = 0; i < k; i++)
		li.n_underflow += probs[i] == 0.0f;
	li.cls_underflow = probs[cls] == 0.0f;
	if (info)
		*info = li;
	return loss;
}
