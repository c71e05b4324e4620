/* test_net.c - the network as a whole: gradients of a small net with every
 * layer kind against central differences, batch consistency, no allocation
 * in the step, a conv with its ReLU fused against the two run apart, and
 * the loader's checks of architecture against tensors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arch.h"
#include "blas.h"
#include "loss.h"
#include "modelfile.h"
#include "net.h"
#include "rng.h"
#include "gradcheck.h"
#include "tap.h"

#include "alloc_count.h"

/* ---- a small model with every layer kind ------------------------------- */

#define IN 12
#define NCLS 4

static const char small_arch[] =
	"[{\"op\":\"conv2d\",\"name\":\"c1\",\"out\":4,\"kernel\":[3,3],\"stride\":[1,1],\"padding\":[1,1],\"bias\":false},"
	"{\"op\":\"batchnorm\",\"name\":\"bn1\",\"eps\":1e-5},"
	"{\"op\":\"relu\"},"
	"{\"op\":\"maxpool\",\"kernel\":[2,2],\"stride\":[2,2]},"
	"{\"op\":\"conv2d\",\"name\":\"c2\",\"out\":5,\"kernel\":[3,3],\"stride\":[2,2],\"padding\":[1,1]},"
	"{\"op\":\"relu\"},"
	"{\"op\":\"avgpool\",\"kernel\":[3,3],\"stride\":[1,1],\"padding\":[1,1],\"count_include_pad\":false},"
	"{\"op\":\"conv2d\",\"name\":\"c3\",\"out\":6,\"kernel\":[1,1]},"
	"{\"op\":\"gap\"},"
	"{\"op\":\"flatten\"},"
	"{\"op\":\"dense\",\"name\":\"d1\",\"out\":7},"
	"{\"op\":\"relu\"},"
	"{\"op\":\"dropout\",\"p\":0.5},"
	"{\"op\":\"dense\",\"name\":\"d2\",\"out\":4}]";

/* small_arch with a dropout between each conv and its ReLU: p = 0, so the
 * identity at inference, with no parameters; but the ReLUs no longer
 * follow a conv directly, so they are not fused into it (net.c,
 * fuse_relus) and run as passes of their own, on the same weights. */
static const char unfused_arch[] =
	"[{\"op\":\"conv2d\",\"name\":\"c1\",\"out\":4,\"kernel\":[3,3],\"stride\":[1,1],\"padding\":[1,1],\"bias\":false},"
	"{\"op\":\"batchnorm\",\"name\":\"bn1\",\"eps\":1e-5},"
	"{\"op\":\"dropout\",\"p\":0},"
	"{\"op\":\"relu\"},"
	"{\"op\":\"maxpool\",\"kernel\":[2,2],\"stride\":[2,2]},"
	"{\"op\":\"conv2d\",\"name\":\"c2\",\"out\":5,\"kernel\":[3,3],\"stride\":[2,2],\"padding\":[1,1]},"
	"{\"op\":\"dropout\",\"p\":0},"
	"{\"op\":\"relu\"},"
	"{\"op\":\"avgpool\",\"kernel\":[3,3],\"stride\":[1,1],\"padding\":[1,1],\"count_include_pad\":false},"
	"{\"op\":\"conv2d\",\"name\":\"c3\",\"out\":6,\"kernel\":[1,1]},"
	"{\"op\":\"gap\"},"
	"{\"op\":\"flatten\"},"
	"{\"op\":\"dense\",\"name\":\"d1\",\"out\":7},"
	"{\"op\":\"relu\"},"
	"{\"op\":\"dropout\",\"p\":0.5},"
	"{\"op\":\"dense\",\"name\":\"d2\",\"out\":4}]";

struct spec {
	const char *name;
	int ndim;
	int64_t shape[4];
	float lo, hi;	/* uniform range of the random values */
};

