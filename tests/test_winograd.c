/* test_winograd.c - Winograd F(2x2,3x3) against the im2col convolution.
 *
 * For each shape, winograd_forward is compared with conv_forward and
 * winograd_backward_input with conv_backward_input (core/conv.c, the
 * reference path), as the relative L2 error ||a - r|| / ||r|| and the
 * largest error relative to the largest value, max |a - r| / max |r|.
 * Outputs are pre-filled with NaN and the workspace with NaN, so a call
 * that skips an element or trusts old workspace content fails.
 *
 * The tolerances are tight enough to matter: a sensitivity check perturbs
 * one weight by 1e-3 of the weight scale and expects the same comparison
 * to fail.
 *
 * On a thread pool (workers.h) the products are the same calls, on a
 * single-threaded OpenBLAS, and the transforms the same per-channel loops,
 * only spread over threads, so the results must equal those without a
 * pool on one OpenBLAS thread bit for bit, for 2 and 3 threads (3: uneven
 * splits). (OpenBLAS's own threads cut its K blocks a little differently,
 * which moves the last bits.)
 *
 * Batches (several images per block of products) are compared with one
 * call per image, with a tolerance rather than bit for bit (see
 * test_batch), on shapes that put 1, 3, 4 and 5 images in a block.
 *
 * A fused ReLU (CONV_ACT_RELU) must equal the unfused forward pass
 * followed by act_relu_forward bit for bit, NaN included (test_relu).
 *
 * Finally a "# " table times both paths on the 13 VGG16 layers at 96x96 on
 * a pool of two threads, as advex runs them (information, not an
 * assertion; pass any argument to skip it).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "act.h"
#include "blas.h"
#include "conv.h"
#include "splitmix.h"
#include "tap.h"
#include "winograd.h"
#include "workers.h"

#define L2_TOL 1e-5	/* ||a - r|| / ||r|| */
#define MAX_TOL 1e-5	/* max |a - r| / max |r| */

static float *falloc(size_t n)
{
	float *p = malloc((n ? n : 1) * sizeof *p);

	if (!p) {
		fprintf(stderr, "test_winograd: out of memory\n");
		exit(99);
	}
	return p;
}

static void fill_uniform(struct splitmix *r, float *a, size_t n, float scale)
{
	size_t i;

	for (i = 0; i < n; i++)
		a[i] = scale * splitmix_uniform(r);
}

static void fill_nan(float *a, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		a[i] = NAN;
}

struct err {
	double l2;	/* ||a - r|| / ||r|| */
	double max;	/* max |a - r| / max |r| */
};

/* A NaN anywhere makes both errors NaN, which fails every "<" test. */
static struct err compare(const float *a, const float *r, size_t n)
{
	double d2 = 0.0, r2 = 0.0, dmax = 0.0, rmax = 0.0;
	struct err e;
	size_t i;

	for (i = 0; i < n; i++) {
		double d = (double)a[i] - r[i];

		if (isnan(d))
			dmax = NAN;
		d2 += d * d;
		r2 += (double)r[i] * r[i];
		if (fabs(d) > dmax)
			dmax = fabs(d);
		if (fabs(r[i]) > rmax)
			rmax = fabs(r[i]);
	}
	e.l2 = r2 > 0.0 ? sqrt(d2 / r2) : sqrt(d2);
	e.max = rmax > 0.0 ? dmax / rmax : dmax;
	return e;
}

static int err_ok(struct err e)
{
	return e.l2 < L2_TOL && e.max < MAX_TOL;
}

static struct conv_shape shape3(int c, int h, int w, int k, int ph, int pw)
{
	struct conv_shape s = { .c = c, .h = h, .w = w, .k = k, .kh = 3,
				.kw = 3, .sh = 1, .sw = 1, .ph = ph, .pw = pw };

	if (conv_shape_init(&s) != 0) {
		fprintf(stderr, "test_winograd: bad shape\n");
		exit(99);
	}
	return s;
}

/* The pools the tests run on besides none: 2 and 3 threads. */
static struct workers *pools[2];

/* Buffers for one shape, both paths. The workspaces are sized for the
 * largest pool, which also covers none. */
struct bufs {
	size_t nx, ny, nw, nwt, nwork, ncol;
	float *x, *w, *b, *wt, *work, *col;
	float *y, *yref, *dy, *dx, *dxref;
};

static void bufs_init(struct bufs *B, const struct conv_shape *s,
		      struct splitmix *r)
{
	/* He-like scale so that activations stay O(1) across layers. */
	float ws = sqrtf(6.0f / (9.0f * s->c));

