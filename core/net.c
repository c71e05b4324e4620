/* net.c - running a network (net.h): forward and backward over the node
 * graph, gradient norms, parameters, modes. Loading is net_load.c, saving
 * net_save.c; the struct is in net_impl.h.
 *
 * Backward walks the nodes in reverse. Each tensor's gradient is a buffer
 * from a fixed pool (n->gpool) taken when the first consumer (in reverse
 * order) hands a gradient down and given back once the node that produced
 * the tensor has used it. A second consumer of a tensor (a residual
 * branch) adds its share into that buffer. Unary elementwise nodes work in
 * place and pass their buffer down. The same schedule runs once at load
 * without arithmetic (dry) to size the pool, so a step allocates nothing.
 */
#include "net.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "act.h"
#include "clock.h"
#include "conv.h"
#include "dense.h"
#include "fieldsig.h"
#include "net_impl.h"
#include "ops.h"
#include "pool.h"
#include "rng.h"
#include "workers.h"

/* ---- gradient norms ---------------------------------------------------- */

/* Sum of squares of one block, in double: the reference, and the fallback
 * when the float sum below overflows. */
static double sumsq_exact(const float *x, size_t n)
{
	double s = 0.0;
	size_t i;

	for (i = 0; i < n; i++)
		s += (double)x[i] * x[i];
	return s;
}

/* A serial double sum waits on its own adds (a 4-cycle chain per element):
 * 0.3 ms for a 64x96x96 gradient, and every tensor has one. Blocks of
 * NET_SUMSQ_BLOCK are summed in float over 16 independent lanes, which GCC
 * vectorizes, and the block sums in double; relative error stays near
 * 1e-7 for blocks this short. A block that overflows float (|g| > 1e19, an
 * exploding gradient) is redone in double. */
#define NET_SUMSQ_BLOCK 1024

static double sumsq(const float *x, size_t n)
{
	double s = 0.0;
	size_t i, j, k;

	for (i = 0; i < n; i += NET_SUMSQ_BLOCK) {
		size_t m = n - i < NET_SUMSQ_BLOCK ? n - i : NET_SUMSQ_BLOCK;
		const float *b = x + i;
		float acc[16] = { 0 }, t = 0.0f;

		for (j = 0; j + 16 <= m; j += 16)
			for (k = 0; k < 16; k++)
				acc[k] += b[j + k] * b[j + k];
		for (; j < m; j++)
			t += b[j] * b[j];
		for (k = 0; k < 16; k++)
			t += acc[k];
		s += isfinite(t) ? (double)t : sumsq_exact(b, m);
	}
	return s;
}

/* Squared norms of one tensor: per image into row[(1 + b) * stride], over
 * the whole batch into row[0] (squares: net_grad_norms takes the roots). */
static void batch_sumsq(const float *g, size_t per_image, int batch,
			double *row, size_t stride)
{
	double total = 0.0;
	int b;

	for (b = 0; b < batch; b++) {
		double sq = sumsq(g + (size_t)b * per_image, per_image);

		row[(1 + (size_t)b) * stride] = sq;
		total += sq;
	}
	row[0] = total;
}

/* ---- forward ------------------------------------------------------------ */

enum status net_set_profile(struct net *n, int on)
{
	if (!on) {
		free(n->prof);
		n->prof = NULL;
		return ST_OK;
	}
	if (!n->prof)
		n->prof = calloc(3 * (size_t)n->info.n_layers, sizeof *n->prof);
	else
		memset(n->prof, 0, 3 * (size_t)n->info.n_layers * sizeof *n->prof);
	return n->prof ? ST_OK : ST_ERR_NOMEM;
}

const double *net_profile(const struct net *n)
{
	return n->prof;
}

