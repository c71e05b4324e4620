/* net.c - a sequential network built from a model file (see net.h).
 *
 * Layout: one parameter block (and, on request, one gradient block) holds
 * every weight; each layer points into it. act[i] is the input of layer i
 * (act[0] is the preprocessed image, act[n] the output); flatten and dropout
 * alias their input because they do not change the numbers, and so does a
 * ReLU right after a conv, which the conv applies as it writes its output
 * (see fuse_relus). Backward runs through two ping-pong gradient buffers
 * sized for the largest boundary.
 */
#include "net.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act.h"
#include "blas.h"
#include "clock.h"
#include "conv.h"
#include "dense.h"
#include "pool.h"
#include "rng.h"
#include "winograd.h"
#include "workers.h"

#define NET_MAX_CLASSES 4096

struct layer {
	enum net_op op;
	char name[128];		/* parameter prefix, "" when none */
	char kind[48];		/* for the layer table */
	int in_c, in_h, in_w;	/* input of one image */
	int out_c, out_h, out_w; /* output of one image (h = w = 1 when flat) */
	int in_flat, out_flat;	/* the tensor is a vector (after flatten) */
	struct conv_shape conv;	/* NET_CONV */
	struct pool_shape pool;	/* NET_MAXPOOL, NET_AVGPOOL */
	size_t w_off, b_off;	/* offsets into the parameter block */
	size_t nw, nb;		/* counts; nb == 0 when there is no bias */
	int folded_bn;		/* a batch norm was folded into w/b */
	int alias;		/* output aliases the input (flatten, dropout,
				   a fused ReLU) */
	int fused_relu;		/* NET_CONV: applies the next layer's ReLU */
	float *out;		/* max_batch outputs, or the input when alias */
	int32_t *argmax;	/* NET_MAXPOOL: max_batch * output size */
	float drop_p;		/* NET_DROPOUT: probability of dropping */
	float *own;		/* NET_DROPOUT in training: its own output */
	float *mask;		/* NET_DROPOUT in training: 0 or 1/(1-p) */
	float *wt;		/* NET_CONV: Winograd-transformed weights, or NULL */
};

struct net {
	struct net_info info;
	char **classes;		/* n_classes strings */
	char *source;
	struct layer *layers;	/* info.n_layers */
	float *params, *grads;	/* one block each; grads may be NULL */
	float *input;		/* act[0]: max_batch preprocessed images */
	float *gbuf[2];		/* gradient ping-pong buffers */
	float *col;		/* conv workspace */
	float *wwork;		/* Winograd workspace */
	struct workers *workers; /* the kernels' threads (blas threads at creation) */
	double *norms;		/* (1 + max_batch) rows of n_layers + 1: the
				   whole batch, then each image */
	double *pixel_norm;	/* 1 + max_batch: the same for the pixels */
	int batch;		/* batch of the last forward */
	int first_trainable;	/* layers below get no parameter gradients */
	int training;		/* dropout active */
	struct rng rng;		/* dropout masks */
	double *prof;		/* NULL, or 3 x n_layers ms: forward, backward, norm */
};

/* ---- small helpers ------------------------------------------------------ */

static size_t layer_out_size(const struct layer *l)
{
	return (size_t)l->out_c * l->out_h * l->out_w;
}

static size_t layer_in_size(const struct layer *l)
{
	return (size_t)l->in_c * l->in_h * l->in_w;
}

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
 * 0.3 ms for a 64x96x96 gradient, and every layer boundary has one. Blocks
 * of NET_SUMSQ_BLOCK are summed in float over 16 independent lanes, which
 * GCC vectorizes, and the block sums in double; relative error stays near
 * 1e-7 for blocks this short. A block that overflows float (|g| > 1e19,
 * an exploding gradient) is redone in double. */
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

/* Norms of one boundary: per image into row[1 + b * stride] and over the
 * whole batch into row[0]. */
static void batch_norms(const float *g, size_t per_image, int batch,
			double *row, size_t stride)
{
	double total = 0.0;
	int b;

	for (b = 0; b < batch; b++) {
		double sq = sumsq(g + (size_t)b * per_image, per_image);

		row[(1 + (size_t)b) * stride] = sqrt(sq);
		total += sq;
	}
	row[0] = sqrt(total);
}

/* Parse a metadata value that is itself JSON. */
static json_t *meta_json(const struct modelfile *mf, const char *key,
			 int required, char *err)
{
	const char *s = modelfile_meta(mf, key);
	json_error_t je;
	json_t *j;

	if (!s) {
		if (required)
			status_set(err, ST_ERR_FORMAT,
				   "%s: metadata '%s' missing (not an advex model file? see advex-import)",
				   modelfile_path(mf), key);
		return NULL;
	}
	j = json_loads(s, JSON_DECODE_ANY, &je);
	if (!j)
		status_set(err, ST_ERR_FORMAT, "%s: metadata '%s' is not JSON: %s",
			   modelfile_path(mf), key, je.text);
	return j;
}

static int json_int_pair(json_t *o, const char *key, int def, int *a, int *b)
{
	json_t *v = json_object_get(o, key);

	if (!v) {
		*a = *b = def;
		return 0;
	}
	if (json_is_integer(v)) {
		*a = *b = (int)json_integer_value(v);
		return 0;
	}
	if (json_is_array(v) && json_array_size(v) == 2 &&
	    json_is_integer(json_array_get(v, 0)) &&
	    json_is_integer(json_array_get(v, 1))) {
		*a = (int)json_integer_value(json_array_get(v, 0));
		*b = (int)json_integer_value(json_array_get(v, 1));
		return 0;
	}
	return -1;
}

/* The "op" of a layer spec, "" when absent. */
static const char *spec_op(json_t *spec)
{
	const char *op = json_string_value(json_object_get(spec, "op"));

	return op ? op : "";
}

static int json_bool(json_t *o, const char *key, int def)
{
	json_t *v = json_object_get(o, key);

	return v ? json_is_true(v) : def;
}

/* ---- loading ------------------------------------------------------------- */

