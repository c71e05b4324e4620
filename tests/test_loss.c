/* test_loss.c - the four loss modes and the gradient diagnostics: the
 * story's numbers (prob-ce flat at 16.118 with a zero gradient, ce 17.33
 * with a healthy one), float32 underflow, the C&W margin, every gradient
 * against central differences, and the histogram's bins. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "diag.h"
#include "loss.h"
#include "rng.h"
#include "tap.h"

#define K 10

static const char *const stl10[K] = {
	"airplane", "bird", "car", "cat", "deer",
	"dog", "horse", "monkey", "ship", "truck"
};

/* FACTS.md: the probabilities of the story's dog image, STL-10 order. */
static const float story_p[K] = {
	2.9802322e-08f, 3.9100647e-04f, 8.3446503e-07f, 7.8368187e-04f,
	3.3617020e-05f, 9.9810326e-01f, 8.8602304e-05f, 7.6818466e-04f,
	5.9614644e-07f, 9.8974469e-06f
};

static void story_logits(float *z)
{
	int i;

	for (i = 0; i < K; i++)
		z[i] = (float)log((double)story_p[i]);
}

static int all_zero(const float *v, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (v[i] != 0.0f)
			return 0;
	return 1;
}

static double l2(const float *v, int n)
{
	double s = 0.0;
	int i;

	for (i = 0; i < n; i++)
		s += (double)v[i] * v[i];
	return sqrt(s);
}

/* The diagnosis of a loss evaluation whose input gradient is g (n). */
static const char *explain(const struct loss_params *lp,
			   const struct loss_info *li, double loss,
			   const float *g, size_t n, char *buf)
{
	struct diag_grad dg;
	struct diag_input di = { lp, li, loss, stl10, &dg, NULL };

	diag_grad_stats(g, n, &dg);
	return diag_explain(&di, buf, DIAG_EXPLAIN_MAX);
}

static void test_story(struct tap *t)
{
	struct loss_params lp = loss_params_default();
	struct loss_info li;
	float z[K], probs[K], dz[K];
	char buf[DIAG_EXPLAIN_MAX];
	const char *s;
	double loss, sum = 0.0;
	int i;

	for (i = 0; i < K; i++)
		sum += story_p[i];
	story_logits(z);
	lp.mode = LOSS_PROB_CE;
	loss = loss_eval(&lp, K, z, 0, 0, 0, probs, dz, &li);
	tap_ok(t, fabs(loss - 16.1181) < 1e-3,
	       "prob-ce toward airplane on the story's logits: loss %.4f = -ln 1e-7 (16.1181)",
	       loss);
	tap_ok(t, all_zero(dz, K), "prob-ce: dLoss/dz is exactly zero (the clip passes no gradient)");
	tap_ok(t, li.cls_clipped == -1 && li.n_clipped >= 1 && li.flat &&
		  fabs(li.p_cls - 2.98e-8) < 1e-10,
	       "prob-ce info: target clipped below, %d clipped, p(airplane) = %.4g",
	       li.n_clipped, (double)li.p_cls);
	s = explain(&lp, &li, loss, dz, K, buf);
	tap_diag("%s", s ? s : "(none)");
	tap_ok(t, s && strstr(s, "p(airplane) = 2.98e-08") && strstr(s, "1e-07") &&
		  strstr(s, "16.118") && strstr(s, "--loss ce") && strstr(s, "ε") &&
		  strstr(s, "−ln ε"),
	       "the diagnosis names p(airplane) = 2.98e-08, the clip 1e-07, 16.118 = −ln ε and --loss ce");

	loss = loss_eval(&lp, K, story_p, 1, 0, 0, probs, dz, &li);
	tap_ok(t, fabs(loss - 16.1181) < 1e-3 && all_zero(dz, K) && li.out_is_probs &&
		  !memcmp(probs, story_p, sizeof probs),
	       "prob-ce on the probabilities themselves (a softmax model): %.4f, zero gradient, probs = output",
	       loss);

	lp.mode = LOSS_CE;
	loss = loss_eval(&lp, K, z, 0, 0, 0, probs, dz, &li);
	tap_ok(t, fabs(loss - 17.3286) < 1e-3,
	       "ce toward airplane on the logits: loss %.4f (-ln 2.98e-8 = 17.3286)", loss);
	/* the story's vector sums to 1.00018, so softmax(log p) = p / sum */
	tap_ok(t, fabs(dz[0] + 1.0) < 1e-6 && fabs(dz[5] - story_p[5] / sum) < 1e-6 &&
		  l2(dz, K) > 1.0,
	       "ce: healthy gradient dz[airplane] = %.6f, dz[dog] = %.6f, |dz| = %.4f",
	       (double)dz[0], (double)dz[5], l2(dz, K));
	tap_ok(t, fabs(probs[0] - story_p[0] / sum) < 1e-13 &&
		  fabs(probs[5] - story_p[5] / sum) < 1e-6,
	       "ce: probabilities are the softmax of the logits (p(airplane) %.6g, p(dog) %.6g)",
	       (double)probs[0], (double)probs[5]);
	tap_ok(t, explain(&lp, &li, loss, dz, K, buf) == NULL && buf[0] == '\0',
	       "ce with a healthy gradient: no diagnosis");
	tap_ok(t, loss_ce(K, z, 0, NULL, NULL) == loss,
	       "loss_ce (the CLI's entry point) gives the same number");

	loss = loss_eval(&lp, K, story_p, 1, 0, 0, probs, dz, &li);
	s = explain(&lp, &li, loss, dz, K, buf);
	tap_diag("%s", s ? s : "(none)");
	tap_ok(t, s && strstr(s, "outputs probabilities") && strstr(s, "advex-import") &&
		  loss > log(K) && loss < log(K) + 1.0,
	       "ce on a softmax model's output treats probabilities as logits (loss %.3f, near ln 10) and says so",
	       loss);
}