/* pixels (RGB, [0,1]) -> what the first node expects */
static void preprocess(struct net *n, const float *x, int batch)
{
	const struct net_info *in = &n->info;
	size_t hw = (size_t)in->in_h * in->in_w, i;
	int b, c;

	for (b = 0; b < batch; b++)
		for (c = 0; c < 3; c++) {
			int src = in->bgr ? 2 - c : c;
			const float *xs = x + ((size_t)b * 3 + src) * hw;
			float *d = n->input + ((size_t)b * 3 + c) * hw;
			float s = in->scale / in->std[c], o = in->mean[c] / in->std[c];

			for (i = 0; i < hw; i++)
				d[i] = xs[i] * s - o;
		}
}

/* Inverted dropout: kept units are scaled by 1/(1-p) so that inference
 * needs no rescaling. */
static void dropout_forward(struct net *n, struct node *l, const float *x,
			    size_t count)
{
	float keep = 1.0f / (1.0f - l->drop_p);
	size_t i;

	for (i = 0; i < count; i++) {
		l->mask[i] = rng_uniform(&n->rng) < l->drop_p ? 0.0f : keep;
		l->out[i] = x[i] * l->mask[i];
	}
}

static void conv_node_forward(struct net *n, struct node *l, const float *x,
			      int batch)
{
	conv_run_forward(n->workers, &l->plan, &l->conv, l->groups, batch, x,
			 n->params + l->w_off, l->nb ? n->params + l->b_off : NULL,
			 l->fused_relu ? CONV_ACT_RELU : CONV_ACT_NONE, l->out,
			 n->work);
}

static void node_forward(struct net *n, struct node *l, int batch)
{
	const float *x = net_tensor(n, l->in[0]);
	size_t is = net_tensor_size(n, l->in[0]), os = node_size(l);
	size_t hw = (size_t)l->h * l->w, all = os * (size_t)batch;
	const float *w = n->params + l->w_off;
	const float *bias = l->nb ? n->params + l->b_off : NULL;
	int b, k, c0;

	switch (l->op) {
	case NET_CONV:
		conv_node_forward(n, l, x, batch);
		break;
	case NET_RELU:
		/* fused: the conv before it has applied it */
		if (!l->alias)
			act_relu_forward(x, l->out, all);
		break;
	case NET_LEAKY:
		act_leaky_forward(l->value, x, l->out, all);
		break;
	case NET_CLIP:
		act_clip_forward(l->lo, l->hi, x, l->out, all);
		break;
	case NET_SIGMOID:
		act_sigmoid_forward(x, l->out, all);
		break;
	case NET_TANH:
		act_tanh_forward(x, l->out, all);
		break;
	case NET_MAXPOOL: {
		const uint64_t *sig = net_tensor_sig(n, l->in[0]);
		size_t ihw = (size_t)l->pool.h * l->pool.w;

		for (b = 0; b < batch; b++)
			pool_max_forward(&l->pool, x + b * is, l->out + b * os,
					 l->argmax + b * os,
					 sig ? sig + b * ihw : NULL, n->tie_work);
		break;
	}
	case NET_AVGPOOL:
		for (b = 0; b < batch; b++)
			pool_avg_forward(&l->pool, x + b * is, l->out + b * os);
		break;
	case NET_GAP:
		for (b = 0; b < batch; b++)
			pool_global_forward(l->c, (int)(is / (size_t)l->c),
					    x + b * is, l->out + b * os);
		break;
	case NET_DENSE:
		dense_forward(n->workers, batch, (int)is, l->c, x, w, bias,
			      l->out);
		break;
	case NET_SOFTMAX:
		act_softmax_forward(batch, l->c, x, l->out);
		break;
	case NET_DROPOUT:
		if (n->training)
			dropout_forward(n, l, x, all);
		break;
	case NET_ADD:
		ops_add(x, net_tensor(n, l->in[1]), l->out, all);
		for (k = 2; k < l->n_in; k++)
			ops_accumulate(l->out, net_tensor(n, l->in[k]), all);
		break;
	case NET_CONST:
		for (b = 0; b < batch; b++)
			ops_arith_forward(l->arith, l->c, hw, x + b * is,
					  l->per_channel ? l->cvec : &l->value,
					  l->per_channel, l->out + b * os);
		break;
	case NET_BATCHNORM:
		for (b = 0; b < batch; b++)
			ops_bn_forward(l->c, hw, x + b * is, l->cvec,
				       l->cvec + l->c, w, bias, l->out + b * os);
		break;
	case NET_CONCAT:
		for (b = 0; b < batch; b++)
			for (k = 0, c0 = 0; k < l->n_in; k++) {
				int t = l->in[k];
				size_t ps = net_tensor_size(n, t);
				int pc = (int)(ps / hw);

				ops_concat_forward(hw, c0, pc,
						   net_tensor(n, t) + b * ps,
						   l->out + b * os);
				c0 += pc;
			}
		break;
	case NET_PAD:
		for (b = 0; b < batch; b++)
			ops_pad_forward(&l->pad, x + b * is, l->out + b * os);
		break;
	case NET_SLICE:
		for (b = 0; b < batch; b++)
			ops_slice_forward(&l->slice, x + b * is, l->out + b * os);
		break;
	case NET_FLATTEN:
	case NET_IDENTITY:
		break;
	}
}

