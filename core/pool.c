/* pool.c - max, average and global-average pooling on one image (see pool.h).
 *
 * Window placement, output size and the average-pool divisor follow PyTorch
 * exactly, so that imported models give the same numbers.
 *
 * Max-pool ties (issue #12). A flat image region makes a convolution's
 * outputs equal in exact arithmetic, so a max-pool window holds a tie, and
 * PyTorch in exact arithmetic (float64) routes the gradient to the first
 * maximum in scan order. advex's GEMM and Winograd paths round equal values
 * differently at different positions, which left the tie to rounding
 * noise. Measured on a VGG16 feature stack (blocks 1-4, random weights,
 * 96x96, bench/ties_measure.c): of its 268,000 pool windows, 20,000
 * (im2col) to 53,000 (Winograd) went to another element than float64's
 * first maximum on a constant, two-tone, saturated, ramp or sky-band
 * image. So the argmax is the first element in scan order within a tie
 * tolerance of the window's maximum, scaled by what the producing
 * convolution can round:
 *
 *   tol = K * 2^-24 * S,  S = |b| + sum |w||x|
 *
 * at the maximum's position (the float32 rounding bound of that output),
 * with K from the producing kernel (pool_tie_eps). Figures from the same
 * stack and from a 4-block CNN (32-64-128-128 channels), random weights,
 * four seeds each:
 *   - the rounding between values equal in exact arithmetic reaches
 *     3.8 eps32 * S with im2col + GEMM, 1.2 with Winograd F(2x2), 4.5 with
 *     F(4x4) on smooth images and 18.5 on saturated blocks (0 and 255
 *     squares on grey: F(4x4)'s transforms amplify large, sharp inputs);
 *     all layers, the noise propagated from earlier ones included;
 *   - on the VGG stack, tol = 1, 2, 4, 8 eps32 * S leaves 0-150, 0-16,
 *     0-9, 0-10 windows per tie image routed apart from float64's first
 *     maximum, and 0, 0-3, 0-2, 0-3 per photo-like image (exact
 *     comparison: 4,994-53,000 and 0-1);
 *   - scales that cost nothing fail: relative to the window's |max| the
 *     rounding reaches 2.1e4 eps32 (cancellation: S >> |max|) while genuine
 *     gaps start at 7 eps32; relative to the channel's largest |x|,
 *     32 eps32 still leaves 2-17 per tie image and adds 1-6 per photo, and
 *     in the 4-block CNN a photo's gradient moved 1.6e-2 from one of them.
 * So K = 5 for im2col and F(2x2), 32 for F(4x4): the largest measured
 * rounding with a margin of 1.3x and 1.7x. But genuine near-ties lie
 * below K eps32 S too (gaps of 1.7, 2.6 and 4.3 eps32 S in the 4-block
 * CNN; one in VGG16 on test_parity.py's image, which then failed), where
 * PyTorch, whose actual rounding was smaller, sends the gradient to the
 * larger. What tells them apart is the inputs: an exact tie's two outputs
 * see the same receptive field, up to the rounding of earlier layers, a
 * near-tie's fields differ and the outputs only happen to coincide. So a
 * tie also needs
 *
 *   D = sum |w| |x_a - x_b| <= POOL_TIE_PATCH * 2^-24 * S
 *
 * over the two receptive fields a, b (padding as 0). Measured (same
 * stacks, im2col and Winograd, 2 seeds each): D <= 15.8 eps32 S for all
 * 290,000 exactly tied pairs, D >= 2.9e4 eps32 S for all 3,006 pairs with
 * a gap below 32 eps32 S; 256 sits 16x above the one and 100x below the
 * other. Genuine near-ties with matching fields would need a nearly flat
 * region, where they are ties in all but the last bits.
 *
 * S and D cost a dot product of C*KH*KW terms each, so they are computed
 * only for the windows where an element before the maximum in scan order comes within
 * POOL_TIE_PRE eps32 of the channel's largest |x| of it (a loose filter:
 * photos have few such windows, tie images many).
 *
 * NaN propagation is unchanged: a NaN wins its window (the last NaN in
 * scan order, as PyTorch), and then no tolerance applies.
 */
#include "pool.h"

#include <math.h>
#include <string.h>

/* Floor division for a possibly negative numerator (d > 0). */
static long pool_div_floor(long n, long d)
{
	long q = n / d;

	return (n % d != 0 && n < 0) ? q - 1 : q;
}

