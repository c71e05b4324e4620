/* test_kernels.c - forward and gradient checks for conv, pool, dense, act.
 *
 * Every kernel is checked against a naive double-precision reference written
 * here, independently of the kernel's own loops:
 *   forward:  the float output against the reference output;
 *   backward: for a fixed random r, the loss L = sum(r * y) is evaluated on
 *             the reference, and its central differences in double
 *             precision are compared with the kernel's analytic gradient
 *             (dy = r), as the relative L2 error of the whole vector.
 * Every conv shape runs in both orientations of its products (conv.h
 * `transposed`), and thin outputs with many channels, too big for central
 * differences, against a direct double reference of y and dx.
 * Buffers a kernel must overwrite are pre-filled with NaN, and gradients it
 * must accumulate into are pre-filled with random values, so a kernel that
 * skips an element or overwrites an accumulator fails.
 *
 * Then the thread pool (workers.h): every task of every run exactly once,
 * across sleeps and uneven pools; and conv and dense on pools of 2 and 3
 * threads against no pool on one OpenBLAS thread, bit for bit (the pieces
 * are sub-blocks of the same products), plus dense against the double
 * reference at sizes cut into several pieces. A conv with its ReLU fused
 * (CONV_ACT_RELU) against conv_forward then act_relu_forward, bit for bit,
 * NaN included.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "act.h"
#include "blas.h"
#include "conv.h"
#include "dense.h"
#include "fieldsig.h"
#include "pool.h"
#include "splitmix.h"
#include "tap.h"
#include "workers.h"

#define FWD_TOL 1e-5	/* max |y - ref| / max(1, max |ref|) */
#define GRAD_TOL 1e-4	/* ||g - numeric|| / ||numeric|| */
#define FD_EPS 1e-6	/* central-difference step, in double */

/* ---- helpers ------------------------------------------------------------ */

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		fprintf(stderr, "test_kernels: out of memory\n");
		exit(99);
	}
	return p;
}

static float *falloc(size_t n)
{
	return xmalloc(n * sizeof(float));
}

static double *dalloc(size_t n)
{
	return xmalloc(n * sizeof(double));
}

static void fill_uniform(struct splitmix *r, float *a, size_t n, float scale)
{
	size_t i;

	for (i = 0; i < n; i++)
		a[i] = scale * splitmix_uniform(r);
}

/* Values at least 0.1 away from 0, so ReLU has no kink within FD_EPS. */
static void fill_away_from_zero(struct splitmix *r, float *a, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		float u = splitmix_uniform(r);

		a[i] = u < 0.0f ? u - 0.1f : u + 0.1f;
	}
}

/* Distinct values spaced 2/n apart in random order, so no two elements of a
 * max-pool window are within FD_EPS of each other (no ties, no kinks). */
static void fill_distinct(struct splitmix *r, float *a, size_t n)
{
	size_t i, j;

	for (i = 0; i < n; i++)
		a[i] = (float)(2.0 * (double)i / (double)n - 1.0);
	for (i = n - 1; i > 0; i--) {
		float tmp;

		j = (size_t)(splitmix_next(r) % (i + 1));
		tmp = a[i];
		a[i] = a[j];
		a[j] = tmp;
	}
}

static void fill_nan(float *a, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		a[i] = NAN;
}

static double *to_double(const float *a, size_t n)
{
	double *d = dalloc(n);
	size_t i;

	for (i = 0; i < n; i++)
		d[i] = a[i];
	return d;
}

static double dot(const double *a, const double *b, size_t n)
{
	double s = 0.0;
	size_t i;

	for (i = 0; i < n; i++)
		s += a[i] * b[i];
	return s;
}

/* max |a - ref| / max(1, max |ref|); NaN in a gives NaN, which fails. */
static double fwd_err(const float *a, const double *ref, size_t n)
{
	double worst = 0.0, scale = 1.0;
	size_t i;

	for (i = 0; i < n; i++) {
		double d = fabs((double)a[i] - ref[i]);

		if (!(d <= worst))
			worst = d;
		if (fabs(ref[i]) > scale)
			scale = fabs(ref[i]);
	}
	return worst / scale;
}

/* ||a - ref|| / ||ref|| (absolute when ref is all zero). */
static double grad_err(const float *a, const double *ref, size_t n)
{
	double num = 0.0, den = 0.0;
	size_t i;

	for (i = 0; i < n; i++) {
		double d = (double)a[i] - ref[i];

		num += d * d;
		den += ref[i] * ref[i];
	}
	if (isnan(num))
		return NAN;
	return den > 0.0 ? sqrt(num / den) : sqrt(num);
}

/* Central differences of loss(ctx) w.r.t. p[0..n), p an array loss reads. */
static void fd_grad(double (*loss)(void *), void *ctx, double *p, size_t n,
		    double *g)
{
	size_t i;

	for (i = 0; i < n; i++) {
		double save = p[i], lp, lm;

		p[i] = save + FD_EPS;
		lp = loss(ctx);
		p[i] = save - FD_EPS;
		lm = loss(ctx);
		p[i] = save;
		g[i] = (lp - lm) / (2.0 * FD_EPS);
	}
}

/* Check one gradient and print "<label>: <what> rel err E < TOL". */
static void check_grad(struct tap *t, const char *label, const char *what,
		       const float *g, const double *num, size_t n)
{
	double e = grad_err(g, num, n);

	tap_ok(t, e < GRAD_TOL, "%s: %s rel err %.1e < %.0e", label, what, e,
	       GRAD_TOL);
}

static void check_fwd(struct tap *t, const char *label, const float *y,
		      const double *ref, size_t n)
{
	double e = fwd_err(y, ref, n);

	tap_ok(t, e < FWD_TOL, "%s: forward vs naive double err %.1e < %.0e",
	       label, e, FWD_TOL);
}

/* ---- conv --------------------------------------------------------------- */

/* Direct convolution, x (C,H,W), w (K,C,KH,KW), b (K) or NULL, y (K,OH,OW). */
static void ref_conv(const struct conv_shape *s, const double *x,
		     const double *w, const double *b, double *y)
{
	int k, oy, ox, c, i, j;

	for (k = 0; k < s->k; k++)
		for (oy = 0; oy < s->oh; oy++)
			for (ox = 0; ox < s->ow; ox++) {
				double acc = b ? b[k] : 0.0;

				for (c = 0; c < s->c; c++)
					for (i = 0; i < s->kh; i++)
						for (j = 0; j < s->kw; j++) {
							int iy = oy * s->sh - s->ph + i;
							int ix = ox * s->sw - s->pw + j;

							if (iy < 0 || iy >= s->h ||
							    ix < 0 || ix >= s->w)
								continue;
							acc += w[((k * s->c + c) * s->kh + i) *
								 s->kw + j] *
							       x[(c * s->h + iy) * s->w + ix];
						}
				y[(k * s->oh + oy) * s->ow + ox] = acc;
			}
}

struct conv_ctx {
	const struct conv_shape *s;
	double *x, *w, *b, *r, *y;
};

static double conv_loss(void *p)
{
	struct conv_ctx *c = p;

	ref_conv(c->s, c->x, c->w, c->b, c->y);
	return dot(c->r, c->y, (size_t)c->s->k * c->s->oh * c->s->ow);
}

/* A deliberately wrong gradient (one element off by 1% of the largest) must
 * be rejected, or the gradient checks above prove nothing. */
static void check_checker(struct tap *t, const float *g, const double *num,
			  size_t n)
{
	float *bad = falloc(n);
	double big = 0.0, e;
	size_t i;

	for (i = 0; i < n; i++)
		if (fabs(num[i]) > big)
			big = fabs(num[i]);
	memcpy(bad, g, n * sizeof *bad);
	bad[n / 2] += (float)(0.01 * big);
	e = grad_err(bad, num, n);
	tap_ok(t, e > GRAD_TOL,
	       "gradient check rejects one element off by 1%% of max: rel err %.1e > %.0e",
	       e, GRAD_TOL);
	free(bad);
}

/* One orientation of one shape (s initialized). */
static void test_conv_one(struct tap *t, struct splitmix *rng, const char *label,
			  struct conv_shape s, int with_bias, int meta)
{
	size_t nx, nw, ny, ncol;
	float *x, *w, *b, *r, *y, *dx, *dw, *db, *dw0, *db0, *col;
	double *xd, *wd, *bd, *rd, *yd, *num;
	struct conv_ctx ctx;
	size_t i;