struct loader {
	const struct modelfile *mf;
	struct net *n;
	char *used;		/* one flag per tensor: named by the arch */
	char *err;
	int idx;		/* layer being read, for messages */
};

/* Find NAME.suffix with exactly the given shape; mark it used. */
static const struct mf_tensor *need_tensor(struct loader *ld, const char *name,
					   const char *suffix, int ndim,
					   const int64_t *shape)
{
	char full[192], want[128] = "", got[128] = "";
	const struct mf_tensor *t;
	int i, same;

	snprintf(full, sizeof full, "%s.%s", name, suffix);
	t = modelfile_find(ld->mf, full);
	if (!t) {
		status_set(ld->err, ST_ERR_FORMAT,
			   "%s: tensor '%s' missing (layer %d needs it)",
			   modelfile_path(ld->mf), full, ld->idx);
		return NULL;
	}
	same = t->ndim == ndim;
	for (i = 0; same && i < ndim; i++)
		same = t->shape[i] == shape[i];
	if (!same) {
		for (i = 0; i < ndim; i++)
			snprintf(want + strlen(want), sizeof want - strlen(want),
				 "%s%lld", i ? "," : "", (long long)shape[i]);
		for (i = 0; i < t->ndim; i++)
			snprintf(got + strlen(got), sizeof got - strlen(got),
				 "%s%lld", i ? "," : "", (long long)t->shape[i]);
		status_set(ld->err, ST_ERR_SHAPE,
			   "%s: tensor '%s' has shape [%s] but layer %d needs [%s]",
			   modelfile_path(ld->mf), full, got, ld->idx, want);
		return NULL;
	}
	for (i = 0; i < modelfile_count(ld->mf); i++)
		if (modelfile_tensor(ld->mf, i) == t)
			ld->used[i] = 1;
	return t;
}

/* Shapes and parameter counts of one layer (first pass, no data yet). */
static int layer_plan(struct loader *ld, json_t *spec, struct layer *l,
		      size_t *nparams)
{
	const char *path = modelfile_path(ld->mf);
	const char *op = json_string_value(json_object_get(spec, "op"));
	const char *name = json_string_value(json_object_get(spec, "name"));
	int a, b;

	if (!op)
		return status_set(ld->err, ST_ERR_FORMAT,
				  "%s: advex.arch layer %d has no \"op\"", path, ld->idx), -1;
	snprintf(l->name, sizeof l->name, "%s", name ? name : "");
	l->out_flat = l->in_flat;
	l->out_c = l->in_c;
	l->out_h = l->in_h;
	l->out_w = l->in_w;
	if (!strcmp(op, "conv2d")) {
		struct conv_shape *s = &l->conv;
		json_t *o = json_object_get(spec, "out");

		l->op = NET_CONV;
		s->c = l->in_c;
		s->h = l->in_h;
		s->w = l->in_w;
		s->k = json_is_integer(o) ? (int)json_integer_value(o) : 0;
		if (!name || l->in_flat ||
		    json_int_pair(spec, "kernel", 0, &s->kh, &s->kw) ||
		    json_int_pair(spec, "stride", 1, &s->sh, &s->sw) ||
		    json_int_pair(spec, "padding", 0, &s->ph, &s->pw) ||
		    conv_shape_init(s))
			goto bad;
		l->out_c = s->k;
		l->out_h = s->oh;
		l->out_w = s->ow;
		l->nw = (size_t)s->k * s->c * s->kh * s->kw;
		l->nb = json_bool(spec, "bias", 1) ? (size_t)s->k : 0;
		snprintf(l->kind, sizeof l->kind, "conv2d %dx%d/%d p%d", s->kh,
			 s->kw, s->sh, s->ph);
	} else if (!strcmp(op, "relu")) {
		l->op = NET_RELU;
		snprintf(l->kind, sizeof l->kind, "relu");
	} else if (!strcmp(op, "maxpool") || !strcmp(op, "avgpool")) {
		struct pool_shape *s = &l->pool;

		l->op = op[0] == 'm' ? NET_MAXPOOL : NET_AVGPOOL;
		s->c = l->in_c;
		s->h = l->in_h;
		s->w = l->in_w;
		s->ceil_mode = json_bool(spec, "ceil_mode", 0);
		s->count_include_pad = json_bool(spec, "count_include_pad", 1);
		if (l->in_flat ||
		    json_int_pair(spec, "kernel", 0, &s->kh, &s->kw) ||
		    json_int_pair(spec, "stride", 0, &a, &b) ||
		    json_int_pair(spec, "padding", 0, &s->ph, &s->pw))
			goto bad;
		/* PyTorch: the stride defaults to the kernel */
		s->sh = a ? a : s->kh;
		s->sw = b ? b : s->kw;
		if (pool_shape_init(s))
			goto bad;
		l->out_h = s->oh;
		l->out_w = s->ow;
		snprintf(l->kind, sizeof l->kind, "%s %dx%d/%d", op, s->kh, s->kw,
			 s->sh);
	} else if (!strcmp(op, "gap")) {
		l->op = NET_GAP;
		if (l->in_flat)
			goto bad;
		l->out_h = l->out_w = 1;
		snprintf(l->kind, sizeof l->kind, "global avgpool");
	} else if (!strcmp(op, "flatten")) {
		l->op = NET_FLATTEN;
		l->alias = 1;
		l->out_c = l->in_c * l->in_h * l->in_w;
		l->out_h = l->out_w = 1;
		l->out_flat = 1;
		snprintf(l->kind, sizeof l->kind, "flatten");
	} else if (!strcmp(op, "dense")) {
		json_t *o = json_object_get(spec, "out");

		l->op = NET_DENSE;
		if (!name || !l->in_flat || !json_is_integer(o) ||
		    json_integer_value(o) < 1)
			goto bad;
		l->out_c = (int)json_integer_value(o);
		l->nw = (size_t)l->out_c * l->in_c;
		l->nb = json_bool(spec, "bias", 1) ? (size_t)l->out_c : 0;
		snprintf(l->kind, sizeof l->kind, "dense");
	} else if (!strcmp(op, "dropout")) {
		json_t *pv = json_object_get(spec, "p");

		l->op = NET_DROPOUT;
		l->alias = 1;
		l->drop_p = json_is_number(pv) ? (float)json_number_value(pv) : 0.5f;
		if (l->drop_p < 0.0f || l->drop_p >= 1.0f)
			goto bad;
		snprintf(l->kind, sizeof l->kind, "dropout");
	} else if (!strcmp(op, "softmax")) {
		l->op = NET_SOFTMAX;
		if (!l->in_flat)
			goto bad;
		snprintf(l->kind, sizeof l->kind, "softmax");
	} else {
		return status_set(ld->err, ST_ERR_UNSUPPORTED,
				  "%s: advex.arch layer %d: unknown op '%s'", path,
				  ld->idx, op), -1;
	}
	*nparams += l->nw + l->nb;
	return 0;
bad:
	return status_set(ld->err, ST_ERR_FORMAT,
			  "%s: advex.arch layer %d (%s%s%s): missing or invalid fields for input %dx%dx%d",
			  path, ld->idx, op, name ? " " : "", name ? name : "",
			  l->in_c, l->in_h, l->in_w), -1;
}