	B->nx = (size_t)s->c * s->h * s->w;
	B->ny = (size_t)s->k * s->oh * s->ow;
	B->nw = (size_t)s->k * s->c * 9;
	B->nwt = winograd_weight_size(s);
	B->nwork = winograd_work_size(s, pools[1], 1);
	B->ncol = conv_col_size(s);
	B->x = falloc(B->nx);
	B->w = falloc(B->nw);
	B->b = falloc((size_t)s->k);
	B->wt = falloc(B->nwt);
	B->work = falloc(B->nwork);
	B->col = falloc(B->ncol);
	B->y = falloc(B->ny);
	B->yref = falloc(B->ny);
	B->dy = falloc(B->ny);
	B->dx = falloc(B->nx);
	B->dxref = falloc(B->nx);
	fill_uniform(r, B->x, B->nx, 1.0f);
	fill_uniform(r, B->w, B->nw, ws);
	fill_uniform(r, B->b, (size_t)s->k, 0.1f);
	fill_uniform(r, B->dy, B->ny, 1.0f);
	fill_nan(B->wt, B->nwt);
	fill_nan(B->work, B->nwork);
	winograd_prepare(s, B->w, B->wt);
}

static void bufs_free(struct bufs *B)
{
	free(B->x);
	free(B->w);
	free(B->b);
	free(B->wt);
	free(B->work);
	free(B->col);
	free(B->y);
	free(B->yref);
	free(B->dy);
	free(B->dx);
	free(B->dxref);
}

static void test_shape(struct tap *t, struct splitmix *r, const char *label,
		       struct conv_shape s, int with_bias)
{
	const float *b;
	struct bufs B;
	struct err e;

	if (!tap_ok(t, winograd_supported(&s), "%s: supported, F(%dx%d,3x3)",
		    label, winograd_tile(&s), winograd_tile(&s)))
		return;
	bufs_init(&B, &s, r);
	b = with_bias ? B.b : NULL;

	fill_nan(B.y, B.ny);
	conv_forward(NULL, &s, B.x, B.w, b, CONV_ACT_NONE, B.yref, B.col);
	winograd_forward(NULL, &s, 1, B.x, B.wt, b, CONV_ACT_NONE, B.y,
			 B.work);
	e = compare(B.y, B.yref, B.ny);
	tap_ok(t, err_ok(e),
	       "%s: forward rel L2 %.2e < %.0e, max rel %.2e < %.0e", label,
	       e.l2, L2_TOL, e.max, MAX_TOL);

	fill_nan(B.dx, B.nx);
	fill_nan(B.work, B.nwork);
	conv_backward_input(NULL, &s, B.dy, B.w, B.dxref, B.col);
	winograd_backward_input(NULL, &s, 1, B.dy, B.wt, B.dx, B.work);
	e = compare(B.dx, B.dxref, B.nx);
	tap_ok(t, err_ok(e),
	       "%s: backward rel L2 %.2e < %.0e, max rel %.2e < %.0e", label,
	       e.l2, L2_TOL, e.max, MAX_TOL);
	bufs_free(&B);
}

static int same_bits(const float *a, const float *b, size_t n)
{
	return memcmp(a, b, n * sizeof *a) == 0;
}

/* Both directions on each pool against no pool on one OpenBLAS thread,
 * bit for bit; the pooled outputs and workspace start as NaN. */
static void test_pools(struct tap *t, struct splitmix *r, const char *label,
		       struct conv_shape s)
{
	int threads = blas_get_threads(), p, ok_f = 1, ok_b = 1;
	struct bufs B;

	bufs_init(&B, &s, r);
	blas_set_threads(1);
	winograd_forward(NULL, &s, 1, B.x, B.wt, B.b, CONV_ACT_NONE, B.yref,
			 B.work);
	winograd_backward_input(NULL, &s, 1, B.dy, B.wt, B.dxref, B.work);
	blas_set_threads(threads);
	for (p = 0; p < 2; p++) {
		fill_nan(B.y, B.ny);
		fill_nan(B.dx, B.nx);
		fill_nan(B.work, B.nwork);
		winograd_forward(pools[p], &s, 1, B.x, B.wt, B.b,
				 CONV_ACT_NONE, B.y, B.work);
		winograd_backward_input(pools[p], &s, 1, B.dy, B.wt, B.dx,
					B.work);
		ok_f = ok_f && same_bits(B.y, B.yref, B.ny);
		ok_b = ok_b && same_bits(B.dx, B.dxref, B.nx);
	}
	tap_ok(t, ok_f && ok_b && blas_get_threads() == threads,
	       "%s F(%dx%d,3x3): on 2 and 3 threads, forward %s and backward "
	       "%s to no pool; OpenBLAS threads restored (%d)", label,
	       winograd_tile(&s), winograd_tile(&s),
	       ok_f ? "identical" : "NOT identical",
	       ok_b ? "identical" : "NOT identical", blas_get_threads());
	bufs_free(&B);
}