static const struct spec small_tensors[] = {
	{ "c1.weight", 4, { 4, 3, 3, 3 }, -0.5f, 0.5f },
	{ "bn1.weight", 1, { 4 }, 0.5f, 1.5f },
	{ "bn1.bias", 1, { 4 }, -0.2f, 0.2f },
	{ "bn1.running_mean", 1, { 4 }, -0.3f, 0.3f },
	{ "bn1.running_var", 1, { 4 }, 0.5f, 2.0f },
	{ "c2.weight", 4, { 5, 4, 3, 3 }, -0.4f, 0.4f },
	{ "c2.bias", 1, { 5 }, -0.1f, 0.1f },
	{ "c3.weight", 4, { 6, 5, 1, 1 }, -0.8f, 0.8f },
	{ "c3.bias", 1, { 6 }, -0.1f, 0.1f },
	{ "d1.weight", 2, { 7, 6 }, -0.8f, 0.8f },
	{ "d1.bias", 1, { 7 }, -0.1f, 0.1f },
	{ "d2.weight", 2, { 4, 7 }, -0.8f, 0.8f },
	{ "d2.bias", 1, { 4 }, -0.1f, 0.1f },
};
#define N_SMALL (int)(sizeof small_tensors / sizeof small_tensors[0])

/* Encode the small model; `drop` omits one tensor, `bad_shape` corrupts
 * the first dimension of one, `extra` adds an unused tensor. */
static struct modelfile *small_model(const char *arch, int drop, int bad_shape,
				     int extra, char *err)
{
	struct mf_out_tensor t[N_SMALL + 1];
	float *data[N_SMALL + 1];
	const char *keys[] = { "advex.format", "advex.arch", "advex.input",
			       "advex.mean", "advex.std", "advex.channel_order",
			       "advex.classes" };
	const char *vals[] = { "1", arch, "[3, 12, 12]", "[0.1, 0.2, 0.3]",
			       "[0.5, 0.6, 0.7]", "BGR",
			       "[\"a\", \"b\", \"c\", \"d\"]" };
	struct modelfile *mf = NULL;
	struct rng r;
	void *buf;
	size_t len;
	int i, n = 0;

	rng_seed(&r, 42);
	for (i = 0; i < N_SMALL + !!extra; i++) {
		const struct spec *s = i < N_SMALL ? &small_tensors[i] : &small_tensors[0];
		size_t cnt = 1, k;
		int d;

		data[n] = NULL;
		if (i == drop)
			continue;
		for (d = 0; d < s->ndim; d++)
			cnt *= (size_t)s->shape[d];
		data[n] = malloc(cnt * sizeof(float));
		for (k = 0; k < cnt; k++)
			data[n][k] = s->lo + (s->hi - s->lo) * (float)rng_uniform(&r);
		t[n].name = i < N_SMALL ? s->name : "unused.weight";
		t[n].ndim = s->ndim;
		memcpy(t[n].shape, s->shape, sizeof s->shape);
		if (i == bad_shape)
			t[n].shape[0] += 1;
		t[n].data = data[n];
		if (i == bad_shape) {
			free(data[n]);
			cnt = cnt / (size_t)s->shape[0] * (size_t)(s->shape[0] + 1);
			data[n] = calloc(cnt, sizeof(float));
			t[n].data = data[n];
		}
		n++;
	}
	if (modelfile_encode(t, n, keys, vals, 7, &buf, &len, err) == ST_OK)
		modelfile_open_buffer(buf, len, "small.safetensors", &mf, err);
	for (i = 0; i < n; i++)
		free(data[i]);
	return mf;
}