/* One output dimension as PyTorch's pooling_output_shape; <= 0 when empty. */
static long pool_out_dim(int in, int k, int stride, int pad, int ceil_mode)
{
	long num = (long)in + 2L * pad - k + (ceil_mode ? stride - 1 : 0);
	long out = pool_div_floor(num, stride) + 1;

	/* In ceil mode the last window must still start inside the input or
	 * its left padding, otherwise it would cover only right padding. */
	if (ceil_mode && (out - 1) * stride >= (long)in + pad)
		out--;
	return out;
}

int pool_shape_init(struct pool_shape *s)
{
	long oh, ow;

	if (s->c <= 0 || s->h <= 0 || s->w <= 0 || s->kh <= 0 || s->kw <= 0 ||
	    s->sh <= 0 || s->sw <= 0 || s->ph < 0 || s->pw < 0 ||
	    s->ph > s->kh / 2 || s->pw > s->kw / 2)
		return -1;
	oh = pool_out_dim(s->h, s->kh, s->sh, s->ph, s->ceil_mode);
	ow = pool_out_dim(s->w, s->kw, s->sw, s->pw, s->ceil_mode);
	if (oh <= 0 || ow <= 0)
		return -1;
	s->oh = (int)oh;
	s->ow = (int)ow;
	return 0;
}

/* The part of a window that lies on real pixels: [*lo, *hi) of [0, n). */
static void pool_clip(int start, int k, int n, int *lo, int *hi)
{
	int end = start + k;

	*lo = start < 0 ? 0 : start;
	*hi = end > n ? n : end;
}

/* The window element (v, at index vi) replaces the best so far if it is
 * larger or a NaN (as PyTorch: the first maximum wins, a NaN always does).
 * Written as selects, not branches: on real activations the winner is
 * random, and a mispredicted branch per element made VGG's first pool take
 * 1.6 ms. */
#define POOL_TAKE(best, bi, v, vi)					\
	do {								\
		int take_ = ((v) > (best)) | ((v) != (v));			\
		(best) = take_ ? (v) : (best);				\
		(bi) = take_ ? (vi) : (bi);				\
	} while (0)

#define POOL_EPS32 0x1p-24f
#define POOL_TIE_PRE 2048.0f	/* filter in eps32 * the plane's max |x| */
#define POOL_TIE_PATCH 256.0f	/* receptive fields' distance, eps32 * S */

float pool_tie_eps(int tile)
{
	return tile == 4 ? 32.0f : 5.0f;	/* see the top of the file */
}

/* The producer is used when it is a convolution whose output plane is the
 * pool's input plane. */
static const struct pool_producer *pool_producer_check(
	const struct pool_shape *s, const struct pool_producer *p)
{
	if (!p || !p->conv || !p->x || !p->w || p->conv->k != s->c ||
	    p->conv->oh != s->h || p->conv->ow != s->w)
		return NULL;
	return p;
}

/* S = |b| + sum |w||x| of output (k, i) of the producing conv, i = oy*W+ox:
 * the scale of the rounding that conv can put into that output. */
static float pool_conv_bound(const struct pool_producer *p, int k, int i)
{
	const struct conv_shape *c = p->conv;
	int oy = i / c->ow, ox = i % c->ow, ci, ki, kj;
	const float *wk = p->w + (size_t)k * c->c * c->kh * c->kw;
	float sum = p->b ? fabsf(p->b[k]) : 0.0f;

	for (ci = 0; ci < c->c; ci++)
		for (ki = 0; ki < c->kh; ki++) {
			int iy = oy * c->sh - c->ph + ki;
			const float *xr, *wr;

			if (iy < 0 || iy >= c->h)
				continue;
			xr = p->x + ((size_t)ci * c->h + iy) * c->w;
			wr = wk + ((size_t)ci * c->kh + ki) * c->kw;
			for (kj = 0; kj < c->kw; kj++) {
				int ix = ox * c->sw - c->pw + kj;

				if (ix >= 0 && ix < c->w)
					sum += fabsf(wr[kj]) * fabsf(xr[ix]);
			}
		}
	return sum;
}

/* The loose filter's width for one channel plane xc (n): POOL_TIE_PRE eps32
 * of its largest |x|, 0 when that is not finite (NaNs are skipped). Eight
 * running maxima: one would be a chain of dependent compares, which GCC
 * does not vectorize without -ffast-math. */