/* The receptive-field signatures of node l's output (fieldsig.h), image
 * b, from its inputs' (all tracked: a node that keeps signatures reads
 * only such nodes). Nodes that keep their input's signatures (pointwise
 * and per-channel ones) share its maps and do nothing here. */
static void node_sigs_image(struct net *n, struct node *l, int b)
{
	size_t ohw = (size_t)l->h * l->w;
	uint64_t *out = l->sig_own + b * ohw;
	const uint64_t *in = net_tensor_sig(n, l->in[0]);
	size_t ihw = net_tensor_size(n, l->in[0]) /
		     (size_t)(l->in[0] < 0 ? n->info.in_c : n->nodes[l->in[0]].c);
	struct fieldsig_window wd;
	int k;

	in += b * ihw;
	switch (l->op) {
	case NET_CONV:
	case NET_MAXPOOL:
	case NET_AVGPOOL:
		wd = node_sig_window(l);
		fieldsig_window(&wd, in, out, n->sig_work);
		break;
	case NET_ADD:
	case NET_CONCAT:
		fieldsig_combine(in, net_tensor_sig(n, l->in[1]) + b * ohw, ohw, out);
		for (k = 2; k < l->n_in; k++)
			fieldsig_combine(out, net_tensor_sig(n, l->in[k]) + b * ohw,
					 ohw, out);
		break;
	case NET_PAD:
		fieldsig_pad(l->pad.h, l->pad.w, l->pad.top, l->pad.left,
			     l->pad.bottom, l->pad.right, l->pad.value, in, out);
		break;
	case NET_SLICE:
		fieldsig_slice(l->slice.w, l->slice.h0, l->slice.w0, l->slice.sh,
			       l->slice.sw, l->slice.oh, l->slice.ow, in, out);
		break;
	case NET_DROPOUT:
		/* in training a random mask per element: only its values
		 * tell which positions are equal */
		if (n->training)
			fieldsig_values(l->c, ohw, l->out + b * node_size(l), out);
		else
			memcpy(out, in, ohw * sizeof *out);
		break;
	default:
		break;
	}
}

static void node_sigs(struct net *n, struct node *l, int batch)
{
	int b;

	for (b = 0; l->sig_own && b < batch; b++)
		node_sigs_image(n, l, b);
}

/* Signatures of tensor t as the values it holds (the input image, or the
 * cut a forward range starts from). */