/* The tolerance must catch a small mistake: perturb one weight (the centre
 * tap of kernel (0,0), which every output of plane 0 sees) by 1e-3 of the
 * weight scale after the transform, and expect both comparisons to fail,
 * with 2x2 and with 4x4 tiles. */
static void test_sensitivity(struct tap *t, struct splitmix *r, int size)
{
	struct conv_shape s = shape3(16, size, size, 16, 1, 1);
	struct bufs B;
	struct err ef, eb;
	float ws = sqrtf(6.0f / (9.0f * s.c));

	bufs_init(&B, &s, r);
	B.w[4] += 1e-3f * ws;
	conv_forward(NULL, &s, B.x, B.w, B.b, CONV_ACT_NONE, B.yref,
		     B.col);
	winograd_forward(NULL, &s, 1, B.x, B.wt, B.b, CONV_ACT_NONE, B.y,
			 B.work);
	ef = compare(B.y, B.yref, B.ny);
	conv_backward_input(NULL, &s, B.dy, B.w, B.dxref, B.col);
	winograd_backward_input(NULL, &s, 1, B.dy, B.wt, B.dx, B.work);
	eb = compare(B.dx, B.dxref, B.nx);
	tap_ok(t, !err_ok(ef) && !err_ok(eb),
	       "sensitivity F(%dx%d,3x3): a 1e-3 change of one weight is "
	       "caught (forward rel L2 %.2e max %.2e, backward rel L2 %.2e "
	       "max %.2e)",
	       winograd_tile(&s), winograd_tile(&s), ef.l2, ef.max, eb.l2,
	       eb.max);
	bufs_free(&B);
}

/* ---- batches ------------------------------------------------------------ */

#define BATCH_MAX 5
/* Batched against image by image. Not bit for bit: a block of several
 * images makes wider products, which OpenBLAS sums in another order in
 * the last bits (measured: up to 3e-7 relative L2, 1.1e-6 of the
 * largest value). A mix-up of images or tiles is O(1). */
#define BATCH_L2_TOL 1e-6
#define BATCH_MAX_TOL 5e-6

/* Largest of the errors of a and b. */
static struct err err_worst(struct err a, struct err b)
{
	struct err w;

	w.l2 = a.l2 > b.l2 || isnan(a.l2) ? a.l2 : b.l2;
	w.max = a.max > b.max || isnan(a.max) ? a.max : b.max;
	return w;
}

static int batch_ok(struct err e)
{
	return e.l2 < BATCH_L2_TOL && e.max < BATCH_MAX_TOL;
}

/* The worst of the per-image errors of a against r, n images of size
 * floats each: an error in one image is not diluted by the others. */
static struct err compare_images(const float *a, const float *r, int n,
				 size_t size)
{
	struct err w = { 0.0, 0.0 };
	int i;

	for (i = 0; i < n; i++)
		w = err_worst(w, compare(a + i * size, r + i * size, size));
	return w;
}

/* Nothing past the first n of total floats was written (all still NaN). */
static int untouched(const float *a, size_t n, size_t total)
{
	for (; n < total; n++)
		if (!isnan(a[n]))
			return 0;
	return 1;
}

/* The whole batch at once against each image on its own (batch 1, no
 * pool, one OpenBLAS thread), for batches 1..BATCH_MAX, with no pool and
 * on 2 and 3 threads. The pooled results must equal the unpooled batched
 * ones bit for bit. Outputs and workspace start as NaN; nothing past the
 * batch may be written. Then a sensitivity check: a change of 1e-3 in one
 * input value of the last image must fail the comparison. */