static void test_gradients(struct tap *t, struct net *n)
{
	enum { NPIX = 3 * IN * IN };
	float x[NPIX], g[NPIX], dz[NCLS];
	double ga[NPIX], gn[NPIX], sq = 0.0;
	const double h = 1e-3;
	size_t np, k;
	float *p, *pg;
	double pa[24], pn[24];
	struct rng r;
	int i, target = 1;

	rng_seed(&r, 5);
	for (i = 0; i < NPIX; i++)
		x[i] = (float)rng_uniform(&r);
	net_zero_grads(n);
	loss_ce(NCLS, net_forward(n, x, 1), target, NULL, dz);
	net_backward(n, dz, g);
	for (i = 0; i < NPIX; i++) {
		gn[i] = gradcheck_central(n, &x[i], h, x, NCLS, target);
		ga[i] = g[i];
		sq += ga[i] * ga[i];
	}
	tap_ok(t, gradcheck_rel_l2(ga, gn, NPIX) < 1e-2,
	       "small net (conv+bn, relu, maxpool, conv/2, avgpool, 1x1 conv, gap, dense, dropout; BGR, mean/std): "
	       "pixel gradient vs central differences rel L2 err %.2e < 1e-2",
	       gradcheck_rel_l2(ga, gn, NPIX));
	tap_ok(t, fabs(sqrt(sq) - net_pixel_grad_norm(n)) <= 1e-5 * sqrt(sq),
	       "pixel gradient norm recorded (%.6g) equals the norm of dx (%.6g)",
	       net_pixel_grad_norm(n), sqrt(sq));
	tap_ok(t, fabs(net_grad_norms(n)[net_get_info(n)->n_layers] -
		       sqrt(dz[0] * dz[0] + dz[1] * dz[1] + dz[2] * dz[2] + dz[3] * dz[3])) < 1e-6,
	       "gradient norm at the output equals ||dLoss/dlogits||");

	/* parameter gradients: every 7th parameter, against central differences */
	p = net_params(n, &np);
	pg = net_param_grads(n, NULL);
	for (k = 0, i = 0; k < np && i < 24; k += 7, i++) {
		pn[i] = gradcheck_central(n, &p[k], h, x, NCLS, target);
		pa[i] = pg[k];
	}
	tap_ok(t, gradcheck_rel_l2(pa, pn, i) < 1e-2,
	       "parameter gradients (%d sampled of %zu) vs central differences rel L2 err %.2e < 1e-2",
	       i, np, gradcheck_rel_l2(pa, pn, i));
}

static void test_batch(struct tap *t, struct net *n)
{
	enum { NPIX = 3 * IN * IN };
	static float x[3 * NPIX], g[3 * NPIX], g1[NPIX];
	float z1[3][NCLS], dz[3 * NCLS];
	const float *z;
	double maxd = 0.0, maxg = 0.0;
	struct rng r;
	long before;
	int i, b;

	rng_seed(&r, 9);
	for (i = 0; i < 3 * NPIX; i++)
		x[i] = (float)rng_uniform(&r);
	for (b = 0; b < 3; b++)
		memcpy(z1[b], net_forward(n, x + b * NPIX, 1), sizeof z1[b]);
	before = alloc_count;
	z = net_forward(n, x, 3);
	for (b = 0; b < 3; b++)
		for (i = 0; i < NCLS; i++)
			maxd = fmax(maxd, fabs(z[b * NCLS + i] - z1[b][i]));
	for (b = 0; b < 3; b++)
		loss_ce(NCLS, z + b * NCLS, b, NULL, dz + b * NCLS);
	net_backward(n, dz, g);
	tap_ok(t, alloc_count == before,
	       "forward + backward of a batch of 3 allocated nothing (%ld allocations)",
	       alloc_count - before);
	tap_ok(t, maxd < 1e-5, "batch of 3 gives the logits of 3 single forwards (max diff %.2e)",
	       maxd);
	loss_ce(NCLS, net_forward(n, x + NPIX, 1), 1, NULL, dz);
	net_backward(n, dz, g1);
	for (i = 0; i < NPIX; i++)
		maxg = fmax(maxg, fabs(g[NPIX + i] - g1[i]));
	tap_ok(t, maxg < 1e-6, "image 2 of the batch has the gradient of its own backward (max diff %.2e)",
	       maxg);
}

