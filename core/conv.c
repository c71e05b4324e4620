/* conv.c - 2-D convolution on one image as im2col + one GEMM (see conv.h).
 *
 * col is the (C*KH*KW) x (OH*OW) patch matrix: row (c,i,j) holds, for every
 * output position, the input pixel that kernel tap (i,j) of channel c sees.
 * Then forward is  y(K, OH*OW) = w(K, C*KH*KW) * col,
 * backward to the input is  col = w^T * dy  followed by col2im (a scatter-add
 * back onto the image), and the weight gradient is  dw += dy * col^T.
 *
 * A 1x1 stride-1 unpadded kernel needs no unrolling: the image (C, H*W) is
 * already the patch matrix, so those calls use x / dx directly.
 *
 * Thin outputs with large weights (as VGG's 512-channel 6x6 layers) run
 * the two products transposed instead:  y^T(OH*OW, K) = col^T * w^T  and
 * col^T(OH*OW, C*KH*KW) = dy^T * w. OpenBLAS (0.3.21, Haswell kernels)
 * does those faster when OH*OW is small and w has to come from memory;
 * see CONV_THIN_PIXELS for the figures. y^T is turned back into y in the
 * workspace behind col, and col2im reads col^T where it lies.
 *
 * The forward pass's epilogue (bias, and a fused ReLU: enum conv_act) runs
 * in the pass that already touches every output: the bias pass, or the
 * untranspose of y^T.
 *
 * On a thread pool, im2col runs by rows of col, col2im by input channels
 * (each channel's rows add into its own plane only), the epilogue by
 * output planes, and the products are
 * cut by blas_sgemm_par into pieces that do not depend on the number of
 * threads: the results are the same on any pool, and without one when
 * OpenBLAS is single-threaded.
 */
#include "conv.h"

#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "winograd.h"
#include "workers.h"

/* The products run transposed (see above) for outputs of at most
 * CONV_THIN_PIXELS pixels and weights of at least CONV_THIN_WEIGHTS floats.
 * Forward + backward to the input on a pool of 2 (2-core EPYC, OpenBLAS
 * Haswell kernels), transposed against plain, each layer's weights cold:
 * 3x3 c512 k512 at 3x3..6x6 outputs -9..-15%, 7x7 and 8x8 -1..-4%, 9x9
 * +1..+3%; wider outputs (12x12 to 24x24, c64..c512) 0..+25%, mostly in
 * col2im's strided reads of col^T. At 6x6: c256 -14%, c128 k256 -9%,
 * c128 -3%; but c128 at 4x4 and 7x7, and c64, +3..+16%: weights that
 * stay in cache gain nothing, and the transposes back cost. In VGG16 at
 * 96x96 that is the three 6x6 layers, -13% forward, -15% backward. */
#define CONV_THIN_PIXELS 64
#define CONV_THIN_WEIGHTS (1L << 18)	/* 1 MiB */

int conv_shape_init(struct conv_shape *s)
{
	long oh, ow;

	if (s->c <= 0 || s->h <= 0 || s->w <= 0 || s->k <= 0 || s->kh <= 0 ||
	    s->kw <= 0 || s->sh <= 0 || s->sw <= 0 || s->ph < 0 || s->pw < 0)
		return -1;
	/* In long so that h + 2*ph cannot overflow. */
	oh = (long)s->h + 2L * s->ph - s->kh;
	ow = (long)s->w + 2L * s->pw - s->kw;
	if (oh < 0 || ow < 0)
		return -1;
	s->oh = (int)(oh / s->sh + 1);
	s->ow = (int)(ow / s->sw + 1);
	s->transposed = (long)s->oh * s->ow <= CONV_THIN_PIXELS &&
			(long)s->k * s->c * s->kh * s->kw >= CONV_THIN_WEIGHTS;
	return 0;
}

