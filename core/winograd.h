/* winograd.h - Winograd F(2x2,3x3) convolution for 3x3 stride-1 layers.
 *
 * A faster drop-in for conv_forward / conv_backward_input (conv.h) when the
 * kernel is 3x3, the stride 1 and the padding 0 or 1 (every VGG layer). The
 * results equal the im2col path up to float rounding (about 1e-6 relative).
 *
 * Same layouts as conv.h: x (C,H,W), w (K,C,3,3) as PyTorch stores it,
 * b (K), y (K,OH,OW), dy (K,OH,OW), dx (C,H,W).
 *
 * Ownership: the caller allocates and owns every buffer. The transformed
 * weights wt (winograd_weight_size floats) are computed once by
 * winograd_prepare, after which the calls read only wt, never w; the
 * same wt serves forward and backward. The workspace (winograd_work_size
 * floats) is scratch, its content is meaningless between calls and one
 * buffer may be shared by every layer. Nothing is allocated, no global
 * state is kept, so calls on different buffers may run concurrently; the
 * products go through blas_sgemm with whatever thread count blas.h was
 * given.
 */
#ifndef ADVEX_WINOGRAD_H
#define ADVEX_WINOGRAD_H

#include <stddef.h>

#include "conv.h"

/* Non-zero when the calls below apply to s: kernel 3x3, stride 1, padding 0
 * or 1 in each direction, s already filled by conv_shape_init. */
int winograd_supported(const struct conv_shape *s);

/* The output tile size m of the F(m x m, 3x3) algorithm the calls below use
 * for s: 4 when the layer has many output pixels, else 2. Information only
 * (the other calls choose by themselves, the same way). */
int winograd_tile(const struct conv_shape *s);

/* Floats in the transformed weights wt: 16*K*C for F(2x2,3x3), 72*K*C for
 * F(4x4,3x3) (forward and rotated copies). */
size_t winograd_weight_size(const struct conv_shape *s);

/* Floats of workspace winograd_forward and winograd_backward_input need;
 * the larger of the two, so one buffer serves both. */
size_t winograd_work_size(const struct conv_shape *s);

/* wt = the transformed weights of w (K,C,3,3): wt[e][k][c] = element e of
 * G w[k][c] G^T, in the order winograd_forward wants. Call once after the
 * weights are loaded and again whenever they change. */
void winograd_prepare(const struct conv_shape *s, const float *w, float *wt);

/* y = conv(x, w) + b, as conv_forward; b may be NULL; y is overwritten.
 * work has winograd_work_size floats. x, y and work must not overlap. */
void winograd_forward(const struct conv_shape *s, const float *x,
		      const float *wt, const float *b, float *y, float *work);

/* dx = the gradient w.r.t. x given dy, as conv_backward_input; dx is
 * overwritten. Uses the same wt as the forward call. dy, dx and work must
 * not overlap. */
void winograd_backward_input(const struct conv_shape *s, const float *dy,
			     const float *wt, float *dx, float *work);

#endif