	nx = (size_t)s.c * s.h * s.w;
	nw = (size_t)s.k * s.c * s.kh * s.kw;
	ny = (size_t)s.k * s.oh * s.ow;
	ncol = conv_col_size(&s);
	x = falloc(nx);
	w = falloc(nw);
	b = falloc((size_t)s.k);
	r = falloc(ny);
	y = falloc(ny);
	dx = falloc(nx);
	dw = falloc(nw);
	dw0 = falloc(nw);
	db = falloc((size_t)s.k);
	db0 = falloc((size_t)s.k);
	/* No workspace at all when none is asked for: proves it is unused. */
	col = ncol ? falloc(ncol) : NULL;
	fill_uniform(rng, x, nx, 1.0f);
	fill_uniform(rng, w, nw, 0.5f);
	fill_uniform(rng, b, (size_t)s.k, 0.5f);
	if (!with_bias)
		memset(b, 0, (size_t)s.k * sizeof *b);
	fill_uniform(rng, r, ny, 1.0f);
	xd = to_double(x, nx);
	wd = to_double(w, nw);
	bd = to_double(b, (size_t)s.k);
	rd = to_double(r, ny);
	yd = dalloc(ny);
	num = dalloc(nx > nw ? nx : nw);
	ctx = (struct conv_ctx){ &s, xd, wd, bd, rd, yd };

	/* forward */
	fill_nan(y, ny);
	if (col)
		fill_nan(col, ncol);
	conv_forward(NULL, &s, x, w, with_bias ? b : NULL, CONV_ACT_NONE, y,
		     col);
	ref_conv(&s, xd, wd, bd, yd);
	check_fwd(t, label, y, yd, ny);

	/* dL/dx */
	fill_nan(dx, nx);
	if (col)
		fill_nan(col, ncol);
	conv_backward_input(NULL, &s, r, w, dx, col);
	fd_grad(conv_loss, &ctx, xd, nx, num);
	check_grad(t, label, "dx", dx, num, nx);
	if (meta)
		check_checker(t, dx, num, nx);

	/* dL/dw and dL/db, accumulated onto random starting values */
	fill_uniform(rng, dw0, nw, 1.0f);
	fill_uniform(rng, db0, (size_t)s.k, 1.0f);
	memcpy(dw, dw0, nw * sizeof *dw);
	memcpy(db, db0, (size_t)s.k * sizeof *db);
	if (col)
		fill_nan(col, ncol);
	conv_backward_params(NULL, &s, x, r, dw, with_bias ? db : NULL, col);
	for (i = 0; i < nw; i++)
		dw[i] -= dw0[i];
	fd_grad(conv_loss, &ctx, wd, nw, num);
	check_grad(t, label, "dw (accumulated)", dw, num, nw);
	if (with_bias) {
		for (i = 0; i < (size_t)s.k; i++)
			db[i] -= db0[i];
		fd_grad(conv_loss, &ctx, bd, (size_t)s.k, num);
		check_grad(t, label, "db (accumulated)", db, num, (size_t)s.k);
	} else {
		tap_ok(t, memcmp(db, db0, (size_t)s.k * sizeof *db) == 0,
		       "%s: db == NULL accepted, nothing written", label);
	}

	free(x); free(w); free(b); free(r); free(y); free(dx); free(dw);
	free(dw0); free(db); free(db0); free(col);
	free(xd); free(wd); free(bd); free(rd); free(yd); free(num);
}

/* Both orientations of the products (conv.h `transposed`), whichever
 * conv_shape_init picks for the shape. */
static void test_conv(struct tap *t, struct splitmix *rng, const char *label,
		      struct conv_shape s, int with_bias, int meta)
{
	char name[120];
	int tr;

	if (conv_shape_init(&s) != 0) {
		tap_ok(t, 0, "%s: conv_shape_init", label);
		return;
	}
	for (tr = 0; tr < 2; tr++) {
		s.transposed = tr;
		snprintf(name, sizeof name, "%s%s", label,
			 tr ? ", transposed" : "");
		test_conv_one(t, rng, name, s, with_bias, meta && !tr);
	}
}

/* dx = the adjoint of ref_conv applied to dy: what conv_backward_input
 * computes, directly in double. */
static void ref_conv_backward_input(const struct conv_shape *s,
				    const double *dy, const double *w,
				    double *dx)
{
	int k, oy, ox, c, i, j;

	memset(dx, 0, (size_t)s->c * s->h * s->w * sizeof *dx);
	for (k = 0; k < s->k; k++)
		for (oy = 0; oy < s->oh; oy++)
			for (ox = 0; ox < s->ow; ox++) {
				double g = dy[(k * s->oh + oy) * s->ow + ox];

				for (c = 0; c < s->c; c++)
					for (i = 0; i < s->kh; i++)
						for (j = 0; j < s->kw; j++) {
							int iy = oy * s->sh - s->ph + i;
							int ix = ox * s->sw - s->pw + j;

							if (iy < 0 || iy >= s->h ||
							    ix < 0 || ix >= s->w)
								continue;
							dx[(c * s->h + iy) * s->w + ix] +=
								g * w[((k * s->c + c) *
								       s->kh + i) * s->kw + j];
						}
			}
}

/* Thin outputs with many channels, the shape the transposed products are
 * for (too big for central differences): y and dx in both orientations
 * against the double reference, each product cut into several pieces. */
static void test_conv_thin(struct tap *t, struct splitmix *rng, const char *label,
			   struct conv_shape s)
{
	size_t nx, nw, ny, ncol;
	float *x, *w, *b, *r, *y, *dx, *col;
	double *xd, *wd, *bd, *rd, *yd, *dxd, e_y, e_dx;
	int tr, picked;

	conv_shape_init(&s);
	picked = s.transposed;
	nx = (size_t)s.c * s.h * s.w;
	nw = (size_t)s.k * s.c * s.kh * s.kw;
	ny = (size_t)s.k * s.oh * s.ow;
	x = falloc(nx); w = falloc(nw); b = falloc((size_t)s.k);
	r = falloc(ny); y = falloc(ny); dx = falloc(nx);
	fill_uniform(rng, x, nx, 1.0f);
	fill_uniform(rng, w, nw, 0.5f);
	fill_uniform(rng, b, (size_t)s.k, 0.5f);
	fill_uniform(rng, r, ny, 1.0f);
	xd = to_double(x, nx); wd = to_double(w, nw);
	bd = to_double(b, (size_t)s.k); rd = to_double(r, ny);
	yd = dalloc(ny); dxd = dalloc(nx);
	ref_conv(&s, xd, wd, bd, yd);
	ref_conv_backward_input(&s, rd, wd, dxd);
	tap_ok(t, picked, "%s: conv_shape_init picks the transposed products",
	       label);
	for (tr = 0; tr < 2; tr++) {
		s.transposed = tr;
		ncol = conv_col_size(&s);
		col = falloc(ncol);
		fill_nan(col, ncol);
		fill_nan(y, ny);
		conv_forward(NULL, &s, x, w, b, CONV_ACT_NONE, y, col);
		fill_nan(col, ncol);
		fill_nan(dx, nx);
		conv_backward_input(NULL, &s, r, w, dx, col);
		e_y = fwd_err(y, yd, ny);
		e_dx = fwd_err(dx, dxd, nx);
		tap_ok(t, e_y < FWD_TOL && e_dx < FWD_TOL,
		       "%s%s: y and dx vs double err %.1e, %.1e < %.0e", label,
		       tr ? ", transposed" : "", e_y, e_dx, FWD_TOL);
		free(col);
	}
	free(x); free(w); free(b); free(r); free(y); free(dx);
	free(xd); free(wd); free(bd); free(rd); free(yd); free(dxd);
}

static struct conv_shape conv_sh(int c, int h, int w, int k, int kh, int kw,
				 int sh, int sw, int ph, int pw)
{
	struct conv_shape s = { .c = c, .h = h, .w = w, .k = k, .kh = kh,
				.kw = kw, .sh = sh, .sw = sw, .ph = ph, .pw = pw };
	return s;
}