/* Fold an inference batch norm into the preceding conv or dense:
 * w' = w * g/sqrt(v+eps) per output, b' = (b - m) * g/sqrt(v+eps) + beta. */
static int fold_bn(struct loader *ld, json_t *spec, struct layer *prev)
{
	const char *name = json_string_value(json_object_get(spec, "name"));
	json_t *e = json_object_get(spec, "eps");
	double eps = json_is_number(e) ? json_number_value(e) : 1e-5;
	int64_t shape[1] = { prev->out_c };
	const struct mf_tensor *t[4];
	static const char *const part[4] = { "weight", "bias", "running_mean",
					     "running_var" };
	float *w, *b, *v[4];
	size_t per, k, j;
	int i, ok = 1;

	if (!name)
		return status_set(ld->err, ST_ERR_FORMAT,
				  "%s: advex.arch layer %d (batchnorm) has no name",
				  modelfile_path(ld->mf), ld->idx), -1;
	for (i = 0; i < 4; i++)
		if (!(t[i] = need_tensor(ld, name, part[i], 1, shape)))
			return -1;
	for (i = 0; i < 4; i++) {
		v[i] = malloc(sizeof(float) * (size_t)prev->out_c);
		ok = ok && v[i];
	}
	if (!ok) {
		for (i = 0; i < 4; i++)
			free(v[i]);
		return status_set(ld->err, ST_ERR_NOMEM, "%s: out of memory",
				  modelfile_path(ld->mf)), -1;
	}
	for (i = 0; i < 4; i++)
		modelfile_read_f32(t[i], v[i]);
	w = ld->n->params + prev->w_off;
	b = ld->n->params + prev->b_off;
	per = prev->nw / (size_t)prev->out_c;
	for (k = 0; k < (size_t)prev->out_c; k++) {
		double s = v[0][k] / sqrt((double)v[3][k] + eps);
		double bias = prev->nb ? b[k] : 0.0;

		for (j = 0; j < per; j++)
			w[k * per + j] = (float)(w[k * per + j] * s);
		b[k] = (float)((bias - v[2][k]) * s + v[1][k]);
	}
	prev->nb = (size_t)prev->out_c;
	prev->folded_bn = 1;
	for (i = 0; i < 4; i++)
		free(v[i]);
	return 0;
}

static int read_preprocessing(struct loader *ld)
{
	struct net_info *in = &ld->n->info;
	const char *path = modelfile_path(ld->mf);
	const char *s;
	json_t *j, *m, *sd;
	int i, ok;

	j = meta_json(ld->mf, "advex.input", 1, ld->err);
	if (!j)
		return -1;
	ok = json_is_array(j) && json_array_size(j) == 3;
	for (i = 0; ok && i < 3; i++)
		ok = json_is_integer(json_array_get(j, (size_t)i)) &&
		     json_integer_value(json_array_get(j, (size_t)i)) >= 1 &&
		     json_integer_value(json_array_get(j, (size_t)i)) <= 4096;
	if (ok) {
		in->in_c = (int)json_integer_value(json_array_get(j, 0));
		in->in_h = (int)json_integer_value(json_array_get(j, 1));
		in->in_w = (int)json_integer_value(json_array_get(j, 2));
	}
	json_decref(j);
	if (!ok || in->in_c != 3)
		return status_set(ld->err, ST_ERR_FORMAT,
				  "%s: metadata 'advex.input' must be [3, H, W]", path), -1;
	s = modelfile_meta(ld->mf, "advex.scale");
	in->scale = s ? strtof(s, NULL) : 1.0f;
	m = meta_json(ld->mf, "advex.mean", 0, ld->err);
	sd = meta_json(ld->mf, "advex.std", 0, ld->err);
	ok = 1;
	for (i = 0; i < 3; i++) {
		json_t *mv = m ? json_array_get(m, (size_t)i) : NULL;
		json_t *sv = sd ? json_array_get(sd, (size_t)i) : NULL;

		in->mean[i] = mv ? (float)json_number_value(mv) : 0.0f;
		in->std[i] = sv ? (float)json_number_value(sv) : 1.0f;
		ok = ok && (!m || json_is_number(mv)) && (!sd || json_is_number(sv)) &&
		     in->std[i] > 0.0f;
	}
	json_decref(m);
	json_decref(sd);
	if (!ok || !(in->scale > 0.0f))
		return status_set(ld->err, ST_ERR_FORMAT,
				  "%s: metadata advex.scale/mean/std must be numbers (3 each), scale and std > 0",
				  path), -1;
	s = modelfile_meta(ld->mf, "advex.channel_order");
	in->bgr = s && !strcmp(s, "BGR");
	if (s && !in->bgr && strcmp(s, "RGB"))
		return status_set(ld->err, ST_ERR_FORMAT,
				  "%s: metadata advex.channel_order must be RGB or BGR, not '%s'",
				  path, s), -1;
	s = modelfile_meta(ld->mf, "advex.removed_softmax");
	in->removed_softmax = s && !strcmp(s, "true");
	return 0;
}