static void test_batch(struct tap *t, struct splitmix *r, const char *label,
		       struct conv_shape s)
{
	size_t nx = (size_t)s.c * s.h * s.w, ny = (size_t)s.k * s.oh * s.ow;
	size_t nwork = winograd_work_size(&s, pools[1], BATCH_MAX);
	float ws = sqrtf(6.0f / (9.0f * s.c));
	float *x = falloc(nx * BATCH_MAX), *dy = falloc(ny * BATCH_MAX);
	float *w = falloc((size_t)s.k * s.c * 9), *b = falloc((size_t)s.k);
	float *wt = falloc(winograd_weight_size(&s)), *work = falloc(nwork);
	float *yref = falloc(ny * BATCH_MAX), *dxref = falloc(nx * BATCH_MAX);
	float *y = falloc(ny * BATCH_MAX), *dx = falloc(nx * BATCH_MAX);
	float *y0 = falloc(ny * BATCH_MAX), *dx0 = falloc(nx * BATCH_MAX);
	struct err ef = { 0, 0 }, eb = { 0, 0 };
	int threads = blas_get_threads(), bt, p, img, same = 1, clean = 1;
	int blocks = (BATCH_MAX + winograd_block_images(&s, BATCH_MAX) - 1) /
		     winograd_block_images(&s, BATCH_MAX);

	fill_uniform(r, x, nx * BATCH_MAX, 1.0f);
	fill_uniform(r, dy, ny * BATCH_MAX, 1.0f);
	fill_uniform(r, w, (size_t)s.k * s.c * 9, ws);
	fill_uniform(r, b, (size_t)s.k, 0.1f);
	winograd_prepare(&s, w, wt);
	blas_set_threads(1);
	for (img = 0; img < BATCH_MAX; img++) {
		winograd_forward(NULL, &s, 1, x + img * nx, wt, b,
				 CONV_ACT_NONE, yref + img * ny, work);
		winograd_backward_input(NULL, &s, 1, dy + img * ny, wt,
					dxref + img * nx, work);
	}
	for (bt = 1; bt <= BATCH_MAX; bt++)
		for (p = -1; p < 2; p++) {
			struct workers *wk = p < 0 ? NULL : pools[p];

			fill_nan(y, ny * BATCH_MAX);
			fill_nan(dx, nx * BATCH_MAX);
			fill_nan(work, nwork);
			winograd_forward(wk, &s, bt, x, wt, b, CONV_ACT_NONE, y,
					 work);
			winograd_backward_input(wk, &s, bt, dy, wt, dx, work);
			clean = clean &&
				untouched(y, ny * bt, ny * BATCH_MAX) &&
				untouched(dx, nx * bt, nx * BATCH_MAX);
			if (p < 0) {
				ef = err_worst(ef, compare_images(y, yref, bt,
								  ny));
				eb = err_worst(eb, compare_images(dx, dxref, bt,
								  nx));
				memcpy(y0, y, ny * bt * sizeof *y);
				memcpy(dx0, dx, nx * bt * sizeof *dx);
			} else {
				same = same && same_bits(y, y0, ny * bt) &&
				       same_bits(dx, dx0, nx * bt);
			}
		}
	tap_ok(t, batch_ok(ef) && batch_ok(eb) && clean,
	       "%s F(%dx%d,3x3), %d image(s) per block: batches 1..%d (%d "
	       "block(s) at %d) equal image by image: forward rel L2 %.1e max "
	       "%.1e, backward rel L2 %.1e max %.1e (< %.0e, %.0e)%s", label,
	       winograd_tile(&s), winograd_tile(&s),
	       winograd_block_images(&s, BATCH_MAX), BATCH_MAX, blocks,
	       BATCH_MAX, ef.l2, ef.max, eb.l2, eb.max, BATCH_L2_TOL,
	       BATCH_MAX_TOL, clean ? "" : "; WROTE PAST THE BATCH");
	tap_ok(t, same, "%s: batched on 2 and 3 threads %s to no pool", label,
	       same ? "identical" : "NOT identical");

	/* Sensitivity: the last image's first input value and first
	 * gradient value moved by 1e-3 (the values are in [-1, 1)). */
	x[(BATCH_MAX - 1) * nx] += 1e-3f;
	dy[(BATCH_MAX - 1) * ny] += 1e-3f;
	winograd_forward(NULL, &s, BATCH_MAX, x, wt, b, CONV_ACT_NONE, y,
			 work);
	winograd_backward_input(NULL, &s, BATCH_MAX, dy, wt, dx, work);
	ef = compare_images(y, yref, BATCH_MAX, ny);
	eb = compare_images(dx, dxref, BATCH_MAX, nx);
	tap_ok(t, !batch_ok(ef) && !batch_ok(eb),
	       "%s: a 1e-3 change of one value of the last image is caught "
	       "(forward rel L2 %.1e max %.1e, backward rel L2 %.1e max %.1e)",
	       label, ef.l2, ef.max, eb.l2, eb.max);
	blas_set_threads(threads);
	free(x), free(dy), free(w), free(b), free(wt), free(work);
	free(yref), free(dxref), free(y), free(dx), free(y0), free(dx0);
}