static int conv_is_1x1(const struct conv_shape *s)
{
	return s->kh == 1 && s->kw == 1 && s->sh == 1 && s->sw == 1 &&
	       s->ph == 0 && s->pw == 0;
}

size_t conv_col_size(const struct conv_shape *s)
{
	size_t ohow = (size_t)s->oh * s->ow;
	size_t ckk = (size_t)s->c * s->kh * s->kw;
	size_t patches = conv_is_1x1(s) ? 0 : ckk * ohow, fwd;

	if (!s->transposed)
		return patches;
	/* Forward puts y^T behind the patches; backward writes col^T, which
	 * a 1x1 kernel too needs before it becomes dx. */
	fwd = patches + (size_t)s->k * ohow;
	return fwd > ckk * ohow ? fwd : ckk * ohow;
}

/* Output indices o in [*lo, *hi) whose input index o*stride - pad + tap lies
 * in [0, n_in). Computed once per kernel tap so the copy loops below run
 * without a bounds test per element. */
static void conv_valid_range(int n_out, int stride, int pad, int tap, int n_in,
			     int *lo, int *hi)
{
	int off = pad - tap;	/* input index = o*stride - off */
	int lim = n_in + off;	/* input index < n_in  <=>  o*stride < lim */
	int a = off > 0 ? (off + stride - 1) / stride : 0;
	int b = lim > 0 ? (lim + stride - 1) / stride : 0;

	if (b > n_out)
		b = n_out;
	if (a > b)
		a = b;
	*lo = a;
	*hi = b;
}

/* The valid output window of kernel tap (ki,kj): rows [y_lo,y_hi) and
 * columns [x_lo,x_hi) read real pixels, the rest read padding. */
struct conv_tap {
	int ki, kj;
	int y_lo, y_hi, x_lo, x_hi;
};

static void conv_tap_init(const struct conv_shape *s, int ki, int kj,
			  struct conv_tap *t)
{
	t->ki = ki;
	t->kj = kj;
	conv_valid_range(s->oh, s->sh, s->ph, ki, s->h, &t->y_lo, &t->y_hi);
	conv_valid_range(s->ow, s->sw, s->pw, kj, s->w, &t->x_lo, &t->x_hi);
}

/* restrict below: col is caller workspace, never the image itself; it lets
 * the compiler vectorize the copy loops without a runtime overlap check. */

/* One row of col for one channel xc (H,W) and one tap: row (OH*OW) is fully
 * written, zeros where the tap sees padding. */
static void conv_im2col_tap(const struct conv_shape *s, const struct conv_tap *t,
			    const float *restrict xc, float *restrict row)
{
	size_t ow = (size_t)s->ow;
	int n = t->x_hi - t->x_lo, oy, i;

	if (n <= 0 || t->y_lo >= t->y_hi) {
		memset(row, 0, (size_t)s->oh * ow * sizeof *row);
		return;
	}
	memset(row, 0, (size_t)t->y_lo * ow * sizeof *row);
	memset(row + (size_t)t->y_hi * ow, 0,
	       (size_t)(s->oh - t->y_hi) * ow * sizeof *row);
	for (oy = t->y_lo; oy < t->y_hi; oy++) {
		float *d = row + (size_t)oy * ow;
		const float *src = xc + (size_t)(oy * s->sh - s->ph + t->ki) * s->w +
			(t->x_lo * s->sw - s->pw + t->kj);

		memset(d, 0, (size_t)t->x_lo * sizeof *d);
		if (s->sw == 1) {
			memcpy(d + t->x_lo, src, (size_t)n * sizeof *d);
		} else {
			float *dd = d + t->x_lo;

			for (i = 0; i < n; i++)
				dd[i] = src[(size_t)i * s->sw];
		}
		memset(d + t->x_hi, 0, (size_t)(s->ow - t->x_hi) * sizeof *d);
	}
}

/* The reverse of conv_im2col_tap: add row (OH*OW) onto channel dxc (H,W),
 * dropping the entries that came from padding. The row's elements lie
 * `pitch` floats apart: 1 in col, C*KH*KW in col^T. */