static void test_conv_shapes(struct tap *t)
{
	struct conv_shape s = conv_sh(64, 96, 96, 64, 3, 3, 1, 1, 1, 1);
	int ok;

	ok = conv_shape_init(&s) == 0 && s.oh == 96 && s.ow == 96 &&
	     !s.transposed && conv_col_size(&s) == (size_t)64 * 9 * 96 * 96;
	tap_ok(t, ok, "conv shape 3x3/1 p1 96x96 -> 96x96, products not "
	       "transposed, col 64*9*96*96");
	s = conv_sh(3, 9, 7, 3, 5, 3, 2, 2, 2, 1);
	ok = conv_shape_init(&s) == 0 && s.oh == 5 && s.ow == 4;
	tap_ok(t, ok, "conv shape 5x3/2 p(2,1) 9x7 -> 5x4");
	s = conv_sh(512, 6, 6, 512, 3, 3, 1, 1, 1, 1);
	ok = conv_shape_init(&s) == 0 && s.transposed &&
	     conv_col_size(&s) == (size_t)512 * 9 * 36 + 512 * 36;
	tap_ok(t, ok, "conv shape 3x3/1 p1 c512 k512 6x6: products transposed, "
	       "col holds the patches and y^T");
	s = conv_sh(5, 24, 24, 3, 1, 1, 1, 1, 0, 0);
	ok = conv_shape_init(&s) == 0 && !s.transposed &&
	     conv_col_size(&s) == 0;
	tap_ok(t, ok, "conv shape 1x1/1 p0 24x24: no workspace");
	s.transposed = 1;
	tap_ok(t, conv_col_size(&s) == (size_t)5 * 24 * 24,
	       "conv shape 1x1/1 p0 c5 k3 24x24 transposed: col^T (5, 24*24)");
	s = conv_sh(5, 6, 5, 3, 1, 1, 2, 2, 0, 0);
	ok = conv_shape_init(&s) == 0 && s.oh == 3 && s.ow == 3 &&
	     !s.transposed && conv_col_size(&s) == (size_t)5 * 9;
	s.transposed = 1;
	ok = ok && conv_col_size(&s) == (size_t)5 * 9 + 3 * 9;
	tap_ok(t, ok, "conv shape 1x1/2 6x5 -> 3x3, needs im2col (and y^T "
	       "when transposed)");
	s = conv_sh(1, 2, 2, 1, 3, 3, 1, 1, 0, 0);
	tap_ok(t, conv_shape_init(&s) == -1, "conv shape: kernel > input -> -1");
	s = conv_sh(1, 4, 4, 1, 0, 3, 1, 1, 0, 0);
	tap_ok(t, conv_shape_init(&s) == -1, "conv shape: kernel 0 -> -1");
	s = conv_sh(1, 4, 4, 1, 3, 3, 1, 0, 0, 0);
	tap_ok(t, conv_shape_init(&s) == -1, "conv shape: stride 0 -> -1");
	s = conv_sh(1, 4, 4, 1, 3, 3, 1, 1, -1, 0);
	tap_ok(t, conv_shape_init(&s) == -1, "conv shape: padding -1 -> -1");
}

static void test_convs(struct tap *t, struct splitmix *rng)
{
	test_conv_shapes(t);
	test_conv(t, rng, "conv 3x3/1 p1 c3 k4 8x8",
		  conv_sh(3, 8, 8, 4, 3, 3, 1, 1, 1, 1), 1, 1);
	test_conv(t, rng, "conv 5x3/2 p(2,1) c2 k3 9x7",
		  conv_sh(2, 9, 7, 3, 5, 3, 2, 2, 2, 1), 1, 0);
	test_conv(t, rng, "conv 1x1/1 p0 c5 k3 6x5 (no im2col)",
		  conv_sh(5, 6, 5, 3, 1, 1, 1, 1, 0, 0), 1, 0);
	test_conv(t, rng, "conv 1x1/1 p0 c4 k6 3x7 no bias",
		  conv_sh(4, 3, 7, 6, 1, 1, 1, 1, 0, 0), 0, 0);
	test_conv(t, rng, "conv 1x1/2 p0 c3 k2 7x6",
		  conv_sh(3, 7, 6, 2, 1, 1, 2, 2, 0, 0), 1, 0);
	test_conv(t, rng, "conv 3x3/2 p0 c2 k3 9x11",
		  conv_sh(2, 9, 11, 3, 3, 3, 2, 2, 0, 0), 1, 0);
	/* The last input row and column are seen by no window. */
	test_conv(t, rng, "conv 3x3/2 p0 c2 k2 8x10 (unused edge)",
		  conv_sh(2, 8, 10, 2, 3, 3, 2, 2, 0, 0), 1, 0);
	/* Padding wider than half the kernel: corner taps see only zeros. */
	test_conv(t, rng, "conv 3x3/1 p2 c2 k3 4x5",
		  conv_sh(2, 4, 5, 3, 3, 3, 1, 1, 2, 2), 1, 0);
	test_conv(t, rng, "conv 2x4/3 p(1,2) c3 k2 7x9",
		  conv_sh(3, 7, 9, 2, 2, 4, 3, 3, 1, 2), 1, 0);
	test_conv(t, rng, "conv 3x3/1 p1 c8 k8 10x10 no bias",
		  conv_sh(8, 10, 10, 8, 3, 3, 1, 1, 1, 1), 0, 0);
	test_conv(t, rng, "conv 7x7/2 p3 c3 k4 11x13",
		  conv_sh(3, 11, 13, 4, 7, 7, 2, 2, 3, 3), 1, 0);
	/* As VGG's last block, with channel counts that leave ragged
	 * pieces; and a strided one. */
	test_conv_thin(t, rng, "conv 3x3/1 p1 c130 k240 6x6",
		       conv_sh(130, 6, 6, 240, 3, 3, 1, 1, 1, 1));
	test_conv_thin(t, rng, "conv 3x3/2 p1 c150 k200 11x13 -> 6x7",
		       conv_sh(150, 11, 13, 200, 3, 3, 2, 2, 1, 1));
}

/* ---- pooling ------------------------------------------------------------ */

/* Max over the real pixels of each window; argmax (may be NULL) gets h*W+w. */
static void ref_maxpool(const struct pool_shape *s, const double *x, double *y,
			int32_t *argmax)
{
	int c, oy, ox, i, j;

	for (c = 0; c < s->c; c++)
		for (oy = 0; oy < s->oh; oy++)
			for (ox = 0; ox < s->ow; ox++) {
				double best = -INFINITY;
				int best_i = -1;

				for (i = 0; i < s->kh; i++)
					for (j = 0; j < s->kw; j++) {
						int iy = oy * s->sh - s->ph + i;
						int ix = ox * s->sw - s->pw + j;
						double v;

						if (iy < 0 || iy >= s->h ||
						    ix < 0 || ix >= s->w)
							continue;
						v = x[(c * s->h + iy) * s->w + ix];
						if (v > best) {
							best = v;
							best_i = iy * s->w + ix;
						}
					}
				y[(c * s->oh + oy) * s->ow + ox] = best;
				if (argmax)
					argmax[(c * s->oh + oy) * s->ow + ox] = best_i;
			}
}

/* Average by counting window cells: the divisor counts the cells inside the
 * padded input (count_include_pad) or inside the real input. */
static void ref_avgpool(const struct pool_shape *s, const double *x, double *y)
{
	int c, oy, ox, i, j;

	for (c = 0; c < s->c; c++)
		for (oy = 0; oy < s->oh; oy++)
			for (ox = 0; ox < s->ow; ox++) {
				double sum = 0.0;
				int n_pad = 0, n_real = 0;

				for (i = 0; i < s->kh; i++)
					for (j = 0; j < s->kw; j++) {
						int iy = oy * s->sh - s->ph + i;
						int ix = ox * s->sw - s->pw + j;

						if (iy >= -s->ph && iy < s->h + s->ph &&
						    ix >= -s->pw && ix < s->w + s->pw)
							n_pad++;
						if (iy < 0 || iy >= s->h ||
						    ix < 0 || ix >= s->w)
							continue;
						n_real++;
						sum += x[(c * s->h + iy) * s->w + ix];
					}
				y[(c * s->oh + oy) * s->ow + ox] =
					sum / (s->count_include_pad ? n_pad : n_real);
			}
}

struct pool_ctx {
	const struct pool_shape *s;
	int is_max;
	double *x, *r, *y;
};

static double pool_loss(void *p)
{
	struct pool_ctx *c = p;

	if (c->is_max)
		ref_maxpool(c->s, c->x, c->y, NULL);
	else
		ref_avgpool(c->s, c->x, c->y);
	return dot(c->r, c->y, (size_t)c->s->c * c->s->oh * c->s->ow);
}

static struct pool_shape pool_sh(int c, int h, int w, int k, int st, int pad,
				 int ceil_mode, int include_pad)
{
	struct pool_shape s = { .c = c, .h = h, .w = w, .kh = k, .kw = k,
				.sh = st, .sw = st, .ph = pad, .pw = pad,
				.ceil_mode = ceil_mode,
				.count_include_pad = include_pad };
	return s;
}

static void test_pool(struct tap *t, struct splitmix *rng, const char *label,
		      struct pool_shape s, int is_max)
{
	size_t nx, ny, i;
	float *x, *y, *r, *dx;
	int32_t *am, *am_ref;
	double *xd, *rd, *yd, *num;
	struct pool_ctx ctx;
	int am_ok = 1;

	if (pool_shape_init(&s) != 0) {
		tap_ok(t, 0, "%s: pool_shape_init", label);
		return;
	}
	nx = (size_t)s.c * s.h * s.w;
	ny = (size_t)s.c * s.oh * s.ow;
	x = falloc(nx);
	dx = falloc(nx);
	y = falloc(ny);
	r = falloc(ny);
	am = xmalloc(ny * sizeof *am);
	am_ref = xmalloc(ny * sizeof *am_ref);
	if (is_max)
		fill_distinct(rng, x, nx);
	else
		fill_uniform(rng, x, nx, 1.0f);
	fill_uniform(rng, r, ny, 1.0f);
	xd = to_double(x, nx);
	rd = to_double(r, ny);
	yd = dalloc(ny);
	num = dalloc(nx);
	ctx = (struct pool_ctx){ &s, is_max, xd, rd, yd };