static float pool_tie_pre_raw(const float *xc, size_t n)
{
	float m[8] = { 0 }, r = 0.0f;
	size_t i, j;

	for (i = 0; i + 8 <= n; i += 8)
		for (j = 0; j < 8; j++) {
			float a = fabsf(xc[i + j]);

			m[j] = a > m[j] ? a : m[j];
		}
	for (; i < n; i++) {
		float a = fabsf(xc[i]);

		m[0] = a > m[0] ? a : m[0];
	}
	for (j = 0; j < 8; j++)
		r = m[j] > r ? m[j] : r;
	return r;
}

static float pool_tie_pre(const float *xc, size_t n)
{
	float r = pool_tie_pre_raw(xc, n) * POOL_TIE_PRE * POOL_EPS32;

	return isfinite(r) ? r : 0.0f;
}

/* U >= every S of channel k: |b| + sum |w| * max |x| (x: the whole conv
 * input, xmax), 0.1% up for the rounding of both sums. One pass over the
 * channel's weights, made once per channel and only when a window of it
 * passed the loose filter: it spares most S and D dot products on
 * photos. */
static float pool_conv_ubound(const struct pool_producer *p, int k, float xmax)
{
	const struct conv_shape *c = p->conv;
	size_t n = (size_t)c->c * c->kh * c->kw, i;
	const float *wk = p->w + (size_t)k * n;
	float w1 = 0.0f;

	for (i = 0; i < n; i++)
		w1 += fabsf(wk[i]);
	return 1.001f * ((p->b ? fabsf(p->b[k]) : 0.0f) + w1 * xmax);
}

/* max |x| over the producer's input (C,H,W). */
static float pool_input_max(const struct pool_producer *p)
{
	const struct conv_shape *c = p->conv;

	return pool_tie_pre_raw(p->x, (size_t)c->c * c->h * c->w);
}

/* D = sum |w| |x_a - x_b| over the receptive fields of outputs a and b
 * (i = oy*W+ox) of the producing conv's channel k, padding as 0: how far
 * apart its inputs can put the two outputs in exact arithmetic. */
static float pool_patch_dist(const struct pool_producer *p, int k, int a, int b)
{
	const struct conv_shape *c = p->conv;
	int ay = a / c->ow, ax = a % c->ow, by = b / c->ow, bx = b % c->ow;
	const float *wk = p->w + (size_t)k * c->c * c->kh * c->kw;
	float sum = 0.0f;
	int ci, ki, kj;

	for (ci = 0; ci < c->c; ci++) {
		const float *xc = p->x + (size_t)ci * c->h * c->w;

		for (ki = 0; ki < c->kh; ki++) {
			int iy = ay * c->sh - c->ph + ki, jy = by * c->sh - c->ph + ki;
			const float *wr = wk + ((size_t)ci * c->kh + ki) * c->kw;

			for (kj = 0; kj < c->kw; kj++) {
				int ix = ax * c->sw - c->pw + kj, jx = bx * c->sw - c->pw + kj;
				float u = iy >= 0 && iy < c->h && ix >= 0 && ix < c->w ?
					xc[(size_t)iy * c->w + ix] : 0.0f;
				float v = jy >= 0 && jy < c->h && jx >= 0 && jx < c->w ?
					xc[(size_t)jy * c->w + jx] : 0.0f;

				sum += fabsf(wr[kj]) * fabsf(u - v);
			}
		}
	}
	return sum;
}

/* Window element indices idx[0..n) in scan order, values v[], the max best
 * at element bi (from POOL_TAKE): the index that gets the gradient - the
 * first element within tol = pool_tie_eps * eps32 * S of best whose
 * receptive field matches the max's to POOL_TIE_PATCH eps32 * S. Only
 * called when an element before bi passed the loose filter. */
static int32_t pool_tie_pick(const struct pool_producer *p, int ci,
			     const float *v, const int32_t *idx, int n,
			     float best, int32_t bi)
{
	float unit = POOL_EPS32 * pool_conv_bound(p, ci, bi);
	float thr = best - pool_tie_eps(p->tile) * unit;
	int e;

	for (e = 0; e < n && idx[e] != bi; e++)
		if (v[e] >= thr &&
		    pool_patch_dist(p, ci, bi, idx[e]) <= POOL_TIE_PATCH * unit)
			return idx[e];
	return bi;
}

