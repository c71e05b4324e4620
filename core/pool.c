/* pool.c - max, average and global-average pooling on one image (see pool.h).
 *
 * Window placement, output size and the average-pool divisor follow PyTorch
 * exactly, so that imported models give the same numbers.
 *
 * Max-pool ties (issue #12). A flat image region makes a convolution's
 * outputs equal in exact arithmetic, so a max-pool window holds a tie, and
 * PyTorch's rule sends the gradient to the first maximum in scan order.
 * advex's GEMM and Winograd paths round equal values differently at
 * different positions, which left the tie to rounding noise. Measured on a
 * VGG16 feature stack (blocks 1-4, random weights, 96x96,
 * bench/ties_measure.c): of its 268,000 pool windows, 20,000 (im2col) to
 * 53,000 (Winograd) went to another element than float64's first maximum
 * on a constant, two-tone, saturated, ramp or sky-band image.
 *
 * The values cannot tell such ties from genuine near-ties. In units of
 * eps32 * S (2^-24 times S = |b| + sum |w||x| of the producing output, its
 * float32 rounding bound), the same measurements put the rounding between
 * values equal in exact arithmetic at up to 3.8 (im2col + GEMM), 1.2
 * (Winograd F(2x2)), 4.5 (F(4x4) on smooth images) and 18.5 (F(4x4) on 0
 * and 255 squares), and genuine near-ties at 1.7, 2.6 and 4.3 (a 4-block
 * CNN): the two overlap. A tolerance rule with a receptive-field distance
 * test (this file's previous rule) still failed VGG16 with a small head on
 * a ramp (2.6e-2 relative L2 off float64) and cost 1.2-1.6 ms of a 45 ms
 * step.
 *
 * So ties are found from the inputs: the tie rule compares receptive-field
 * signatures (fieldsig.h), hashes of the pixels under each position's
 * field and of the padding on the way, equal exactly where the values are
 * equal in exact arithmetic. A window's gradient goes to the first position
 * in scan order whose signature is the float maximum's. That holds for
 * every conv path, thread count and batch - the signatures do not see the
 * kernels' rounding - and costs well under 1% of a VGG16 step (README,
 * "What matching PyTorch means", has the figures). tests/test_ties.py
 * checks every decision against float64 on images made to tie.
 *
 * Genuine near-ties - different fields whose values differ by less than
 * float32 resolution - are left to the float values, in advex as in
 * PyTorch float32: either may differ from float64 there.
 *
 * NaN propagation is unchanged: a NaN wins its window (the last NaN in
 * scan order, as PyTorch), and then no tie rule applies.
 */
#include "pool.h"

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

/* The window element v (at index vi) replaces the best so far if it is
 * larger or a NaN (as PyTorch: the first maximum wins, a NaN always does).
 * Written as selects, not branches: on real activations the winner is
 * random, and a mispredicted branch per element made VGG's first pool take
 * 1.6 ms. */
static inline void pool_take(float *best, int32_t *bi, float v, int32_t vi)
{
	int take = (v > *best) | (v != v);

	*best = take ? v : *best;
	*bi = take ? vi : *bi;
}

/* Window o (oy * ow + ox) on real pixels: rows [*y_lo, *y_hi), columns
 * [*x_lo, *x_hi). */
static void pool_window(const struct pool_shape *s, int o, int *y_lo,
			int *y_hi, int *x_lo, int *x_hi)
{
	pool_clip(o / s->ow * s->sh - s->ph, s->kh, s->h, y_lo, y_hi);
	pool_clip(o % s->ow * s->sw - s->pw, s->kw, s->w, x_lo, x_hi);
}

/* The tie rule's plan for one image, channel-independent, into work:
 * for each window o holding two positions with one signature, the record
 * o, m, then m pairs (i, f): window position i (flat h*W+w) whose
 * signature an earlier position f - the first with it - shares. Returns
 * the ints written (at most pool_tie_work_size). */