static void test_underflow(struct tap *t)
{
	struct loss_params lp = loss_params_default();
	struct loss_info li;
	float z[4] = { 0.0f, -120.0f, -1.0f, -0.5f }, probs[4], dz[4];
	char buf[DIAG_EXPLAIN_MAX];
	const char *s;
	double loss;
	int i, nonfinite = 0;

	lp.mode = LOSS_PROB_NAIVE;
	loss = loss_eval(&lp, 4, z, 0, 1, 0, probs, dz, &li);
	for (i = 0; i < 4; i++)
		nonfinite += !isfinite(dz[i]);
	tap_ok(t, isinf(loss) && loss > 0 && li.cls_underflow && probs[1] == 0.0f,
	       "prob-naive: p(target) underflows float32 at a logit gap of 120, loss %g", loss);
	tap_ok(t, nonfinite == 4 || all_zero(dz, 4),
	       "prob-naive: the gradient is non-finite (%d of 4) or zero, as the float math gives",
	       nonfinite);
	s = explain(&lp, &li, loss, dz, 4, buf);
	tap_diag("%s", s ? s : "(none)");
	tap_ok(t, s && strstr(s, "underflows") && strstr(s, "p(bird) = 0") &&
		  strstr(s, "120.000 below") && strstr(s, "--loss ce"),
	       "the underflow diagnosis names p(bird) = 0, the logit gap and --loss ce");

	lp.mode = LOSS_CE;
	loss = loss_eval(&lp, 4, z, 0, 1, 0, probs, dz, &li);
	tap_ok(t, isfinite(loss) && fabs(loss - 120.0) < 1.0 && fabs(dz[1] + 1.0) < 1e-6,
	       "ce at the same point: loss %.3f finite, dz[target] = %.3f", loss, (double)dz[1]);

	lp.mode = LOSS_PROB_CE;
	loss = loss_eval(&lp, 4, z, 0, 1, 0, probs, dz, &li);
	tap_ok(t, fabs(loss - 16.1181) < 1e-3 && all_zero(dz, 4) && li.cls_clipped == -1,
	       "prob-ce at the same point: clipped to %.4f, zero gradient", loss);

	/* untargeted on a confident image: p(true) rounds to 1, above 1 - eps */
	z[0] = 30.0f;
	loss = loss_eval(&lp, 4, z, 0, 0, 1, probs, dz, &li);
	s = explain(&lp, &li, loss, dz, 4, buf);
	tap_diag("%s", s ? s : "(none)");
	tap_ok(t, li.cls_clipped == 1 && all_zero(dz, 4) && fabs(loss - 1.192e-7) < 1e-9 && s &&
		  strstr(s, "p(airplane) = 1 is above the clip 1 − ε = 0.9999999"),
	       "prob-ce away from a class at p = 1: clipped above, loss %.3g, zero gradient, explained", loss);
}

