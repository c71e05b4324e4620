/* winograd.h - Winograd convolution for 3x3 stride-1 layers.
 *
 * A faster drop-in for conv_forward / conv_backward_input (conv.h) when the
 * kernel is 3x3, the stride 1 and the padding 0 or 1 (every VGG layer):
 * F(4x4,3x3) on large images, F(2x2,3x3) on small ones, chosen from the
 * shape alone. The results equal the im2col path up to float rounding:
 * about 5e-7 relative (L2) for F(2x2,3x3), 1.5e-6 for F(4x4,3x3).
 *
 * Same layouts as conv.h: x (C,H,W), w (K,C,3,3) as PyTorch stores it,
 * b (K), y (K,OH,OW), dy (K,OH,OW), dx (C,H,W).
 *
 * Ownership: the caller allocates and owns every buffer. The transformed
 * weights wt (winograd_weight_size floats) are computed once by
 * winograd_prepare, after which the calls read only wt, never w; the same
 * wt serves forward and backward. The workspace (winograd_work_size
 * floats) is scratch: its content means nothing between calls, and one
 * buffer may serve every layer (size it for the largest). Nothing is
 * allocated and no state is kept between calls.
 *
 * Threads: wk is the thread pool to run on (workers.h). With a pool, the
 * n products of a layer run side by side, each single-threaded, and the
 * transforms are split by channels; the workspace then holds one scratch
 * slot per thread, so size it with the same pool. With NULL the calls run
 * on the calling thread and the products on as many threads as OpenBLAS
 * was given. The products are the same calls either way, so the results
 * are too.
 */
#ifndef ADVEX_WINOGRAD_H
#define ADVEX_WINOGRAD_H

#include <stddef.h>

#include "conv.h"

struct workers;

/* Non-zero when the calls below apply to s: kernel 3x3, stride 1, padding 0
 * or 1 in each direction, s filled by conv_shape_init. */
int winograd_supported(const struct conv_shape *s);

/* Non-zero when s is supported and Winograd is expected to beat im2col:
 * at least 8 input and output channels and at least 8x8 outputs (measured
 * on 2 cores; e.g. VGG16 at 96x96 input: all but the first layer and the
 * three 6x6 layers). A hint; either path gives the same results. */
int winograd_preferred(const struct conv_shape *s);

/* The output tile size m of the F(m x m, 3x3) the calls below use for s:
 * 4 from 32x32 outputs up, else 2. Information only: the other calls
 * choose the same way by themselves. */
int winograd_tile(const struct conv_shape *s);

/* Floats in the transformed weights wt: 16*K*C with 2x2 tiles, 72*K*C with
 * 4x4 tiles (a forward and a rotated copy for the backward pass). */
size_t winograd_weight_size(const struct conv_shape *s);

/* Floats of workspace winograd_forward and winograd_backward_input need
 * on the pool wk (NULL: none); the larger of the two, so one buffer
 * serves both. */
size_t winograd_work_size(const struct conv_shape *s,
			  const struct workers *wk);

/* wt = w (K,C,3,3) transformed, in the layout the calls below read. Call
 * once after the weights are loaded, and again whenever they change. */
void winograd_prepare(const struct conv_shape *s, const float *w, float *wt);

/* y = conv(x, w) + b, as conv_forward; b may be NULL; y is overwritten.
 * work has winograd_work_size floats. x, y and work must not overlap. */
void winograd_forward(struct workers *wk, const struct conv_shape *s,
		      const float *x, const float *wt, const float *b, float *y,
		      float *work);

/* dx = the gradient w.r.t. x given dy, as conv_backward_input; dx is
 * overwritten. Reads the same wt as winograd_forward. dy, dx and work
 * must not overlap. */
void winograd_backward_input(struct workers *wk, const struct conv_shape *s,
			     const float *dy, const float *wt, float *dx,
			     float *work);

#endif
