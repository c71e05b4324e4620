/* test_attack.c - the attack engine on small in-memory models: FGSM against
 * a hand computation, the projection after every step of every kind and
 * norm, PGD's seeded start, a targeted run that lowers its loss, changing
 * the loss, epsilon and target mid-attack, early stop, cancel, refused
 * parameters, no allocation in the step, and the diagnosis of a softmax
 * model and of dead ReLUs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attack.h"
#include "loss.h"
#include "modelfile.h"
#include "net.h"
#include "rng.h"
#include "tap.h"

#include "alloc_count.h"

/* ---- small models ---------------------------------------------------------- */

#define IN 12
#define NCLS 4
#define NPIX (3 * IN * IN)

struct spec {
	const char *name;
	int ndim;
	int64_t shape[4];
	float lo, hi;	/* uniform range of the random values */
	const float *fixed;	/* these values instead, when not NULL */
};

#define CONV_ARCH \
	"{\"op\":\"conv2d\",\"name\":\"c1\",\"out\":6,\"kernel\":[3,3],\"padding\":[1,1]}," \
	"{\"op\":\"relu\"}," \
	"{\"op\":\"maxpool\",\"kernel\":[2,2],\"stride\":[2,2]}," \
	"{\"op\":\"conv2d\",\"name\":\"c2\",\"out\":8,\"kernel\":[3,3],\"padding\":[1,1]}," \
	"{\"op\":\"relu\"}," \
	"{\"op\":\"gap\"},{\"op\":\"flatten\"}," \
	"{\"op\":\"dense\",\"name\":\"d1\",\"out\":4}"

static const char conv_arch[] = "[" CONV_ARCH "]";
static const char softmax_arch[] = "[" CONV_ARCH ",{\"op\":\"softmax\"}]";

static const struct spec conv_tensors[] = {
	{ "c1.weight", 4, { 6, 3, 3, 3 }, -0.6f, 0.6f, NULL },
	{ "c1.bias", 1, { 6 }, -0.1f, 0.1f, NULL },
	{ "c2.weight", 4, { 8, 6, 3, 3 }, -0.4f, 0.4f, NULL },
	{ "c2.bias", 1, { 8 }, -0.1f, 0.1f, NULL },
	{ "d1.weight", 2, { 4, 8 }, -2.0f, 2.0f, NULL },
	{ "d1.bias", 1, { 4 }, -0.1f, 0.1f, NULL },
};

/* every unit of d1 is far below zero: the ReLU after it passes nothing */
static const char dead_arch[] =
	"[{\"op\":\"gap\"},{\"op\":\"flatten\"},"
	"{\"op\":\"dense\",\"name\":\"d1\",\"out\":5},{\"op\":\"relu\"},"
	"{\"op\":\"dense\",\"name\":\"d2\",\"out\":4}]";

static const struct spec dead_tensors[] = {
	{ "d1.weight", 2, { 5, 3 }, -0.5f, 0.5f, NULL },
	{ "d1.bias", 1, { 5 }, -100.0f, -100.0f, NULL },
	{ "d2.weight", 2, { 4, 5 }, -1.0f, 1.0f, NULL },
	{ "d2.bias", 1, { 4 }, -0.5f, 0.5f, NULL },
};

static struct net *small_net(const char *arch, const struct spec *specs, int n,
			     char *err)
{
	struct mf_out_tensor t[8];
	float *data[8];
	const char *keys[] = { "advex.format", "advex.arch", "advex.input",
			       "advex.mean", "advex.std", "advex.classes" };
	const char *vals[] = { "1", arch, "[3, 12, 12]", "[0.5, 0.4, 0.3]",
			       "[0.25, 0.25, 0.3]",
			       "[\"airplane\", \"bird\", \"car\", \"dog\"]" };
	struct modelfile *mf = NULL;
	struct net *net = NULL;
	struct rng r;
	void *buf;
	size_t len;
	int i;

	rng_seed(&r, 7);
	for (i = 0; i < n; i++) {
		size_t cnt = 1, k;
		int d;

		for (d = 0; d < specs[i].ndim; d++)
			cnt *= (size_t)specs[i].shape[d];
		data[i] = malloc(cnt * sizeof(float));
		for (k = 0; k < cnt; k++)
			data[i][k] = specs[i].fixed ? specs[i].fixed[k] :
				     specs[i].lo + (specs[i].hi - specs[i].lo) *
				     (float)rng_uniform(&r);
		t[i].name = specs[i].name;
		t[i].ndim = specs[i].ndim;
		memcpy(t[i].shape, specs[i].shape, sizeof specs[i].shape);
		t[i].data = data[i];
	}
	if (modelfile_encode(t, n, keys, vals, 6, &buf, &len, err) == ST_OK &&
	    modelfile_open_buffer(buf, len, "small.safetensors", &mf, err) == ST_OK &&
	    net_create(mf, 1, 0, &net, err) != ST_OK)
		net = NULL;
	modelfile_close(mf);
	for (i = 0; i < n; i++)
		free(data[i]);
	return net;
}