static size_t pool_tie_plan(const struct pool_shape *s, const uint64_t *sig,
			    int32_t *work)
{
	size_t n = 0;
	int o, y_lo, y_hi, x_lo, x_hi, a, b, iy, ix;

	for (o = 0; o < s->oh * s->ow; o++) {
		int32_t idx[64];
		int cnt = 0, m = 0;
		size_t head = n;

		pool_window(s, o, &y_lo, &y_hi, &x_lo, &x_hi);
		/* the window's positions in scan order (windows larger than
		 * 64 positions: only their first 64 are searched for ties) */
		for (iy = y_lo; iy < y_hi; iy++)
			for (ix = x_lo; ix < x_hi && cnt < 64; ix++)
				idx[cnt++] = iy * s->w + ix;
		n += 2;
		for (b = 1; b < cnt; b++)
			for (a = 0; a < b; a++)
				if (sig[idx[a]] == sig[idx[b]]) {
					work[n++] = idx[b];
					work[n++] = idx[a];
					m++;
					break;
				}
		if (m) {
			work[head] = o;
			work[head + 1] = m;
		} else {
			n = head;
		}
	}
	return n;
}

size_t pool_tie_work_size(const struct pool_shape *s)
{
	return (size_t)s->oh * s->ow * (2 + 2 * (size_t)s->kh * s->kw);
}

/* The tie rule on channel plane xc with its argmax plane ac: a window's
 * maximum (not NaN) at a position that shares an earlier one's signature
 * moves there. work, n: pool_tie_plan's. */
static void pool_tie_route(const float *xc, int32_t *ac, const int32_t *work,
			   size_t n)
{
	size_t p = 0;

	while (p < n) {
		int32_t o = work[p], m = work[p + 1], bi = ac[o], q;
		const int32_t *pair = work + p + 2;

		for (q = 0; q < m; q++)
			if (pair[2 * q] == bi) {
				if (xc[bi] == xc[bi])
					ac[o] = pair[2 * q + 1];
				break;
			}
		p += 2 + 2 * (size_t)m;
	}
}

/* 2x2 windows, stride 2, no padding (every VGG pool): each window lies
 * inside the image. */
static void pool_max_2x2(const struct pool_shape *s, const float *x, float *y,
			 int32_t *argmax)
{
	size_t hw = (size_t)s->h * s->w, ohow = (size_t)s->oh * s->ow;
	int ci, oy, ox, w = s->w, oh = s->oh, ow = s->ow;

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

				pool_take(&best, &bi, r0[2 * ox + 1], 1);
				pool_take(&best, &bi, r1[2 * ox], w);
				pool_take(&best, &bi, r1[2 * ox + 1], w + 1);
				yr[ox] = best;
				ar[ox] = base + 2 * ox + bi;
			}
		}
	}
}

/* Any window shape: the first maximum of each window's real pixels. */
static void pool_max_any(const struct pool_shape *s, const float *x, float *y,
			 int32_t *argmax)
{
	size_t hw = (size_t)s->h * s->w, ohow = (size_t)s->oh * s->ow;
	int ci, o, iy, ix, y_lo, y_hi, x_lo, x_hi;

	for (ci = 0; ci < s->c; ci++) {
		const float *xc = x + ci * hw;

		for (o = 0; o < s->oh * s->ow; o++) {
			int32_t bi;
			float best;

			pool_window(s, o, &y_lo, &y_hi, &x_lo, &x_hi);
			/* Padding never wins: start from the first real
			 * pixel, which every window has. */
			bi = y_lo * s->w + x_lo;
			best = xc[bi];
			for (iy = y_lo; iy < y_hi; iy++)
				for (ix = x_lo; ix < x_hi; ix++)
					pool_take(&best, &bi, xc[iy * s->w + ix],
						  iy * s->w + ix);
			y[ci * ohow + o] = best;
			argmax[ci * ohow + o] = bi;
		}
	}
}

/* x (C,H,W), y (C,OH,OW), argmax (C,OH,OW) */
void pool_max_forward(const struct pool_shape *s, const float *x, float *y,
		      int32_t *argmax, const uint64_t *sig, int32_t *work)
{
	size_t hw = (size_t)s->h * s->w, ohow = (size_t)s->oh * s->ow, n;
	int ci;

	if (s->kh == 2 && s->kw == 2 && s->sh == 2 && s->sw == 2 &&
	    s->ph == 0 && s->pw == 0 && 2 * s->oh <= s->h &&
	    2 * s->ow <= s->w)
		pool_max_2x2(s, x, y, argmax);
	else
		pool_max_any(s, x, y, argmax);
	/* The tie rule, a pass of its own over the (few, on photos) windows
	 * with a tie: folded into the max loops, it kept them from
	 * vectorizing. */
	n = sig ? pool_tie_plan(s, sig, work) : 0;
	for (ci = 0; n && ci < s->c; ci++)
		pool_tie_route(x + ci * hw, argmax + ci * ohow, work, n);
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
