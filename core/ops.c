/* ops.c - structural and elementwise kernels of the graph engine (ops.h).
 * Plain loops: each is one pass over memory, small beside a convolution. */
#include "ops.h"

#include <string.h>

void ops_add(const float *a, const float *b, float *y, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		y[i] = a[i] + b[i];
}

void ops_accumulate(float *y, const float *x, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		y[i] += x[i];
}

void ops_arith_forward(enum ops_arith op, int c, size_t hw, const float *x,
		       const float *v, int per_channel, float *y)
{
	size_t i;
	int k;

	for (k = 0; k < c; k++) {
		const float *xs = x + (size_t)k * hw;
		float *ys = y + (size_t)k * hw;
		float a = v[per_channel ? k : 0];

		switch (op) {
		case OPS_ADD:
			for (i = 0; i < hw; i++)
				ys[i] = xs[i] + a;
			break;
		case OPS_SUB:
			for (i = 0; i < hw; i++)
				ys[i] = xs[i] - a;
			break;
		case OPS_MUL:
			for (i = 0; i < hw; i++)
				ys[i] = xs[i] * a;
			break;
		case OPS_DIV:
			/* a true division, as PyTorch does: x * (1/a)
			 * would differ in the last bit */
			for (i = 0; i < hw; i++)
				ys[i] = xs[i] / a;
			break;
		}
	}
}

void ops_arith_backward(enum ops_arith op, int c, size_t hw, const float *dy,
			const float *v, int per_channel, float *dx)
{
	size_t i;
	int k;

	for (k = 0; k < c; k++) {
		const float *d = dy + (size_t)k * hw;
		float *o = dx + (size_t)k * hw;
		float a = v[per_channel ? k : 0];

		switch (op) {
		case OPS_ADD:
		case OPS_SUB:
			if (o != d)
				memcpy(o, d, hw * sizeof *o);
			break;
		case OPS_MUL:
			for (i = 0; i < hw; i++)
				o[i] = d[i] * a;
			break;
		case OPS_DIV:
			for (i = 0; i < hw; i++)
				o[i] = d[i] / a;
			break;
		}
	}
}

void ops_bn_forward(int c, size_t hw, const float *x, const float *mean,
		    const float *inv_std, const float *gamma,
		    const float *beta, float *y)
{
	size_t i;
	int k;

	for (k = 0; k < c; k++) {
		const float *xs = x + (size_t)k * hw;
		float *ys = y + (size_t)k * hw;
		float m = mean[k], s = inv_std[k], g = gamma[k], b = beta[k];

		for (i = 0; i < hw; i++)
			ys[i] = (xs[i] - m) * s * g + b;
	}
}

void ops_bn_backward_input(int c, size_t hw, const float *dy,
			   const float *inv_std, const float *gamma,
			   float *dx)
{
	size_t i;
	int k;

	for (k = 0; k < c; k++) {
		const float *d = dy + (size_t)k * hw;
		float *o = dx + (size_t)k * hw;
		float s = inv_std[k] * gamma[k];

		for (i = 0; i < hw; i++)
			o[i] = d[i] * s;
	}
}

void ops_bn_backward_params(int c, size_t hw, const float *x,
			    const float *dy, const float *mean,
			    const float *inv_std, float *dgamma, float *dbeta)
{
	size_t i;
	int k;

	for (k = 0; k < c; k++) {
		const float *xs = x + (size_t)k * hw, *d = dy + (size_t)k * hw;
		double sg = 0.0, sb = 0.0;

		for (i = 0; i < hw; i++) {
			sg += (double)d[i] * ((xs[i] - mean[k]) * inv_std[k]);
			sb += d[i];
		}
		if (dgamma)
			dgamma[k] += (float)sg;
		if (dbeta)
			dbeta[k] += (float)sb;
	}
}

void ops_concat_forward(size_t hw, int c0, int pc, const float *part,
			float *y)
{
	memcpy(y + (size_t)c0 * hw, part, (size_t)pc * hw * sizeof *y);
}

void ops_concat_backward(size_t hw, int c0, int pc, const float *dy,
			 float *dpart)
{
	memcpy(dpart, dy + (size_t)c0 * hw, (size_t)pc * hw * sizeof *dpart);
}

static void fill(float *y, size_t n, float v)
{
	size_t i;

	for (i = 0; i < n; i++)
		y[i] = v;
}

void ops_pad_forward(const struct ops_pad *p, const float *x, float *y)
{
	int oh = p->h + p->top + p->bottom, ow = p->w + p->left + p->right;
	size_t oplane = (size_t)oh * ow;
	int c, i;

	fill(y, (size_t)p->cb * oplane, p->value);
	y += (size_t)p->cb * oplane;
	for (c = 0; c < p->c; c++) {
		fill(y, (size_t)p->top * ow, p->value);
		for (i = 0; i < p->h; i++) {
			float *row = y + (size_t)(p->top + i) * ow;

			fill(row, (size_t)p->left, p->value);
			memcpy(row + p->left, x + (size_t)i * p->w,
			       (size_t)p->w * sizeof *row);
			fill(row + p->left + p->w, (size_t)p->right, p->value);
		}
		fill(y + (size_t)(p->top + p->h) * ow, (size_t)p->bottom * ow,
		     p->value);
		x += (size_t)p->h * p->w;
		y += oplane;
	}
	fill(y, (size_t)p->ca * oplane, p->value);
}

void ops_pad_backward(const struct ops_pad *p, const float *dy, float *dx)
{
	int oh = p->h + p->top + p->bottom, ow = p->w + p->left + p->right;
	size_t oplane = (size_t)oh * ow;
	int c, i;

	dy += (size_t)p->cb * oplane;
	for (c = 0; c < p->c; c++) {
		for (i = 0; i < p->h; i++)
			memcpy(dx + (size_t)i * p->w,
			       dy + (size_t)(p->top + i) * ow + p->left,
			       (size_t)p->w * sizeof *dx);
		dx += (size_t)p->h * p->w;
		dy += oplane;
	}
}

void ops_slice_forward(const struct ops_slice *s, const float *x, float *y)
{
	int c, i, j;

	for (c = 0; c < s->oc; c++) {
		const float *xs = x + (size_t)(s->c0 + c) * s->h * s->w;

		for (i = 0; i < s->oh; i++) {
			const float *row = xs + (size_t)(s->h0 + i * s->sh) * s->w + s->w0;

			for (j = 0; j < s->ow; j++)
				*y++ = row[(size_t)j * s->sw];
		}
	}
}

void ops_slice_backward(const struct ops_slice *s, const float *dy,
			float *dx)
{
	int c, i, j;

	memset(dx, 0, (size_t)s->c * s->h * s->w * sizeof *dx);
	for (c = 0; c < s->oc; c++) {
		float *xs = dx + (size_t)(s->c0 + c) * s->h * s->w;

		for (i = 0; i < s->oh; i++) {
			float *row = xs + (size_t)(s->h0 + i * s->sh) * s->w + s->w0;

			for (j = 0; j < s->ow; j++)
				row[(size_t)j * s->sw] = *dy++;
		}
	}
}
