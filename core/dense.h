/* dense.h - fully connected layer over a batch, weights as PyTorch stores
 * them: w (OUT, IN), b (OUT). x (N, IN), y (N, OUT). All through blas_sgemm. */
#ifndef ADVEX_DENSE_H
#define ADVEX_DENSE_H

/* y = x w^T + b (b may be NULL); y overwritten. */
void dense_forward(int n, int in, int out, const float *x, const float *w,
		   const float *b, float *y);
/* dx = dy w; dx overwritten. */
void dense_backward_input(int n, int in, int out, const float *dy,
			  const float *w, float *dx);
/* dw += dy^T x; db += sum over the batch of dy (db may be NULL). */
void dense_backward_params(int n, int in, int out, const float *x,
			   const float *dy, float *dw, float *db);

#endif