/* net_save writes what net_create reads back: same logits, BN folded. */
static void test_save(struct tap *t, struct net *n)
{
	enum { NPIX = 3 * IN * IN };
	char path[] = "/tmp/advex-test-net-XXXXXX", file[64], err[ERR_MAX] = "";
	const char *k[] = { "advex.train.epoch" }, *v[] = { "3" };
	float x[NPIX], z0[NCLS];
	struct modelfile *mf = NULL;
	struct net *m = NULL;
	const float *z;
	struct rng r;
	double maxd = 0.0;
	int i, ok;

	rng_seed(&r, 11);
	for (i = 0; i < NPIX; i++)
		x[i] = (float)rng_uniform(&r);
	memcpy(z0, net_forward(n, x, 1), sizeof z0);
	ok = mkdtemp(path) != NULL;
	snprintf(file, sizeof file, "%s/m.safetensors", path);
	ok = ok && net_save(n, file, k, v, 1, err) == ST_OK &&
	     modelfile_open(file, &mf, err) == ST_OK &&
	     net_create(mf, 1, 0, 0, &m, err) == ST_OK;
	if (ok) {
		z = net_forward(m, x, 1);
		for (i = 0; i < NCLS; i++)
			maxd = fmax(maxd, fabs(z[i] - z0[i]));
	}
	tap_ok(t, ok && maxd == 0.0 && net_get_info(m)->n_layers == 13 &&
		  net_get_info(m)->bgr && !strcmp(net_get_info(m)->classes[3], "d") &&
		  !strcmp(modelfile_meta(mf, "advex.train.epoch"), "3"),
	       "net_save then load: identical logits (max diff %.1e), BGR, classes and extra metadata kept %s",
	       maxd, err);
	net_free(m);
	modelfile_close(mf);
	unlink(file);
	rmdir(path);
}

/* Freezing the first layers leaves their gradients at zero and the rest as
 * before; training-mode dropout changes the output, inference does not. */
static void test_freeze_dropout(struct tap *t, struct net *n)
{
	enum { NPIX = 3 * IN * IN };
	float x[NPIX], dz[NCLS], z0[NCLS];
	struct net_param_view v0, v4;
	float *full;
	size_t np, k;
	double d_frozen = 0.0, d_rest = 0.0, d_drop = 0.0, d_inf = 0.0;
	struct rng r;
	int i;

	rng_seed(&r, 12);
	for (i = 0; i < NPIX; i++)
		x[i] = (float)rng_uniform(&r);
	net_zero_grads(n);
	loss_ce(NCLS, net_forward(n, x, 1), 2, NULL, dz);
	net_backward(n, dz, NULL);
	net_param_grads(n, &np);
	full = malloc(np * sizeof *full);
	memcpy(full, net_param_grads(n, NULL), np * sizeof *full);
	net_set_trainable_from(n, 3);
	net_zero_grads(n);
	loss_ce(NCLS, net_forward(n, x, 1), 2, NULL, dz);
	net_backward(n, dz, NULL);
	net_layer_params(n, 0, &v0);
	net_layer_params(n, 3, &v4);
	for (k = 0; k < v0.nw; k++)
		d_frozen = fmax(d_frozen, fabs(v0.dw[k]));
	for (k = 0; k < v4.nw; k++)
		d_rest = fmax(d_rest, fabs(v4.dw[k] - full[v4.dw - net_param_grads(n, NULL) + k]));
	tap_ok(t, d_frozen == 0.0 && d_rest < 1e-7 && v4.nw == 180,
	       "freeze below layer 3: conv layer 0 gradient stays 0, conv layer 3 unchanged (diff %.1e)", d_rest);
	net_set_trainable_from(n, 0);
	free(full);

	memcpy(z0, net_forward(n, x, 1), sizeof z0);
	net_set_training(n, 1, 5);
	for (i = 0; i < NCLS; i++)
		d_drop = fmax(d_drop, fabs(net_forward(n, x, 1)[i] - z0[i]));
	net_set_training(n, 0, 0);
	for (i = 0; i < NCLS; i++)
		d_inf = fmax(d_inf, fabs(net_forward(n, x, 1)[i] - z0[i]));
	tap_ok(t, d_drop > 1e-4 && d_inf == 0.0,
	       "dropout is active in training (logits move %.2g) and the identity at inference", d_drop);
}

/* Batched convolutions (several images per product block, winograd.h):
 * vgg-compact at 64x64 (3x3 layers at 64, 32, 16 and 8: 4x4 tiles with
 * 3 images per block, 2x2 tiles with 3 and 9) with batch 4 gives, in each
 * conv mode, the logits and input gradients of 4 single-image passes, and
 * allocates nothing. Not bit for bit: a block of several images makes
 * wider products, which OpenBLAS sums in another order in the last bits. */
