/* pool.h - max, average and global-average pooling on one image (C,H,W).
 *
 * Max pooling records the flat input index (within the channel plane) of
 * each maximum, so the backward pass is a scatter and needs no comparison.
 * Padded positions never win a max (they count as -inf, as in PyTorch).
 *
 * Ties: given the signatures of its input's positions (fieldsig.h), the
 * recorded index of a window is the first position in scan order whose
 * signature is the maximum's - equal in exact arithmetic, where PyTorch
 * sends the gradient of an exact tie, such as flat image regions produce,
 * however advex's kernels rounded the two values. Without signatures, the
 * first exact maximum. The output value is the window's float maximum
 * either way, and a NaN wins its window as in PyTorch. See pool.c.
 */
#ifndef ADVEX_POOL_H
#define ADVEX_POOL_H

#include <stddef.h>
#include <stdint.h>

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

/* y (C,OH,OW); argmax (C,OH,OW) receives the winning index h*W+w.
 * sig (H,W): the signatures of x's positions, or NULL (exact first
 * maximum); work: pool_tie_work_size(s) ints when sig is given. */
size_t pool_tie_work_size(const struct pool_shape *s);
void pool_max_forward(const struct pool_shape *s, const float *x, float *y,
		      int32_t *argmax, const uint64_t *sig, int32_t *work);
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