	fill_nan(y, ny);
	fill_nan(dx, nx);
	if (is_max) {
		for (i = 0; i < ny; i++)
			am[i] = -7;
		pool_max_forward(&s, x, y, am, NULL, NULL);
		ref_maxpool(&s, xd, yd, am_ref);
		check_fwd(t, label, y, yd, ny);
		for (i = 0; i < ny; i++)
			am_ok &= am[i] == am_ref[i];
		tap_ok(t, am_ok, "%s: argmax (h*W+w) equals reference", label);
		pool_max_backward(&s, r, am, dx);
	} else {
		pool_avg_forward(&s, x, y);
		ref_avgpool(&s, xd, yd);
		check_fwd(t, label, y, yd, ny);
		pool_avg_backward(&s, r, dx);
	}
	fd_grad(pool_loss, &ctx, xd, nx, num);
	check_grad(t, label, "dx", dx, num, nx);

	free(x); free(dx); free(y); free(r); free(am); free(am_ref);
	free(xd); free(rd); free(yd); free(num);
}

/* Output sizes and rejections, expected values from PyTorch 1.13
 * F.max_pool2d on square inputs. */
static void test_pool_shapes(struct tap *t)
{
	static const struct {
		int h, k, s, p, ceil, out;
	} cases[] = {
		{ 224, 2, 2, 0, 0, 112 },
		{ 5, 2, 2, 1, 1, 3 },	/* ceil rule drops a 4th window */
		{ 8, 3, 2, 1, 1, 5 },
		{ 8, 3, 2, 1, 0, 4 },
		{ 7, 3, 2, 1, 1, 4 },
		{ 112, 3, 2, 0, 1, 56 },
		{ 112, 3, 2, 0, 0, 55 },
		{ 5, 3, 3, 0, 1, 2 },
		{ 6, 3, 2, 1, 1, 4 },
		{ 1, 3, 1, 1, 1, 1 },
		{ 2, 3, 3, 1, 1, 1 },
		{ 3, 2, 2, 1, 1, 2 },
		/* rejected */
		{ 4, 3, 1, 2, 0, -1 },	/* padding > kernel/2 */
		{ 4, 0, 1, 0, 0, -1 },
		{ 4, 2, 0, 0, 0, -1 },
		{ 2, 3, 1, 0, 0, -1 },	/* empty output */
		{ 0, 1, 1, 0, 0, -1 },
	};
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct pool_shape s = pool_sh(1, cases[i].h, cases[i].h,
					      cases[i].k, cases[i].s, cases[i].p,
					      cases[i].ceil, 1);
		int rc = pool_shape_init(&s), got = rc ? -1 : s.oh;

		tap_ok(t, got == cases[i].out && (rc || s.ow == s.oh),
		       "pool shape in %d k%d s%d p%d%s -> %d (expect %d)",
		       cases[i].h, cases[i].k, cases[i].s, cases[i].p,
		       cases[i].ceil ? " ceil" : "", got, cases[i].out);
	}
}

/* avg_pool2d(arange(1,37).view(6,6), 3, 2, 1, ceil_mode=True) from PyTorch
 * 1.13, both count_include_pad values: the last window reaches past the
 * padded input, where the two divisors differ most. */
static void test_avgpool_golden(struct tap *t)
{
	static const float want[2][16] = {
		{ 4.5f, 6.0f, 8.0f, 9.0f, 13.5f, 15.0f, 17.0f, 18.0f,
		  25.5f, 27.0f, 29.0f, 30.0f, 31.5f, 33.0f, 35.0f, 36.0f },
		{ 2.0f, 4.0f, 16.0f / 3.0f, 3.0f, 9.0f, 15.0f, 17.0f, 9.0f,
		  17.0f, 27.0f, 29.0f, 15.0f, 10.5f, 16.5f, 17.5f, 9.0f },
	};
	float x[36], y[16];
	int inc, i;

	for (i = 0; i < 36; i++)
		x[i] = (float)(i + 1);
	for (inc = 0; inc < 2; inc++) {
		struct pool_shape s = pool_sh(1, 6, 6, 3, 2, 1, 1, inc);
		double worst = 0.0;

		if (pool_shape_init(&s) != 0 || s.oh != 4 || s.ow != 4) {
			tap_ok(t, 0, "avgpool golden: shape 6x6 -> 4x4");
			continue;
		}
		pool_avg_forward(&s, x, y);
		for (i = 0; i < 16; i++)
			if (!(fabs(y[i] - want[inc][i]) <= worst))
				worst = fabs(y[i] - want[inc][i]);
		tap_ok(t, worst < 1e-5,
		       "avgpool 3x3/2 p1 ceil 6x6 count_include_pad=%d vs PyTorch: max err %.1e",
		       inc, worst);
	}
}

static void test_maxpool_nan(struct tap *t)
{
	struct pool_shape s = pool_sh(1, 4, 4, 2, 2, 0, 0, 0);
	float x[16], y[4];
	int32_t am[4];
	int i;

	for (i = 0; i < 16; i++)
		x[i] = (float)i;
	x[1 * 4 + 0] = NAN;	/* in the first window, not its max */
	pool_shape_init(&s);
	pool_max_forward(&s, x, y, am, NULL, NULL);
	tap_ok(t, isnan(y[0]) && am[0] == 4 && y[3] == 15.0f && am[3] == 15,
	       "maxpool propagates NaN (as PyTorch), other windows unaffected");

	/* Ties: the first maximum in window order wins (2x2 fast path and
	 * the general 3x3 path). Window 1 (x 2..3, y 0..1) ties at 7. */
	for (i = 0; i < 16; i++)
		x[i] = 0.0f;
	x[0 * 4 + 3] = 7.0f;
	x[1 * 4 + 2] = 7.0f;
	x[1 * 4 + 3] = 7.0f;
	x[2 * 4 + 0] = -1.0f;	/* window 2 all <= 0: first 0 wins */
	pool_max_forward(&s, x, y, am, NULL, NULL);
	tap_ok(t, y[1] == 7.0f && am[1] == 3 && y[2] == 0.0f && am[2] == 9,
	       "maxpool 2x2: the first of equal maxima wins (argmax %d, %d)",
	       am[1], am[2]);
	s = pool_sh(1, 4, 4, 3, 1, 0, 0, 0);
	pool_shape_init(&s);
	pool_max_forward(&s, x, y, am, NULL, NULL);
	/* Output 1 covers x 1..3, y 0..2: 7 at indices 3, 6 and 7. */
	tap_ok(t, y[1] == 7.0f && am[1] == 3,
	       "maxpool 3x3: the first of equal maxima wins (argmax %d)", am[1]);
}

/* The tie rule (pool.h): with signatures, the first element whose
 * signature is the maximum's gets the gradient, however far apart their
 * float values; without, the strict maximum. */
static void test_maxpool_ties(struct tap *t)
{
	struct pool_shape s = pool_sh(1, 4, 4, 2, 2, 0, 0, 0);
	float x[16], y[4];
	uint64_t sig[16];
	int32_t am[4], work[128];
	int i;

	pool_shape_init(&s);
	if (!tap_ok(t, pool_tie_work_size(&s) <= sizeof work / sizeof *work,
		    "maxpool 2x2: the tie rule's workspace fits (%zu ints)",
		    pool_tie_work_size(&s)))
		return;
	for (i = 0; i < 16; i++) {
		x[i] = 1.0f;
		sig[i] = 1000 + (uint64_t)i;	/* all fields different */
	}
	x[1] = 1.0f + 0x1p-22f;		/* window 0: the max second ... */
	sig[1] = sig[0];		/* ... but a tie with the first */
	x[3] = 1.0f + 0x1p-21f;		/* window 1: a genuine max ... */
	x[1 * 4 + 2] = NAN;		/* ... and a NaN, window 1 */
	sig[1 * 4 + 3] = sig[3];	/* a tie after the NaN */
	x[2 * 4 + 1] = NAN;		/* window 2 two NaNs (the last wins) */
	x[3 * 4 + 0] = NAN;
	sig[3 * 4 + 0] = sig[2 * 4 + 0];
	x[2 * 4 + 3] = 1.5f;		/* window 3: max at the end, tied */
	x[3 * 4 + 3] = 2.0f;		/* with the second element */
	sig[3 * 4 + 3] = sig[2 * 4 + 3];
	pool_max_forward(&s, x, y, am, NULL, NULL);
	tap_ok(t, am[0] == 1 && am[3] == 15,
	       "maxpool without signatures: the strict max wins (argmax %d, %d)",
	       am[0], am[3]);
	pool_max_forward(&s, x, y, am, sig, work);
	tap_ok(t, am[0] == 0 && y[0] == 1.0f + 0x1p-22f,
	       "maxpool tie rule: an element with the max's signature before it "
	       "gets the gradient (argmax %d), y is the float max", am[0]);
	tap_ok(t, isnan(y[1]) && am[1] == 6 && isnan(y[2]) && am[2] == 12,
	       "maxpool tie rule: a NaN still wins its window, the last NaN "
	       "(argmax %d, %d)", am[1], am[2]);
	tap_ok(t, am[3] == 11 && y[3] == 2.0f,
	       "maxpool tie rule: equal signatures are a tie whatever the float "
	       "gap (argmax %d)", am[3]);
	x[1 * 4 + 2] = 1.0f;
	pool_max_forward(&s, x, y, am, sig, work);
	tap_ok(t, am[1] == 3,
	       "maxpool tie rule: a max whose signature no earlier element shares "
	       "stays (argmax %d)", am[1]);
	/* The general path (3x3 windows, stride 1): output 0 covers rows and
	 * columns 0..2, max 1 + 2^-22 at index 1, and index 0 shares its
	 * signature; output 1 covers columns 1..3, max 1.5 at index 11, and
	 * index 5 shares its signature. */
	x[2 * 4 + 1] = 1.0f;
	sig[1 * 4 + 1] = sig[11];
	s = pool_sh(1, 4, 4, 3, 1, 0, 0, 0);
	pool_shape_init(&s);
	if (!tap_ok(t, pool_tie_work_size(&s) <= sizeof work / sizeof *work,
		    "maxpool 3x3: the tie rule's workspace fits (%zu ints)",
		    pool_tie_work_size(&s)))
		return;
	pool_max_forward(&s, x, y, am, sig, work);
	tap_ok(t, am[0] == 0 && am[1] == 5,
	       "maxpool 3x3 tie rule: the first element with the max's signature "
	       "gets it (argmax %d, %d)", am[0], am[1]);
	sig[0] = 7;
	pool_max_forward(&s, x, y, am, sig, work);
	tap_ok(t, am[0] == 1, "maxpool 3x3: no shared signature, the strict max "
	       "(argmax %d)", am[0]);
}