/* Tile columns in a block of products up to which M is stored tile-major
 * (winograd.c, WG_TM_MAX_COLS); for the labels only. */
#define TM_MAX_COLS 256

/* winograd_forward with CONV_ACT_RELU against CONV_ACT_NONE followed by
 * act_relu_forward, on the same batch: the same sums, then the same
 * comparison, so equal bit for bit, with and without a bias, with no pool
 * and on 2 and 3 threads. One input value is a NaN: it must come out as
 * NaN (PyTorch's ReLU passes it on; one written as fmaxf(v, 0) would not),
 * and the test checks that it did reach the output and that the ReLU had
 * negatives to clear, so that it cannot pass by having nothing to do.
 * Outputs and workspace start as NaN. */
static void test_relu(struct tap *t, struct splitmix *r, const char *label,
		      struct conv_shape s, int batch)
{
	size_t nx = (size_t)s.c * s.h * s.w * batch;
	size_t ny = (size_t)s.k * s.oh * s.ow * batch, i;
	size_t nwork = winograd_work_size(&s, pools[1], batch);
	size_t negs = 0, nans = 0;
	float *x = falloc(nx), *w = falloc((size_t)s.k * s.c * 9);
	float *b = falloc((size_t)s.k), *wt = falloc(winograd_weight_size(&s));
	float *work = falloc(nwork), *y = falloc(ny), *yref = falloc(ny);
	int m = winograd_tile(&s), imgs = winograd_block_images(&s, batch);
	int blocks = (batch + imgs - 1) / imgs;
	int per = (batch + blocks - 1) / blocks;
	int cols = per * ((s.oh + m - 1) / m) * ((s.ow + m - 1) / m);
	int with_bias, p, same = 1;

	fill_uniform(r, x, nx, 1.0f);
	fill_uniform(r, w, (size_t)s.k * s.c * 9, sqrtf(6.0f / (9.0f * s.c)));
	fill_uniform(r, b, (size_t)s.k, 0.1f);
	/* the last image, channel 0, the middle pixel */
	x[nx - (size_t)s.c * s.h * s.w + (size_t)s.h / 2 * s.w + s.w / 2] = NAN;
	winograd_prepare(&s, w, wt);
	for (with_bias = 0; with_bias < 2; with_bias++)
		for (p = -1; p < 2; p++) {
			struct workers *wk = p < 0 ? NULL : pools[p];
			const float *bias = with_bias ? b : NULL;

			fill_nan(yref, ny);
			fill_nan(work, nwork);
			winograd_forward(wk, &s, batch, x, wt, bias,
					 CONV_ACT_NONE, yref, work);
			for (i = 0; with_bias && p < 0 && i < ny; i++) {
				negs += yref[i] < 0.0f;
				nans += isnan(yref[i]);
			}
			act_relu_forward(yref, yref, ny);
			fill_nan(y, ny);
			fill_nan(work, nwork);
			winograd_forward(wk, &s, batch, x, wt, bias,
					 CONV_ACT_RELU, y, work);
			same = same && same_bits(y, yref, ny);
		}
	tap_ok(t, same && negs > 0 && nans > 0 && nans < ny,
	       "%s F(%dx%d,3x3) batch %d (%d tile columns per block: M %s): "
	       "fused ReLU %s conv then act_relu_forward bit for bit, with and "
	       "without bias, no pool and 2, 3 threads (of %zu outputs, %zu "
	       "negatives cleared, %zu NaN passed on)", label, m, m, batch, cols,
	       cols <= TM_MAX_COLS ? "tile-major" : "plane-major",
	       same ? "equals" : "DIFFERS FROM", ny, negs, nans);
	free(x), free(w), free(b), free(wt), free(work), free(y), free(yref);
}