#define CB_N 4
#define CB_SIZE 64
#define CB_TOL 1e-5	/* relative: max |a - r| / max |r| per image */

static double rel_max(const float *a, const float *r, size_t n)
{
	double d = 0.0, m = 0.0;
	size_t i;

	for (i = 0; i < n; i++) {
		double e = fabs((double)a[i] - r[i]);

		d = isnan(e) || e > d ? e : d;
		m = fmax(m, fabs(r[i]));
	}
	return m > 0.0 ? d / m : d;
}

static void test_batched_conv(struct tap *t)
{
	static const enum net_conv_mode modes[] = {
		NET_CONV_AUTO, NET_CONV_WINOGRAD, NET_CONV_IM2COL
	};
	static const char *const names[] = { "auto", "winograd", "im2col" };
	enum { NPIX = 3 * CB_SIZE * CB_SIZE, NC = 10 };
	char err[ERR_MAX] = "";
	struct modelfile *mf = NULL;
	struct net *n = NULL;
	float *x = malloc(sizeof *x * NPIX * CB_N);
	float *g1 = malloc(sizeof *g1 * NPIX * CB_N);
	float *g = malloc(sizeof *g * NPIX * CB_N);
	float z1[CB_N * NC], dz[CB_N * NC];
	struct rng r;
	size_t i;
	int m, b;

	if (arch_build("vgg-compact", CB_SIZE, NC, NULL, 3, &mf, err) == ST_OK &&
	    net_create(mf, CB_N, 0, 0, &n, err) != ST_OK)
		n = NULL;
	if (!tap_ok(t, n && x && g1 && g, "vgg-compact %dx%d built for batch %d %s",
		    CB_SIZE, CB_SIZE, CB_N, err))
		goto out;
	rng_seed(&r, 21);
	for (i = 0; i < (size_t)NPIX * CB_N; i++)
		x[i] = (float)rng_uniform(&r);
	for (m = 0; m < 3; m++) {
		double dl = 0.0, dg = 0.0;
		const float *z;
		long before;

		if (net_set_conv_mode(n, modes[m], err) != ST_OK) {
			tap_ok(t, 0, "conv mode %s: %s", names[m], err);
			continue;
		}
		for (b = 0; b < CB_N; b++) {
			z = net_forward(n, x + (size_t)b * NPIX, 1);
			memcpy(z1 + b * NC, z, sizeof *z1 * NC);
			loss_ce(NC, z, b, NULL, dz);
			net_backward(n, dz, g1 + (size_t)b * NPIX);
		}
		before = alloc_count;
		z = net_forward(n, x, CB_N);
		for (b = 0; b < CB_N; b++)
			loss_ce(NC, z + b * NC, b, NULL, dz + b * NC);
		net_backward(n, dz, g);
		before = alloc_count - before;
		for (b = 0; b < CB_N; b++) {
			dl = fmax(dl, rel_max(z + b * NC, z1 + b * NC, NC));
			dg = fmax(dg, rel_max(g + (size_t)b * NPIX,
					      g1 + (size_t)b * NPIX, NPIX));
		}
		tap_ok(t, dl < CB_TOL && dg < CB_TOL && before == 0,
		       "conv %s (%d layers on Winograd): batch %d equals %d single "
		       "passes, logits max rel diff %.1e, input gradients %.1e "
		       "(< %.0e); %ld allocations", names[m],
		       net_winograd_layers(n), CB_N, CB_N, dl, dg, CB_TOL, before);
	}
out:
	net_free(n);
	modelfile_close(mf);
	free(x);
	free(g1);
	free(g);
}

/* Same bits, or both NaN (the bits of a NaN are not the point). */
static int same_or_nan(const float *a, const float *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (isnan(a[i]) ? !isnan(b[i]) :
		    memcmp(&a[i], &b[i], sizeof a[i]) != 0)
			return 0;
	return 1;
}

