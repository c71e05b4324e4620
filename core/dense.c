/* dense.c - fully connected layer over a batch (see dense.h).
 * Each pass is one GEMM over the whole batch, so the weights are read once
 * per batch rather than once per image. */
#include "dense.h"

#include <stddef.h>

#include "blas.h"

/* x (N,IN), w (OUT,IN), b (OUT) or NULL, y (N,OUT) */
void dense_forward(int n, int in, int out, const float *x, const float *w,
		   const float *b, float *y)
{
	int i, o;

	blas_sgemm(0, 1, n, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
	if (!b)
		return;
	for (i = 0; i < n; i++) {
		float *yi = y + (size_t)i * out;

		for (o = 0; o < out; o++)
			yi[o] += b[o];
	}
}

/* dy (N,OUT), w (OUT,IN), dx (N,IN) */
void dense_backward_input(int n, int in, int out, const float *dy,
			  const float *w, float *dx)
{
	blas_sgemm(0, 0, n, in, out, 1.0f, dy, out, w, in, 0.0f, dx, in);
}

/* x (N,IN), dy (N,OUT), dw (OUT,IN) accumulated, db (OUT) accumulated or NULL */
void dense_backward_params(int n, int in, int out, const float *x,
			   const float *dy, float *dw, float *db)
{
	int i, o;

	blas_sgemm(1, 0, out, in, n, 1.0f, dy, out, x, in, 1.0f, dw, in);
	if (!db)
		return;
	for (i = 0; i < n; i++) {
		const float *dyi = dy + (size_t)i * out;

		for (o = 0; o < out; o++)
			db[o] += dyi[o];
	}
}