/* Receptive-field signatures (fieldsig.h): equal exactly where the fields
 * (pixels and padding) are equal. */
static void test_fieldsig(struct tap *t)
{
	float x[3 * 25];
	uint64_t px[25], y[25], z[9], work[64];
	struct fieldsig_window w3 = { 5, 5, 3, 3, 1, 1, 1, 1, 5, 5 };
	struct fieldsig_window s2 = { 5, 5, 3, 3, 2, 2, 1, 1, 3, 3 };
	int i, interior = 1, border = 1;

	for (i = 0; i < 3 * 25; i++)
		x[i] = 0.5f;
	x[25 + 7] = -0.0f;		/* channel 1 of pixel 7: -0 */
	x[2 * 25 + 12] = 0.25f;		/* channel 2 of the centre */
	for (i = 0; i < 25; i++)
		x[25 + i] = i == 7 ? -0.0f : 0.0f;
	fieldsig_values(3, 25, x, px);
	tap_ok(t, px[0] == px[7] && px[0] == px[24] && px[12] != px[0],
	       "fieldsig_values: equal pixels (-0 as +0) hash alike, another differs");
	x[2 * 25 + 12] = 0.5f;
	fieldsig_values(3, 25, x, px);
	fieldsig_window(&w3, px, y, work);
	/* a constant map: the 3x3 interior has one field, every border
	 * position sees padding in its own place */
	for (i = 0; i < 25; i++) {
		int r = i / 5, c = i % 5;

		if (r >= 1 && r <= 3 && c >= 1 && c <= 3)
			interior &= y[i] == y[6];
		else
			border &= y[i] != y[6];
	}
	tap_ok(t, interior && border && y[0] != y[4] && y[0] != y[20] &&
	       y[1] == y[2] && y[1] == y[3] && y[1] != y[21],
	       "fieldsig_window 3x3 p1 on a constant map: interior alike, each border "
	       "side and corner its own");
	px[18] ^= 1;			/* one pixel differs: its neighbours change */
	fieldsig_window(&w3, px, y, work);
	tap_ok(t, y[6] == y[7] && y[6] == y[8] && y[12] != y[6] && y[13] != y[6] &&
	       y[18] != y[12],
	       "fieldsig_window: positions whose window holds the changed pixel differ");
	fieldsig_window(&s2, px, z, work);
	tap_ok(t, z[0] != z[4] && z[4] != z[8],
	       "fieldsig_window stride 2: centre, corner and the changed corner differ");
	fieldsig_combine(px, px, 25, y);
	tap_ok(t, y[0] == y[1] && y[0] != y[18] && y[0] != px[0],
	       "fieldsig_combine: a function of both maps, position by position");
}

static void test_gap(struct tap *t, struct splitmix *rng, int c, int hw)
{
	size_t nx = (size_t)c * hw, i;
	float *x = falloc(nx), *dx = falloc(nx), *y = falloc((size_t)c);
	float *r = falloc((size_t)c);
	double *yd = dalloc((size_t)c), *gd = dalloc(nx);
	char label[64];
	int ci;

	snprintf(label, sizeof label, "gap c%d hw%d", c, hw);
	fill_uniform(rng, x, nx, 1.0f);
	fill_uniform(rng, r, (size_t)c, 1.0f);
	fill_nan(y, (size_t)c);
	fill_nan(dx, nx);
	pool_global_forward(c, hw, x, y);
	for (ci = 0; ci < c; ci++) {
		double s = 0.0;

		for (i = 0; i < (size_t)hw; i++)
			s += x[(size_t)ci * hw + i];
		yd[ci] = s / hw;
	}
	check_fwd(t, label, y, yd, (size_t)c);
	/* L = sum_c r_c * mean(x_c) is linear: dL/dx = r_c / hw exactly, so
	 * central differences would only add rounding. */
	for (ci = 0; ci < c; ci++)
		for (i = 0; i < (size_t)hw; i++)
			gd[(size_t)ci * hw + i] = (double)r[ci] / hw;
	pool_global_backward(c, hw, r, dx);
	check_grad(t, label, "dx", dx, gd, nx);
	free(x); free(dx); free(y); free(r); free(yd); free(gd);
}

/* Batch-1 backward with a mostly-zero dy (dense.c's sparse path): equal
 * to the double product, close to the matrix-vector path, the same bits
 * on pools of 1, 2 and 3 threads; a NaN in dy still spreads; a dense dy
 * takes the matrix-vector path (bit-equal to passing no workspace). */
static void test_dense_sparse(struct tap *t, struct splitmix *rng)
{
	const int in = 600, out = 512;
	size_t nw = (size_t)out * in, i;
	float *w = falloc(nw), *dy = falloc((size_t)out), *dx = falloc((size_t)in);
	float *dx0 = falloc((size_t)in), *dxp = falloc((size_t)in);
	float *work = falloc(dense_work_size(in));
	double err = 0.0, scale = 0.0, gap = 0.0;
	int o, j, nz = 0, same = 1, nan_all = 1, p;

	fill_uniform(rng, w, nw, 0.5f);
	fill_uniform(rng, dy, (size_t)out, 1.0f);
	for (o = 0; o < out; o++)
		if (o % 5 < 3)		/* 60% zeros, as behind a ReLU */
			dy[o] = 0.0f;
		else
			nz++;
	fill_nan(dx, (size_t)in);
	dense_backward_input(NULL, 1, in, out, dy, w, dx, work);
	dense_backward_input(NULL, 1, in, out, dy, w, dx0, NULL);
	for (j = 0; j < in; j++) {
		double r = 0.0;

		for (o = 0; o < out; o++)
			r += (double)dy[o] * w[(size_t)o * in + j];
		err = fmax(err, fabs(dx[j] - r));
		scale = fmax(scale, fabs(r));
		gap = fmax(gap, fabs((double)dx[j] - dx0[j]));
	}
	tap_ok(t, err <= 1e-5 * scale && gap <= 1e-5 * scale,
	       "dense backward, %d of %d dy non-zero: max error %.1e vs double, "
	       "%.1e vs the matrix-vector path (max |dx| %.2f)", nz, out, err,
	       gap, scale);
	for (p = 2; p <= 3; p++) {
		struct workers *wk = workers_new(p);

		fill_nan(dxp, (size_t)in);
		dense_backward_input(wk, 1, in, out, dy, w, dxp, work);
		same &= memcmp(dxp, dx, (size_t)in * sizeof *dx) == 0;
		workers_free(wk);
	}
	tap_ok(t, same, "dense sparse backward: the same bits on 1, 2 and 3 threads");
	dy[7 * 5 + 4] = NAN;
	dense_backward_input(NULL, 1, in, out, dy, w, dx, work);
	for (j = 0; j < in; j++)
		nan_all &= isnan(dx[j]);
	tap_ok(t, nan_all, "dense sparse backward: a NaN in dy reaches every dx");
	for (i = 0; i < (size_t)out; i++)
		dy[i] = fabsf(splitmix_uniform(rng)) + 0.1f;	/* none zero */
	dense_backward_input(NULL, 1, in, out, dy, w, dx, work);
	dense_backward_input(NULL, 1, in, out, dy, w, dx0, NULL);
	tap_ok(t, memcmp(dx, dx0, (size_t)in * sizeof *dx) == 0,
	       "dense backward with a dense dy: the matrix-vector path");
	free(w), free(dy), free(dx), free(dx0), free(dxp), free(work);
}