/* The small net, whose two convs are each followed by a ReLU (fused),
 * against unfused_arch (the same net with the ReLUs run apart), in both
 * conv modes (on Winograd, c1 and its ReLU; c2 and c3 stay on im2col):
 * the fused ReLU sees the same floats and makes the same comparison, so
 * logits, input gradients and parameter gradients (which read the
 * rectified activations that the ReLU layers now alias) must be equal bit
 * for bit. Then a NaN pixel: it must reach all of its image's logits
 * through the fused ReLUs (as PyTorch: a ReLU that turned it into 0 would
 * leave the logits finite), and leave the other images as they were. */
static void test_fused_relu(struct tap *t)
{
	static const enum net_conv_mode modes[] = {
		NET_CONV_IM2COL, NET_CONV_WINOGRAD
	};
	static const char *const names[] = { "im2col", "winograd" };
	enum { NB = 3, NPIX = 3 * IN * IN, NZ = NB * NCLS };
	static float x[NB * NPIX], dxf[NB * NPIX], dxr[NB * NPIX];
	float zf[NZ], dz[NZ];
	char err[ERR_MAX] = "";
	struct modelfile *mf[2];
	struct net *n[2] = { NULL, NULL };
	const float *zr, *g[2];
	size_t np, i;
	struct rng r;
	int m, b, k, nan_ok, rest_ok;

	mf[0] = small_model(small_arch, -1, -1, 0, err);
	mf[1] = small_model(unfused_arch, -1, -1, 0, err);
	for (k = 0; k < 2; k++)
		if (mf[k] && net_create(mf[k], NB, 1, 0, &n[k], err) != ST_OK)
			n[k] = NULL;
	modelfile_close(mf[0]);
	modelfile_close(mf[1]);
	if (!tap_ok(t, n[0] && n[1] &&
		    net_get_info(n[1])->n_layers == 15,
		    "fused and unfused small nets built (13 and 15 layers) %s",
		    err))
		goto out;
	{
		int fused[2] = { 0, 0 }, l;

		for (k = 0; k < 2; k++)
			for (l = 0; l < net_get_info(n[k])->n_layers; l++) {
				struct net_layer_info li;

				net_layer(n[k], l, &li);
				fused[k] += li.op == NET_CONV && li.fused_relu;
			}
		tap_ok(t, fused[0] == 2 && fused[1] == 0,
		       "both conv+relu pairs fused (%d), none across a dropout "
		       "(%d)", fused[0], fused[1]);
	}
	rng_seed(&r, 77);
	for (i = 0; i < NB * NPIX; i++)
		x[i] = (float)rng_uniform(&r);
	for (m = 0; m < 2; m++) {
		int same;

		if (net_set_conv_mode(n[0], modes[m], err) != ST_OK ||
		    net_set_conv_mode(n[1], modes[m], err) != ST_OK) {
			tap_ok(t, 0, "conv mode %s: %s", names[m], err);
			continue;
		}
		net_zero_grads(n[0]);
		net_zero_grads(n[1]);
		memcpy(zf, net_forward(n[0], x, NB), sizeof zf);
		for (b = 0; b < NB; b++)
			loss_ce(NCLS, zf + b * NCLS, b, NULL, dz + b * NCLS);
		net_backward(n[0], dz, dxf);
		zr = net_forward(n[1], x, NB);
		same = !memcmp(zf, zr, sizeof zf);
		net_backward(n[1], dz, dxr);
		g[0] = net_param_grads(n[0], &np);
		g[1] = net_param_grads(n[1], NULL);
		same = same && !memcmp(dxf, dxr, sizeof dxf) &&
		       !memcmp(g[0], g[1], np * sizeof *g[0]);
		tap_ok(t, same && net_winograd_layers(n[0]) == m,
		       "conv+relu fused (%s, %d conv layer(s) on Winograd) "
		       "equals the ReLUs run apart bit for bit: logits, input "
		       "and parameter gradients of a batch of %d", names[m],
		       net_winograd_layers(n[0]), NB);
	}
	/* image 1, channel 0, the middle pixel */
	x[NPIX + IN / 2 * IN + IN / 2] = NAN;
	for (m = 0; m < 2; m++) {
		if (net_set_conv_mode(n[0], modes[m], err) != ST_OK ||
		    net_set_conv_mode(n[1], modes[m], err) != ST_OK)
			continue;	/* reported above */
		memcpy(zf, net_forward(n[0], x, NB), sizeof zf);
		zr = net_forward(n[1], x, NB);
		nan_ok = same_or_nan(zf, zr, NZ);
		for (k = 0; k < NCLS; k++)
			nan_ok = nan_ok && isnan(zf[NCLS + k]);
		rest_ok = 1;
		for (b = 0; b < NB; b++)
			for (k = 0; b != 1 && k < NCLS; k++)
				rest_ok = rest_ok && isfinite(zf[b * NCLS + k]);
		tap_ok(t, nan_ok && rest_ok,
		       "conv+relu fused (%s): a NaN pixel reaches all %d logits "
		       "of its image, as with the ReLUs run apart; the other "
		       "images' logits stay finite and equal", names[m], NCLS);
	}
out:
	net_free(n[0]);
	net_free(n[1]);
}

