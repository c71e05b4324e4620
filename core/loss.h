/* loss.h - losses on the network output and their gradients.
 *
 * Four modes, switchable at any step of an attack:
 *   ce          cross-entropy from the logits through log-softmax (double):
 *               finite, with a gradient, even when a probability underflows
 *               float32. The default, and what every peer tool attacks.
 *   prob-ce     Keras categorical cross-entropy on probabilities, exactly:
 *               p = softmax(z) in float32, p /= sum(p), clip p to
 *               [eps, 1-eps], -sum t*log p. Where the clip acts the gradient
 *               is exactly zero - kept on purpose, to reproduce the failure.
 *   prob-naive  -log(softmax(z)[t]) from the float32 softmax, no clip: shows
 *               underflow (p = 0 -> loss inf, gradient NaN).
 *   cw          Carlini-Wagner margin on the logits.
 * When the model already outputs probabilities (its last layer is a
 * softmax), prob-ce and prob-naive take p = the output; ce and cw still
 * treat the output as logits - the mistake a diagnosis then explains.
 */
#ifndef ADVEX_LOSS_H
#define ADVEX_LOSS_H

#include "status.h"

enum loss_mode { LOSS_CE, LOSS_PROB_CE, LOSS_PROB_NAIVE, LOSS_CW };
#define LOSS_N_MODES 4

#define LOSS_CLIP_EPS_DEFAULT 1e-7	/* keras.config.epsilon() */

struct loss_params {
	enum loss_mode mode;
	double clip_eps;	/* prob-ce clip, in (0, 0.5); default 1e-7 */
	double kappa;		/* cw confidence margin, >= 0; default 0 */
};

/* What one evaluation saw, for diagnostics. cls is the class the loss is
 * about: the target, or the true label of an untargeted attack. */
struct loss_info {
	enum loss_mode mode;
	int cls;		/* class of the loss */
	int untargeted;		/* 1: the attack ascends the loss of cls */
	int out_is_probs;	/* 1: the row was probabilities, not logits */
	float p_cls;		/* p(cls) the loss saw; prob-ce: after p /= sum(p),
				   before the clip */
	int n_clipped;		/* prob-ce: probabilities clipped to eps or 1-eps */
	int cls_clipped;	/* prob-ce: -1 p(cls) < eps, +1 p(cls) > 1-eps, else 0 */
	int n_underflow;	/* probabilities exactly 0 in float32 */
	int cls_underflow;	/* 1: p(cls) is exactly 0 */
	double logit_gap;	/* max output - output[cls] (>= 0) */
	double margin;		/* max_{i != cls} out_i - out_cls */
	int runner_up;		/* argmax_{i != cls} out_i (-1 when k == 1) */
	int flat;		/* 1: flat by construction here (prob-ce clip, cw
				   beyond kappa): the gradient is exactly zero */
};

/* Static name ("ce", "prob-ce", "prob-naive", "cw"); "?" when unknown. */
const char *loss_mode_name(enum loss_mode m);
/* Parse a name as above into *out; ST_ERR_ARG with a message otherwise. */
enum status loss_mode_parse(const char *s, enum loss_mode *out, char *err);
/* mode ce, clip_eps 1e-7, kappa 0. */
struct loss_params loss_params_default(void);

/* Evaluate the loss of one output row out (k values; logits, or
 * probabilities when out_is_probs) about class cls, 0 <= cls < k.
 * untargeted only changes cw: targeted it is max(m, -kappa), minimised;
 * untargeted min(m, kappa), maximised, with m = max_{i!=cls} out_i -
 * out_cls. The other modes are the same number either way.
 * probs (k, required): the softmax of the logits (float32 for the prob
 * modes, double rounded to float for ce and cw), or a copy of out when
 * out_is_probs. dout (k, may be NULL): dLoss/dout, for net_backward.
 * info (may be NULL). Returns the loss in double; inf or NaN when the float
 * math gives that (prob-naive). Allocates nothing. */
double loss_eval(const struct loss_params *lp, int k, const float *out,
		 int out_is_probs, int cls, int untargeted, float *probs,
		 float *dout, struct loss_info *info);

/* The prediction: the first maximum of the k values z (ties go to the
 * lower class, as everywhere in advex). */
int loss_argmax(int k, const float *z);

/* The margin z_y - max_{i != y} z_i of k >= 2 logits, and its gradient
 * in dz (k, required): +1 at y, -1 at the first runner-up. Square's and
 * DeepFool's objective. */
double loss_margin(int k, const float *z, int y, float *dz);

/* ce alone, kept for the CLI: z k logits. Writes probs (k, may be NULL) and
 * dz = dLoss/dz (k, may be NULL). Returns -log softmax(z)[target]. */
double loss_ce(int k, const float *z, int target, float *probs, float *dz);

#endif