static void test_pools(struct tap *t, struct splitmix *rng)
{
	test_pool_shapes(t);
	test_pool(t, rng, "maxpool 2x2/2 c3 6x8", pool_sh(3, 6, 8, 2, 2, 0, 0, 0), 1);
	test_pool(t, rng, "maxpool 2x2/2 c2 7x9 (unused edge)",
		  pool_sh(2, 7, 9, 2, 2, 0, 0, 0), 1);
	test_pool(t, rng, "maxpool 3x3/2 p1 ceil c2 8x7",
		  pool_sh(2, 8, 7, 3, 2, 1, 1, 0), 1);
	test_pool(t, rng, "maxpool 2x2/2 p1 ceil c2 5x5",
		  pool_sh(2, 5, 5, 2, 2, 1, 1, 0), 1);
	test_pool(t, rng, "maxpool 3x3/1 p1 c2 5x6 (overlapping)",
		  pool_sh(2, 5, 6, 3, 1, 1, 0, 0), 1);
	test_maxpool_nan(t);
	test_maxpool_ties(t);
	test_fieldsig(t);
	test_pool(t, rng, "avgpool 2x2/2 c3 6x8", pool_sh(3, 6, 8, 2, 2, 0, 0, 1), 0);
	test_pool(t, rng, "avgpool 3x3/2 p1 ceil c2 8x7 count_include_pad=1",
		  pool_sh(2, 8, 7, 3, 2, 1, 1, 1), 0);
	test_pool(t, rng, "avgpool 3x3/2 p1 ceil c2 8x7 count_include_pad=0",
		  pool_sh(2, 8, 7, 3, 2, 1, 1, 0), 0);
	test_pool(t, rng, "avgpool 3x3/1 p1 c2 5x6 count_include_pad=1",
		  pool_sh(2, 5, 6, 3, 1, 1, 0, 1), 0);
	test_pool(t, rng, "avgpool 3x3/1 p1 c2 5x6 count_include_pad=0",
		  pool_sh(2, 5, 6, 3, 1, 1, 0, 0), 0);
	test_avgpool_golden(t);
	test_gap(t, rng, 4, 9);
	test_gap(t, rng, 3, 1);
}

/* ---- dense -------------------------------------------------------------- */

struct dense_ctx {
	int n, in, out;
	double *x, *w, *b, *r, *y;
};

static void ref_dense(const struct dense_ctx *c)
{
	int i, o, j;

	for (i = 0; i < c->n; i++)
		for (o = 0; o < c->out; o++) {
			double acc = c->b[o];

			for (j = 0; j < c->in; j++)
				acc += c->x[i * c->in + j] * c->w[o * c->in + j];
			c->y[i * c->out + o] = acc;
		}
}

static double dense_loss(void *p)
{
	struct dense_ctx *c = p;

	ref_dense(c);
	return dot(c->r, c->y, (size_t)c->n * c->out);
}

static void test_dense(struct tap *t, struct splitmix *rng, int n, int in, int out)
{
	size_t nx = (size_t)n * in, nw = (size_t)out * in, ny = (size_t)n * out;
	size_t nb = (size_t)out, i;
	float *x = falloc(nx), *w = falloc(nw), *b = falloc(nb), *r = falloc(ny);
	float *y = falloc(ny), *dx = falloc(nx), *dw = falloc(nw);
	float *dw0 = falloc(nw), *db = falloc(nb), *db0 = falloc(nb);
	double *num = dalloc(nx > nw ? nx : nw);
	struct dense_ctx ctx;
	char label[64];

	snprintf(label, sizeof label, "dense batch %d in %d out %d", n, in, out);
	fill_uniform(rng, x, nx, 1.0f);
	fill_uniform(rng, w, nw, 0.5f);
	fill_uniform(rng, b, nb, 0.5f);
	fill_uniform(rng, r, ny, 1.0f);
	ctx = (struct dense_ctx){ n, in, out, to_double(x, nx), to_double(w, nw),
				  to_double(b, nb), to_double(r, ny), dalloc(ny) };

	fill_nan(y, ny);
	dense_forward(NULL, n, in, out, x, w, b, y);
	ref_dense(&ctx);
	check_fwd(t, label, y, ctx.y, ny);

	fill_nan(dx, nx);
	dense_backward_input(NULL, n, in, out, r, w, dx, NULL);
	fd_grad(dense_loss, &ctx, ctx.x, nx, num);
	check_grad(t, label, "dx", dx, num, nx);

	fill_uniform(rng, dw0, nw, 1.0f);
	fill_uniform(rng, db0, nb, 1.0f);
	memcpy(dw, dw0, nw * sizeof *dw);
	memcpy(db, db0, nb * sizeof *db);
	dense_backward_params(NULL, n, in, out, x, r, dw, db);
	for (i = 0; i < nw; i++)
		dw[i] -= dw0[i];
	for (i = 0; i < nb; i++)
		db[i] -= db0[i];
	fd_grad(dense_loss, &ctx, ctx.w, nw, num);
	check_grad(t, label, "dw (accumulated)", dw, num, nw);
	fd_grad(dense_loss, &ctx, ctx.b, nb, num);
	check_grad(t, label, "db (accumulated)", db, num, nb);

	/* b == NULL: the same product without the bias row. */
	for (i = 0; i < nb; i++)
		ctx.b[i] = 0.0;
	fill_nan(y, ny);
	dense_forward(NULL, n, in, out, x, w, NULL, y);
	ref_dense(&ctx);
	tap_ok(t, fwd_err(y, ctx.y, ny) < FWD_TOL, "%s: forward with b == NULL",
	       label);
	memcpy(db, db0, nb * sizeof *db);
	dense_backward_params(NULL, n, in, out, x, r, dw, NULL);
	tap_ok(t, memcmp(db, db0, nb * sizeof *db) == 0,
	       "%s: db == NULL accepted", label);

	free(x); free(w); free(b); free(r); free(y); free(dx); free(dw);
	free(dw0); free(db); free(db0); free(num);
	free(ctx.x); free(ctx.w); free(ctx.b); free(ctx.r); free(ctx.y);
}

/* ---- activations -------------------------------------------------------- */

enum act_kind { ACT_RELU, ACT_SOFTMAX, ACT_LOG_SOFTMAX };

struct act_ctx {
	enum act_kind kind;
	int n, k;
	double *z, *r, *y;
};

static void ref_act(const struct act_ctx *c)
{
	int i, j;

	for (i = 0; i < c->n; i++) {
		const double *z = c->z + (size_t)i * c->k;
		double *y = c->y + (size_t)i * c->k;
		double m = z[0], sum = 0.0;

		if (c->kind == ACT_RELU) {
			for (j = 0; j < c->k; j++)
				y[j] = z[j] > 0.0 ? z[j] : 0.0;
			continue;
		}
		for (j = 1; j < c->k; j++)
			m = z[j] > m ? z[j] : m;
		for (j = 0; j < c->k; j++)
			sum += exp(z[j] - m);
		for (j = 0; j < c->k; j++)
			y[j] = c->kind == ACT_SOFTMAX ? exp(z[j] - m) / sum :
				z[j] - m - log(sum);
	}
}

static double act_loss(void *p)
{
	struct act_ctx *c = p;

	ref_act(c);
	return dot(c->r, c->y, (size_t)c->n * c->k);
}

/* Rows (n, k); row 1 is shifted by +1000 when n > 1: without the row-max
 * shift exp() would overflow to inf and the outputs would be NaN. */