static void expect_error(struct tap *t, struct modelfile *mf, const char *what,
			 const char *needle)
{
	char err[ERR_MAX] = "";
	struct net *n = NULL;
	enum status st = ST_ERR_ARG;

	if (mf)
		st = net_create(mf, 1, 0, 0, &n, err);
	tap_ok(t, mf && st != ST_OK && !n && strstr(err, "small.safetensors") &&
		  strstr(err, needle),
	       "%s refused: %s", what, err);
	net_free(n);
	modelfile_close(mf);
}

/* Every allocation net_create makes fails in turn: each failure is
 * ST_ERR_NOMEM (not a format error) with a message naming the file, and
 * the net is not returned. The run that fails nothing is the control. */
static void test_out_of_memory(struct tap *t)
{
	char err[ERR_MAX] = "", bad[ERR_MAX] = "";
	struct modelfile *mf = small_model(small_arch, -1, -1, 0, err);
	struct net *n = NULL;
	long k, fails = 0, wrong = 0;
	enum status st = ST_ERR_ARG;

	if (!tap_ok(t, mf != NULL, "small model for the out-of-memory runs"))
		return;
	for (k = 1; k < 100000; k++) {
		err[0] = '\0';
		alloc_fail_at = alloc_count + k;
		st = net_create(mf, 3, 1, 0, &n, err);
		alloc_fail_at = -1;
		if (st == ST_OK)
			break;
		fails++;
		if (st != ST_ERR_NOMEM || n || !strstr(err, "small.safetensors") ||
		    !strstr(err, "out of memory")) {
			tap_diag("allocation %ld: status %d, %s", k, (int)st, err);
			if (!wrong++)
				snprintf(bad, sizeof bad, "allocation %ld: status %d, '%s'",
					 k, (int)st, err);
		}
	}
	tap_ok(t, st == ST_OK && n != NULL && fails > 10,
	       "control: net_create succeeds once no allocation fails (after %ld failing runs)",
	       fails);
	tap_ok(t, wrong == 0,
	       "each of the %ld failed allocations gives ST_ERR_NOMEM naming the file, no net (%ld wrong%s%s)",
	       fails, wrong, wrong ? ": first " : "", bad);
	net_free(n);
	modelfile_close(mf);
}

/* A file whose tensors do not fit its architecture is refused before the
 * activations are allocated: at batch 4096 the first conv's output alone
 * is 4096*4*12*12 floats, and the refusal asks for nothing that large.
 * The control: the good file at the same batch does. */