/* The choice of tile size and the hint follow the measured crossovers. */
static void test_choices(struct tap *t)
{
	struct conv_shape a = shape3(3, 96, 96, 64, 1, 1);
	struct conv_shape b = shape3(64, 96, 96, 64, 1, 1);
	struct conv_shape c = shape3(256, 24, 24, 256, 1, 1);
	struct conv_shape d = shape3(512, 12, 12, 512, 1, 1);
	struct conv_shape e = shape3(512, 6, 6, 512, 1, 1);
	struct conv_shape f = shape3(256, 20, 20, 256, 1, 1);

	tap_ok(t, winograd_tile(&b) == 4 && winograd_tile(&c) == 4 &&
	       winograd_tile(&f) == 2 && winograd_tile(&d) == 2 &&
	       winograd_tile(&e) == 2 && winograd_tile(&a) == 4,
	       "tile size: 4 from 24x24 outputs, else 2");
	tap_ok(t, !winograd_preferred(&a, 1) && winograd_preferred(&b, 1) &&
	       winograd_preferred(&c, 1) && winograd_preferred(&d, 1) &&
	       !winograd_preferred(&e, 1),
	       "preferred at batch 1: not for 3 input channels nor 6x6 "
	       "outputs");
	tap_ok(t, !winograd_preferred(&a, 16) && winograd_preferred(&e, 2) &&
	       winograd_preferred(&e, 16) &&
	       winograd_block_images(&e, 1) == 1 &&
	       winograd_block_images(&e, 32) == 16 &&
	       winograd_block_images(&d, 16) == 4 &&
	       winograd_block_images(&c, 16) == 4 &&
	       winograd_block_images(&b, 16) == 1,
	       "batches: 6x6 preferred from batch 2; images per block: 16 at "
	       "6x6, 4 at 12x12 and 24x24 (36 tiles each), 1 at 96x96");
}

static void test_unsupported(struct tap *t)
{
	struct conv_shape s = shape3(4, 8, 8, 4, 1, 1);
	struct conv_shape a = s, b = s, c = s;

	a.sh = a.sw = 2;
	conv_shape_init(&a);
	b.kh = b.kw = 5;
	b.ph = b.pw = 2;
	conv_shape_init(&b);
	c.ph = c.pw = 2;
	conv_shape_init(&c);
	tap_ok(t, !winograd_supported(&a) && !winograd_supported(&b) &&
	       !winograd_supported(&c),
	       "not supported: stride 2, 5x5 kernel, padding 2");
}

/* ---- timing ------------------------------------------------------------- */

#define BENCH_REPS 7

/* Best of BENCH_REPS for each of the four calls on one layer: im2col and
 * Winograd forward, im2col and Winograd backward, on the pool wk. Calls
 * alternate so that load from elsewhere on the machine hits all four
 * alike. */
static void bench_layer(struct workers *wk, const struct conv_shape *s,
			struct splitmix *r, double ms[4])
{
	struct bufs B;
	double t0;
	int rep, i;

	bufs_init(&B, s, r);
	for (i = 0; i < 4; i++)
		ms[i] = 1e30;
	/* Untimed first round: page faults and thread start-up. */
	for (rep = 0; rep <= BENCH_REPS; rep++) {
		double d[4];

		t0 = clock_ms();
		conv_forward(wk, s, B.x, B.w, B.b, CONV_ACT_NONE, B.yref, B.col);
		d[0] = clock_ms() - t0;
		t0 = clock_ms();
		winograd_forward(wk, s, 1, B.x, B.wt, B.b, CONV_ACT_NONE, B.y,
				 B.work);
		d[1] = clock_ms() - t0;
		t0 = clock_ms();
		conv_backward_input(wk, s, B.dy, B.w, B.dxref, B.col);
		d[2] = clock_ms() - t0;
		t0 = clock_ms();
		winograd_backward_input(wk, s, 1, B.dy, B.wt, B.dx, B.work);
		d[3] = clock_ms() - t0;
		for (i = 0; rep > 0 && i < 4; i++)
			if (d[i] < ms[i])
				ms[i] = d[i];
	}
	bufs_free(&B);
}