/* The story in miniature: "dog" (3) at p = 0.997, "airplane" (0) some 36
 * logits below it - under the prob-ce clip, or with a gap of 126 under
 * float32's smallest number. */
static const char story_arch[] =
	"[{\"op\":\"gap\"},{\"op\":\"flatten\"},{\"op\":\"dense\",\"name\":\"d1\",\"out\":4}]";
static const float story_bias[4] = { -30.0f, -1.0f, 0.0f, 6.0f };
static const float underflow_bias[4] = { -120.0f, -1.0f, 0.0f, 6.0f };

static struct net *story_net(const float *bias, char *err)
{
	const struct spec t[] = {
		{ "d1.weight", 2, { 4, 3 }, -0.5f, 0.5f, NULL },
		{ "d1.bias", 1, { 4 }, 0.0f, 0.0f, bias },
	};

	return small_net(story_arch, t, 2, err);
}

/* A test image with some pixels at 0 and 1, where the [0,1] clip acts. */
static void test_image(float *x, uint64_t seed)
{
	struct rng r;
	int i;

	rng_seed(&r, seed);
	for (i = 0; i < NPIX; i++) {
		double u = rng_uniform(&r);

		x[i] = u < 0.1 ? 0.0f : u > 0.9 ? 1.0f : (float)u;
	}
}

static int predict(struct net *n, const float *x)
{
	const float *z = net_forward(n, x, 1);
	int i, best = 0;

	for (i = 1; i < NCLS; i++)
		if (z[i] > z[best])
			best = i;
	return best;
}

static float clamp01(float v)
{
	return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
}

