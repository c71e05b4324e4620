/* dense.c - fully connected layer over a batch (see dense.h).
 *
 * At batch N > 1 each pass is one GEMM over the whole batch, so that the
 * weights are read once per batch rather than once per image. At batch 1
 * (the attacks) GEMM would copy ("pack") the whole weight matrix before
 * using each weight once; a matrix-vector product reads it once, in
 * place, about 2.5x faster on the 4608x4096 VGG layers. Those products
 * are memory-bound: cut into pieces, they run side by side on the pool's
 * threads, each streaming its own rows (forward) or columns (backward) of
 * the weights.
 */
#include "dense.h"

#include <stddef.h>

#include "blas.h"
#include "workers.h"

/* Piece sizes at batch 1, fixed so that the pieces, and hence the
 * rounding, are the same for any thread count. Multiples of 16, so the
 * cuts fall where the BLAS kernels' own blocks do. Forward: 16 pieces of
 * the 4096-row VGG layers; backward: 4 column strips (narrower strips
 * measured slower: each piece re-reads dy and streams shorter rows). */
#define DENSE_FWD_ROWS 256
#define DENSE_BWD_COLS 1152

struct dense_job {
	int in, out;
	const float *x, *w, *b;
	float *y;
	float *part;		/* sparse backward: DENSE_SPARSE_PIECES rows of in */
};

/* Sparse backward at batch 1 (dense_backward_input): dy behind a ReLU is
 * zero for half of the units or more, and a zero's row of w adds nothing,
 * so reading it is wasted - the product is memory-bound, its time falls
 * with the rows skipped. The rows are cut into a fixed number of pieces,
 * each summing its non-zero rows into its own partial dx (streaming whole
 * rows: reading strips of rows instead, as the matrix-vector product
 * does, measured slower than not skipping at all), then the partials are
 * added in a fixed order. Fixed pieces: the same rounding on any pool.
 * Used while at most 3/4 of dy is non-zero; a NaN counts as non-zero
 * and still spreads (an inf weight in a skipped row no longer turns a 0
 * into NaN, as BLAS would). Measured on VGG16's 4096-wide layers with
 * random weights (half the units zero): 1.85 -> 1.5 ms. */
#define DENSE_SPARSE_PIECES 8
#define DENSE_SPARSE_MIN_OUT 256
#define DENSE_SUM_PIECES 8

size_t dense_work_size(int in)
{
	return (size_t)DENSE_SPARSE_PIECES * (in > 0 ? (size_t)in : 0);
}

static void dense_sparse_piece(void *ctx, int task, int thread)
{
	const struct dense_job *j = ctx;
	int rows = (j->out + DENSE_SPARSE_PIECES - 1) / DENSE_SPARSE_PIECES;
	int o0, o1, in = j->in, o, i;
	float *restrict p = j->part + (size_t)task * in;

	(void)thread;
	workers_range(task, rows, j->out, &o0, &o1);
	for (i = 0; i < in; i++)
		p[i] = 0.0f;
	for (o = o0; o < o1; o++) {
		const float *restrict wr = j->w + (size_t)o * in;
		float g = j->x[o];

		if (g == 0.0f)
			continue;
		for (i = 0; i < in; i++)
			p[i] += g * wr[i];
	}
}

static void dense_sparse_sum(void *ctx, int task, int thread)
{
	const struct dense_job *j = ctx;
	int cols = (j->in + DENSE_SUM_PIECES - 1) / DENSE_SUM_PIECES;
	int i0, i1, i, k;

	(void)thread;
	workers_range(task, cols, j->in, &i0, &i1);
	for (i = i0; i < i1; i++) {
		float s = 0.0f;

		for (k = 0; k < DENSE_SPARSE_PIECES; k++)
			s += j->part[(size_t)k * j->in + i];
		j->y[i] = s;
	}
}

/* Batch 1 with a mostly-zero dy: see DENSE_SPARSE_PIECES. 0 when dy is
 * too dense for it to pay. */