static void test_act(struct tap *t, struct splitmix *rng, enum act_kind kind,
		     const char *label, int n, int k)
{
	size_t nz = (size_t)n * k, i;
	float *z = falloc(nz), *y = falloc(nz), *r = falloc(nz);
	float *dz = falloc(nz), *tmp = falloc(nz);
	double *num = dalloc(nz);
	struct act_ctx ctx;
	int alias_ok;

	if (kind == ACT_RELU) {
		fill_away_from_zero(rng, z, nz);
	} else {
		fill_uniform(rng, z, nz, 4.0f);
		if (n > 1)
			for (i = 0; i < (size_t)k; i++)
				z[(size_t)k + i] += 1000.0f;
	}
	fill_uniform(rng, r, nz, 1.0f);
	ctx = (struct act_ctx){ kind, n, k, to_double(z, nz), to_double(r, nz),
				dalloc(nz) };

	fill_nan(y, nz);
	fill_nan(dz, nz);
	if (kind == ACT_RELU) {
		act_relu_forward(z, y, nz);
		act_relu_backward(y, r, dz, nz);
	} else if (kind == ACT_SOFTMAX) {
		act_softmax_forward(n, k, z, y);
		act_softmax_backward(n, k, y, r, dz);
	} else {
		act_log_softmax_forward(n, k, z, y);
		act_log_softmax_backward(n, k, y, r, dz);
	}
	ref_act(&ctx);
	check_fwd(t, label, y, ctx.y, nz);
	fd_grad(act_loss, &ctx, ctx.z, nz, num);
	check_grad(t, label, "dz", dz, num, nz);

	/* In place, as act.h allows: forward x == y, backward dy == dx. */
	memcpy(tmp, z, nz * sizeof *tmp);
	if (kind == ACT_RELU)
		act_relu_forward(tmp, tmp, nz);
	else if (kind == ACT_SOFTMAX)
		act_softmax_forward(n, k, tmp, tmp);
	else
		act_log_softmax_forward(n, k, tmp, tmp);
	alias_ok = memcmp(tmp, y, nz * sizeof *tmp) == 0;
	memcpy(tmp, r, nz * sizeof *tmp);
	if (kind == ACT_RELU)
		act_relu_backward(y, tmp, tmp, nz);
	else if (kind == ACT_SOFTMAX)
		act_softmax_backward(n, k, y, tmp, tmp);
	else
		act_log_softmax_backward(n, k, y, tmp, tmp);
	alias_ok &= memcmp(tmp, dz, nz * sizeof *tmp) == 0;
	tap_ok(t, alias_ok, "%s: in-place forward and backward match", label);

	free(z); free(y); free(r); free(dz); free(tmp); free(num);
	free(ctx.z); free(ctx.r); free(ctx.y);
}

/* ---- the thread pool ---------------------------------------------------- */

#define MAX_TASKS 1000

/* Plain ints, one slot per task: workers_run must make the tasks' writes
 * visible to the caller (and a race here is what -fsanitize=thread sees). */
struct count_job {
	int hits[MAX_TASKS];
	int thread_of[MAX_TASKS];
	int order[MAX_TASKS];
	int next;		/* for the sequential order check only */
};

static void count_task(void *ctx, int task, int thread)
{
	struct count_job *j = ctx;

	j->hits[task]++;
	j->thread_of[task] = thread;
}

static void order_task(void *ctx, int task, int thread)
{
	struct count_job *j = ctx;

	(void)thread;
	j->order[j->next++] = task;
}

static void sleep_us(long us)
{
	struct timespec ts = { 0, us * 1000L };

	nanosleep(&ts, NULL);
}

/* runs runs of varying sizes on w; every 50th after a pause long enough
 * for the workers to fall asleep. Returns the number of bad runs. */
static int count_runs(struct workers *w, int runs)
{
	static const int sizes[] = { 0, 1, 2, 3, 7, 64, MAX_TASKS, 5 };
	static struct count_job j;
	int r, i, bad = 0, n = workers_count(w);

	for (r = 0; r < runs; r++) {
		int nt = sizes[r % 8], ok = 1;

		memset(&j, 0, sizeof j);
		if (r % 50 == 49)
			sleep_us(500);
		workers_run(w, count_task, &j, nt);
		for (i = 0; i < MAX_TASKS; i++)
			ok = ok && j.hits[i] == (i < nt) &&
			     j.thread_of[i] >= 0 && j.thread_of[i] < n;
		bad += !ok;
	}
	return bad;
}

static void test_workers(struct tap *t)
{
	static struct count_job j;
	struct workers *w;
	int n, i, ok;

	w = workers_new(0);
	tap_ok(t, w && workers_count(w) == 1 && workers_count(NULL) == 1,
	       "workers: a pool of 0 threads has 1 (the caller), NULL counts 1");
	workers_free(w);
	workers_free(NULL);

	memset(&j, 0, sizeof j);
	workers_run(NULL, order_task, &j, 10);
	for (i = 0, ok = j.next == 10; ok && i < 10; i++)
		ok = j.order[i] == i;
	tap_ok(t, ok, "workers: NULL runs the tasks in order on the caller");

	/* 5 threads on fewer cores: preempted workers must not lose tasks. */
	for (n = 2; n <= 5; n++) {
		int bad;

		w = workers_new(n);
		if (!tap_ok(t, w && workers_count(w) == n,
			    "workers: a pool of %d threads", n))
			continue;
		bad = count_runs(w, 2000);
		tap_ok(t, bad == 0,
		       "workers: %d threads, 2000 runs of 0..%d tasks (some after "
		       "a sleep): every task exactly once, thread index in range "
		       "(%d bad runs)", n, MAX_TASKS, bad);
		workers_free(w);
	}
}

/* The result of one pass, for comparing bit for bit. */
static int same_bits(const float *a, const float *b, size_t n)
{
	return memcmp(a, b, n * sizeof *a) == 0;
}

/* conv forward, backward to the input and to the parameters on pools of 2
 * and 3 threads against no pool on one OpenBLAS thread. */
static void test_conv_threads_one(struct tap *t, struct splitmix *rng,
				  struct workers *const *pools,
				  const char *label, struct conv_shape s)
{
	size_t nx, nw, ny, ncol;
	float *x, *w, *b, *r, *col, *y0, *dx0, *dw0, *db0, *y, *dx, *dw, *db;
	int threads = blas_get_threads(), p, ok = 1;

	nx = (size_t)s.c * s.h * s.w;
	nw = (size_t)s.k * s.c * s.kh * s.kw;
	ny = (size_t)s.k * s.oh * s.ow;
	ncol = conv_col_size(&s);
	x = falloc(nx); w = falloc(nw); b = falloc((size_t)s.k); r = falloc(ny);
	col = falloc(ncol ? ncol : 1);
	y0 = falloc(ny); dx0 = falloc(nx); dw0 = falloc(nw);
	db0 = falloc((size_t)s.k);
	y = falloc(ny); dx = falloc(nx); dw = falloc(nw); db = falloc((size_t)s.k);
	fill_uniform(rng, x, nx, 1.0f);
	fill_uniform(rng, w, nw, 0.5f);
	fill_uniform(rng, b, (size_t)s.k, 0.5f);
	fill_uniform(rng, r, ny, 1.0f);

	blas_set_threads(1);
	conv_forward(NULL, &s, x, w, b, CONV_ACT_NONE, y0, col);
	conv_backward_input(NULL, &s, r, w, dx0, col);
	memset(dw0, 0, nw * sizeof *dw0);
	memset(db0, 0, (size_t)s.k * sizeof *db0);
	conv_backward_params(NULL, &s, x, r, dw0, db0, col);
	blas_set_threads(threads);
	for (p = 0; p < 2; p++) {
		fill_nan(y, ny);
		fill_nan(dx, nx);
		fill_nan(col, ncol ? ncol : 1);
		memset(dw, 0, nw * sizeof *dw);
		memset(db, 0, (size_t)s.k * sizeof *db);
		conv_forward(pools[p], &s, x, w, b, CONV_ACT_NONE, y, col);
		conv_backward_input(pools[p], &s, r, w, dx, col);
		conv_backward_params(pools[p], &s, x, r, dw, db, col);
		ok = ok && same_bits(y, y0, ny) && same_bits(dx, dx0, nx) &&
		     same_bits(dw, dw0, nw) && same_bits(db, db0, (size_t)s.k);
	}
	tap_ok(t, ok && blas_get_threads() == threads,
	       "%s on 2 and 3 threads: y, dx, dw, db identical to no pool; "
	       "OpenBLAS threads restored", label);
	free(x); free(w); free(b); free(r); free(col); free(y0); free(dx0);
	free(dw0); free(db0); free(y); free(dx); free(dw); free(db);
}

/* Both orientations of the products (conv.h `transposed`). */
static void test_conv_threads(struct tap *t, struct splitmix *rng,
			      struct workers *const *pools, const char *label,
			      struct conv_shape s)
{
	char name[120];
	int tr;

	conv_shape_init(&s);
	for (tr = 0; tr < 2; tr++) {
		s.transposed = tr;
		snprintf(name, sizeof name, "%s%s", label,
			 tr ? ", transposed" : "");
		test_conv_threads_one(t, rng, pools, name, s);
	}
}

/* conv_forward with CONV_ACT_RELU against CONV_ACT_NONE followed by
 * act_relu_forward: the same sums, then the same comparison, so equal bit
 * for bit, in both orientations of the products (the ReLU rides on the
 * bias pass, or on the untranspose of y^T), with and without a bias (no
 * bias: the ReLU alone, nothing added), with no pool and on 2 and 3
 * threads. One input value is a NaN, which must come out as NaN (as in
 * PyTorch; fmaxf(v, 0) would make it 0); the test checks that NaNs did
 * reach the output and that there were negatives to clear. */
static void test_conv_relu(struct tap *t, struct splitmix *rng,
			   struct workers *const *pools, const char *label,
			   struct conv_shape s)
{
	size_t nx, ny, ncol, negs = 0, nans = 0, i;
	float *x, *w, *b, *col, *y, *yref;
	int tr, with_bias, p, same = 1;