static struct attack_params params(enum attack_kind kind, enum attack_norm norm,
				   double eps, double alpha, int iters, int target)
{
	struct attack_params p = attack_params_default();

	p.kind = kind;
	p.norm = norm;
	p.eps = eps;
	p.alpha = alpha;
	p.iters = iters;
	p.target = target;
	return p;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_fgsm(struct tap *t, struct net *n, struct attack *a,
		      const float *x0)
{
	static float g[NPIX], want[NPIX];
	float dz[NCLS];
	struct attack_report rep;
	struct attack_params p;
	char err[ERR_MAX] = "";
	double maxd = 0.0, maxg = 0.0;
	int i, fin, target = (predict(n, x0) + 1) % NCLS, label = predict(n, x0);

	loss_ce(NCLS, net_forward(n, x0, 1), target, NULL, dz);
	net_backward(n, dz, g);
	for (i = 0; i < NPIX; i++)
		want[i] = clamp01(x0[i] - 0.05f * (g[i] > 0 ? 1.0f : g[i] < 0 ? -1.0f : 0.0f));
	p = params(ATTACK_FGSM, ATTACK_LINF, 0.05, 0.05, 1, target);
	attack_reset(a, x0, &p, err);
	fin = attack_step(a, &rep);
	for (i = 0; i < NPIX; i++) {
		maxd = fmax(maxd, fabs(attack_x_adv(a)[i] - want[i]));
		maxg = fmax(maxg, fabs(attack_grad(a)[i] - g[i]));
	}
	tap_ok(t, maxd == 0.0 && maxg == 0.0,
	       "targeted FGSM eps 0.05 = clip(x0 - eps*sign(g)) from net_backward's gradient (max diff %.2g, grad diff %.2g)",
	       maxd, maxg);
	tap_ok(t, fin == 1 && rep.finished && rep.updated && rep.iter == 0 &&
		  attack_iter(a) == 1 && fabs(rep.pert_linf - 0.05) < 1e-6,
	       "FGSM is one step: finished, perturbation Linf %.4f", rep.pert_linf);

	loss_ce(NCLS, net_forward(n, x0, 1), label, NULL, dz);
	net_backward(n, dz, g);
	for (i = 0; i < NPIX; i++)
		want[i] = clamp01(x0[i] + 0.03f * (g[i] > 0 ? 1.0f : g[i] < 0 ? -1.0f : 0.0f));
	p = params(ATTACK_FGSM, ATTACK_LINF, 0.03, 0.03, 1, -1);
	attack_reset(a, x0, &p, err);
	attack_step(a, &rep);
	for (maxd = 0.0, i = 0; i < NPIX; i++)
		maxd = fmax(maxd, fabs(attack_x_adv(a)[i] - want[i]));
	tap_ok(t, maxd == 0.0 && attack_label(a) == label && rep.cls == label,
	       "untargeted FGSM = clip(x0 + eps*sign(g)) of the predicted label's loss (max diff %.2g)",
	       maxd);
}

/* Distance of x_adv from x0 in the attack's norm, and whether x is in [0,1]. */
static double dist(const struct attack *a, enum attack_norm norm, int *in01)
{
	const float *x = attack_x_adv(a), *x0 = attack_x0(a);
	double d = 0.0;
	int i;

	*in01 = 1;
	for (i = 0; i < NPIX; i++) {
		double e = fabs((double)x[i] - x0[i]);

		d = norm == ATTACK_LINF ? fmax(d, e) : d + e * e;
		*in01 &= x[i] >= 0.0f && x[i] <= 1.0f;
	}
	return norm == ATTACK_LINF ? d : sqrt(d);
}

static void test_projection(struct tap *t, struct attack *a, const float *x0)
{
	static const enum attack_kind kinds[] = { ATTACK_BIM, ATTACK_PGD, ATTACK_MIFGSM };
	char err[ERR_MAX] = "";
	int k, nm, tg;

	for (k = 0; k < 3; k++)
		for (nm = 0; nm < 2; nm++)
			for (tg = -1; tg <= 2; tg += 3) {
				enum attack_norm norm = nm ? ATTACK_L2 : ATTACK_LINF;
				double eps = nm ? 1.0 : 0.04, worst = 0.0;
				struct attack_params p = params(kinds[k], norm, eps, eps, 12, tg);
				int step, ok01 = 1, in01;

				attack_reset(a, x0, &p, err);
				for (step = 0; step < 12; step++) {
					attack_step(a, NULL);
					worst = fmax(worst, dist(a, norm, &in01));
					ok01 &= in01;
				}
				tap_ok(t, worst <= eps + 1e-6 && ok01 && worst > 0.5 * eps,
				       "%s %s %s, alpha = eps: after every step |x_adv - x0| <= %g (max %.7f) and x_adv in [0,1]",
				       attack_kind_name(kinds[k]), attack_norm_name(norm),
				       tg < 0 ? "untargeted" : "targeted", eps, worst);
			}
}

static void test_pgd_seed(struct tap *t, struct attack *a, const float *x0)
{
	static float first[NPIX], start[NPIX];
	struct attack_params p = params(ATTACK_PGD, ATTACK_LINF, 0.05, 0.01, 5, 1);
	char err[ERR_MAX] = "";
	int i, same, moved = 0;

	p.seed = 1234;
	attack_reset(a, x0, &p, err);
	memcpy(start, attack_x_adv(a), sizeof start);
	for (i = 0; i < NPIX; i++)
		moved += start[i] != x0[i];
	attack_run(a, NULL, NULL);
	memcpy(first, attack_x_adv(a), sizeof first);
	attack_reset(a, x0, &p, err);
	same = !memcmp(start, attack_x_adv(a), sizeof start);
	attack_run(a, NULL, NULL);
	tap_ok(t, same && !memcmp(first, attack_x_adv(a), sizeof first) && moved > NPIX / 2,
	       "PGD with seed 1234 twice: the same random start (%d of %d pixels moved) and the same end",
	       moved, NPIX);
	p.seed = 1235;
	attack_reset(a, x0, &p, err);
	tap_ok(t, memcmp(start, attack_x_adv(a), sizeof start) != 0,
	       "PGD with another seed starts elsewhere");
	p.norm = ATTACK_L2;
	p.eps = 0.5;
	p.alpha = 0.1;
	attack_reset(a, x0, &p, err);
	memcpy(start, attack_x_adv(a), sizeof start);
	attack_reset(a, x0, &p, err);
	{
		int in01;
		double d = dist(a, ATTACK_L2, &in01);

		tap_ok(t, !memcmp(start, attack_x_adv(a), sizeof start) && d > 0.0 &&
			  d <= 0.5 + 1e-6 && in01,
		       "L2 PGD: a seeded start inside the L2 ball (|delta| = %.4f <= 0.5)", d);
	}
}

static int keep_last(const struct attack_report *rep, void *user)
{
	*(struct attack_report *)user = *rep;
	return 0;
}

static void test_targeted(struct tap *t, struct net *n, struct attack *a,
			  const float *x0)
{
	int label = predict(n, x0), target = (label + 2) % NCLS;
	struct attack_params p = params(ATTACK_BIM, ATTACK_LINF, 0.3, 0.02, 20, target);
	struct attack_report first, last, fin;
	char err[ERR_MAX] = "";

	attack_reset(a, x0, &p, err);
	attack_step(a, &first);
	attack_run(a, keep_last, &last);
	attack_evaluate(a, &fin);
	tap_diag("targeted I-FGSM %d -> %d: loss %.4f at x0, %.4f after 20 steps; p(target) %.4f -> %.4f; final prediction %d",
		 label, target, first.loss, fin.loss, first.target_prob, fin.target_prob, fin.pred);
	tap_ok(t, fin.loss < first.loss - 0.1 && fin.iter == 20 && !fin.updated &&
		  last.finished && attack_finished(a),
	       "targeted I-FGSM with ce lowers the loss toward the target over 20 steps (%.4f -> %.4f)",
	       first.loss, fin.loss);
	tap_ok(t, fin.pred == target && fin.success,
	       "and reaches the target (prediction %d, p = %.4f)", fin.pred, fin.target_prob);
}

static void test_switch(struct tap *t, struct net *n, struct attack *a,
			const float *x0)
{
	int target = (predict(n, x0) + 1) % NCLS, in01;
	struct attack_params p = params(ATTACK_MIFGSM, ATTACK_LINF, 0.1, 0.01, 20, target);
	struct attack_report rep;
	struct loss_info li;
	char err[ERR_MAX] = "";
	float probs[NCLS];
	double want;
	int i;

	attack_reset(a, x0, &p, err);
	for (i = 0; i < 5; i++)
		attack_step(a, &rep);
	p.loss.mode = LOSS_PROB_CE;
	tap_ok(t, attack_set_params(a, &p, err) == ST_OK, "switch to prob-ce after 5 steps");
	attack_step(a, &rep);
	want = loss_eval(&p.loss, NCLS, rep.logits, 0, target, 0, probs, NULL, &li);
	tap_ok(t, rep.iter == 5 && rep.loss_info.mode == LOSS_PROB_CE && rep.loss == want &&
		  attack_iter(a) == 6,
	       "step 6 evaluates prob-ce (loss %.4f) where ce left off", rep.loss);
	p.loss.mode = LOSS_CW;
	p.target = -1;
	p.eps = 0.05;
	attack_set_params(a, &p, err);
	tap_ok(t, dist(a, ATTACK_LINF, &in01) <= 0.05 + 1e-6 && in01,
	       "a smaller eps re-projects x_adv at once (|delta| %.4f)", dist(a, ATTACK_LINF, &in01));
	attack_step(a, &rep);
	tap_ok(t, rep.loss_info.mode == LOSS_CW && rep.loss_info.untargeted &&
		  rep.cls == attack_label(a) && rep.iter == 6,
	       "then untargeted cw away from label %d (loss %.4f)", rep.cls, rep.loss);
}

static void test_early_stop(struct tap *t, struct net *n, struct attack *a,
			    const float *x0)
{
	int label = predict(n, x0);
	struct attack_params p = params(ATTACK_BIM, ATTACK_LINF, 0.5, 0.05, 50, -1);
	struct attack_report rep;
	char err[ERR_MAX] = "";
	int steps = 0, fin = 0;

	p.early_stop = 1;
	attack_reset(a, x0, &p, err);
	while (!fin && steps < 60) {
		fin = attack_step(a, &rep);
		steps++;
	}
	tap_ok(t, fin && rep.success && !rep.updated && rep.pred != label &&
		  attack_iter(a) == steps - 1 && steps < 50,
	       "untargeted early stop: stopped at the first step that sees a wrong class (%d steps, %d updates)",
	       steps, attack_iter(a));
	p = params(ATTACK_BIM, ATTACK_LINF, 0.1, 0.01, 10, label);
	p.early_stop = 1;
	attack_reset(a, x0, &p, err);
	fin = attack_step(a, &rep);
	tap_ok(t, fin == 1 && rep.success && attack_iter(a) == 0 &&
		  !memcmp(attack_x_adv(a), x0, sizeof(float) * NPIX),
	       "targeted toward the class already predicted: stops at once, x_adv = x0");
	p.iters = 3;
	p.early_stop = 0;
	attack_set_params(a, &p, err);
	tap_ok(t, !attack_finished(a), "changing the parameters lifts the early stop");
}

static int cancel_at_3(const struct attack_report *rep, void *user)
{
	(void)rep;
	return ++*(int *)user == 3;
}

static void test_cancel(struct tap *t, struct attack *a, const float *x0)
{
	struct attack_params p = params(ATTACK_BIM, ATTACK_LINF, 0.1, 0.01, 10, 1);
	char err[ERR_MAX] = "";
	int calls = 0, rc;

	attack_reset(a, x0, &p, err);
	rc = attack_run(a, cancel_at_3, &calls);
	tap_ok(t, rc == 1 && calls == 3 && attack_iter(a) == 3 && !attack_finished(a),
	       "a callback returning non-zero cancels the run after 3 steps");
	calls = -100;
	rc = attack_run(a, cancel_at_3, &calls);
	tap_ok(t, rc == 0 && attack_iter(a) == 10 && attack_finished(a),
	       "running again continues to the end (iteration %d)", attack_iter(a));
}

static void expect_refused(struct tap *t, const struct attack_params *p,
			   const char *what, const char *needle)
{
	char err[ERR_MAX] = "";
	enum status st = attack_params_check(p, NCLS, err);

	tap_ok(t, st == ST_ERR_ARG && strstr(err, needle), "%s refused: %s", what, err);
}

static void test_check(struct tap *t, struct attack *a, const float *x0)
{
	struct attack_params p = params(ATTACK_PGD, ATTACK_LINF, 0.03, 0.01, 10, 1), q;
	char err[ERR_MAX] = "";
	float bad[NPIX];

	tap_ok(t, attack_params_check(&p, NCLS, err) == ST_OK, "good parameters pass");
	q = p, q.eps = 0.0;
	expect_refused(t, &q, "eps 0", "epsilon 0 is out of range");
	q = p, q.eps = -0.1;
	expect_refused(t, &q, "eps < 0", "(0, 1]");
	q = p, q.eps = 1.5;
	expect_refused(t, &q, "eps 1.5", "epsilon 1.5 is out of range");
	q = p, q.alpha = 0.05;
	expect_refused(t, &q, "alpha > eps", "alpha 0.05 is larger than epsilon 0.03");
	q = p, q.iters = 0;
	expect_refused(t, &q, "0 iterations", "iterations 0");
	q = p, q.target = 4;
	expect_refused(t, &q, "target 4 of 4 classes", "target class 4 is out of range");
	q = p, q.true_label = -2;
	expect_refused(t, &q, "true label -2", "true label -2 is out of range");
	q = p, q.true_label = 1;
	expect_refused(t, &q, "target = true label", "is the true label");
	q = p, q.loss.kappa = -1.0;
	expect_refused(t, &q, "kappa < 0", "kappa -1");
	q = p, q.loss.clip_eps = 0.5;
	expect_refused(t, &q, "clip eps 0.5", "clip epsilon 0.5");
	q = p, q.kind = ATTACK_FGSM, q.alpha = 0.5;
	tap_ok(t, attack_params_check(&q, NCLS, err) == ST_OK,
	       "FGSM ignores alpha (its step is eps)");
	q = p, q.iters = 0;
	tap_ok(t, attack_reset(a, x0, &q, err) == ST_ERR_ARG && strstr(err, "iterations 0"),
	       "attack_reset checks too: %s", err);
	memcpy(bad, x0, sizeof bad);
	bad[7] = 1.5f;
	tap_ok(t, attack_reset(a, bad, &p, err) == ST_ERR_ARG && strstr(err, "pixel 7"),
	       "an image outside [0,1] is refused: %s", err);
}

static void test_no_alloc(struct tap *t, struct attack *a, const float *x0)
{
	static const enum attack_kind kinds[] = { ATTACK_FGSM, ATTACK_BIM, ATTACK_PGD,
						  ATTACK_MIFGSM };
	struct attack_report rep;
	struct attack_params p;
	char err[ERR_MAX] = "";
	long before, steps = 0;
	int k, m, i, nm;

	/* warm up: the first calls may let the libraries set themselves up */
	p = params(ATTACK_BIM, ATTACK_LINF, 0.05, 0.01, 3, 1);
	attack_reset(a, x0, &p, err);
	attack_run(a, NULL, NULL);
	before = alloc_count;
	for (k = 0; k < 4; k++)
		for (nm = 0; nm < 2; nm++)
			for (m = 0; m < LOSS_N_MODES; m++) {
				p = params(kinds[k], nm ? ATTACK_L2 : ATTACK_LINF, 0.05, 0.01, 4,
					   m % 2 ? 2 : -1);
				p.loss.mode = (enum loss_mode)m;
				attack_reset(a, x0, &p, err);
				for (i = 0; i < 2; i++, steps++)
					attack_step(a, &rep);
				p.loss.mode = (enum loss_mode)((m + 1) % LOSS_N_MODES);
				attack_set_params(a, &p, err);
				attack_run(a, NULL, NULL);
				attack_evaluate(a, &rep);
			}
	tap_ok(t, alloc_count == before,
	       "reset, %ld steps, runs, parameter changes and evaluations of every kind, norm and loss allocated nothing (%ld allocations)",
	       steps, alloc_count - before);
}

static void test_diagnosis(struct tap *t, const float *x0)
{
	char err[ERR_MAX] = "";
	struct net *n = small_net(softmax_arch, conv_tensors, 6, err);
	struct net *d = small_net(dead_arch, dead_tensors, 4, err);
	struct attack *a = NULL;
	struct attack_report rep;
	struct attack_params p = params(ATTACK_BIM, ATTACK_LINF, 0.05, 0.01, 5, 2);

	tap_ok(t, n && d && net_get_info(n)->outputs_probs, "softmax and dead-ReLU models built %s", err);
	if (!n || !d)
		goto out;
	attack_new(n, &a, err);
	attack_reset(a, x0, &p, err);
	attack_step(a, &rep);
	tap_diag("%s", rep.diagnosis);
	tap_ok(t, strstr(rep.diagnosis, "outputs probabilities") &&
		  strstr(rep.diagnosis, "advex-import"),
	       "ce on a model ending in softmax: the diagnosis says it outputs probabilities");
	p.loss.mode = LOSS_PROB_CE;
	attack_set_params(a, &p, err);
	attack_step(a, &rep);
	tap_ok(t, rep.diagnosis[0] == '\0' && rep.grad.linf > 0.0 && rep.loss_info.out_is_probs,
	       "prob-ce on its output: healthy (input gradient Linf %.3g), no diagnosis",
	       rep.grad.linf);
	attack_free(a);

	attack_new(d, &a, err);
	p.loss.mode = LOSS_CE;
	attack_reset(a, x0, &p, err);
	attack_step(a, &rep);
	tap_diag("%s", rep.diagnosis);
	tap_ok(t, rep.grad.n_zero == rep.grad.n && strstr(rep.diagnosis, "layer 3 (relu)") &&
		  strstr(rep.diagnosis, "dead ReLUs") && rep.layer_norms[4] > 0.0 &&
		  rep.layer_norms[3] == 0.0 && rep.n_layers == 5,
	       "dead ReLUs: the input gradient is all zero and the diagnosis names layer 3 (relu)");
out:
	attack_free(a);
	net_free(n);
	net_free(d);
}

static void test_story(struct tap *t, const float *x0)
{
	char err[ERR_MAX] = "";
	struct net *n = story_net(story_bias, err), *u = story_net(underflow_bias, err);
	struct attack *a = NULL;
	struct attack_report rep;
	struct attack_params p = params(ATTACK_FGSM, ATTACK_LINF, 8.0 / 255, 8.0 / 255, 1, 0);
	int i, unchanged = 1;

	if (!tap_ok(t, n && u, "story models built %s", err))
		goto out;
	attack_new(n, &a, err);
	p.loss.mode = LOSS_PROB_CE;
	attack_reset(a, x0, &p, err);
	attack_step(a, &rep);
	tap_diag("%s", rep.diagnosis);
	tap_ok(t, rep.pred == 3 && rep.grad.n_zero == rep.grad.n && fabs(rep.loss - 16.1181) < 1e-3 &&
		  !memcmp(attack_x_adv(a), x0, sizeof(float) * NPIX) &&
		  strstr(rep.diagnosis, "p(airplane) = ") && strstr(rep.diagnosis, "below the clip") &&
		  strstr(rep.diagnosis, "16.118"),
	       "targeted FGSM with prob-ce toward airplane (p = %.3g): loss %.3f, gradient all zero, x_adv = x0, explained",
	       rep.target_prob, rep.loss);
	p.loss.mode = LOSS_CE;
	attack_reset(a, x0, &p, err);
	attack_step(a, &rep);
	tap_ok(t, rep.grad.n_zero == 0 && rep.loss > 30.0 && rep.diagnosis[0] == '\0' &&
		  fabs(rep.pert_linf - 8.0 / 255) < 1e-6,
	       "the same FGSM with ce: loss %.3f, no zero component, x_adv moved by 8/255", rep.loss);
	attack_free(a);

	attack_new(u, &a, err);
	p = params(ATTACK_BIM, ATTACK_L2, 0.5, 0.1, 3, 0);
	p.loss.mode = LOSS_PROB_NAIVE;
	attack_reset(a, x0, &p, err);
	attack_run(a, keep_last, &rep);
	for (i = 0; i < NPIX; i++)
		unchanged &= attack_x_adv(a)[i] == x0[i];
	tap_diag("%s", rep.diagnosis);
	tap_ok(t, isinf(rep.loss) && rep.grad.n_nan == rep.grad.n && unchanged &&
		  strstr(rep.diagnosis, "underflows") && strstr(rep.diagnosis, "p(airplane) = 0"),
	       "prob-naive with p(airplane) underflowed: loss inf, gradient all NaN, x_adv stays x0 (no NaN enters), explained");
out:
	attack_free(a);
	net_free(n);
	net_free(u);
}

int main(void)
{
	struct tap t = { 0 };
	char err[ERR_MAX] = "";
	struct net *n = small_net(conv_arch, conv_tensors, 6, err);
	struct attack *a = NULL;
	static float x0[NPIX];

	tap_ok(&t, n != NULL, "small conv model built %s", n ? "" : err);
	if (!n)
		return tap_done(&t);
	tap_ok(&t, attack_new(n, &a, err) == ST_OK, "attack_new %s", err);
	test_image(x0, 11);
	test_fgsm(&t, n, a, x0);
	test_projection(&t, a, x0);
	test_pgd_seed(&t, a, x0);
	test_targeted(&t, n, a, x0);
	test_switch(&t, n, a, x0);
	test_early_stop(&t, n, a, x0);
	test_cancel(&t, a, x0);
	test_check(&t, a, x0);
	test_no_alloc(&t, a, x0);
	attack_free(a);
	net_free(n);
	test_diagnosis(&t, x0);
	test_story(&t, x0);
	return tap_done(&t);
}