static void tensor_value_sigs(struct net *n, int t, int batch)
{
	uint64_t *sig = (uint64_t *)net_tensor_sig(n, t);
	size_t size = net_tensor_size(n, t);
	int c = t < 0 ? n->info.in_c : n->nodes[t].c, b;

	for (b = 0; sig && b < batch; b++)
		fieldsig_values(c, size / (size_t)c, net_tensor(n, t) + b * size,
				sig + b * (size / (size_t)c));
}

const float *net_forward_range(struct net *n, const float *x, int batch,
			       int first, int last)
{
	int i;

	if (batch > n->info.max_batch)
		batch = n->info.max_batch;
	n->batch = batch;
	if (first == 0)
		preprocess(n, x, batch);
	else
		memcpy(n->nodes[first - 1].out, x, sizeof(float) * (size_t)batch *
		       node_size(&n->nodes[first - 1]));
	if (first <= n->sig_last)
		tensor_value_sigs(n, first - 1, batch);
	for (i = first; i <= last; i++) {
		double t0 = n->prof ? clock_ms() : 0.0;

		node_forward(n, &n->nodes[i], batch);
		if (i <= n->sig_last)
			node_sigs(n, &n->nodes[i], batch);
		if (n->prof)
			n->prof[i] += clock_ms() - t0;
	}
	return n->nodes[last].out;
}

const float *net_forward(struct net *n, const float *x, int batch)
{
	return net_forward_range(n, x, batch, 0, n->info.n_layers - 1);
}

const float *net_node_output(const struct net *n, int i)
{
	if (i < 0 || i >= n->info.n_layers || !net_keeps_output(&n->nodes[i]))
		return NULL;
	return n->nodes[i].out;
}

const int32_t *net_pool_argmax(const struct net *n, int i)
{
	if (i < 0 || i >= n->info.n_layers)
		return NULL;
	return n->nodes[i].argmax;
}

size_t net_cut_size(const struct net *n, int cut)
{
	int i, k;

	if (cut < 1 || cut >= n->info.n_layers)
		return 0;
	for (i = cut; i < n->info.n_layers; i++)
		for (k = 0; k < n->nodes[i].n_in; k++)
			if (n->nodes[i].in[k] < cut - 1)
				return 0;
	return node_size(&n->nodes[cut - 1]);
}

/* ---- backward ------------------------------------------------------------ */

/* The gradient pool. In a dry run only the count moves: `peak` is what
 * the schedule needs at most. */
struct gpool {
	struct net *n;
	int dry;
	int used, peak, top;
};

static float *g_take(struct gpool *p)
{
	if (++p->used > p->peak)
		p->peak = p->used;
	if (p->dry)
		return (float *)p;	/* any non-NULL marker */
	return p->n->gfree[--p->top];
}

static void g_give(struct gpool *p, float *buf)
{
	p->used--;
	if (!p->dry)
		p->n->gfree[p->top++] = buf;
}

/* Tensor t wants a gradient: the pixels only when asked; a node's output
 * when asked, or when t >= first_trainable. Below that nothing needs it:
 * every node upstream of t has a smaller index, so none of them trains. */
static int wants_grad(const struct net *n, int t, int want_dx)
{
	return t < 0 ? want_dx : want_dx || t >= n->first_trainable;
}

/* Unary nodes whose input gradient can be computed in place in dy. */
static int in_place(const struct node *l)
{
	switch (l->op) {
	case NET_RELU: case NET_LEAKY: case NET_CLIP: case NET_SIGMOID:
	case NET_TANH: case NET_DROPOUT: case NET_FLATTEN: case NET_IDENTITY:
	case NET_CONST: case NET_BATCHNORM:
		return 1;
	default:
		return 0;
	}
}