	conv_shape_init(&s);
	s.transposed = 1;	/* col sized for either orientation */
	nx = (size_t)s.c * s.h * s.w;
	ny = (size_t)s.k * s.oh * s.ow;
	ncol = conv_col_size(&s);
	s.transposed = 0;
	if (conv_col_size(&s) > ncol)
		ncol = conv_col_size(&s);
	x = falloc(nx); w = falloc((size_t)s.k * s.c * s.kh * s.kw);
	b = falloc((size_t)s.k); col = falloc(ncol ? ncol : 1);
	y = falloc(ny); yref = falloc(ny);
	fill_uniform(rng, x, nx, 1.0f);
	fill_uniform(rng, w, (size_t)s.k * s.c * s.kh * s.kw, 0.5f);
	fill_uniform(rng, b, (size_t)s.k, 0.5f);
	x[(size_t)s.h / 2 * s.w + s.w / 2] = NAN;	/* channel 0, middle */
	for (tr = 0; tr < 2; tr++)
		for (with_bias = 0; with_bias < 2; with_bias++)
			for (p = -1; p < 2; p++) {
				struct workers *wk = p < 0 ? NULL : pools[p];
				const float *bias = with_bias ? b : NULL;

				s.transposed = tr;
				fill_nan(yref, ny);
				fill_nan(col, ncol ? ncol : 1);
				conv_forward(wk, &s, x, w, bias, CONV_ACT_NONE,
					     yref, col);
				for (i = 0; !tr && with_bias && p < 0 && i < ny;
				     i++) {
					negs += yref[i] < 0.0f;
					nans += isnan(yref[i]);
				}
				act_relu_forward(yref, yref, ny);
				fill_nan(y, ny);
				fill_nan(col, ncol ? ncol : 1);
				conv_forward(wk, &s, x, w, bias, CONV_ACT_RELU,
					     y, col);
				same = same && same_bits(y, yref, ny);
			}
	tap_ok(t, same && negs > 0 && nans > 0 && nans < ny,
	       "%s: fused ReLU %s conv then act_relu_forward bit for bit, "
	       "products plain and transposed, with and without bias, no pool "
	       "and 2, 3 threads (of %zu outputs, %zu negatives cleared, %zu "
	       "NaN passed on)", label, same ? "equals" : "DIFFERS FROM", ny,
	       negs, nans);
	free(x); free(w); free(b); free(col); free(y); free(yref);
}

/* dense at sizes that the pool cuts into several pieces: against the
 * double reference, and bit for bit against no pool on one OpenBLAS
 * thread. */
static void test_dense_threads(struct tap *t, struct splitmix *rng,
			       struct workers *const *pools, int n, int in,
			       int out)
{
	size_t nx = (size_t)n * in, nw = (size_t)out * in, ny = (size_t)n * out;
	float *x = falloc(nx), *w = falloc(nw), *b = falloc((size_t)out);
	float *r = falloc(ny), *y0 = falloc(ny), *dx0 = falloc(nx);
	float *dw0 = falloc(nw), *y = falloc(ny), *dx = falloc(nx);
	float *dw = falloc(nw);
	double *yd = dalloc(ny), *dxd = dalloc(nx), e_y, e_dx;
	int threads = blas_get_threads(), p, i, o, j, ok = 1;
	char label[80];

	snprintf(label, sizeof label, "dense batch %d in %d out %d", n, in, out);
	fill_uniform(rng, x, nx, 1.0f);
	fill_uniform(rng, w, nw, 0.5f);
	fill_uniform(rng, b, (size_t)out, 0.5f);
	fill_uniform(rng, r, ny, 1.0f);
	for (i = 0; i < n; i++) {
		for (o = 0; o < out; o++) {
			double acc = b[o];

			for (j = 0; j < in; j++)
				acc += (double)x[(size_t)i * in + j] *
				       w[(size_t)o * in + j];
			yd[(size_t)i * out + o] = acc;
		}
		for (j = 0; j < in; j++) {
			double acc = 0.0;

			for (o = 0; o < out; o++)
				acc += (double)r[(size_t)i * out + o] *
				       w[(size_t)o * in + j];
			dxd[(size_t)i * in + j] = acc;
		}
	}
	blas_set_threads(1);
	dense_forward(NULL, n, in, out, x, w, b, y0);
	dense_backward_input(NULL, n, in, out, r, w, dx0, NULL);
	memset(dw0, 0, nw * sizeof *dw0);
	dense_backward_params(NULL, n, in, out, x, r, dw0, NULL);
	blas_set_threads(threads);
	e_y = fwd_err(y0, yd, ny);
	e_dx = fwd_err(dx0, dxd, nx);
	for (p = 0; p < 2; p++) {
		fill_nan(y, ny);
		fill_nan(dx, nx);
		memset(dw, 0, nw * sizeof *dw);
		dense_forward(pools[p], n, in, out, x, w, b, y);
		dense_backward_input(pools[p], n, in, out, r, w, dx, NULL);
		dense_backward_params(pools[p], n, in, out, x, r, dw, NULL);
		ok = ok && same_bits(y, y0, ny) && same_bits(dx, dx0, nx) &&
		     same_bits(dw, dw0, nw);
		e_y = fmax(e_y, fwd_err(y, yd, ny));
		e_dx = fmax(e_dx, fwd_err(dx, dxd, nx));
	}
	tap_ok(t, e_y < FWD_TOL && e_dx < FWD_TOL,
	       "%s: y and dx vs double, with and without a pool: err %.1e, "
	       "%.1e < %.0e", label, e_y, e_dx, FWD_TOL);
	tap_ok(t, ok && blas_get_threads() == threads,
	       "%s on 2 and 3 threads: y, dx, dw identical to no pool; "
	       "OpenBLAS threads restored", label);
	free(x); free(w); free(b); free(r); free(y0); free(dx0); free(dw0);
	free(y); free(dx); free(dw); free(yd); free(dxd);
}

static void test_threads(struct tap *t, struct splitmix *rng)
{
	struct workers *pools[2] = { workers_new(2), workers_new(3) };

	test_workers(t);
	if (!tap_ok(t, pools[0] && pools[1], "pools of 2 and 3 threads"))
		return;
	/* Cut along the columns of the product (OH*OW > K), im2col rows,
	 * col2im channels. */
	test_conv_threads(t, rng, pools, "conv 3x3/1 p1 c3 k64 32x32",
			  conv_sh(3, 32, 32, 64, 3, 3, 1, 1, 1, 1));
	/* Along the rows (K > OH*OW), as VGG's 6x6 layers; transposed,
	 * along the columns of y^T and col^T. */
	test_conv_threads(t, rng, pools, "conv 3x3/1 p1 c40 k96 6x6",
			  conv_sh(40, 6, 6, 96, 3, 3, 1, 1, 1, 1));
	test_conv_threads(t, rng, pools, "conv 3x3/1 p1 c130 k240 6x6",
			  conv_sh(130, 6, 6, 240, 3, 3, 1, 1, 1, 1));
	test_conv_threads(t, rng, pools, "conv 5x3/2 p(2,1) c7 k33 23x19",
			  conv_sh(7, 23, 19, 33, 5, 3, 2, 2, 2, 1));
	test_conv_threads(t, rng, pools, "conv 1x1/1 p0 c48 k80 10x9",
			  conv_sh(48, 10, 9, 80, 1, 1, 1, 1, 0, 0));
	test_conv_relu(t, rng, pools, "conv+relu 3x3/1 p1 c8 k40 16x16",
		       conv_sh(8, 16, 16, 40, 3, 3, 1, 1, 1, 1));
	test_conv_relu(t, rng, pools, "conv+relu 5x3/2 p(2,1) c7 k33 23x19",
		       conv_sh(7, 23, 19, 33, 5, 3, 2, 2, 2, 1));
	test_conv_relu(t, rng, pools, "conv+relu 1x1/1 p0 c12 k20 7x9",
		       conv_sh(12, 7, 9, 20, 1, 1, 1, 1, 0, 0));
	test_dense_threads(t, rng, pools, 1, 3000, 1000);
	test_dense_threads(t, rng, pools, 1, 4608, 40);
	test_dense_threads(t, rng, pools, 3, 700, 333);
	workers_free(pools[0]);
	workers_free(pools[1]);
}

int main(void)
{
	struct tap t = { 0, 0 };
	struct splitmix rng = { 0x5eed2024u };

	test_convs(&t, &rng);
	test_pools(&t, &rng);
	test_dense(&t, &rng, 3, 7, 5);
	test_dense(&t, &rng, 1, 12, 4);
	test_dense_sparse(&t, &rng);
	test_act(&t, &rng, ACT_RELU, "relu 50 (|x| >= 0.1)", 1, 50);
	test_act(&t, &rng, ACT_SOFTMAX, "softmax 3x10 (row +1000)", 3, 10);
	test_act(&t, &rng, ACT_LOG_SOFTMAX, "log-softmax 3x10 (row +1000)", 3, 10);
	test_act(&t, &rng, ACT_SOFTMAX, "softmax 2x1", 2, 1);
	test_threads(&t, &rng);
	return tap_done(&t);
}