static void conv_col2im_tap(const struct conv_shape *s, const struct conv_tap *t,
			    const float *restrict row, size_t pitch,
			    float *restrict dxc)
{
	int n = t->x_hi - t->x_lo, oy, i;

	if (n <= 0)
		return;
	for (oy = t->y_lo; oy < t->y_hi; oy++) {
		const float *src = row + ((size_t)oy * s->ow + t->x_lo) * pitch;
		float *d = dxc + (size_t)(oy * s->sh - s->ph + t->ki) * s->w +
			(t->x_lo * s->sw - s->pw + t->kj);

		if (s->sw == 1 && pitch == 1) {
			for (i = 0; i < n; i++)
				d[i] += src[i];
		} else {
			for (i = 0; i < n; i++)
				d[(size_t)i * s->sw] += src[(size_t)i * pitch];
		}
	}
}

/* Pieces of the im2col / col2im passes per thread: a few, so that a
 * preempted thread's share goes to the others. */
#define CONV_PIECES_PER_THREAD 4

struct conv_job {
	const struct conv_shape *s;
	const float *src;	/* x for im2col, col for col2im, y^T */
	float *dst;		/* col for im2col, dx for col2im, y */
	const float *bias;	/* the forward epilogue's, or NULL */
	enum conv_act act;	/* the forward epilogue's */
	int step;		/* rows of col, channels or rows of y per task */
	int count;		/* rows of col, channels or rows of y in all */
};

/* Tasks of `step` items out of count, about CONV_PIECES_PER_THREAD per
 * thread (one task without a pool). */
static int conv_split(struct workers *wk, struct conv_job *j, int count)
{
	j->count = count;
	return workers_split(wk, count, CONV_PIECES_PER_THREAD, &j->step);
}

/* Rows [task*step, ...) of col, ordered (c, ki, kj) to match the weight
 * layout (K, C, KH, KW); written front to back so that one input plane
 * stays in cache for all its KH*KW taps. */
static void conv_im2col_piece(void *ctx, int task, int thread)
{
	const struct conv_job *j = ctx;
	const struct conv_shape *s = j->s;
	size_t hw = (size_t)s->h * s->w, ohow = (size_t)s->oh * s->ow;
	int kk = s->kh * s->kw, r, end;
	struct conv_tap t;

	(void)thread;
	workers_range(task, j->step, j->count, &r, &end);
	for (; r < end; r++) {
		conv_tap_init(s, r % kk / s->kw, r % s->kw, &t);
		conv_im2col_tap(s, &t, j->src + (size_t)(r / kk) * hw,
				j->dst + (size_t)r * ohow);
	}
}

/* x (C,H,W) -> col (C*KH*KW, OH*OW) */
static void conv_im2col(struct workers *wk, const struct conv_shape *s,
			const float *x, float *col)
{
	struct conv_job j = { .s = s, .src = x, .dst = col };

	workers_run(wk, conv_im2col_piece, &j,
		    conv_split(wk, &j, s->c * s->kh * s->kw));
}

/* Channels [task*step, ...) of dx from their rows of col (or columns of
 * col^T when s->transposed). Channel outermost: the taps of one channel
 * all add into the same H*W plane, which then stays in cache. */
static void conv_col2im_piece(void *ctx, int task, int thread)
{
	const struct conv_job *j = ctx;
	const struct conv_shape *s = j->s;
	size_t hw = (size_t)s->h * s->w, ohow = (size_t)s->oh * s->ow;
	size_t ckk = (size_t)s->c * s->kh * s->kw;
	size_t row_pitch = s->transposed ? 1 : ohow;
	size_t pitch = s->transposed ? ckk : 1;
	int c, end, ki, kj;
	struct conv_tap t;

	(void)thread;
	workers_range(task, j->step, j->count, &c, &end);
	memset(j->dst + (size_t)c * hw, 0, (size_t)(end - c) * hw * sizeof(float));
	for (; c < end; c++)
		for (ki = 0; ki < s->kh; ki++)
			for (kj = 0; kj < s->kw; kj++) {
				conv_tap_init(s, ki, kj, &t);
				conv_col2im_tap(s, &t,
						j->src + (((size_t)c * s->kh + ki) *
							  s->kw + kj) * row_pitch,
						pitch, j->dst + (size_t)c * hw);
			}
}

