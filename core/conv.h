/* conv.h - 2-D convolution on one image, forward and backward.
 *
 * The reference algorithm is im2col + one GEMM (darknet's shape): the input
 * patches are unrolled into a (C*KH*KW) x (OH*OW) matrix "col" and multiplied
 * by the (K) x (C*KH*KW) weight matrix. Backward to the input is the
 * transposed product followed by col2im. Winograd F(4x4,3x3) for 3x3
 * stride 1 is winograd.h, a separate batched call: net.c chooses between
 * the two per layer (net_set_conv_mode).
 *
 * Layouts: x (C,H,W), w (K,C,KH,KW) as PyTorch stores it, b (K), y (K,OH,OW).
 *
 * wk: the thread pool to run on (workers.h), or NULL for the calling
 * thread with OpenBLAS's own threads. The result is the same on any pool,
 * and with NULL when OpenBLAS is single-threaded.
 */
#ifndef ADVEX_CONV_H
#define ADVEX_CONV_H

#include <stddef.h>

struct workers;

struct conv_shape {
	int c, h, w;	/* input channels, height, width */
	int k;		/* output channels */
	int kh, kw;	/* kernel size */
	int sh, sw;	/* stride */
	int ph, pw;	/* zero padding on each side */
	int oh, ow;	/* output size, filled by conv_shape_init */
	int transposed;	/* run the products transposed (see conv.c): set
			 * by conv_shape_init where that is faster (thin
			 * outputs, large weights); either value gives the
			 * same result up to rounding, and a caller may
			 * change it before sizing col (tests do) */
};

/* Compute oh/ow from the other fields and choose `transposed`. Returns 0,
 * or -1 when a field is non-positive (padding may be 0) or the output would
 * be empty. */
int conv_shape_init(struct conv_shape *s);

/* Floats of workspace the calls below need in `col` (0 when none); it
 * depends on `transposed`. */
size_t conv_col_size(const struct conv_shape *s);

/* What the forward calls apply to conv(x, w) + b as they store it:
 * nothing, or a ReLU (max(z, 0) with a NaN passed on, as act_relu_forward,
 * bit for bit), which saves a network its separate pass over y. */
enum conv_act { CONV_ACT_NONE, CONV_ACT_RELU };

/* y = act(conv(x, w) + b); b may be NULL. y is overwritten. */
void conv_forward(struct workers *wk, const struct conv_shape *s,
		  const float *x, const float *w, const float *b,
		  enum conv_act act, float *y, float *col);

/* dx = gradient of the loss w.r.t. x given dy (K,OH,OW); dx is overwritten. */
void conv_backward_input(struct workers *wk, const struct conv_shape *s,
			 const float *dy, const float *w, float *dx, float *col);

/* dw += dL/dw and db += dL/db (db may be NULL) for one image. */
void conv_backward_params(struct workers *wk, const struct conv_shape *s,
			  const float *x, const float *dy, float *dw, float *db,
			  float *col);

#endif
