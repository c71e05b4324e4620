/* test_attack.c - the attack engine on small in-memory models: FGSM against
 * a hand computation, the projection after every step of every kind and
 * norm, PGD's seeded start, a targeted run that lowers its loss, changing
 * the loss, epsilon and target mid-attack, early stop, cancel, refused
 * parameters, no allocation in the step, and the diagnosis of a softmax
 * model and of dead ReLUs; batched stepping (attack_batch): the same
 * traces as each attack alone, slots refilled as attacks finish, no
 * allocation, and per-image diagnoses. */
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

/* A model of these tensors for batches of up to max_batch images. */
static struct net *small_net_batch(const char *arch, const struct spec *specs,
				   int n, int max_batch, char *err)
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
	    net_create(mf, max_batch, 0, 0, &net, err) != ST_OK)
		net = NULL;
	modelfile_close(mf);
	for (i = 0; i < n; i++)
		free(data[i]);
	return net;
}

static struct net *small_net(const char *arch, const struct spec *specs, int n,
			     char *err)
{
	return small_net_batch(arch, specs, n, 1, err);
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
	struct attack_report rep;
	struct attack_params p;
	char err[ERR_MAX] = "";
	long before, steps = 0;
	int k, m, i, nm, ran = 0;

	/* warm up: the first calls may let the libraries set themselves up */
	p = params(ATTACK_BIM, ATTACK_LINF, 0.05, 0.01, 3, 1);
	attack_reset(a, x0, &p, err);
	attack_run(a, NULL, NULL);
	before = alloc_count;
	/* every kind, with 2 restarts, 2 binary steps and the 8-bit grid on
	 * every other run; the combinations a kind refuses (cw
	 * Linf, deepfool targeted) fail their reset and are not counted */
	for (k = 0; k < ATTACK_N_KINDS; k++)
		for (nm = 0; nm < 2; nm++)
			for (m = 0; m < LOSS_N_MODES; m++) {
				p = params((enum attack_kind)k, nm ? ATTACK_L2 : ATTACK_LINF, 0.05,
					   0.01, 4, m % 2 ? 2 : -1);
				p.loss.mode = (enum loss_mode)m;
				p.restarts = 2;
				p.binary_steps = 2;
				p.quantize = m % 2;
				if (attack_reset(a, x0, &p, err) != ST_OK)
					continue;
				ran++;
				for (i = 0; i < 2; i++, steps++)
					attack_step(a, &rep);
				p.loss.mode = (enum loss_mode)((m + 1) % LOSS_N_MODES);
				attack_set_params(a, &p, err);
				attack_run(a, NULL, NULL);
				attack_evaluate(a, &rep);
			}
	tap_ok(t, alloc_count == before && ran > 8 * LOSS_N_MODES * 2 - 3 * LOSS_N_MODES,
	       "reset, %ld steps, runs, parameter changes and evaluations of every kind (%d of "
	       "them, APGD, Square, DeepFool and C&W included), norm and loss allocated "
	       "nothing (%ld allocations)", steps, ran, alloc_count - before);
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

/* ---- several attacks per forward/backward ---------------------------------- */

#define BJOBS 5
#define BMAX 8			/* slots of the largest batch tested */
#define BSTEPS 12		/* reports of one attack: iters + the end point */
#define BNORMS 16		/* layer norms kept per report */

/* Everything an attack reports, step by step, and x_adv after each. */
struct trace {
	int n;
	struct {
		double loss, norms[BNORMS];
		int iter, pred, success, updated, finished, n_layers;
		char diag[DIAG_EXPLAIN_MAX];
	} r[BSTEPS];
	float x[BSTEPS][NPIX];
};

static void trace_add(struct trace *tr, const struct attack_report *rep,
		      const struct attack *a)
{
	int i = tr->n < BSTEPS ? tr->n++ : BSTEPS - 1, l;

	tr->r[i].loss = rep->loss;
	tr->r[i].iter = rep->iter;
	tr->r[i].pred = rep->pred;
	tr->r[i].success = rep->success;
	tr->r[i].updated = rep->updated;
	tr->r[i].finished = rep->finished;
	tr->r[i].n_layers = rep->n_layers;
	for (l = 0; l <= rep->n_layers && l < BNORMS; l++)
		tr->r[i].norms[l] = rep->layer_norms[l];
	snprintf(tr->r[i].diag, sizeof tr->r[i].diag, "%s", rep->diagnosis);
	memcpy(tr->x[i], attack_x_adv(a), sizeof tr->x[i]);
}

/* Five attacks that differ in every way the batch must keep apart: image,
 * kind, norm, loss, target (one untargeted with its label left to the
 * prediction), eps, length and early stop. */
static void batch_jobs(struct net *n, float (*x)[NPIX], struct attack_params *p)
{
	int i;

	for (i = 0; i < BJOBS; i++)
		test_image(x[i], 100 + (uint64_t)i);
	p[0] = params(ATTACK_BIM, ATTACK_LINF, 0.03, 0.01, 6, 0);
	p[1] = params(ATTACK_PGD, ATTACK_LINF, 0.05, 0.01, 8, -1);
	p[1].seed = 3;
	p[2] = params(ATTACK_MIFGSM, ATTACK_L2, 1.0, 0.25, 5, 2);
	p[2].loss.mode = LOSS_CW;
	p[2].loss.kappa = 0.5;
	p[3] = params(ATTACK_PGD, ATTACK_L2, 4.0, 1.0, 10, -1);
	p[3].true_label = predict(n, x[3]);
	p[3].early_stop = 1;
	p[3].loss.mode = LOSS_PROB_CE;
	p[4] = params(ATTACK_FGSM, ATTACK_LINF, 0.05, 0.05, 1, 3);
}

/* The reference: attack_step to the end, then attack_evaluate. */
static void run_alone(struct attack *a, const float *x0,
		      const struct attack_params *p, struct trace *tr)
{
	struct attack_report rep;
	char err[ERR_MAX];
	int fin;

	tr->n = 0;
	if (attack_reset(a, x0, p, err) != ST_OK)
		return;
	do {
		fin = attack_step(a, &rep);
		trace_add(tr, &rep, a);
	} while (fin == 0);
	attack_evaluate(a, &rep);
	trace_add(tr, &rep, a);
}

/* The state of a sweep through a batch, as `advex attack --images` runs
 * one: each slot steps its attack to the end, is evaluated there, then
 * takes the next job. */
struct sweep {
	struct attack_batch *b;
	const float (*x)[NPIX];
	const struct attack_params *p;
	int n_jobs, next;
	int job[BMAX];		/* slot -> job */
	struct attack_report reps[BMAX];
	struct trace *tr;	/* n_jobs */
	int widest, steps;	/* most images in one step; batched steps */
};

static void sweep_fill(struct sweep *w, int s)
{
	char err[ERR_MAX];

	if (w->next < w->n_jobs &&
	    attack_reset(attack_batch_attack(w->b, s), w->x[w->next], &w->p[w->next],
			 err) == ST_OK) {
		w->tr[w->next].n = 0;
		w->job[s] = w->next++;
		attack_batch_set_op(w->b, s, ATTACK_OP_STEP, err);
	} else {
		attack_batch_set_op(w->b, s, ATTACK_OP_NONE, err);
	}
}

static void run_sweep(struct sweep *w)
{
	int s, m, max = attack_batch_max(w->b);
	char err[ERR_MAX];

	w->next = w->widest = w->steps = 0;
	for (s = 0; s < max; s++)
		sweep_fill(w, s);
	while ((m = attack_batch_step(w->b, w->reps)) > 0) {
		w->widest = m > w->widest ? m : w->widest;
		w->steps++;
		for (s = 0; s < max; s++)
			if (attack_batch_op(w->b, s) != ATTACK_OP_NONE)
				trace_add(&w->tr[w->job[s]], &w->reps[s],
					  attack_batch_attack(w->b, s));
		for (s = 0; s < max; s++) {
			if (attack_batch_op(w->b, s) == ATTACK_OP_EVALUATE)
				sweep_fill(w, s);
			else if (attack_batch_op(w->b, s) == ATTACK_OP_STEP &&
				 w->reps[s].finished)
				attack_batch_set_op(w->b, s, ATTACK_OP_EVALUATE, err);
		}
	}
}

static double rel_diff(double a, double b)
{
	double m = fabs(a) > fabs(b) ? fabs(a) : fabs(b);

	return a == b ? 0.0 : m > 0.0 ? fabs(a - b) / m : INFINITY;
}

/* Whether trace b is trace a up to float rounding (1e-5 relative in the
 * loss and layer norms, 1e-5 per pixel), with the same predictions,
 * successes, iterations, updates and diagnoses; *dx, *dl: the largest
 * pixel and relative loss differences seen. */
static int same_trace(const struct trace *a, const struct trace *b, double *dx,
		      double *dl)
{
	int i, k, same = a->n == b->n && a->n > 0;

	for (i = 0; same && i < a->n; i++) {
		same = a->r[i].iter == b->r[i].iter && a->r[i].pred == b->r[i].pred &&
		       a->r[i].success == b->r[i].success &&
		       a->r[i].updated == b->r[i].updated &&
		       a->r[i].finished == b->r[i].finished &&
		       a->r[i].n_layers == b->r[i].n_layers &&
		       !strcmp(a->r[i].diag, b->r[i].diag) &&
		       rel_diff(a->r[i].loss, b->r[i].loss) <= 1e-5;
		*dl = fmax(*dl, rel_diff(a->r[i].loss, b->r[i].loss));
		for (k = 0; same && k <= a->r[i].n_layers && k < BNORMS; k++)
			same = rel_diff(a->r[i].norms[k], b->r[i].norms[k]) <= 1e-5;
		for (k = 0; same && k < NPIX; k++) {
			*dx = fmax(*dx, fabs((double)a->x[i][k] - b->x[i][k]));
			same = fabs((double)a->x[i][k] - b->x[i][k]) <= 1e-5;
		}
	}
	return same;
}

static int same_traces(const struct trace *a, const struct trace *b, int n,
		       double *dx, double *dl)
{
	int j, same = 1;

	*dx = *dl = 0.0;
	for (j = 0; j < n; j++)
		same &= same_trace(&a[j], &b[j], dx, dl);
	return same;
}

static void test_batch_sweep(struct tap *t, struct net *single)
{
	static float x[BJOBS][NPIX];
	static struct trace alone[BJOBS], batched[BJOBS];
	struct attack_params p[BJOBS];
	struct attack *a = NULL;
	struct sweep w;
	char err[ERR_MAX] = "";
	struct net *n = small_net_batch(conv_arch, conv_tensors, 6, BMAX, err);
	double dx, dl;
	long before;
	int j, sizes[] = { BJOBS, 2, BMAX }, i, steps_alone = 0, same;

	if (!tap_ok(t, n && attack_new(single, &a, err) == ST_OK,
		    "a model for batches of %d built %s", BMAX, err))
		goto out;
	batch_jobs(single, x, p);
	for (j = 0; j < BJOBS; j++) {
		run_alone(a, x[j], &p[j], &alone[j]);
		steps_alone += alone[j].n;
	}
	memset(&w, 0, sizeof w);
	w.x = (const float (*)[NPIX])x;
	w.p = p;
	w.n_jobs = BJOBS;
	w.tr = batched;
	for (i = 0; i < 3; i++) {
		if (!tap_ok(t, attack_batch_new(n, sizes[i], &w.b, err) == ST_OK,
			    "attack_batch_new with %d slots %s", sizes[i], err))
			continue;
		run_sweep(&w);
		same = same_traces(alone, batched, BJOBS, &dx, &dl);
		tap_ok(t, same && w.widest == (sizes[i] < BJOBS ? sizes[i] : BJOBS),
		       "%d attacks (bim, pgd, mi-fgsm l2 cw, early-stopped pgd l2, fgsm) through "
		       "%d slot%s%s: every step's x_adv, loss, prediction, success, layer norms and "
		       "diagnosis as each alone (pixels within %.2g, loss within %.2g relative), "
		       "%d batched steps for %d alone, up to %d images each", BJOBS, sizes[i],
		       sizes[i] > 1 ? "s" : "", sizes[i] < BJOBS ? ", refilled as they finish" : "",
		       dx, dl, w.steps, steps_alone, w.widest);
		if (sizes[i] == 2) {
			before = alloc_count;
			run_sweep(&w);
			same = alloc_count == before;
			same &= same_traces(alone, batched, BJOBS, &dx, &dl);
			tap_ok(t, same,
			       "the sweep again: resets, refills and %d batched steps allocated nothing "
			       "(%ld allocations), same traces", w.steps, alloc_count - before);
		}
		attack_batch_free(w.b);
	}
	tap_ok(t, alone[3].n > 2 && alone[3].n < 11 && alone[3].r[alone[3].n - 1].success &&
		  alone[1].r[0].finished == 0 && alone[4].n == 2,
	       "the jobs differ in length: early stop after %d of 10 steps, fgsm 1 step, pgd 8",
	       alone[3].n - 1);
out:
	attack_free(a);
	net_free(n);
}

/* A ReLU that is dead for dark images and alive for bright ones: in one
 * batch, the dark image's diagnosis must come from its own layer norms
 * (exactly 0 below the ReLU), not from the batch's. */
static const float half[15] = { 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f,
				0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f };
static const float minus_one[5] = { -1.0f, -1.0f, -1.0f, -1.0f, -1.0f };

static void test_batch_diagnosis(struct tap *t)
{
	const struct spec specs[] = {
		{ "d1.weight", 2, { 5, 3 }, 0.0f, 0.0f, half },
		{ "d1.bias", 1, { 5 }, 0.0f, 0.0f, minus_one },
		{ "d2.weight", 2, { 4, 5 }, -1.0f, 1.0f, NULL },
		{ "d2.bias", 1, { 4 }, -0.5f, 0.5f, NULL },
	};
	static float x[2][NPIX];
	char err[ERR_MAX] = "";
	struct net *n = small_net_batch(dead_arch, specs, 4, 2, err);
	struct attack_params p = params(ATTACK_BIM, ATTACK_LINF, 0.02, 0.01, 3, 2);
	struct attack_batch *b = NULL;
	struct attack_report reps[2], alone;
	char want[DIAG_EXPLAIN_MAX];
	struct attack *a = NULL;
	int i;

	if (!tap_ok(t, n && attack_batch_new(n, 2, &b, err) == ST_OK && attack_new(n, &a, err) == ST_OK,
		    "half-dead model and a batch of 2 %s", err))
		goto out;
	for (i = 0; i < NPIX; i++) {
		x[0][i] = 0.1f;	/* dark: 1.5 * 0.1 - 1 < 0 */
		x[1][i] = 0.9f;	/* bright: 1.5 * 0.9 - 1 > 0 */
	}
	attack_reset(a, x[0], &p, err);
	attack_step(a, &alone);
	snprintf(want, sizeof want, "%s", alone.diagnosis);
	for (i = 0; i < 2; i++) {
		attack_reset(attack_batch_attack(b, i), x[i], &p, err);
		attack_batch_set_op(b, i, ATTACK_OP_STEP, err);
	}
	attack_batch_step(b, reps);
	tap_diag("%s", reps[0].diagnosis);
	tap_ok(t, strstr(want, "layer 3 (relu)") && !strcmp(reps[0].diagnosis, want) &&
		  reps[0].layer_norms[3] == 0.0 && reps[1].layer_norms[3] > 0.0 &&
		  reps[1].grad.linf > 0.0 && !reps[1].diagnosis[0],
	       "batched with a live image, a dead one is still explained by its own norms "
	       "(dead ReLU at layer 3), the live one has none");
out:
	attack_free(a);
	attack_batch_free(b);
	net_free(n);
}

static void test_batch_refused(struct tap *t, struct net *single)
{
	struct attack_batch *b = NULL;
	char err[ERR_MAX] = "";

	tap_ok(t, attack_batch_new(single, 2, &b, err) == ST_ERR_ARG && !b &&
		  strstr(err, "max_batch 1"),
	       "a batch wider than the net's max_batch is refused: %s", err);
	if (attack_batch_new(single, 1, &b, err) != ST_OK)
		return;
	tap_ok(t, attack_batch_set_op(b, 0, ATTACK_OP_STEP, err) == ST_ERR_ARG &&
		  attack_batch_step(b, NULL) == 0 && attack_batch_attack(b, 1) == NULL,
	       "a slot with no image cannot step (%s); an empty batch steps nothing", err);
	attack_batch_free(b);
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
	test_batch_sweep(&t, n);
	test_batch_diagnosis(&t);
	test_batch_refused(&t, n);
	attack_free(a);
	net_free(n);
	test_diagnosis(&t, x0);
	test_story(&t, x0);
	return tap_done(&t);
}