/* col (C*KH*KW, OH*OW), or col^T (OH*OW, C*KH*KW) when s->transposed,
 * -> dx (C,H,W), overwritten. */
static void conv_col2im(struct workers *wk, const struct conv_shape *s,
			const float *col, float *dx)
{
	struct conv_job j = { .s = s, .src = col, .dst = dx };

	workers_run(wk, conv_col2im_piece, &j, conv_split(wk, &j, s->c));
}

/* CONV_ACT_RELU: act_relu_forward's comparison, so that a fused pass
 * gives its bits: a NaN passes on (as in PyTorch), -0 stays -0. */
static inline float conv_relu(float v)
{
	return v < 0.0f ? 0.0f : v;
}

/* Rows [task*step, ...) of y from the columns of y^T, plus the bias (0
 * when there is none), then act. */
static void conv_untranspose_piece(void *ctx, int task, int thread)
{
	const struct conv_job *j = ctx;
	const struct conv_shape *s = j->s;
	size_t ohow = (size_t)s->oh * s->ow, p;
	int k, end;

	(void)thread;
	workers_range(task, j->step, j->count, &k, &end);
	for (; k < end; k++) {
		const float *src = j->src + k;
		float *yk = j->dst + (size_t)k * ohow;
		float bk = j->bias ? j->bias[k] : 0.0f;

		if (j->act == CONV_ACT_RELU)
			for (p = 0; p < ohow; p++)
				yk[p] = conv_relu(src[p * s->k] + bk);
		else
			for (p = 0; p < ohow; p++)
				yk[p] = src[p * s->k] + bk;
	}
}

/* y^T (OH*OW, K) -> y (K, OH*OW), overwritten, + b (K) when not NULL,
 * then act. */
static void conv_untranspose(struct workers *wk, const struct conv_shape *s,
			     const float *yt, const float *b, enum conv_act act,
			     float *y)
{
	struct conv_job j = {
		.s = s, .src = yt, .dst = y, .bias = b, .act = act
	};

	workers_run(wk, conv_untranspose_piece, &j, conv_split(wk, &j, s->k));
}

/* Rows [task*step, ...) of y in place: + the bias, then act. Without a
 * bias nothing is added, not 0 (-0 + 0 is +0): the ReLU sees the bits the
 * unfused pass would have left in y. */
static void conv_epilogue_piece(void *ctx, int task, int thread)
{
	const struct conv_job *j = ctx;
	size_t ohow = (size_t)j->s->oh * j->s->ow, p;
	int k, end;
	int relu = j->act == CONV_ACT_RELU;

	(void)thread;
	workers_range(task, j->step, j->count, &k, &end);
	for (; k < end; k++) {
		float *yk = j->dst + (size_t)k * ohow;
		float bk = j->bias ? j->bias[k] : 0.0f;

		if (j->bias && relu)
			for (p = 0; p < ohow; p++)
				yk[p] = conv_relu(yk[p] + bk);
		else if (j->bias)
			for (p = 0; p < ohow; p++)
				yk[p] += bk;
		else if (relu)
			for (p = 0; p < ohow; p++)
				yk[p] = conv_relu(yk[p]);
	}
}

/* y (K, OH*OW) in place: + b (K) when not NULL, then act. */
static void conv_epilogue(struct workers *wk, const struct conv_shape *s,
			  const float *b, enum conv_act act, float *y)
{
	struct conv_job j = { .s = s, .dst = y, .bias = b, .act = act };

	if (b || act != CONV_ACT_NONE)
		workers_run(wk, conv_epilogue_piece, &j,
			    conv_split(wk, &j, s->k));
}