/* The tie pass of pool_max_2x2 over channel ci (plane xc, its output and
 * argmax planes yc, ac): windows whose max has an element before it in
 * scan order within the loose filter pre get pool_tie_pick. A pass of its
 * own: folded into the max loop, it kept that loop from vectorizing. */
static void pool_max_2x2_ties(const struct pool_shape *s,
			      const struct pool_producer *prod, int ci,
			      const float *xc, const float *yc, int32_t *ac,
			      float pre, float *xmax)
{
	int oy, ox, w = s->w;
	float tol_u = -1.0f;	/* K eps32 U of this channel, when made */

	for (oy = 0; oy < s->oh; oy++) {
		const float *restrict r0 = xc + (size_t)2 * oy * w;
		const float *restrict r1 = r0 + w;
		const float *restrict yr = yc + (size_t)oy * s->ow;
		int32_t *ar = ac + (size_t)oy * s->ow;
		int32_t base = 2 * oy * w;
		int x0, n;

		/* The filter in chunks of flags, in a loop without calls;
		 * then the (few) flagged windows. */
		for (x0 = 0; x0 < s->ow; x0 += n) {
			unsigned char near[256];

			n = s->ow - x0 < 256 ? s->ow - x0 : 256;
			for (ox = 0; ox < n; ox++) {
				int c = 2 * (x0 + ox);
				int32_t bi = ar[x0 + ox] - base - c;
				float lo = yr[x0 + ox] - pre;	/* NaN: all false */

				/* & and |, not && and ||: the winner's position
				 * is random on real activations, and a branch
				 * on it mispredicts (2 ms on VGG's first pool). */
				near[ox] = (unsigned char)(((bi > 0) & (r0[c] >= lo)) |
							   ((bi > 1) & (r0[c + 1] >= lo)) |
							   ((bi > w) & (r1[c] >= lo)));
			}
			for (ox = 0; ox < n; ox++) {
				int32_t at = base + 2 * (x0 + ox);
				int32_t idx[4] = { at, at + 1, at + w, at + w + 1 };
				float v[4];

				float lo;
				int e;

				if (!near[ox])
					continue;
				v[0] = xc[at];
				v[1] = xc[at + 1];
				v[2] = xc[at + w];
				v[3] = xc[at + w + 1];
				if (tol_u < 0.0f) {
					if (*xmax < 0.0f)
						*xmax = pool_input_max(prod);
					tol_u = pool_tie_eps(prod->tile) * POOL_EPS32 *
						pool_conv_ubound(prod, ci, *xmax);
				}
				/* No earlier element within K eps32 U >= K eps32 S:
				 * no tie, and no dot product needed. */
				lo = yr[x0 + ox] - tol_u;
				for (e = 0; e < 4 && idx[e] != ar[x0 + ox]; e++)
					if (v[e] >= lo)
						break;
				if (e < 4 && idx[e] != ar[x0 + ox])
					ar[x0 + ox] = pool_tie_pick(prod, ci, v, idx, 4,
								    yr[x0 + ox],
								    ar[x0 + ox]);
			}
		}
	}
}

/* 2x2 windows, stride 2, no padding (every VGG pool): each window lies
 * inside the image. */
static void pool_max_2x2(const struct pool_shape *s, const float *x, float *y,
			 int32_t *argmax, const struct pool_producer *prod)
{
	size_t hw = (size_t)s->h * s->w, ohow = (size_t)s->oh * s->ow;
	int ci, oy, ox, w = s->w, oh = s->oh, ow = s->ow;
	float xmax = -1.0f;	/* max |producer input|, made when needed */

	/* Sizes in locals: the stores below could alias *s as far as the
	 * compiler knows, and a trip count it must reload does not
	 * vectorize. */
	for (ci = 0; ci < s->c; ci++) {
		const float *xc = x + ci * hw;

		for (oy = 0; oy < oh; oy++) {
			const float *restrict r0 = xc + (size_t)2 * oy * w;
			const float *restrict r1 = r0 + w;
			float *restrict yr = y + ci * ohow + (size_t)oy * ow;
			int32_t *restrict ar = argmax + ci * ohow + (size_t)oy * ow;
			int32_t base = 2 * oy * w;

			for (ox = 0; ox < ow; ox++) {
				float best = r0[2 * ox];
				int32_t bi = 0;

				POOL_TAKE(best, bi, r0[2 * ox + 1], 1);
				POOL_TAKE(best, bi, r1[2 * ox], w);
				POOL_TAKE(best, bi, r1[2 * ox + 1], w + 1);
				yr[ox] = best;
				ar[ox] = base + 2 * ox + bi;
			}
		}
		if (prod)
			pool_max_2x2_ties(s, prod, ci, xc, y + ci * ohow,
					  argmax + ci * ohow, pool_tie_pre(xc, hw),
					  &xmax);
	}
}

