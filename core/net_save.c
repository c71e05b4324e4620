/* net_save.c - writing a network back as an advex model file (net.h):
 * the node list as advex.arch (batch norms that were folded stay folded),
 * the parameters as tensors, through a temporary name and a rename. */
#include "net.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_impl.h"

/* 1 when every node's input is the node before it: written without
 * "inputs", as format 1. */
static int is_chain(const struct net *n)
{
	int i;

	for (i = 0; i < n->info.n_layers; i++)
		if (!n->nodes[i].chain)
			return 0;
	return 1;
}

static const char *const arith_name[] = { "add", "sub", "mul", "div" };

static json_t *node_json(const struct node *l)
{
	const struct pool_shape *p = &l->pool;
	const struct conv_shape *c = &l->conv;

	switch (l->op) {
	case NET_CONV:
		return json_pack("{s:s, s:s, s:i, s:[i,i], s:[i,i], s:[i,i], s:i, s:b}",
				 "op", "conv2d", "name", l->name, "out", l->c,
				 "kernel", c->kh, c->kw, "stride", c->sh, c->sw,
				 "padding", c->ph, c->pw, "groups", l->groups,
				 "bias", l->nb > 0);
	case NET_MAXPOOL:
	case NET_AVGPOOL: {
		json_t *o = json_pack("{s:s, s:[i,i], s:[i,i], s:[i,i], s:b}", "op",
				      l->op == NET_MAXPOOL ? "maxpool" : "avgpool",
				      "kernel", p->kh, p->kw, "stride", p->sh, p->sw,
				      "padding", p->ph, p->pw, "ceil_mode", p->ceil_mode);

		if (l->op == NET_AVGPOOL)
			json_object_set_new(o, "count_include_pad",
					    json_boolean(p->count_include_pad));
		return o;
	}
	case NET_DENSE:
		return json_pack("{s:s, s:s, s:i, s:b}", "op", "dense", "name",
				 l->name, "out", l->c, "bias", l->nb > 0);
	case NET_DROPOUT:
		return json_pack("{s:s, s:f}", "op", "dropout", "p", l->drop_p);
	case NET_RELU:
		return json_pack("{s:s}", "op", "relu");
	case NET_SIGMOID:
		return json_pack("{s:s}", "op", "sigmoid");
	case NET_TANH:
		return json_pack("{s:s}", "op", "tanh");
	case NET_IDENTITY:
		return json_pack("{s:s}", "op", "identity");
	case NET_LEAKY:
		return json_pack("{s:s, s:f}", "op", "leaky_relu", "alpha", l->value);
	case NET_CLIP:
		return json_pack("{s:s, s:f, s:f}", "op", "clip", "min", l->lo,
				 "max", l->hi);
	case NET_GAP:
		return json_pack("{s:s}", "op", "gap");
	case NET_FLATTEN:
		return json_pack("{s:s}", "op", "flatten");
	case NET_SOFTMAX:
		return json_pack("{s:s}", "op", "softmax");
	case NET_ADD:
		return json_pack("{s:s}", "op", "add");
	case NET_CONCAT:
		return json_pack("{s:s}", "op", "concat");
	case NET_CONST:
		if (l->per_channel)
			return json_pack("{s:s}", "op", arith_name[l->arith]);
		return json_pack("{s:s, s:f}", "op", arith_name[l->arith], "value",
				 l->value);
	case NET_BATCHNORM:
		return json_pack("{s:s, s:f}", "op", "batchnorm", "eps", l->bn_eps);
	case NET_PAD:
		return json_pack("{s:s, s:[i,i,i,i], s:[i,i], s:f}", "op", "pad",
				 "pads", l->pad.top, l->pad.left, l->pad.bottom,
				 l->pad.right, "channels", l->pad.cb, l->pad.ca,
				 "value", l->pad.value);
	case NET_SLICE: {
		const struct ops_slice *s = &l->slice;

		return json_pack("{s:s, s:[i,i], s:[i,i], s:[i,i], s:[i,i]}",
				 "op", "slice", "start", s->h0, s->w0, "end",
				 s->h0 + (s->oh - 1) * s->sh + 1,
				 s->w0 + (s->ow - 1) * s->sw + 1, "step", s->sh,
				 s->sw, "channels", s->c0, s->c0 + s->oc);
	}
	}
	return NULL;
}

/* The node list as advex.arch JSON, after batch-norm folding. */
static json_t *arch_json(const struct net *n, int chain)
{
	json_t *a = json_array();
	int i, k;

	for (i = 0; i < n->info.n_layers; i++) {
		const struct node *l = &n->nodes[i];
		json_t *o = node_json(l);

		if (!o)
			continue;
		if (!chain) {
			json_t *in = json_array();

			/* graph files name every node: "#k" ids are names
			 * there too */
			json_object_set_new(o, "name", json_string(l->id));
			for (k = 0; k < l->n_in; k++)
				json_array_append_new(in, json_string(
					net_tensor_id(n, l->in[k])));
			json_object_set_new(o, "inputs", in);
		}
		json_array_append_new(a, o);
	}
	return a;
}

/* Tensor k of the output list. */
static void put(struct mf_out_tensor *t, char (*names)[160], int *k,
		const char *name, const char *suffix, const float *data,
		int ndim, const int64_t *shape)
{
	int d;

	snprintf(names[*k], 160, "%s.%s", name, suffix);
	t[*k].name = names[*k];
	t[*k].data = data;
	t[*k].ndim = ndim;
	for (d = 0; d < ndim; d++)
		t[*k].shape[d] = shape[d];
	(*k)++;
}

/* The tensors of every node that has any (at most 4 per node). The names
 * follow the node's graph id, which is its name when it has one. */
static int save_tensors(const struct net *n, struct mf_out_tensor *t,
			char (*names)[160])
{
	int i, k = 0;

	for (i = 0; i < n->info.n_layers; i++) {
		const struct node *l = &n->nodes[i];
		const float *w = n->params + l->w_off, *b = n->params + l->b_off;
		int64_t s[4];

		s[0] = l->c;
		if (l->op == NET_CONST && l->per_channel) {
			put(t, names, &k, l->id, "value", l->cvec, 1, s);
			continue;
		}
		if (l->op == NET_BATCHNORM) {
			put(t, names, &k, l->id, "weight", w, 1, s);
			put(t, names, &k, l->id, "bias", b, 1, s);
			put(t, names, &k, l->id, "running_mean", l->cvec, 1, s);
			put(t, names, &k, l->id, "running_var",
			    l->cvec + 2 * l->c, 1, s);
			continue;
		}
		if (!l->nw)
			continue;
		if (l->op == NET_CONV) {
			s[1] = l->conv.c;
			s[2] = l->conv.kh;
			s[3] = l->conv.kw;
			put(t, names, &k, l->name, "weight", w, 4, s);
		} else {
			s[1] = (int64_t)net_tensor_size(n, l->in[0]);
			put(t, names, &k, l->name, "weight", w, 2, s);
		}
		if (l->nb)
			put(t, names, &k, l->name, "bias", b, 1, s);
	}
	return k;
}

enum status net_save(const struct net *n, const char *path,
		     const char *const *extra_keys,
		     const char *const *extra_values, int n_extra, char *err)
{
	const struct net_info *in = &n->info;
	int nt = 4 * in->n_layers, nm = 0, i, chain = is_chain(n);
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
	aj = arch_json(n, chain);
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
	keys[nm] = "advex.format";	vals[nm++] = chain ? "1" : "2";
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