/* In-place input gradient of a unary node: dy becomes dx. */
static void unary_backward(struct net *n, struct node *l, float *dy)
{
	size_t os = node_size(l), all = os * (size_t)n->batch;
	size_t hw = (size_t)l->h * l->w, k;
	int b;

	switch (l->op) {
	case NET_RELU:
		act_relu_backward(l->out, dy, dy, all);
		break;
	case NET_LEAKY:
		act_leaky_backward(l->value, l->out, dy, dy, all);
		break;
	case NET_CLIP:
		act_clip_backward(l->lo, l->hi, l->out, dy, dy, all);
		break;
	case NET_SIGMOID:
		act_sigmoid_backward(l->out, dy, dy, all);
		break;
	case NET_TANH:
		act_tanh_backward(l->out, dy, dy, all);
		break;
	case NET_DROPOUT:
		if (n->training)
			for (k = 0; k < all; k++)
				dy[k] *= l->mask[k];
		break;
	case NET_CONST:
		for (b = 0; b < n->batch; b++)
			ops_arith_backward(l->arith, l->c, hw, dy + b * os,
					   l->per_channel ? l->cvec : &l->value,
					   l->per_channel, dy + b * os);
		break;
	case NET_BATCHNORM:
		for (b = 0; b < n->batch; b++)
			ops_bn_backward_input(l->c, hw, dy + b * os,
					      l->cvec + l->c,
					      n->params + l->w_off, dy + b * os);
		break;
	default:
		break;
	}
}

/* Parameter gradients of node i from dy, before anything changes dy. */
static void params_backward(struct net *n, struct node *l, const float *dy)
{
	const float *x = net_tensor(n, l->in[0]);
	size_t is = net_tensor_size(n, l->in[0]), os = node_size(l);
	float *dw = n->grads + l->w_off;
	float *db = l->nb ? n->grads + l->b_off : NULL;
	int b;

	switch (l->op) {
	case NET_CONV:
		conv_run_backward_params(n->workers, &l->conv, l->groups, n->batch,
					 x, dy, dw, db, n->work);
		break;
	case NET_DENSE:
		dense_backward_params(n->workers, n->batch, (int)is, l->c, x,
				      dy, dw, db);
		break;
	case NET_BATCHNORM:
		for (b = 0; b < n->batch; b++)
			ops_bn_backward_params(l->c, (size_t)l->h * l->w,
					       x + b * is, dy + b * os, l->cvec,
					       l->cvec + l->c, dw, db);
		break;
	default:
		break;
	}
}

/* Gradient w.r.t. input slot k of node l into dst (overwritten). */
static void slot_backward(struct net *n, struct node *l, int k,
			  const float *dy, float *dst)
{
	int t = l->in[k], b, j, c0;
	size_t is = net_tensor_size(n, t), os = node_size(l);
	size_t hw = (size_t)l->h * l->w;
	const float *w = n->params + l->w_off;

	switch (l->op) {
	case NET_CONV:
		conv_run_backward_input(n->workers, &l->plan, &l->conv, l->groups,
					n->batch, dy, w, dst, n->work);
		break;
	case NET_DENSE:
		dense_backward_input(n->workers, n->batch, (int)is, l->c, dy, w,
				     dst, n->work);
		break;
	case NET_MAXPOOL:
		for (b = 0; b < n->batch; b++)
			pool_max_backward(&l->pool, dy + b * os,
					  l->argmax + b * os, dst + b * is);
		break;
	case NET_AVGPOOL:
		for (b = 0; b < n->batch; b++)
			pool_avg_backward(&l->pool, dy + b * os, dst + b * is);
		break;
	case NET_GAP:
		for (b = 0; b < n->batch; b++)
			pool_global_backward(l->c, (int)(is / (size_t)l->c),
					     dy + b * os, dst + b * is);
		break;
	case NET_SOFTMAX:
		act_softmax_backward(n->batch, l->c, l->out, dy, dst);
		break;
	case NET_ADD:
		memcpy(dst, dy, sizeof(float) * os * (size_t)n->batch);
		break;
	case NET_CONCAT:
		for (j = 0, c0 = 0; j < k; j++)
			c0 += (int)(net_tensor_size(n, l->in[j]) / hw);
		for (b = 0; b < n->batch; b++)
			ops_concat_backward(hw, c0, (int)(is / hw), dy + b * os,
					    dst + b * is);
		break;
	case NET_PAD:
		for (b = 0; b < n->batch; b++)
			ops_pad_backward(&l->pad, dy + b * os, dst + b * is);
		break;
	case NET_SLICE:
		for (b = 0; b < n->batch; b++)
			ops_slice_backward(&l->slice, dy + b * os, dst + b * is);
		break;
	default:
		break;
	}
}

