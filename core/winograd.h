/* winograd.h - Winograd convolution for 3x3 stride-1 layers.
 *
 * A faster drop-in for conv_forward / conv_backward_input (conv.h) when the
 * kernel is 3x3, the stride 1 and the padding 0 or 1 (every VGG layer):
 * F(4x4,3x3) on large images, F(2x2,3x3) on small ones, chosen from the
 * shape alone. The results equal the im2col path up to float rounding:
 * about 5e-7 relative (L2) for F(2x2,3x3), 1.5e-6 for F(4x4,3x3).
 *
 * Same layouts as conv.h, for a batch of images stored one after the
 * other: x (batch,C,H,W), w (K,C,3,3) as PyTorch stores it, b (K),
 * y (batch,K,OH,OW), dy (batch,K,OH,OW), dx (batch,C,H,W).
 *
 * Batches: small images make thin products, so a batch puts the tiles of
 * several images into one product (up to 144 tiles, e.g. 4 images of
 * 12x12 or 16 of 6x6; images that already have 144 tiles go one at a
 * time). The results equal those of one call per image up to float
 * rounding (wider products are summed in another order by OpenBLAS:
 * about 1e-7 relative L2), not bit for bit.
 *
 * Ownership: the caller allocates and owns every buffer. The transformed
 * weights wt (winograd_weight_size floats) are computed once by
 * winograd_prepare, after which the calls read only wt, never w; the same
 * wt serves forward and backward. The workspace (winograd_work_size
 * floats, sized for the largest batch the calls will get) is scratch: its
 * content means nothing between calls, and one buffer may serve every
 * layer (size it for the largest). Nothing is allocated and no state is
 * kept between calls.
 *
 * Threads: wk is the thread pool to run on (workers.h). With a pool, the
 * n products of a layer run side by side, each single-threaded, and the
 * transforms are split by (image, channel); the workspace then holds one
 * scratch
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

/* Non-zero when s is supported and Winograd is expected to beat im2col
 * at batches of `batch` images (the largest the layer will run): at least
 * 8 input and output channels and at least 16 tiles of 2x2 in a block of
 * products, i.e. 8x8 outputs at batch 1, 6x6 from batch 2, 4x4 from
 * batch 4 (measured on 2 cores; e.g. VGG16 at 96x96 input: all but the
 * first layer and, at batch 1, the three 6x6 layers). A hint; either path
 * gives the same results. */
int winograd_preferred(const struct conv_shape *s, int batch);

/* The output tile size m of the F(m x m, 3x3) the calls below use for s:
 * 4 from 24x24 outputs up, else 2. Information only: the other calls
 * choose the same way by themselves. */
int winograd_tile(const struct conv_shape *s);

/* Images the forward pass of a batch of `batch` puts in one block of
 * products (see the top). Information only, as winograd_tile. */
int winograd_block_images(const struct conv_shape *s, int batch);

/* Floats in the transformed weights wt: 16*K*C with 2x2 tiles, 72*K*C with
 * 4x4 tiles (a forward and a rotated copy for the backward pass). */
size_t winograd_weight_size(const struct conv_shape *s);

/* Floats of workspace winograd_forward and winograd_backward_input need
 * on the pool wk (NULL: none) for batches of up to max_batch images; the
 * larger of the two, so one buffer serves both. */
size_t winograd_work_size(const struct conv_shape *s,
			  const struct workers *wk, int max_batch);

/* wt = w (K,C,3,3) transformed, in the layout the calls below read. Call
 * once after the weights are loaded, and again whenever they change. */
void winograd_prepare(const struct conv_shape *s, const float *w, float *wt);

/* y = act(conv(x, w) + b) for each of batch images, as conv_forward; b
 * may be NULL; act as there (CONV_ACT_RELU gives act_relu_forward's bits
 * from the same sums); y is overwritten. work has winograd_work_size(s,
 * wk, max_batch) floats for some max_batch >= batch. x, y and work must
 * not overlap. */
void winograd_forward(struct workers *wk, const struct conv_shape *s,
		      int batch, const float *x, const float *wt,
		      const float *b, enum conv_act act, float *y, float *work);

/* dx = the gradient w.r.t. x given dy for each of batch images, as
 * conv_backward_input; dx is overwritten. Reads the same wt as
 * winograd_forward; work as there. dy, dx and work must not overlap. */
void winograd_backward_input(struct workers *wk, const struct conv_shape *s,
			     int batch, const float *dy, const float *wt,
			     float *dx, float *work);

#endif