static void test_cw(struct tap *t)
{
	struct loss_params lp = loss_params_default();
	struct loss_info li;
	float z[4] = { 1.0f, 3.0f, 2.0f, 0.5f }, probs[4], dz[4];
	char buf[DIAG_EXPLAIN_MAX];
	const char *s;
	double loss;

	lp.mode = LOSS_CW;
	loss = loss_eval(&lp, 4, z, 0, 0, 0, probs, dz, &li);
	tap_ok(t, loss == 2.0 && dz[1] == 1.0f && dz[0] == -1.0f && dz[2] == 0.0f &&
		  dz[3] == 0.0f && li.runner_up == 1,
	       "cw toward class 0: margin 3 - 1 = %g, +1 at the runner-up, -1 at the target", loss);
	loss = loss_eval(&lp, 4, z, 0, 1, 0, probs, dz, &li);
	tap_ok(t, loss == 0.0 && all_zero(dz, 4) && li.flat && li.margin == -1.0,
	       "cw toward the predicted class: margin -1 below -kappa 0, loss %g, flat", loss);
	s = explain(&lp, &li, loss, dz, 4, buf);
	tap_diag("%s", s ? s : "(none)");
	tap_ok(t, s && strstr(s, "C&W margin") && strstr(s, "-1.000") && strstr(s, "below −κ = 0"),
	       "the flat C&W margin is explained");
	lp.kappa = 2.0;
	loss = loss_eval(&lp, 4, z, 0, 1, 0, probs, dz, &li);
	tap_ok(t, loss == -1.0 && dz[2] == 1.0f && dz[1] == -1.0f,
	       "cw with kappa 2: margin -1 still above -kappa, loss %g, gradient active", loss);
	lp.kappa = 0.0;
	loss = loss_eval(&lp, 4, z, 0, 1, 1, probs, dz, &li);
	tap_ok(t, loss == -1.0 && dz[2] == 1.0f && dz[1] == -1.0f,
	       "untargeted cw away from the true class 1: min(margin, kappa) = %g, gradient active", loss);
	loss = loss_eval(&lp, 4, z, 0, 0, 1, probs, dz, &li);
	tap_ok(t, loss == 0.0 && all_zero(dz, 4) && li.flat,
	       "untargeted cw away from class 0 (already wrong by 2): capped at kappa, flat");
	tap_ok(t, fabs(probs[1] - exp(3.0) / (exp(1.0) + exp(3.0) + exp(2.0) + exp(0.5))) < 1e-6,
	       "cw reports the softmax of the logits");
}

/* Central differences of loss_eval in double, perturbing the float row. */
static double numeric_rel_err(const struct loss_params *lp, int k, float *out,
			      int probs_row, int cls, int untargeted)
{
	float probs[K], dz[K];
	double num = 0.0, den = 0.0, h = 1e-2;
	int i;

	loss_eval(lp, k, out, probs_row, cls, untargeted, probs, dz, NULL);
	for (i = 0; i < k; i++) {
		float keep = out[i], up = keep + (float)(h * fabs(keep) + h * 1e-2),
		      dn = keep - (up - keep);
		double lp_, lm, g;

		out[i] = up;
		lp_ = loss_eval(lp, k, out, probs_row, cls, untargeted, probs, NULL, NULL);
		out[i] = dn;
		lm = loss_eval(lp, k, out, probs_row, cls, untargeted, probs, NULL, NULL);
		out[i] = keep;
		g = (lp_ - lm) / ((double)up - dn);
		num += (g - dz[i]) * (g - dz[i]);
		den += g * g;
	}
	return sqrt(num / (den > 0 ? den : 1e-300));
}

static void test_gradients(struct tap *t)
{
	struct loss_params lp = loss_params_default();
	float z[K], p[K];
	struct rng r;
	double e;
	int i, m;

	rng_seed(&r, 3);
	for (i = 0; i < K; i++)
		z[i] = (float)(4.0 * rng_uniform(&r) - 2.0);
	loss_ce(K, z, 0, p, NULL);
	for (m = 0; m < LOSS_N_MODES; m++) {
		lp.mode = (enum loss_mode)m;
		e = numeric_rel_err(&lp, K, z, 0, 3, 0);
		tap_ok(t, e < 2e-3, "%s on logits: gradient vs central differences, rel err %.2e",
		       loss_mode_name(lp.mode), e);
	}
	lp.mode = LOSS_CW;
	e = numeric_rel_err(&lp, K, z, 0, 3, 1);
	tap_ok(t, e < 2e-3, "untargeted cw on logits: rel err %.2e", e);
	lp.mode = LOSS_PROB_CE;
	e = numeric_rel_err(&lp, K, p, 1, 3, 0);
	tap_ok(t, e < 2e-3, "prob-ce on a probability row (dLoss/dp, through p /= sum p): rel err %.2e", e);
	lp.mode = LOSS_PROB_NAIVE;
	e = numeric_rel_err(&lp, K, p, 1, 3, 0);
	tap_ok(t, e < 2e-3, "prob-naive on a probability row: rel err %.2e", e);
}