/* Hand dy of node l down to its inputs. Returns 1 when dy's buffer now
 * belongs to an input (so the caller must not give it back). */
static int node_backward(struct gpool *p, struct node *l, float *dy,
			 int want_dx)
{
	struct net *n = p->n;
	float **g = n->g + 1;	/* g[t] for t >= NET_INPUT */
	size_t all;
	int k, kept = 0;

	if (in_place(l)) {
		int t = l->in[0];

		if (!wants_grad(n, t, want_dx))
			return 0;
		if (!p->dry)
			unary_backward(n, l, dy);
		if (!g[t])
			return g[t] = dy, 1;
		if (!p->dry)
			ops_accumulate(g[t], dy,
				       net_tensor_size(n, t) * (size_t)n->batch);
		return 0;
	}
	for (k = 0; k < l->n_in; k++) {
		int t = l->in[k];
		float *s;

		if (!wants_grad(n, t, want_dx))
			continue;
		all = net_tensor_size(n, t) * (size_t)n->batch;
		/* an add passes dy on as it is: the last slot can take it */
		if (l->op == NET_ADD && !g[t] && !kept && k == l->n_in - 1) {
			g[t] = dy;
			kept = 1;
			continue;
		}
		if (!g[t]) {
			g[t] = g_take(p);
			if (!p->dry)
				slot_backward(n, l, k, dy, g[t]);
			continue;
		}
		if (l->op == NET_ADD) {
			if (!p->dry)
				ops_accumulate(g[t], dy, all);
			continue;
		}
		s = g_take(p);
		if (!p->dry) {
			slot_backward(n, l, k, dy, s);
			ops_accumulate(g[t], s, all);
		}
		g_give(p, s);
	}
	return kept;
}

/* d pixel = d input * scale / std (channels reordered back for BGR), and
 * the pixel gradient's norms. */
static void to_pixels(struct net *n, const float *g, float *dx)
{
	const struct net_info *in = &n->info;
	size_t hw = (size_t)in->in_h * in->in_w, k;
	int b, c;

	for (b = 0; b < n->batch; b++)
		for (c = 0; c < 3; c++) {
			int dst = in->bgr ? 2 - c : c;
			const float *gs = g + ((size_t)b * 3 + c) * hw;
			float *d = dx + ((size_t)b * 3 + dst) * hw;
			float s = in->scale / in->std[c];

			for (k = 0; k < hw; k++)
				d[k] = gs[k] * s;
		}
	batch_sumsq(dx, 3 * hw, n->batch, n->pixel_norm, 1);
	for (b = 0; b <= n->batch; b++)
		n->pixel_norm[b] = sqrt(n->pixel_norm[b]);
}

/* The backward schedule, with arithmetic (dry == 0) or without (counting
 * the gradient buffers it needs). dx: the pixel gradient, or NULL. */
