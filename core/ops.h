/* ops.h - the graph's structural and elementwise kernels: residual adds,
 * arithmetic with a constant, stand-alone batch norm, channel concat,
 * constant padding and strided slicing.
 *
 * Every kernel works on one image (C, H, W) with hw = H*W, or on a plain
 * count; forward and backward sit side by side. Backward kernels overwrite
 * their output (dx) unless the name says accumulate.
 */
#ifndef ADVEX_OPS_H
#define ADVEX_OPS_H

#include <stddef.h>

/* y = a + b (n values); y may be a or b. */
void ops_add(const float *a, const float *b, float *y, size_t n);
/* y += x (n values): a gradient arriving from a second consumer. */
void ops_accumulate(float *y, const float *x, size_t n);

enum ops_arith { OPS_ADD, OPS_SUB, OPS_MUL, OPS_DIV };

/* y = x (op) v per channel: v (C) when per_channel, else v[0] for all.
 * x (C, hw); y may be x. */
void ops_arith_forward(enum ops_arith op, int c, size_t hw, const float *x,
		       const float *v, int per_channel, float *y);
/* dx = dy * d(op)/dx: dy for add/sub, dy*v for mul, dy/v for div. dx may
 * be dy. */
void ops_arith_backward(enum ops_arith op, int c, size_t hw, const float *dy,
			const float *v, int per_channel, float *dx);

/* Inference batch norm with its own statistics, PyTorch's order of
 * operations: y = (x - mean) * inv_std * gamma + beta, inv_std (C) =
 * 1/sqrt(var + eps) computed once at load. y may be x. */
void ops_bn_forward(int c, size_t hw, const float *x, const float *mean,
		    const float *inv_std, const float *gamma,
		    const float *beta, float *y);
/* dx = dy * inv_std * gamma; dx may be dy. */
void ops_bn_backward_input(int c, size_t hw, const float *dy,
			   const float *inv_std, const float *gamma,
			   float *dx);
/* dgamma += sum dy * (x - mean) * inv_std, dbeta += sum dy (per channel). */
void ops_bn_backward_params(int c, size_t hw, const float *x,
			    const float *dy, const float *mean,
			    const float *inv_std, float *dgamma, float *dbeta);

/* Concat along channels: part (pc, hw) is written to / read from channels
 * [c0, c0 + pc) of y (C, hw). */
void ops_concat_forward(size_t hw, int c0, int pc, const float *part,
			float *y);
void ops_concat_backward(size_t hw, int c0, int pc, const float *dy,
			 float *dpart);

/* Constant padding: x (C, H, W) -> y (C + cb + ca, H + top + bottom,
 * W + left + right), every new value `value`. */
struct ops_pad {
	int c, h, w;			/* input */
	int top, left, bottom, right;	/* spatial padding */
	int cb, ca;			/* channels before, after */
	float value;
};
void ops_pad_forward(const struct ops_pad *p, const float *x, float *y);
/* dx (C, H, W) = the part of dy (the padded shape) over the input. */
void ops_pad_backward(const struct ops_pad *p, const float *dy, float *dx);

/* Strided slice: y[c][i][j] = x[c0 + c][h0 + i*sh][w0 + j*sw] for
 * c < oc, i < oh, j < ow. */
struct ops_slice {
	int c, h, w;		/* input */
	int c0, h0, w0;		/* first element */
	int sh, sw;		/* steps */
	int oc, oh, ow;		/* output */
};
void ops_slice_forward(const struct ops_slice *s, const float *x, float *y);
/* dx (C, H, W): zero, then dy scattered back. */
void ops_slice_backward(const struct ops_slice *s, const float *dy,
			float *dx);

#endif