/* x (C,H,W), w (K,C,KH,KW), b (K) or NULL, y (K,OH,OW),
 * col (conv_col_size floats) */
void conv_forward(struct workers *wk, const struct conv_shape *s,
		  const float *x, const float *w, const float *b,
		  enum conv_act act, float *y, float *col)
{
	int ckk = s->c * s->kh * s->kw, ohow = s->oh * s->ow;
	const float *patches = x;

	if (!conv_is_1x1(s)) {
		conv_im2col(wk, s, x, col);
		patches = col;
	}
	if (s->transposed) {
		/* y^T(OH*OW, K) = patches^T * w^T, behind the patches. */
		float *yt = conv_is_1x1(s) ? col : col + (size_t)ckk * ohow;

		blas_sgemm_par(wk, 1, 1, ohow, s->k, ckk, 1.0f, patches, ohow,
			       w, ckk, 0.0f, yt, s->k);
		conv_untranspose(wk, s, yt, b, act, y);
		return;
	}
	blas_sgemm_par(wk, 0, 0, s->k, ohow, ckk, 1.0f, w, ckk, patches, ohow,
		       0.0f, y, ohow);
	conv_epilogue(wk, s, b, act, y);
}

/* dy (K,OH,OW), w (K,C,KH,KW), dx (C,H,W), col (conv_col_size floats) */
void conv_backward_input(struct workers *wk, const struct conv_shape *s,
			 const float *dy, const float *w, float *dx, float *col)
{
	int ckk = s->c * s->kh * s->kw, ohow = s->oh * s->ow;

	if (s->transposed) {
		/* col^T(OH*OW, C*KH*KW) = dy^T * w; col2im reads it as it is
		 * (for a 1x1 kernel that is just the transpose into dx). */
		blas_sgemm_par(wk, 1, 0, ohow, ckk, s->k, 1.0f, dy, ohow, w,
			       ckk, 0.0f, col, ckk);
		conv_col2im(wk, s, col, dx);
		return;
	}
	if (conv_is_1x1(s)) {
		/* The patch matrix is dx itself: write it directly. */
		blas_sgemm_par(wk, 1, 0, ckk, ohow, s->k, 1.0f, w, ckk, dy,
			       ohow, 0.0f, dx, ohow);
		return;
	}
	blas_sgemm_par(wk, 1, 0, ckk, ohow, s->k, 1.0f, w, ckk, dy, ohow,
		       0.0f, col, ohow);
	conv_col2im(wk, s, col, dx);
}

/* x (C,H,W), dy (K,OH,OW), dw (K,C,KH,KW) accumulated, db (K) accumulated or
 * NULL, col (conv_col_size floats) */
void conv_backward_params(struct workers *wk, const struct conv_shape *s,
			  const float *x, const float *dy, float *dw, float *db,
			  float *col)
{
	int ckk = s->c * s->kh * s->kw, ohow = s->oh * s->ow, k, i;
	const float *patches = x;

	if (!conv_is_1x1(s)) {
		/* Recomputed rather than kept from the forward pass, so one
		 * col buffer serves every layer of a network. */
		conv_im2col(wk, s, x, col);
		patches = col;
	}
	blas_sgemm_par(wk, 0, 1, s->k, ckk, ohow, 1.0f, dy, ohow, patches,
		       ohow, 1.0f, dw, ckk);
	if (!db)
		return;
	for (k = 0; k < s->k; k++) {
		const float *dyk = dy + (size_t)k * ohow;
		float sum = 0.0f;

		for (i = 0; i < ohow; i++)
			sum += dyk[i];
		db[k] += sum;
	}
}

/* ---- the entry a network uses ------------------------------------------ */

int conv_algo_supported(const struct conv_shape *s, int groups,
			enum conv_algo algo)
{
	return algo == CONV_ALGO_IM2COL || (groups == 1 && winograd_supported(s));
}