static void test_tensors_first(struct tap *t)
{
	const size_t act = (size_t)4096 * 4 * IN * IN * sizeof(float);
	char err[ERR_MAX] = "";
	size_t largest[2];
	enum status st[2];
	int i;

	for (i = 0; i < 2; i++) {
		struct modelfile *mf = small_model(small_arch, -1, i ? -1 : 9, 0, err);
		struct net *n = NULL;

		alloc_largest = 0;
		st[i] = mf ? net_create(mf, 4096, 0, 1, &n, err) : ST_ERR_ARG;
		largest[i] = alloc_largest;
		net_free(n);
		modelfile_close(mf);
	}
	tap_ok(t, st[0] == ST_ERR_SHAPE && largest[0] < act,
	       "a wrong tensor shape is refused before the activations: largest "
	       "allocation %zu bytes < %zu", largest[0], act);
	tap_ok(t, st[1] == ST_OK && largest[1] >= act,
	       "control: the good file at batch 4096 allocates %zu bytes at once (>= %zu)",
	       largest[1], act);
}

/* The thread count is the net's own, given to net_create: not whatever
 * OpenBLAS was last set to (the process-wide setting it once came from). */
static void test_threads(struct tap *t)
{
	char err[ERR_MAX] = "";
	struct modelfile *mf = small_model(small_arch, -1, -1, 0, err);
	struct net *n[2] = { NULL, NULL }, *m = NULL;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	int saved = blas_get_threads(), bad;

	blas_set_threads(1);
	if (mf) {
		net_create(mf, 1, 0, 3, &n[0], err);
		net_create(mf, 1, 0, 0, &n[1], err);
	}
	bad = mf ? net_create(mf, 1, 0, NET_MAX_THREADS + 1, &m, err) : ST_OK;
	blas_set_threads(saved);
	tap_ok(t, n[0] && n[1] && net_get_info(n[0])->threads == 3 &&
		  net_get_info(n[1])->threads == (cores < 1 ? 1 : (int)cores),
	       "with OpenBLAS at 1 thread, nets asked for 3 and for 0 (every core) run "
	       "on %d and %d threads (%ld cores)", n[0] ? net_get_info(n[0])->threads : -1,
	       n[1] ? net_get_info(n[1])->threads : -1, cores);
	tap_ok(t, bad == ST_ERR_ARG && !m, "%d threads refused: %s", NET_MAX_THREADS + 1, err);
	net_free(n[0]);
	net_free(n[1]);
	modelfile_close(mf);
}

int main(void)
{
	struct tap t = { 0 };
	char err[ERR_MAX] = "";
	struct modelfile *mf = small_model(small_arch, -1, -1, 0, err);
	struct net *n = NULL;

	tap_ok(&t, mf != NULL, "small model encoded and opened %s", err);
	if (mf && net_create(mf, 3, 1, 0, &n, err) != ST_OK)
		n = NULL;
	modelfile_close(mf);
	tap_ok(&t, n != NULL, "net built from the small model %s", n ? "" : err);
	if (!n)
		return tap_done(&t);
	tap_ok(&t, net_get_info(n)->n_layers == 13 && net_get_info(n)->n_classes == 4,
	       "13 layers after folding the batch norm, 4 classes");
	test_gradients(&t, n);
	test_batch(&t, n);
	test_save(&t, n);
	test_freeze_dropout(&t, n);
	net_free(n);
	test_batched_conv(&t);
	test_fused_relu(&t);
	test_out_of_memory(&t);
	test_tensors_first(&t);
	test_threads(&t);

	expect_error(&t, small_model(small_arch, 5, -1, 0, err),
		     "a missing tensor", "'c2.weight' missing");
	expect_error(&t, small_model(small_arch, -1, 9, 0, err),
		     "a tensor of the wrong shape", "'d1.weight' has shape [8,6]");
	expect_error(&t, small_model(small_arch, -1, -1, 1, err),
		     "an unused tensor", "'unused.weight' is not used");
	expect_error(&t, small_model("[{\"op\":\"conv3d\"}]", -1, -1, 0, err),
		     "an unknown op", "(conv3d): unknown op");
	expect_error(&t, small_model("[{\"op\":\"gap\"},{\"op\":\"flatten\"},{\"op\":\"dense\",\"name\":\"d2\",\"out\":4}]",
				     -1, -1, 0, err),
		     "a dense layer whose weight does not match its input", "'d2.weight' has shape [4,7] but node 'd2' needs [4,3]");
	return tap_done(&t);
}