static void test_histogram(struct tap *t)
{
	const float g[] = { 3e-12f, 5e-7f, -3e-4f, 2.5f, 50.0f, 0.0f, -0.0f,
			    NAN, INFINITY, -INFINITY, 1e-13f, 1e3f, 1e-3f, 1e-5f };
	const size_t n = sizeof g / sizeof g[0];
	struct diag_grad d;
	double linf, l2v;
	float x[3] = { 0.5f, 0.2f, 1.0f }, x0[3] = { 0.5f, 0.5f, 0.6f };
	int i, ok = 1;

	diag_grad_stats(g, n, &d);
	tap_ok(t, DIAG_HIST_BINS == 14 && diag_hist_edge(0) == 1e-12 &&
		  diag_hist_edge(DIAG_HIST_BINS) == 1e2 && diag_hist_edge(12) == 1.0,
	       "14 decade bins from 1e-12 to 1e2");
	tap_ok(t, d.hist[0] == 1 && d.hist[5] == 1 && d.hist[8] == 1 && d.hist[12] == 1 &&
		  d.hist[13] == 1,
	       "3e-12, 5e-7, -3e-4, 2.5, 50 land in [1e-12,1e-11), [1e-7,1e-6), [1e-4,1e-3), [1,10), [10,100)");
	/* float 1e-3 is just above 1e-3, float 1e-5 just below 1e-5 */
	tap_ok(t, d.hist[9] == 1 && d.hist[6] == 1,
	       "decade edges are decided by the float's value: 1e-3f in [1e-3,1e-2), 1e-5f in [1e-6,1e-5)");
	for (i = 0; i < DIAG_HIST_BINS; i++)
		ok &= d.hist[i] == (i == 0 || i == 5 || i == 6 || i == 8 || i == 9 ||
				    i == 12 || i == 13);
	tap_ok(t, ok, "no other bin is filled");
	tap_ok(t, d.n_zero == 2 && d.n_nan == 1 && d.n_inf == 2 && d.n_tiny == 1 &&
		  d.n_huge == 1 && d.n == n,
	       "zeros 2, NaN 1, Inf 2, tiny (<1e-12) 1, huge (>=1e2) 1 counted apart");
	tap_ok(t, d.linf == 1000.0 && fabs(d.zero_frac - 2.0 / n) < 1e-12 &&
		  fabs(d.l1 - (3e-12 + 5e-7 + 3e-4 + 2.5 + 50 + 1e-13 + 1e3 + 1e-3 + 1e-5)) < 1e-4,
	       "L1 %.6g, Linf %g over the finite components", d.l1, d.linf);
	diag_perturbation(x, x0, 3, &linf, &l2v);
	tap_ok(t, fabs(linf - 0.4) < 1e-6 && fabs(l2v - 0.5) < 1e-6,
	       "perturbation Linf %.4f, L2 %.4f", linf, l2v);
}

static void test_names(struct tap *t)
{
	char err[ERR_MAX] = "";
	enum loss_mode m;
	int i, ok = 1;

	for (i = 0; i < LOSS_N_MODES; i++)
		ok &= loss_mode_parse(loss_mode_name((enum loss_mode)i), &m, err) == ST_OK &&
		      m == (enum loss_mode)i;
	tap_ok(t, ok, "ce, prob-ce, prob-naive, cw parse back to their modes");
	tap_ok(t, loss_mode_parse("mse", &m, err) == ST_ERR_ARG && strstr(err, "'mse'"),
	       "an unknown loss is refused: %s", err);
}

/* The prediction and the margin that Square and DeepFool minimise: ties go
 * to the first class, the gradient to y and the first runner-up. */
static void test_argmax_margin(struct tap *t)
{
	const float z[5] = { 1.0f, 3.0f, -2.0f, 3.0f, 0.5f };
	float dz[5];
	double m;

	tap_ok(t, loss_argmax(5, z) == 1 && loss_argmax(1, z) == 0 && loss_argmax(3, z + 2) == 1,
	       "argmax: the first maximum (1 of the tie 1/3), 0 for one class");
	m = loss_margin(5, z, 0, dz);
	tap_ok(t, m == -2.0 && dz[0] == 1.0f && dz[1] == -1.0f && dz[3] == 0.0f &&
		  dz[2] == 0.0f && dz[4] == 0.0f,
	       "margin about class 0: %g, gradient +1 at 0, -1 at the first runner-up 1", m);
	m = loss_margin(5, z, 1, dz);
	tap_ok(t, m == 0.0 && dz[1] == 1.0f && dz[3] == -1.0f && dz[0] == 0.0f,
	       "margin about class 1 tied with 3: %g, the runner-up is 3", m);
	dz[0] = 7.0f;
	tap_ok(t, loss_margin(1, z, 0, dz) == 0.0 && dz[0] == 0.0f,
	       "one class: margin 0, zero gradient (nothing to read past the row)");
}

int main(void)
{
	struct tap t = { 0 };

	test_story(&t);
	test_underflow(&t);
	test_cw(&t);
	test_gradients(&t);
	test_histogram(&t);
	test_names(&t);
	test_argmax_margin(&t);
	return tap_done(&t);
}