/* The tie rule for a general window rows [y_lo,y_hi) x cols [x_lo,x_hi)
 * of plane xc (row length w) whose max best (not NaN) is at best_i. */
static int32_t pool_max_tie_window(const struct pool_producer *prod, int ci,
				   const float *xc, int w, int y_lo, int y_hi,
				   int x_lo, int x_hi, float best,
				   int32_t best_i, float pre)
{
	float thr = 0.0f, unit = 0.0f;
	int iy, ix, have = 0;

	for (iy = y_lo; iy < y_hi; iy++)
		for (ix = x_lo; ix < x_hi; ix++) {
			int32_t i = iy * w + ix;

			if (i == best_i)
				return best_i;
			if (xc[i] < best - pre)
				continue;
			if (!have) {
				unit = POOL_EPS32 * pool_conv_bound(prod, ci, best_i);
				thr = best - pool_tie_eps(prod->tile) * unit;
				have = 1;
			}
			if (xc[i] >= thr &&
			    pool_patch_dist(prod, ci, best_i, i) <= POOL_TIE_PATCH * unit)
				return i;
		}
	return best_i;
}

/* x (C,H,W), y (C,OH,OW), argmax (C,OH,OW) */
void pool_max_forward(const struct pool_shape *s, const float *x, float *y,
		      int32_t *argmax, const struct pool_producer *producer)
{
	size_t hw = (size_t)s->h * s->w, ohow = (size_t)s->oh * s->ow;
	const struct pool_producer *prod = pool_producer_check(s, producer);
	int ci, oy, ox, iy, ix;

	if (s->kh == 2 && s->kw == 2 && s->sh == 2 && s->sw == 2 &&
	    s->ph == 0 && s->pw == 0 && 2 * s->oh <= s->h &&
	    2 * s->ow <= s->w) {
		pool_max_2x2(s, x, y, argmax, prod);
		return;
	}
	for (ci = 0; ci < s->c; ci++) {
		const float *xc = x + ci * hw;
		float *yc = y + ci * ohow;
		int32_t *ac = argmax + ci * ohow;
		float pre = prod ? pool_tie_pre(xc, hw) : 0.0f;

		for (oy = 0; oy < s->oh; oy++) {
			int y_lo, y_hi;

			pool_clip(oy * s->sh - s->ph, s->kh, s->h, &y_lo, &y_hi);
			for (ox = 0; ox < s->ow; ox++) {
				int x_lo, x_hi, best_i;
				float best;

				pool_clip(ox * s->sw - s->pw, s->kw, s->w, &x_lo,
					  &x_hi);
				/* Padding never wins: start from the first
				 * real pixel, which every window has. */
				best_i = y_lo * s->w + x_lo;
				best = xc[best_i];
				for (iy = y_lo; iy < y_hi; iy++)
					for (ix = x_lo; ix < x_hi; ix++) {
						float v = xc[iy * s->w + ix];

						POOL_TAKE(best, best_i, v,
							  iy * s->w + ix);
					}
				yc[oy * s->ow + ox] = best;
				ac[oy * s->ow + ox] = best_i;
				if (prod && best == best)
					ac[oy * s->ow + ox] = pool_max_tie_window(
						prod, ci, xc, s->w, y_lo, y_hi, x_lo,
						x_hi, best, best_i, pre);
			}
		}
	}
}

/* dy (C,OH,OW), argmax (C,OH,OW), dx (C,H,W) */
void pool_max_backward(const struct pool_shape *s, const float *dy,
		       const int32_t *argmax, float *dx)
{
	size_t hw = (size_t)s->h * s->w, ohow = (size_t)s->oh * s->ow, i;
	int ci;

	memset(dx, 0, (size_t)s->c * hw * sizeof *dx);
	for (ci = 0; ci < s->c; ci++) {
		const float *dyc = dy + ci * ohow;
		const int32_t *ac = argmax + ci * ohow;
		float *dxc = dx + ci * hw;

		/* += : overlapping windows can share a winner. */
		for (i = 0; i < ohow; i++)
			dxc[ac[i]] += dyc[i];
	}
}