static int read_classes(struct loader *ld, int n_out)
{
	struct net *n = ld->n;
	json_t *j = meta_json(ld->mf, "advex.classes", 0, ld->err);
	int i;

	if (n_out < 1 || n_out > NET_MAX_CLASSES)
		return status_set(ld->err, ST_ERR_FORMAT,
				  "%s: the network has %d outputs (1..%d allowed)",
				  modelfile_path(ld->mf), n_out, NET_MAX_CLASSES), -1;
	if (j && (!json_is_array(j) || json_array_size(j) != (size_t)n_out)) {
		json_decref(j);
		return status_set(ld->err, ST_ERR_FORMAT,
				  "%s: metadata advex.classes must list %d names",
				  modelfile_path(ld->mf), n_out), -1;
	}
	n->classes = calloc((size_t)n_out, sizeof *n->classes);
	if (!n->classes) {
		json_decref(j);
		return status_set(ld->err, ST_ERR_NOMEM, "out of memory"), -1;
	}
	for (i = 0; i < n_out; i++) {
		const char *s = j ? json_string_value(json_array_get(j, (size_t)i)) : NULL;
		char def[32];

		snprintf(def, sizeof def, "class%d", i);
		n->classes[i] = strdup(s ? s : def);
		if (!n->classes[i]) {
			json_decref(j);
			return status_set(ld->err, ST_ERR_NOMEM, "out of memory"), -1;
		}
	}
	json_decref(j);
	n->info.n_classes = n_out;
	n->info.classes = (const char *const *)n->classes;
	return 0;
}

/* A ReLU right after a conv is applied by the conv as it writes its
 * output (enum conv_act), which saves a pass over the activation; the
 * ReLU layer then aliases the conv's output and its forward does nothing.
 * Nothing needs the conv's output before the ReLU: the conv's backward
 * reads its input, and the ReLU's backward its own output, which is the
 * same buffer with the same values. The layer table and net_save still
 * see both layers. */
static void fuse_relus(struct net *n)
{
	int i;

	for (i = 1; i < n->info.n_layers; i++)
		if (n->layers[i].op == NET_RELU &&
		    n->layers[i - 1].op == NET_CONV) {
			n->layers[i - 1].fused_relu = 1;
			n->layers[i].alias = 1;
		}
}

/* Plan every layer, then allocate and copy the weights. */
static int build_layers(struct loader *ld, json_t *arch)
{
	struct net *n = ld->n;
	size_t nparams = 0, np = json_array_size(arch), i;
	int c, h, w, flat = 0, nl = 0;

	n->layers = calloc(np ? np : 1, sizeof *n->layers);
	if (!n->layers)
		return status_set(ld->err, ST_ERR_NOMEM, "out of memory"), -1;
	c = n->info.in_c;
	h = n->info.in_h;
	w = n->info.in_w;
	for (i = 0; i < np; i++) {
		json_t *spec = json_array_get(arch, i);
		struct layer *l = &n->layers[nl];

		ld->idx = (int)i;
		if (!strcmp(spec_op(spec), "batchnorm"))
			continue;	/* folded into the previous layer below */
		if (nl && n->layers[nl - 1].op == NET_SOFTMAX)
			return status_set(ld->err, ST_ERR_FORMAT,
					  "%s: advex.arch layer %d: softmax must be the last layer",
					  modelfile_path(ld->mf), (int)i), -1;
		l->in_c = c;
		l->in_h = h;
		l->in_w = w;
		l->in_flat = flat;
		if (layer_plan(ld, spec, l, &nparams))
			return -1;
		/* A conv followed by a batch norm gets a bias to fold into. */
		if ((l->op == NET_CONV || l->op == NET_DENSE) && !l->nb &&
		    i + 1 < np &&
		    !strcmp(spec_op(json_array_get(arch, i + 1)), "batchnorm")) {
			l->nb = (size_t)l->out_c;
			nparams += l->nb;
		}
		c = l->out_c;
		h = l->out_h;
		w = l->out_w;
		flat = l->out_flat;
		nl++;
	}
	if (!nl || !flat)
		return status_set(ld->err, ST_ERR_FORMAT,
				  "%s: advex.arch must end in a flat output (flatten/dense)",
				  modelfile_path(ld->mf)), -1;
	n->info.n_layers = nl;
	n->info.n_params = nparams;
	n->info.outputs_probs = n->layers[nl - 1].op == NET_SOFTMAX;
	fuse_relus(n);
	return read_classes(ld, c);
}

static int load_weights(struct loader *ld, json_t *arch)
{
	struct net *n = ld->n;
	size_t off = 0, i, np = json_array_size(arch);
	int li = -1;

	for (i = 0; i < np; i++) {
		json_t *spec = json_array_get(arch, i);
		struct layer *l;
		const struct mf_tensor *t;
		int64_t shape[4];

		ld->idx = (int)i;
		if (!strcmp(spec_op(spec), "batchnorm")) {
			if (li < 0 || (n->layers[li].op != NET_CONV &&
				       n->layers[li].op != NET_DENSE) ||
			    n->layers[li].folded_bn)
				return status_set(ld->err, ST_ERR_FORMAT,
						  "%s: advex.arch layer %d: batchnorm must follow a conv2d or dense",
						  modelfile_path(ld->mf), (int)i), -1;
			if (fold_bn(ld, spec, &n->layers[li]))
				return -1;
			continue;
		}
		l = &n->layers[++li];
		if (!l->nw)
			continue;
		l->w_off = off;
		l->b_off = off + l->nw;
		off += l->nw + l->nb;
		if (l->op == NET_CONV) {
			shape[0] = l->conv.k;
			shape[1] = l->conv.c;
			shape[2] = l->conv.kh;
			shape[3] = l->conv.kw;
			t = need_tensor(ld, l->name, "weight", 4, shape);
		} else {
			shape[0] = l->out_c;
			shape[1] = l->in_c;
			t = need_tensor(ld, l->name, "weight", 2, shape);
		}
		if (!t)
			return -1;
		modelfile_read_f32(t, n->params + l->w_off);
		memset(n->params + l->b_off, 0, sizeof(float) * l->nb);
		if (json_bool(spec, "bias", 1)) {
			shape[0] = l->out_c;
			if (!(t = need_tensor(ld, l->name, "bias", 1, shape)))
				return -1;
			modelfile_read_f32(t, n->params + l->b_off);
		}
	}
	return 0;
}