static int backward_run(struct net *n, const float *dout, int want_dx,
			float *dx, int dry)
{
	struct gpool p = { .n = n, .dry = dry, .top = n->n_gpool };
	int nl = n->info.n_layers, i, batch = n->batch;
	size_t stride = (size_t)nl + 1;
	float **g = n->g + 1;

	for (i = -1; i < nl; i++)
		g[i] = NULL;
	g[nl - 1] = g_take(&p);
	if (!dry)
		memcpy(g[nl - 1], dout,
		       sizeof(float) * node_size(&n->nodes[nl - 1]) * (size_t)batch);
	for (i = nl - 1; i >= 0; i--) {
		struct node *l = &n->nodes[i];
		float *dy = g[i];
		double t0 = 0.0, t1 = 0.0;

		if (!dy)
			continue;	/* nothing below wants a gradient */
		if (!dry) {
			t0 = n->prof ? clock_ms() : 0.0;
			batch_sumsq(dy, node_size(l), batch, n->tnorms + i + 1,
				    stride);
			t1 = n->prof ? clock_ms() : 0.0;
			if (n->grads && i >= n->first_trainable && l->nw)
				params_backward(n, l, dy);
		}
		if (!node_backward(&p, l, dy, want_dx))
			g_give(&p, dy);
		g[i] = NULL;
		if (!dry && n->prof) {
			double t2 = clock_ms();

			n->prof[nl + i] += t2 - t1;
			n->prof[2 * nl + i] += t1 - t0;
		}
	}
	if (g[NET_INPUT]) {
		if (!dry) {
			batch_sumsq(g[NET_INPUT], net_tensor_size(n, NET_INPUT),
				    batch, n->tnorms, stride);
			if (dx)
				to_pixels(n, g[NET_INPUT], dx);
		}
		g_give(&p, g[NET_INPUT]);
		g[NET_INPUT] = NULL;
	}
	return p.peak;
}

int net_backward_plan(const struct net *n)
{
	struct net *m = (struct net *)n;	/* a dry run writes only g[] */
	int saved = m->first_trainable, a, b;

	/* the most gradients: everything trainable and the pixels wanted */
	m->first_trainable = 0;
	a = backward_run(m, NULL, 1, NULL, 1);
	b = backward_run(m, NULL, 0, NULL, 1);
	m->first_trainable = saved;
	return a > b ? a : b;
}

/* Norm at each node's input from the tensor norms (squares): the root of
 * the sum over its distinct input tensors. */
static void node_norms(struct net *n)
{
	int nl = n->info.n_layers, i, k, j, r;
	size_t stride = (size_t)nl + 1;

	for (r = 0; r <= n->batch; r++) {
		const double *t = n->tnorms + (size_t)r * stride + 1;
		double *o = n->norms + (size_t)r * stride;

		for (i = 0; i < nl; i++) {
			const struct node *l = &n->nodes[i];
			double s = 0.0;

			for (k = 0; k < l->n_in; k++) {
				for (j = 0; j < k && l->in[j] != l->in[k]; j++)
					;
				if (j == k)
					s += t[l->in[k]];
			}
			o[i] = sqrt(s);
		}
		o[nl] = sqrt(t[nl - 1]);
	}
}

void net_backward(struct net *n, const float *dout, float *dx)
{
	const struct net_info *in = &n->info;

	memset(n->tnorms, 0, sizeof(double) * ((size_t)in->n_layers + 1) *
	       ((size_t)in->max_batch + 1));
	backward_run(n, dout, dx != NULL, dx, 0);
	node_norms(n);
}

const double *net_grad_norms(const struct net *n)
{
	return n->norms;
}

double net_pixel_grad_norm(const struct net *n)
{
	return n->pixel_norm[0];
}

const double *net_grad_norms_image(const struct net *n, int b)
{
	return n->norms + (1 + (size_t)b) * ((size_t)n->info.n_layers + 1);
}

double net_pixel_grad_norm_image(const struct net *n, int b)
{
	return n->pixel_norm[1 + b];
}

/* ---- parameters and modes -------------------------------------------------- */

float *net_params(struct net *n, size_t *count)
{
	if (count)
		*count = n->info.n_params;
	return n->params;
}

float *net_param_grads(struct net *n, size_t *count)
{
	if (count)
		*count = n->grads ? n->info.n_params : 0;
	return n->grads;
}

void net_zero_grads(struct net *n)
{
	if (n->grads)
		memset(n->grads, 0, sizeof(float) * n->info.n_params);
}

