/* pool.h - max, average and global-average pooling on one image (C,H,W).
 *
 * Max pooling records the flat input index (within the channel plane) of
 * each maximum, so the backward pass is a scatter and needs no comparison.
 * Padded positions never win a max (they count as -inf, as in PyTorch).
 *
 * Ties: when the pool reads a convolution's output (through a ReLU or
 * not), the recorded index is the first in scan order whose value is
 * within the rounding that convolution can put into equal values
 * (pool_tie_eps * 2^-24 * S, S = |b| + sum |w||x| at the maximum's
 * position; 5 for im2col and F(2x2), 32 for Winograd F(4x4)) of the
 * window's maximum and whose receptive field matches the maximum's
 * (sum |w||x_a - x_b| <= 256 * 2^-24 * S) - where PyTorch sends the
 * gradient of an exact tie, such as flat image regions produce. Without a producer, the first exact
 * maximum. See pool.c for the measurements. The output value is the
 * window's float maximum either way, and a NaN wins its window as in
 * PyTorch.
 */
#ifndef ADVEX_POOL_H
#define ADVEX_POOL_H

#include <stdint.h>

#include "conv.h"

struct pool_shape {
	int c, h, w;	/* input channels, height, width */
	int kh, kw;	/* window */
	int sh, sw;	/* stride */
	int ph, pw;	/* padding on each side */
	int ceil_mode;	/* 1: output size rounds up (PyTorch ceil_mode) */
	int count_include_pad; /* average pool: divide by full window size */
	int oh, ow;	/* output size, filled by pool_shape_init */
};

/* Compute oh/ow. Returns 0, or -1 for an invalid shape (as PyTorch rejects:
 * padding larger than half the window, empty output). */
int pool_shape_init(struct pool_shape *s);

/* The convolution whose output the pool reads, for the tie rule. Borrowed
 * pointers for one image: conv's shape, its input x (C,H,W), w
 * (K,C,KH,KW) and b (K, or NULL); tile: how it ran, 0 for im2col + GEMM,
 * 2 or 4 for Winograd F(2x2,3x3) / F(4x4,3x3) (winograd_tile), whose
 * rounding is larger. Ignored unless conv->k, oh, ow equal the pool's
 * c, h, w. */
struct pool_producer {
	const struct conv_shape *conv;
	const float *x, *w, *b;
	int tile;
};

/* The tie tolerance of a window whose max lies at an output with
 * S = |b| + sum |w||x|, in units of 2^-24 * S, for a producer that ran
 * with `tile` (see pool.c for the measurements behind it). */
float pool_tie_eps(int tile);

/* y (C,OH,OW); argmax (C,OH,OW) receives the winning index h*W+w.
 * producer: the convolution behind x, or NULL (exact first maximum). */
void pool_max_forward(const struct pool_shape *s, const float *x, float *y,
		      int32_t *argmax, const struct pool_producer *producer);
/* dx (C,H,W) is overwritten: zero, then dy scattered to the argmax. */
void pool_max_backward(const struct pool_shape *s, const float *dy,
		       const int32_t *argmax, float *dx);

void pool_avg_forward(const struct pool_shape *s, const float *x, float *y);
/* dx overwritten. */
void pool_avg_backward(const struct pool_shape *s, const float *dy, float *dx);

/* Global average: x (C, HW) -> y (C). */
void pool_global_forward(int c, int hw, const float *x, float *y);
/* dx (C, HW) overwritten. */
void pool_global_backward(int c, int hw, const float *dy, float *dx);

#endif