static int check_unused(struct loader *ld)
{
	int i;

	for (i = 0; i < modelfile_count(ld->mf); i++) {
		const struct mf_tensor *t = modelfile_tensor(ld->mf, i);

		if (!ld->used[i] && !strstr(t->name, "num_batches_tracked"))
			return status_set(ld->err, ST_ERR_FORMAT,
					  "%s: tensor '%s' is not used by the architecture in advex.arch",
					  modelfile_path(ld->mf), t->name), -1;
	}
	return 0;
}

static int alloc_buffers(struct net *n, int want_grads, char *err)
{
	size_t max_act = (size_t)n->info.in_c * n->info.in_h * n->info.in_w;
	size_t col = 0, mb = (size_t)n->info.max_batch;
	int i, ok = 1;

	n->params = malloc(sizeof(float) * (n->info.n_params ? n->info.n_params : 1));
	if (want_grads)
		n->grads = calloc(n->info.n_params ? n->info.n_params : 1, sizeof(float));
	n->input = malloc(sizeof(float) * max_act * mb);
	n->norms = calloc(((size_t)n->info.n_layers + 1) * (mb + 1),
			  sizeof(double));
	n->pixel_norm = calloc(mb + 1, sizeof(double));
	ok = n->params && n->input && n->norms && n->pixel_norm &&
	     (!want_grads || n->grads);
	for (i = 0; ok && i < n->info.n_layers; i++) {
		struct layer *l = &n->layers[i];
		size_t out = layer_out_size(l) * mb;

		if (layer_out_size(l) > max_act)
			max_act = layer_out_size(l);
		if (l->op == NET_CONV && conv_col_size(&l->conv) > col)
			col = conv_col_size(&l->conv);
		/* the dense layers' sparse backward borrows it too */
		if (l->op == NET_DENSE && dense_work_size(l->in_c) > col)
			col = dense_work_size(l->in_c);
		if (l->op == NET_DROPOUT && want_grads) {
			l->own = malloc(sizeof(float) * out);
			l->mask = malloc(sizeof(float) * out);
			ok = l->own && l->mask;
		}
		if (l->alias)
			continue;
		l->out = malloc(sizeof(float) * out);
		ok = l->out != NULL;
		if (ok && l->op == NET_MAXPOOL)
			ok = (l->argmax = malloc(sizeof(int32_t) * out)) != NULL;
	}
	for (i = 0; ok && i < 2; i++)
		ok = (n->gbuf[i] = malloc(sizeof(float) * max_act * mb)) != NULL;
	if (ok && col)
		ok = (n->col = malloc(sizeof(float) * col)) != NULL;
	if (!ok)
		return status_set(err, ST_ERR_NOMEM,
				  "out of memory for %zu parameters and batch %d",
				  n->info.n_params, n->info.max_batch), -1;
	return 0;
}

/* Aliasing layers point at their input's buffer; in training, dropout
 * layers write their own. */
static void link_aliases(struct net *n)
{
	float *prev = n->input;
	int i;

	for (i = 0; i < n->info.n_layers; i++) {
		struct layer *l = &n->layers[i];

		if (l->op == NET_DROPOUT && n->training)
			l->out = l->own;
		else if (l->alias)
			l->out = prev;
		prev = l->out;
	}
}

enum status net_create(const struct modelfile *mf, int max_batch,
		       int want_param_grads, struct net **out, char *err)
{
	struct loader ld = { .mf = mf, .err = err };
	struct net *n;
	json_t *arch = NULL;
	const char *src;
	size_t i;
	int rc = -1;

	*out = NULL;
	if (max_batch < 1)
		return status_set(err, ST_ERR_ARG, "batch size must be >= 1");
	n = calloc(1, sizeof *n);
	ld.used = calloc((size_t)modelfile_count(mf) + 1, 1);
	if (!n || !ld.used) {
		free(n);
		free(ld.used);
		return status_set(err, ST_ERR_NOMEM, "out of memory");
	}
	ld.n = n;
	n->info.max_batch = max_batch;
	src = modelfile_meta(mf, "advex.source");
	n->source = strdup(src ? src : "");
	n->info.source = n->source;
	if (read_preprocessing(&ld))
		goto done;
	arch = meta_json(mf, "advex.arch", 1, err);
	if (!arch)
		goto done;
	if (!json_is_array(arch) || !json_array_size(arch)) {
		status_set(err, ST_ERR_FORMAT,
			   "%s: metadata advex.arch must be a non-empty JSON list",
			   modelfile_path(mf));
		goto done;
	}
	for (i = 0; i < json_array_size(arch); i++)
		if (!json_is_string(json_object_get(json_array_get(arch, i), "op"))) {
			status_set(err, ST_ERR_FORMAT,
				   "%s: advex.arch layer %zu has no \"op\"",
				   modelfile_path(mf), i);
			goto done;
		}
	if (build_layers(&ld, arch) || alloc_buffers(n, want_param_grads, err))
		goto done;
	/* As many threads as OpenBLAS was given (the CLI's --threads): the
	 * kernels run their products on these, OpenBLAS single-threaded. */
	n->workers = workers_new(blas_get_threads());
	if (!n->workers) {
		status_set(err, ST_ERR_NOMEM, "cannot start %d threads",
			   blas_get_threads());
		goto done;
	}
	link_aliases(n);
	if (load_weights(&ld, arch) || check_unused(&ld) ||
	    net_set_conv_mode(n, want_param_grads ? NET_CONV_IM2COL : NET_CONV_AUTO,
			      err) != ST_OK)
		goto done;
	rc = 0;
done:
	json_decref(arch);
	free(ld.used);
	if (rc) {
		net_free(n);
		return ST_ERR_FORMAT;
	}
	*out = n;
	return ST_OK;
}