void net_layer_params(struct net *n, int i, struct net_param_view *v)
{
	struct node *l = &n->nodes[i];

	memset(v, 0, sizeof *v);
	if (!l->nw)
		return;
	v->w = n->params + l->w_off;
	v->nw = l->nw;
	v->b = l->nb ? n->params + l->b_off : NULL;
	v->nb = l->nb;
	if (n->grads) {
		v->dw = n->grads + l->w_off;
		v->db = l->nb ? n->grads + l->b_off : NULL;
	}
}

void net_set_trainable_from(struct net *n, int first)
{
	n->first_trainable = first < 0 ? 0 : first;
}

void net_set_training(struct net *n, int on, unsigned long long seed)
{
	n->training = on && n->grads;
	rng_seed(&n->rng, seed);
	net_link_aliases(n);
}

const struct net_info *net_get_info(const struct net *n)
{
	return &n->info;
}

void net_layer(const struct net *n, int i, struct net_layer_info *li)
{
	const struct node *l = &n->nodes[i];

	li->op = l->op;
	li->kind = l->kind;
	li->name = l->name;
	li->id = l->id;
	li->c = l->c;
	li->h = l->h;
	li->w = l->w;
	li->flat = l->flat;
	li->params = l->nw + l->nb;
	li->folded_bn = l->folded_bn;
	li->fused_relu = l->fused_relu || (l->op == NET_RELU && l->alias);
	li->n_inputs = l->n_in;
	li->inputs = l->in;
	li->chain = l->chain;
	li->out_norm = l->out_norm;
}

const char *net_tensor_id(const struct net *n, int t)
{
	return t < 0 ? "input" : n->nodes[t].id;
}

/* Floats of workspace the nodes' kernels need: conv plans, and the dense
 * layers' sparse backward. */
static size_t net_work_size(const struct net *n)
{
	size_t work = 0, w;
	int i;

	for (i = 0; i < n->info.n_layers; i++) {
		const struct node *l = &n->nodes[i];

		w = l->op == NET_CONV ? conv_plan_work_size(&l->plan, &l->conv,
							    n->workers,
							    n->info.max_batch) :
		    l->op == NET_DENSE ?
		    dense_work_size((int)net_tensor_size(n, l->in[0])) : 0;
		if (w > work)
			work = w;
	}
	return work;
}

enum status net_set_conv_mode(struct net *n, enum net_conv_mode mode,
			      char *err)
{
	size_t work;
	int i;

	for (i = 0; i < n->info.n_layers; i++) {
		struct node *l = &n->nodes[i];
		enum conv_algo algo;

		if (l->op != NET_CONV)
			continue;
		algo = mode == NET_CONV_WINOGRAD ? CONV_ALGO_WINOGRAD :
		       mode == NET_CONV_AUTO ?
		       conv_algo_preferred(&l->conv, l->groups, n->info.max_batch) :
		       CONV_ALGO_IM2COL;
		/* an unsupported algorithm leaves the layer on im2col */
		if (conv_plan_set(&l->plan, &l->conv, l->groups, algo,
				  n->params + l->w_off))
			return status_set(err, ST_ERR_NOMEM,
					  "out of memory for Winograd weights");
	}
	work = net_work_size(n);
	if (work > n->work_size) {
		float *w = malloc(sizeof(float) * work);

		if (!w)
			return status_set(err, ST_ERR_NOMEM,
					  "out of memory for the convolutions' workspace");
		free(n->work);
		n->work = w;
		n->work_size = work;
	}
	return ST_OK;
}

int net_winograd_layers(const struct net *n)
{
	int i, k = 0;

	for (i = 0; i < n->info.n_layers; i++)
		k += n->nodes[i].op == NET_CONV &&
		     n->nodes[i].plan.algo == CONV_ALGO_WINOGRAD;
	return k;
}
