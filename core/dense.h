/* dense.h - fully connected layer over a batch, weights as PyTorch stores
 * them: w (OUT, IN), b (OUT). x (N, IN), y (N, OUT).
 *
 * wk: the thread pool the products run on (workers.h), or NULL for the
 * calling thread with OpenBLAS's own threads. At batch 1 the products are
 * matrix-vector products, cut into pieces of a fixed size; larger batches
 * are one matrix product, cut as blas_sgemm_par does. The cuts do not
 * depend on the number of threads, so the result is the same on any pool,
 * and with NULL when OpenBLAS is single-threaded. */
#ifndef ADVEX_DENSE_H
#define ADVEX_DENSE_H

#include <stddef.h>

struct workers;

/* y = x w^T + b (b may be NULL); y overwritten. */
void dense_forward(struct workers *wk, int n, int in, int out,
		   const float *x, const float *w, const float *b, float *y);
/* Floats of workspace dense_backward_input can use (at batch 1). */
size_t dense_work_size(int in);
/* dx = dy w; dx overwritten. work: dense_work_size(in) floats, or NULL.
 * At batch 1, with work, a dy that is mostly zeros (behind a ReLU) skips
 * the rows of w it would multiply by 0. */
void dense_backward_input(struct workers *wk, int n, int in, int out,
			  const float *dy, const float *w, float *dx,
			  float *work);
/* dw += dy^T x; db += sum over the batch of dy (db may be NULL). */
void dense_backward_params(struct workers *wk, int n, int in, int out,
			   const float *x, const float *dy, float *dw,
			   float *db);

#endif