static void bench_vgg16(struct splitmix *r)
{
	static const int vgg[13][3] = {	/* c, k, size */
		{ 3, 64, 96 }, { 64, 64, 96 },
		{ 64, 128, 48 }, { 128, 128, 48 },
		{ 128, 256, 24 }, { 256, 256, 24 }, { 256, 256, 24 },
		{ 256, 512, 12 }, { 512, 512, 12 }, { 512, 512, 12 },
		{ 512, 512, 6 }, { 512, 512, 6 }, { 512, 512, 6 },
	};
	double tot[4] = { 0 }, best = 0.0, best_ob = 0.0, ms[4];
	int threads = blas_get_threads(), l, i;

	blas_set_threads(2);
	tap_diag("VGG16 3x3 layers at 96x96, batch 1, a pool of %d threads, "
		 "best of %d, ms", workers_count(pools[0]), BENCH_REPS);
	tap_diag("%-16s %4s %9s %9s %9s %9s  %s", "layer c->k size", "tile",
		 "fwd i2c", "fwd wino", "bwd i2c", "bwd wino", "preferred");
	for (l = 0; l < 13; l++) {
		struct conv_shape s = shape3(vgg[l][0], vgg[l][2], vgg[l][2],
					     vgg[l][1], 1, 1);
		int pref = winograd_preferred(&s, 1);
		char name[32];

		bench_layer(NULL, &s, r, ms);
		best_ob += pref ? ms[1] + ms[3] : ms[0] + ms[2];
		bench_layer(pools[0], &s, r, ms);
		snprintf(name, sizeof name, "%d->%d %dx%d", vgg[l][0],
			 vgg[l][1], vgg[l][2], vgg[l][2]);
		tap_diag("%-16s %4d %9.3f %9.3f %9.3f %9.3f  %s", name,
			 winograd_tile(&s), ms[0], ms[1], ms[2], ms[3],
			 pref ? "winograd" : "im2col");
		for (i = 0; i < 4; i++)
			tot[i] += ms[i];
		best += pref ? ms[1] + ms[3] : ms[0] + ms[2];
	}
	tap_diag("%-16s %4s %9.3f %9.3f %9.3f %9.3f", "total", "", tot[0],
		 tot[1], tot[2], tot[3]);
	tap_diag("forward + backward: im2col %.3f ms, winograd everywhere %.3f "
		 "ms (%.2fx), winograd where preferred %.3f ms (%.2fx)",
		 tot[0] + tot[2], tot[1] + tot[3],
		 (tot[0] + tot[2]) / (tot[1] + tot[3]), best,
		 (tot[0] + tot[2]) / best);
	tap_diag("the same where preferred with no pool, on 2 OpenBLAS threads: "
		 "%.3f ms (the pool is %.2fx faster)", best_ob, best_ob / best);
	blas_set_threads(threads);
}