static int dense_backward_sparse(struct workers *wk, struct dense_job *j)
{
	int o, nz = 0, saved;

	if (!j->part || j->out < DENSE_SPARSE_MIN_OUT)
		return 0;
	for (o = 0; o < j->out; o++)
		nz += j->x[o] != 0.0f;
	if (nz * 4 > j->out * 3)
		return 0;
	saved = blas_serial_begin(wk);
	workers_run(wk, dense_sparse_piece, j, DENSE_SPARSE_PIECES);
	workers_run(wk, dense_sparse_sum, j, DENSE_SUM_PIECES);
	blas_serial_end(saved);
	return 1;
}

/* Forward piece: y[o0 .. o0+len) = w[o0 .. o0+len) x + b */
static void dense_fwd_piece(void *ctx, int task, int thread)
{
	const struct dense_job *j = ctx;
	int o0, o1, o;

	(void)thread;
	workers_range(task, DENSE_FWD_ROWS, j->out, &o0, &o1);
	blas_sgemv(0, o1 - o0, j->in, 1.0f, j->w + (size_t)o0 * j->in, j->in, j->x,
		   0.0f, j->y + o0);
	if (j->b)
		for (o = o0; o < o1; o++)
			j->y[o] += j->b[o];
}

/* Backward piece: dx[i0 .. i0+len) = (columns i0.. of w)^T dy; here x is
 * dy and y is dx. */
static void dense_bwd_piece(void *ctx, int task, int thread)
{
	const struct dense_job *j = ctx;
	int i0, i1;

	(void)thread;
	workers_range(task, DENSE_BWD_COLS, j->in, &i0, &i1);
	blas_sgemv(1, j->out, i1 - i0, 1.0f, j->w + i0, j->in, j->x, 0.0f,
		   j->y + i0);
}

static void dense_run(struct workers *wk, workers_fn *fn,
		      const struct dense_job *j, int len, int piece)
{
	int saved = blas_serial_begin(wk);

	workers_run(wk, fn, (void *)j, (len + piece - 1) / piece);
	blas_serial_end(saved);
}

/* x (N,IN), w (OUT,IN), b (OUT) or NULL, y (N,OUT) */
void dense_forward(struct workers *wk, int n, int in, int out,
		   const float *x, const float *w, const float *b, float *y)
{
	struct dense_job j = { in, out, x, w, b, y, NULL };
	int i, o;

	if (n == 1) {
		dense_run(wk, dense_fwd_piece, &j, out, DENSE_FWD_ROWS);
		return;
	}
	blas_sgemm_par(wk, 0, 1, n, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
	if (!b)
		return;
	for (i = 0; i < n; i++) {
		float *yi = y + (size_t)i * out;

		for (o = 0; o < out; o++)
			yi[o] += b[o];
	}
}

/* dy (N,OUT), w (OUT,IN), dx (N,IN) */
void dense_backward_input(struct workers *wk, int n, int in, int out,
			  const float *dy, const float *w, float *dx,
			  float *work)
{
	struct dense_job j = { in, out, dy, w, NULL, dx, work };

	if (n == 1 && dense_backward_sparse(wk, &j))
		return;
	if (n == 1) {
		dense_run(wk, dense_bwd_piece, &j, in, DENSE_BWD_COLS);
		return;
	}
	blas_sgemm_par(wk, 0, 0, n, in, out, 1.0f, dy, out, w, in, 0.0f, dx,
		       in);
}

/* x (N,IN), dy (N,OUT), dw (OUT,IN) accumulated, db (OUT) accumulated or NULL */
void dense_backward_params(struct workers *wk, int n, int in, int out,
			   const float *x, const float *dy, float *dw,
			   float *db)
{
	int i, o;

	blas_sgemm_par(wk, 1, 0, out, in, n, 1.0f, dy, out, x, in, 1.0f, dw,
		       in);
	if (!db)
		return;
	for (i = 0; i < n; i++) {
		const float *dyi = dy + (size_t)i * out;

		for (o = 0; o < out; o++)
			db[o] += dyi[o];
	}
}