void net_free(struct net *n)
{
	int i;

	if (!n)
		return;
	for (i = 0; n->layers && i < n->info.n_layers; i++) {
		if (!n->layers[i].alias)
			free(n->layers[i].out);
		free(n->layers[i].argmax);
		free(n->layers[i].own);
		free(n->layers[i].mask);
		free(n->layers[i].wt);
	}
	for (i = 0; n->classes && i < n->info.n_classes; i++)
		free(n->classes[i]);
	free(n->classes);
	free(n->layers);
	free(n->params);
	free(n->grads);
	free(n->input);
	free(n->gbuf[0]);
	free(n->gbuf[1]);
	free(n->col);
	free(n->wwork);
	workers_free(n->workers);
	free(n->norms);
	free(n->pixel_norm);
	free(n->prof);
	free(n->source);
	free(n);
}

const struct net_info *net_get_info(const struct net *n)
{
	return &n->info;
}

void net_layer(const struct net *n, int i, struct net_layer_info *li)
{
	const struct layer *l = &n->layers[i];

	li->op = l->op;
	li->kind = l->kind;
	li->name = l->name;
	li->c = l->out_c;
	li->h = l->out_h;
	li->w = l->out_w;
	li->flat = l->out_flat;
	li->params = l->nw + l->nb;
	li->folded_bn = l->folded_bn;
	li->fused_relu = l->fused_relu ||
			 (l->op == NET_RELU && l->alias);
}

/* ---- forward / backward -------------------------------------------------- */


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

/* pixels (RGB, [0,1]) -> what the first layer expects */
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
static void dropout_forward(struct net *n, struct layer *l, const float *x,
			    size_t count)
{
	float keep = 1.0f / (1.0f - l->drop_p);
	size_t i;

	for (i = 0; i < count; i++) {
		l->mask[i] = rng_uniform(&n->rng) < l->drop_p ? 0.0f : keep;
		l->out[i] = x[i] * l->mask[i];
	}
}

/* The conv a max-pool reads (through a ReLU or not) for its tie rule
 * (pool.h), image 0; NULL when there is none. */
static const struct pool_producer *pool_producer_of(const struct net *n,
						    const struct layer *l,
						    struct pool_producer *p,
						    size_t *in_size)
{
	int i = (int)(l - n->layers) - 1;
	const struct layer *c;

	if (i >= 0 && n->layers[i].op == NET_RELU)
		i--;
	if (i < 0 || n->layers[i].op != NET_CONV)
		return NULL;
	c = &n->layers[i];
	p->conv = &c->conv;
	p->x = i ? n->layers[i - 1].out : n->input;
	p->w = n->params + c->w_off;
	p->b = c->nb ? n->params + c->b_off : NULL;
	p->tile = c->wt ? winograd_tile(&c->conv) : 0;
	*in_size = layer_in_size(c);
	return p;
}

static void layer_forward(struct net *n, struct layer *l, const float *x,
			  int batch)
{
	size_t is = layer_in_size(l), os = layer_out_size(l);
	const float *w = n->params + l->w_off;
	const float *bias = l->nb ? n->params + l->b_off : NULL;
	enum conv_act act = l->fused_relu ? CONV_ACT_RELU : CONV_ACT_NONE;
	int b;

	switch (l->op) {
	case NET_CONV:
		if (l->wt)
			winograd_forward(n->workers, &l->conv, batch, x, l->wt,
					 bias, act, l->out, n->wwork);
		else
			for (b = 0; b < batch; b++)
				conv_forward(n->workers, &l->conv, x + b * is, w,
					     bias, act, l->out + b * os, n->col);
		break;
	case NET_RELU:
		/* fused: the conv before it has applied it (fuse_relus) */
		if (!l->alias)
			act_relu_forward(x, l->out, os * (size_t)batch);
		break;
	case NET_MAXPOOL: {
		struct pool_producer pp = { 0 }, ppb;
		size_t ps = 0;
		const struct pool_producer *prod = pool_producer_of(n, l, &pp, &ps);

		for (b = 0; b < batch; b++) {
			ppb = pp;
			ppb.x = prod ? pp.x + b * ps : NULL;
			pool_max_forward(&l->pool, x + b * is, l->out + b * os,
					 l->argmax + b * os, prod ? &ppb : NULL);
		}
		break;
	}
	case NET_AVGPOOL:
		for (b = 0; b < batch; b++)
			pool_avg_forward(&l->pool, x + b * is, l->out + b * os);
		break;
	case NET_GAP:
		for (b = 0; b < batch; b++)
			pool_global_forward(l->in_c, l->in_h * l->in_w, x + b * is,
					    l->out + b * os);
		break;
	case NET_DENSE:
		dense_forward(n->workers, batch, l->in_c, l->out_c, x, w, bias,
			      l->out);
		break;
	case NET_SOFTMAX:
		act_softmax_forward(batch, l->out_c, x, l->out);
		break;
	case NET_DROPOUT:
		if (n->training)
			dropout_forward(n, l, x, os * (size_t)batch);
		break;
	case NET_FLATTEN:
		break;
	}
}

const float *net_forward(struct net *n, const float *x, int batch)
{
	const float *cur = n->input;
	int i;

	if (batch > n->info.max_batch)
		batch = n->info.max_batch;
	n->batch = batch;
	preprocess(n, x, batch);
	for (i = 0; i < n->info.n_layers; i++) {
		double t0 = n->prof ? clock_ms() : 0.0;

		layer_forward(n, &n->layers[i], cur, batch);
		cur = n->layers[i].out;
		if (n->prof)
			n->prof[i] += clock_ms() - t0;
	}
	return cur;
}

/* dy (batch, out) -> dx (batch, in); parameter gradients accumulated.
 * Returns the buffer that holds dx (dy itself for layers that pass it on). */