/* The divisor of one average window along one axis, as PyTorch: the window
 * clipped to the padded input when padding counts, else to the real input. */
static int pool_avg_extent(int start, int k, int n, int pad, int include_pad)
{
	int lo, hi;

	if (include_pad) {
		int end = start + k;

		return (end > n + pad ? n + pad : end) - start;
	}
	pool_clip(start, k, n, &lo, &hi);
	return hi - lo;
}

/* x (C,H,W), y (C,OH,OW) */
void pool_avg_forward(const struct pool_shape *s, const float *x, float *y)
{
	size_t hw = (size_t)s->h * s->w, ohow = (size_t)s->oh * s->ow;
	int ci, oy, ox, iy, ix;

	for (ci = 0; ci < s->c; ci++) {
		const float *xc = x + ci * hw;
		float *yc = y + ci * ohow;

		for (oy = 0; oy < s->oh; oy++) {
			int y0 = oy * s->sh - s->ph, y_lo, y_hi;
			int ny = pool_avg_extent(y0, s->kh, s->h, s->ph,
						 s->count_include_pad);

			pool_clip(y0, s->kh, s->h, &y_lo, &y_hi);
			for (ox = 0; ox < s->ow; ox++) {
				int x0 = ox * s->sw - s->pw, x_lo, x_hi;
				int nx = pool_avg_extent(x0, s->kw, s->w, s->pw,
							 s->count_include_pad);
				float sum = 0.0f;

				pool_clip(x0, s->kw, s->w, &x_lo, &x_hi);
				for (iy = y_lo; iy < y_hi; iy++)
					for (ix = x_lo; ix < x_hi; ix++)
						sum += xc[iy * s->w + ix];
				yc[oy * s->ow + ox] = sum / (float)(ny * nx);
			}
		}
	}
}

/* dy (C,OH,OW), dx (C,H,W) */
void pool_avg_backward(const struct pool_shape *s, const float *dy, float *dx)
{
	size_t hw = (size_t)s->h * s->w, ohow = (size_t)s->oh * s->ow;
	int ci, oy, ox, iy, ix;

	memset(dx, 0, (size_t)s->c * hw * sizeof *dx);
	for (ci = 0; ci < s->c; ci++) {
		const float *dyc = dy + ci * ohow;
		float *dxc = dx + ci * hw;

		for (oy = 0; oy < s->oh; oy++) {
			int y0 = oy * s->sh - s->ph, y_lo, y_hi;
			int ny = pool_avg_extent(y0, s->kh, s->h, s->ph,
						 s->count_include_pad);

			pool_clip(y0, s->kh, s->h, &y_lo, &y_hi);
			for (ox = 0; ox < s->ow; ox++) {
				int x0 = ox * s->sw - s->pw, x_lo, x_hi;
				int nx = pool_avg_extent(x0, s->kw, s->w, s->pw,
							 s->count_include_pad);
				float g = dyc[oy * s->ow + ox] / (float)(ny * nx);

				pool_clip(x0, s->kw, s->w, &x_lo, &x_hi);
				for (iy = y_lo; iy < y_hi; iy++)
					for (ix = x_lo; ix < x_hi; ix++)
						dxc[iy * s->w + ix] += g;
			}
		}
	}
}

/* x (C,HW), y (C) */
void pool_global_forward(int c, int hw, const float *x, float *y)
{
	int ci, i;

	for (ci = 0; ci < c; ci++) {
		const float *xc = x + (size_t)ci * hw;
		float sum = 0.0f;

		for (i = 0; i < hw; i++)
			sum += xc[i];
		y[ci] = sum / (float)hw;
	}
}

/* dy (C), dx (C,HW) */
void pool_global_backward(int c, int hw, const float *dy, float *dx)
{
	int ci, i;

	for (ci = 0; ci < c; ci++) {
		float *dxc = dx + (size_t)ci * hw;
		float g = dy[ci] / (float)hw;

		for (i = 0; i < hw; i++)
			dxc[i] = g;
	}
}