enum conv_algo conv_algo_preferred(const struct conv_shape *s, int groups,
				   int max_batch)
{
	return groups == 1 && winograd_preferred(s, max_batch) ?
	       CONV_ALGO_WINOGRAD : CONV_ALGO_IM2COL;
}

int conv_plan_set(struct conv_plan *p, const struct conv_shape *s, int groups,
		  enum conv_algo algo, const float *w)
{
	if (algo == CONV_ALGO_IM2COL || !conv_algo_supported(s, groups, algo)) {
		conv_plan_release(p);
		return 0;
	}
	if (!p->wt && !(p->wt = malloc(sizeof(float) * winograd_weight_size(s))))
		return -1;
	winograd_prepare(s, w, p->wt);
	p->algo = CONV_ALGO_WINOGRAD;
	return 0;
}

void conv_plan_release(struct conv_plan *p)
{
	free(p->wt);
	p->wt = NULL;
	p->algo = CONV_ALGO_IM2COL;
}

size_t conv_plan_work_size(const struct conv_plan *p, const struct conv_shape *s,
			   const struct workers *wk, int max_batch)
{
	size_t col = conv_col_size(s), wg;

	if (p->algo != CONV_ALGO_WINOGRAD)
		return col;
	wg = winograd_work_size(s, wk, max_batch);
	return wg > col ? wg : col;
}

/* Per-image, per-group strides of x, w and y. */
struct conv_strides {
	size_t x, w, y;
};

static struct conv_strides conv_strides(const struct conv_shape *s)
{
	struct conv_strides st;

	st.x = (size_t)s->c * s->h * s->w;
	st.w = (size_t)s->k * s->c * s->kh * s->kw;
	st.y = (size_t)s->k * s->oh * s->ow;
	return st;
}

void conv_run_forward(struct workers *wk, const struct conv_plan *p,
		      const struct conv_shape *s, int groups, int batch,
		      const float *x, const float *w, const float *b,
		      enum conv_act act, float *y, float *work)
{
	struct conv_strides st = conv_strides(s);
	int i, g;

	if (p->algo == CONV_ALGO_WINOGRAD) {
		winograd_forward(wk, s, batch, x, p->wt, b, act, y, work);
		return;
	}
	for (i = 0; i < batch; i++)
		for (g = 0; g < groups; g++)
			conv_forward(wk, s, x + ((size_t)i * groups + g) * st.x,
				     w + g * st.w, b ? b + (size_t)g * s->k : NULL,
				     act, y + ((size_t)i * groups + g) * st.y, work);
}

void conv_run_backward_input(struct workers *wk, const struct conv_plan *p,
			     const struct conv_shape *s, int groups, int batch,
			     const float *dy, const float *w, float *dx,
			     float *work)
{
	struct conv_strides st = conv_strides(s);
	int i, g;

	if (p->algo == CONV_ALGO_WINOGRAD) {
		winograd_backward_input(wk, s, batch, dy, p->wt, dx, work);
		return;
	}
	for (i = 0; i < batch; i++)
		for (g = 0; g < groups; g++)
			conv_backward_input(wk, s, dy + ((size_t)i * groups + g) * st.y,
					    w + g * st.w,
					    dx + ((size_t)i * groups + g) * st.x, work);
}

void conv_run_backward_params(struct workers *wk, const struct conv_shape *s,
			      int groups, int batch, const float *x,
			      const float *dy, float *dw, float *db, float *work)
{
	struct conv_strides st = conv_strides(s);
	int i, g;

	for (i = 0; i < batch; i++)
		for (g = 0; g < groups; g++)
			conv_backward_params(wk, s, x + ((size_t)i * groups + g) * st.x,
					     dy + ((size_t)i * groups + g) * st.y,
					     dw + g * st.w,
					     db ? db + (size_t)g * s->k : NULL, work);
}