static float *layer_backward(struct net *n, struct layer *l, const float *x,
			     float *dy, float *dx, int need_dx)
{
	size_t is = layer_in_size(l), os = layer_out_size(l);
	const float *w = n->params + l->w_off;
	int trainable = n->grads && (l - n->layers) >= n->first_trainable;
	float *dw = trainable ? n->grads + l->w_off : NULL;
	float *db = trainable && l->nb ? n->grads + l->b_off : NULL;
	int b, batch = n->batch;

	switch (l->op) {
	case NET_CONV:
		for (b = 0; dw && b < batch; b++)
			conv_backward_params(n->workers, &l->conv, x + b * is,
					     dy + b * os, dw, db, n->col);
		if (need_dx && l->wt)
			winograd_backward_input(n->workers, &l->conv, batch, dy,
						l->wt, dx, n->wwork);
		else if (need_dx)
			for (b = 0; b < batch; b++)
				conv_backward_input(n->workers, &l->conv,
						    dy + b * os, w, dx + b * is,
						    n->col);
		return dx;
	case NET_RELU:
		act_relu_backward(l->out, dy, dy, os * (size_t)batch);
		return dy;
	case NET_MAXPOOL:
		for (b = 0; b < batch; b++)
			pool_max_backward(&l->pool, dy + b * os, l->argmax + b * os,
					  dx + b * is);
		return dx;
	case NET_AVGPOOL:
		for (b = 0; b < batch; b++)
			pool_avg_backward(&l->pool, dy + b * os, dx + b * is);
		return dx;
	case NET_GAP:
		for (b = 0; b < batch; b++)
			pool_global_backward(l->in_c, l->in_h * l->in_w, dy + b * os,
					     dx + b * is);
		return dx;
	case NET_DENSE:
		if (dw)
			dense_backward_params(n->workers, batch, l->in_c,
					      l->out_c, x, dy, dw, db);
		if (need_dx)
			dense_backward_input(n->workers, batch, l->in_c,
					     l->out_c, dy, w, dx, n->col);
		return dx;
	case NET_SOFTMAX:
		act_softmax_backward(batch, l->out_c, l->out, dy, dx);
		return dx;
	case NET_DROPOUT:
		if (n->training) {
			size_t k, cnt = os * (size_t)batch;

			for (k = 0; k < cnt; k++)
				dy[k] *= l->mask[k];
		}
		break;
	case NET_FLATTEN:
		break;
	}
	return dy;
}

void net_backward(struct net *n, const float *dout, float *dx)
{
	const struct net_info *in = &n->info;
	int nl = in->n_layers, i, batch = n->batch;
	size_t outsz = layer_out_size(&n->layers[nl - 1]) * (size_t)batch;
	size_t hw = (size_t)in->in_h * in->in_w, k;
	float *g = n->gbuf[0];

	memcpy(g, dout, sizeof(float) * outsz);
	batch_norms(g, outsz / (size_t)batch, batch, n->norms + nl,
		    (size_t)nl + 1);
	for (i = nl - 1; i >= 0; i--) {
		struct layer *l = &n->layers[i];
		const float *x = i ? n->layers[i - 1].out : n->input;
		float *other = g == n->gbuf[0] ? n->gbuf[1] : n->gbuf[0];
		int need_dx = dx != NULL || (i > 0 && i > n->first_trainable);

		double t0, t1;

		if (!need_dx && i < n->first_trainable)
			break;	/* nothing below wants a gradient */

		t0 = n->prof ? clock_ms() : 0.0;
		g = layer_backward(n, l, x, g, other, need_dx);
		t1 = n->prof ? clock_ms() : 0.0;
		if (need_dx)
			batch_norms(g, layer_in_size(l), batch, n->norms + i,
				    (size_t)nl + 1);
		if (n->prof) {
			n->prof[nl + i] += t1 - t0;
			n->prof[2 * nl + i] += clock_ms() - t1;
		}
	}
	if (!dx)
		return;
	/* through the preprocessing: d pixel = d input * scale / std */
	for (int b = 0; b < batch; b++)
		for (int c = 0; c < 3; c++) {
			int dst = in->bgr ? 2 - c : c;
			const float *gs = g + ((size_t)b * 3 + c) * hw;
			float *d = dx + ((size_t)b * 3 + dst) * hw;
			float s = in->scale / in->std[c];

			for (k = 0; k < hw; k++)
				d[k] = gs[k] * s;
		}
	batch_norms(dx, 3 * hw, batch, n->pixel_norm, 1);
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
	struct layer *l = &n->layers[i];

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
	link_aliases(n);
}

/* The architecture as advex.arch JSON, after batch-norm folding. */
static json_t *arch_json(const struct net *n)
{
	json_t *a = json_array();
	int i;

	for (i = 0; i < n->info.n_layers; i++) {
		const struct layer *l = &n->layers[i];
		const struct pool_shape *p = &l->pool;
		const struct conv_shape *c = &l->conv;
		json_t *o = NULL;

		switch (l->op) {
		case NET_CONV:
			o = json_pack("{s:s, s:s, s:i, s:[i,i], s:[i,i], s:[i,i], s:b}",
				      "op", "conv2d", "name", l->name, "out", c->k,
				      "kernel", c->kh, c->kw, "stride", c->sh, c->sw,
				      "padding", c->ph, c->pw, "bias", l->nb > 0);
			break;
		case NET_MAXPOOL:
		case NET_AVGPOOL:
			o = json_pack("{s:s, s:[i,i], s:[i,i], s:[i,i], s:b}", "op",
				      l->op == NET_MAXPOOL ? "maxpool" : "avgpool",
				      "kernel", p->kh, p->kw, "stride", p->sh, p->sw,
				      "padding", p->ph, p->pw, "ceil_mode", p->ceil_mode);
			if (l->op == NET_AVGPOOL)
				json_object_set_new(o, "count_include_pad",
						    json_boolean(p->count_include_pad));
			break;
		case NET_DENSE:
			o = json_pack("{s:s, s:s, s:i, s:b}", "op", "dense", "name",
				      l->name, "out", l->out_c, "bias", l->nb > 0);
			break;
		case NET_DROPOUT:
			o = json_pack("{s:s, s:f}", "op", "dropout", "p", l->drop_p);
			break;
		case NET_RELU:
			o = json_pack("{s:s}", "op", "relu");
			break;
		case NET_GAP:
			o = json_pack("{s:s}", "op", "gap");
			break;
		case NET_FLATTEN:
			o = json_pack("{s:s}", "op", "flatten");
			break;
		case NET_SOFTMAX:
			o = json_pack("{s:s}", "op", "softmax");
			break;
		}
		json_array_append_new(a, o);
	}
	return a;
}