int main(int argc, char **argv)
{
	struct splitmix r = { 12345 };
	struct tap t = { 0, 0 };

	(void)argv;
	pools[0] = workers_new(2);
	pools[1] = workers_new(3);
	if (!pools[0] || !pools[1]) {
		fprintf(stderr, "test_winograd: cannot start threads\n");
		return 99;
	}
	/* VGG-sized layers. */
	test_shape(&t, &r, "c3 k64 96x96 p1", shape3(3, 96, 96, 64, 1, 1), 1);
	test_shape(&t, &r, "c64 k64 96x96 p1", shape3(64, 96, 96, 64, 1, 1), 1);
	test_shape(&t, &r, "c128 k128 48x48 p1",
		   shape3(128, 48, 48, 128, 1, 1), 1);
	test_shape(&t, &r, "c256 k256 24x24 p1",
		   shape3(256, 24, 24, 256, 1, 1), 1);
	test_shape(&t, &r, "c256 k512 12x12 p1",
		   shape3(256, 12, 12, 512, 1, 1), 0);
	test_shape(&t, &r, "c512 k512 6x6 p1", shape3(512, 6, 6, 512, 1, 1), 1);
	/* Edges with 2x2 tiles: odd sizes, tiny images, both paddings,
	 * k != c, padding on one axis only. */
	test_shape(&t, &r, "c5 k7 7x5 p1", shape3(5, 7, 5, 7, 1, 1), 1);
	test_shape(&t, &r, "c5 k7 7x5 p0", shape3(5, 7, 5, 7, 0, 0), 1);
	test_shape(&t, &r, "c4 k6 3x3 p1", shape3(4, 3, 3, 6, 1, 1), 1);
	test_shape(&t, &r, "c4 k6 3x3 p0", shape3(4, 3, 3, 6, 0, 0), 1);
	test_shape(&t, &r, "c6 k3 1x1 p1", shape3(6, 1, 1, 3, 1, 1), 1);
	test_shape(&t, &r, "c9 k17 8x8 p0", shape3(9, 8, 8, 17, 0, 0), 0);
	test_shape(&t, &r, "c17 k9 13x11 p0", shape3(17, 13, 11, 9, 0, 0), 1);
	test_shape(&t, &r, "c8 k12 10x9 ph1 pw0",
		   shape3(8, 10, 9, 12, 1, 0), 1);
	test_shape(&t, &r, "c12 k8 9x10 ph0 pw1",
		   shape3(12, 9, 10, 8, 0, 1), 0);
	test_shape(&t, &r, "c20 k12 28x28 p1", shape3(20, 28, 28, 12, 1, 1), 1);
	/* Edges with 4x4 tiles. */
	test_shape(&t, &r, "c16 k24 47x45 p1", shape3(16, 47, 45, 24, 1, 1), 1);
	test_shape(&t, &r, "c24 k16 49x47 p0", shape3(24, 49, 47, 16, 0, 0), 1);
	test_shape(&t, &r, "c8 k8 50x51 ph0 pw1",
		   shape3(8, 50, 51, 8, 0, 1), 0);
	test_shape(&t, &r, "c12 k20 30x30 p1", shape3(12, 30, 30, 20, 1, 1), 1);
	test_shape(&t, &r, "c7 k5 34x33 p0", shape3(7, 34, 33, 5, 0, 0), 1);
	/* Large enough to be cut into blocks of tile rows, the last one
	 * shorter. */
	test_shape(&t, &r, "c16 k12 203x201 p1",
		   shape3(16, 203, 201, 12, 1, 1), 1);
	test_sensitivity(&t, &r, 12);
	test_sensitivity(&t, &r, 48);
	test_pools(&t, &r, "c64 k64 96x96 p1", shape3(64, 96, 96, 64, 1, 1));
	test_pools(&t, &r, "c256 k512 12x12 p1",
		   shape3(256, 12, 12, 512, 1, 1));
	test_pools(&t, &r, "c17 k9 13x11 p0", shape3(17, 13, 11, 9, 0, 0));
	test_pools(&t, &r, "c4 k6 3x3 p1", shape3(4, 3, 3, 6, 1, 1));
	test_pools(&t, &r, "c24 k16 49x47 p0", shape3(24, 49, 47, 16, 0, 0));
	test_pools(&t, &r, "c16 k12 203x201 p1",
		   shape3(16, 203, 201, 12, 1, 1));
	/* Batches: several images per block (2x2 tiles, odd sizes, both
	 * paddings; 4x4 tiles), batches that span two blocks (36, 56 and 64
	 * tiles per image), and one image per block. */
	test_batch(&t, &r, "batch c5 k7 7x5 p1", shape3(5, 7, 5, 7, 1, 1));
	test_batch(&t, &r, "batch c5 k7 7x5 p0", shape3(5, 7, 5, 7, 0, 0));
	test_batch(&t, &r, "batch c17 k9 13x11 p0",
		   shape3(17, 13, 11, 9, 0, 0));
	test_batch(&t, &r, "batch c8 k12 10x9 ph1 pw0",
		   shape3(8, 10, 9, 12, 1, 0));
	test_batch(&t, &r, "batch c64 k48 12x12 p1",
		   shape3(64, 12, 12, 48, 1, 1));
	test_batch(&t, &r, "batch c16 k24 16x14 p1",
		   shape3(16, 16, 14, 24, 1, 1));
	test_batch(&t, &r, "batch c12 k20 30x30 p1",
		   shape3(12, 30, 30, 20, 1, 1));
	test_batch(&t, &r, "batch c96 k64 6x6 p1", shape3(96, 6, 6, 64, 1, 1));
	test_batch(&t, &r, "batch c16 k12 48x48 p1",
		   shape3(16, 48, 48, 12, 1, 1));
	test_batch(&t, &r, "batch c16 k12 203x201 p1",
		   shape3(16, 203, 201, 12, 1, 1));
	/* A fused ReLU: both tile sizes, each with M tile-major (few
	 * columns) and plane-major (more than TM_MAX_COLS: 2 images of 130
	 * tiles; 306 tiles of 4x4), several images in a block, p0 edges. */
	test_relu(&t, &r, "relu c16 k24 12x12 p1", shape3(16, 12, 12, 24, 1, 1),
		  1);
	test_relu(&t, &r, "relu c8 k8 26x20 p1", shape3(8, 26, 20, 8, 1, 1), 2);
	test_relu(&t, &r, "relu c5 k7 7x5 p0", shape3(5, 7, 5, 7, 0, 0), 3);
	test_relu(&t, &r, "relu c16 k12 24x24 p1", shape3(16, 24, 24, 12, 1, 1),
		  1);
	test_relu(&t, &r, "relu c8 k8 72x70 p0", shape3(8, 72, 70, 8, 0, 0), 1);
	test_choices(&t);
	test_unsupported(&t);
	/* Any argument skips the timing, for quick runs under sanitizers. */
	if (argc < 2)
		bench_vgg16(&r);
	workers_free(pools[0]);
	workers_free(pools[1]);
	return tap_done(&t);
}
