/* conv.h - 2-D convolution, forward and backward.
 *
 * A network runs a convolution layer through one entry, conv_run_*: a
 * plan made once per layer (struct conv_plan, kept apart from the shape)
 * says which algorithm runs it over a batch. The reference algorithm is
 * im2col + one GEMM (darknet's shape): the input patches are unrolled into
 * a (C*KH*KW) x (OH*OW) matrix "col" and multiplied by the (K) x (C*KH*KW)
 * weight matrix; backward to the input is the transposed product followed
 * by col2im. 3x3 stride-1 layers may run Winograd instead (winograd.h),
 * the same results up to rounding. The per-image calls at the bottom are
 * im2col's, for tests and tools.
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

/* How a layer runs: its algorithm, and what that keeps. */
enum conv_algo { CONV_ALGO_IM2COL, CONV_ALGO_WINOGRAD };
struct conv_plan {
	enum conv_algo algo;
	float *wt;	/* Winograd: transformed weights (owned), else NULL */
};

/* Non-zero when algo can run layer s with `groups` groups (Winograd: 3x3
 * stride 1, groups 1); the algorithm expected fastest for batches of up
 * to max_batch (winograd_preferred). */
int conv_algo_supported(const struct conv_shape *s, int groups,
			enum conv_algo algo);
enum conv_algo conv_algo_preferred(const struct conv_shape *s, int groups,
				   int max_batch);

/* Make p (zeroed, or set before) run layer s with `groups` groups (s is
 * one group's shape) by a supported algo, w its weights (groups*K,C,KH,KW).
 * -1 when out of memory. Call again whenever the weights change. */
int conv_plan_set(struct conv_plan *p, const struct conv_shape *s, int groups,
		  enum conv_algo algo, const float *w);
void conv_plan_release(struct conv_plan *p);

/* Floats of workspace the conv_run_* calls need for batches of up to
 * max_batch on the pool wk. */
size_t conv_plan_work_size(const struct conv_plan *p, const struct conv_shape *s,
			   const struct workers *wk, int max_batch);

/* For each of batch images (x (groups*C,H,W) each, y (groups*K,OH,OW)):
 * y = act(conv(x, w) + b), b may be NULL, y overwritten. */
void conv_run_forward(struct workers *wk, const struct conv_plan *p,
		      const struct conv_shape *s, int groups, int batch,
		      const float *x, const float *w, const float *b,
		      enum conv_act act, float *y, float *work);
/* dx (overwritten) = the gradient w.r.t. x given dy, for each image. */
void conv_run_backward_input(struct workers *wk, const struct conv_plan *p,
			     const struct conv_shape *s, int groups, int batch,
			     const float *dy, const float *w, float *dx,
			     float *work);
/* dw += dL/dw, db += dL/db (db may be NULL) over the batch (im2col for
 * every plan: parameter gradients are for training, which runs im2col). */
void conv_run_backward_params(struct workers *wk, const struct conv_shape *s,
			      int groups, int batch, const float *x,
			      const float *dy, float *dw, float *db, float *work);

/* y = act(conv(x, w) + b) for one image by im2col; b may be NULL. y is
 * overwritten. */
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