/* Tensors NAME.weight / NAME.bias of every layer that has parameters. */
static int save_tensors(const struct net *n, struct mf_out_tensor *t,
			char (*names)[160])
{
	int i, k = 0;

	for (i = 0; i < n->info.n_layers; i++) {
		const struct layer *l = &n->layers[i];

		if (!l->nw)
			continue;
		snprintf(names[k], 160, "%s.weight", l->name);
		t[k].name = names[k];
		t[k].data = n->params + l->w_off;
		if (l->op == NET_CONV) {
			t[k].ndim = 4;
			t[k].shape[0] = l->conv.k;
			t[k].shape[1] = l->conv.c;
			t[k].shape[2] = l->conv.kh;
			t[k].shape[3] = l->conv.kw;
		} else {
			t[k].ndim = 2;
			t[k].shape[0] = l->out_c;
			t[k].shape[1] = l->in_c;
		}
		k++;
		if (!l->nb)
			continue;
		snprintf(names[k], 160, "%s.bias", l->name);
		t[k].name = names[k];
		t[k].data = n->params + l->b_off;
		t[k].ndim = 1;
		t[k].shape[0] = (int64_t)l->nb;
		k++;
	}
	return k;
}

enum status net_save(const struct net *n, const char *path,
		     const char *const *extra_keys,
		     const char *const *extra_values, int n_extra, char *err)
{
	const struct net_info *in = &n->info;
	int nt = 2 * in->n_layers, nm = 0, i;
	struct mf_out_tensor *t = calloc((size_t)nt + 1, sizeof *t);
	char (*names)[160] = calloc((size_t)nt + 1, sizeof *names);
	const char **keys = calloc((size_t)n_extra + 16, sizeof *keys);
	const char **vals = calloc((size_t)n_extra + 16, sizeof *vals);
	char input[64], scale[32], mean[96], std[96];
	json_t *cl = json_array();
	char *arch_s = NULL, *cl_s = NULL;
	enum status st;
	json_t *aj;

	for (i = 0; i < in->n_classes; i++)
		json_array_append_new(cl, json_string(in->classes[i]));
	aj = arch_json(n);
	arch_s = json_dumps(aj, JSON_COMPACT);
	json_decref(aj);
	cl_s = json_dumps(cl, JSON_COMPACT);
	json_decref(cl);
	if (!t || !names || !keys || !vals || !arch_s || !cl_s) {
		st = status_set(err, ST_ERR_NOMEM, "%s: out of memory", path);
		goto out;
	}
	snprintf(input, sizeof input, "[%d, %d, %d]", in->in_c, in->in_h, in->in_w);
	snprintf(scale, sizeof scale, "%.9g", in->scale);
	snprintf(mean, sizeof mean, "[%.9g, %.9g, %.9g]", in->mean[0], in->mean[1], in->mean[2]);
	snprintf(std, sizeof std, "[%.9g, %.9g, %.9g]", in->std[0], in->std[1], in->std[2]);
	keys[nm] = "advex.format";	vals[nm++] = "1";
	keys[nm] = "advex.arch";	vals[nm++] = arch_s;
	keys[nm] = "advex.input";	vals[nm++] = input;
	keys[nm] = "advex.scale";	vals[nm++] = scale;
	keys[nm] = "advex.mean";	vals[nm++] = mean;
	keys[nm] = "advex.std";		vals[nm++] = std;
	keys[nm] = "advex.channel_order"; vals[nm++] = in->bgr ? "BGR" : "RGB";
	keys[nm] = "advex.classes";	vals[nm++] = cl_s;
	if (in->removed_softmax) {
		keys[nm] = "advex.removed_softmax";
		vals[nm++] = "true";
	}
	for (i = 0; i < n_extra; i++) {
		if (!strcmp(extra_keys[i], "advex.source"))
			continue;
		keys[nm] = extra_keys[i];
		vals[nm++] = extra_values[i];
	}
	keys[nm] = "advex.source";
	vals[nm++] = in->source;
	for (i = 0; i < n_extra; i++)
		if (!strcmp(extra_keys[i], "advex.source"))
			vals[nm - 1] = extra_values[i];
	if (!in->source[0] && !strcmp(vals[nm - 1], ""))
		nm--;
	nt = save_tensors(n, t, names);
	st = modelfile_write(path, t, nt, keys, vals, nm, err);
out:
	free(t);
	free(names);
	free(keys);
	free(vals);
	free(arch_s);
	free(cl_s);
	return st;
}

enum status net_set_conv_mode(struct net *n, enum net_conv_mode mode,
			      char *err)
{
	size_t work = 0, lw;
	int i;

	for (i = 0; i < n->info.n_layers; i++) {
		struct layer *l = &n->layers[i];
		int use;

		if (l->op != NET_CONV)
			continue;
		use = mode == NET_CONV_WINOGRAD ? winograd_supported(&l->conv) :
		      mode == NET_CONV_AUTO ?
		      winograd_preferred(&l->conv, n->info.max_batch) : 0;
		if (!use) {
			free(l->wt);
			l->wt = NULL;
			continue;
		}
		if (!l->wt)
			l->wt = malloc(sizeof(float) * winograd_weight_size(&l->conv));
		if (!l->wt)
			return status_set(err, ST_ERR_NOMEM,
					  "out of memory for Winograd weights");
		winograd_prepare(&l->conv, n->params + l->w_off, l->wt);
		lw = winograd_work_size(&l->conv, n->workers,
					n->info.max_batch);
		if (lw > work)
			work = lw;
	}
	free(n->wwork);
	n->wwork = work ? malloc(sizeof(float) * work) : NULL;
	if (work && !n->wwork)
		return status_set(err, ST_ERR_NOMEM, "out of memory for Winograd");
	return ST_OK;
}

int net_winograd_layers(const struct net *n)
{
	int i, k = 0;

	for (i = 0; i < n->info.n_layers; i++)
		k += n->layers[i].wt != NULL;
	return k;
}
