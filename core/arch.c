/* arch.c - built-in architectures (see arch.h). */
#include "arch.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

/* torchvision's VGG16 configuration "D": channels, 0 = max-pool 2x2/2 */
static const int vgg16_cfg[] = { 64, 64, 0, 128, 128, 0, 256, 256, 256, 0,
				 512, 512, 512, 0, 512, 512, 512, 0, -1 };

/* A compact VGG for the demo and for training on two cores in minutes:
 * four conv3x3+ReLU+max-pool blocks, global average pool, one dense. */
static const int compact_cfg[] = { 16, 0, 32, 0, 64, 0, 128, 0, -1 };

static const char *const names[] = { "vgg16", "vgg16-small", "vgg-compact",
				     "resnet18", "resnet20", NULL };
static const char *const descr[] = {
	"torchvision VGG16 layout, classic head C*H*W->4096->4096->classes",
	"torchvision VGG16 layout, small head C*H*W->classes",
	"4 blocks conv3x3(16,32,64,128)+relu+maxpool, global avgpool, dense",
	"torchvision ResNet-18 layout (batch norms folded away), 1x1-conv shortcuts",
	"CIFAR ResNet-20 (3x3 blocks of 16/32/64), zero-padding shortcuts (option A)",
};
static const char *const stl10_classes[] = {
	"airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey",
	"ship", "truck"
};

const char *const *arch_names(void)
{
	return names;
}

const char *arch_describe(const char *name)
{
	int i;

	for (i = 0; names[i]; i++)
		if (!strcmp(names[i], name))
			return descr[i];
	return NULL;
}

int arch_default_size(const char *name)
{
	return !strcmp(name, "resnet20") ? 32 : 96;
}

/* A growing list of tensors plus the arch JSON being described. */
struct builder {
	json_t *arch;
	struct mf_out_tensor *t;
	float **owned;
	int n, cap;
	struct rng rng;
};

static int add_tensor(struct builder *b, const char *prefix, const char *suf,
		      int ndim, const int64_t *shape, float bound)
{
	size_t count = 1, i;
	char name[160];
	float *d;
	int k;

	if (b->n == b->cap) {
		int cap = b->cap ? 2 * b->cap : 64;
		void *nt = realloc(b->t, sizeof *b->t * (size_t)cap);
		void *no = nt ? realloc(b->owned, sizeof *b->owned * (size_t)cap) : NULL;

		if (nt)
			b->t = nt;
		if (!no)
			return -1;
		b->owned = no;
		b->cap = cap;
	}
	for (k = 0; k < ndim; k++)
		count *= (size_t)shape[k];
	d = malloc(sizeof *d * count);
	if (!d)
		return -1;
	for (i = 0; i < count; i++)
		d[i] = bound * (float)(2.0 * rng_uniform(&b->rng) - 1.0);
	snprintf(name, sizeof name, "%s.%s", prefix, suf);
	b->owned[b->n] = d;
	b->t[b->n].name = strdup(name);
	b->t[b->n].ndim = ndim;
	memcpy(b->t[b->n].shape, shape, sizeof(int64_t) * (size_t)ndim);
	b->t[b->n].data = d;
	if (!b->t[b->n].name) {
		free(d);
		return -1;
	}
	b->n++;
	return 0;
}

static int add_conv(struct builder *b, int idx, int in, int out)
{
	char name[32];
	int64_t ws[4] = { out, in, 3, 3 }, bs[1] = { out };
	/* He-uniform with fan-out, as torchvision's kaiming_normal_(fan_out) */
	float bound = sqrtf(6.0f / (float)(out * 9));

	snprintf(name, sizeof name, "features.%d", idx);
	json_array_append_new(b->arch,
			      json_pack("{s:s, s:s, s:i, s:[i,i], s:[i,i], s:[i,i]}",
					"op", "conv2d", "name", name, "out", out,
					"kernel", 3, 3, "stride", 1, 1, "padding", 1, 1));
	return add_tensor(b, name, "weight", 4, ws, bound) ||
	       add_tensor(b, name, "bias", 1, bs, 0.0f);
}

static int add_dense(struct builder *b, int idx, int in, int out)
{
	char name[32];
	int64_t ws[2] = { out, in }, bs[1] = { out };

	snprintf(name, sizeof name, "classifier.%d", idx);
	json_array_append_new(b->arch, json_pack("{s:s, s:s, s:i}", "op", "dense",
						 "name", name, "out", out));
	/* uniform with the variance of He init, so logits are O(1) */
	return add_tensor(b, name, "weight", 2, ws, sqrtf(6.0f / (float)in)) ||
	       add_tensor(b, name, "bias", 1, bs, 0.0f);
}

static void add_op(struct builder *b, const char *op)
{
	if (!strcmp(op, "maxpool"))
		json_array_append_new(b->arch, json_pack("{s:s, s:[i,i], s:[i,i]}",
							 "op", op, "kernel", 2, 2,
							 "stride", 2, 2));
	else
		json_array_append_new(b->arch, json_pack("{s:s}", "op", op));
}

/* Conv/pool blocks from a config; returns the channel count (or -1). */
static int build_features(struct builder *b, const int *cfg, int *hw)
{
	int i, idx = 0, c = 3;

	for (i = 0; cfg[i] >= 0; i++) {
		if (cfg[i] == 0) {
			add_op(b, "maxpool");
			idx++;
			*hw /= 2;
			continue;
		}
		if (add_conv(b, idx, c, cfg[i]))
			return -1;
		add_op(b, "relu");
		idx += 2;
		c = cfg[i];
	}
	return c;
}

static int build_compact(struct builder *b, int size, int n_classes)
{
	int hw = size, c = build_features(b, compact_cfg, &hw);

	if (c < 0)
		return -1;
	add_op(b, "gap");
	add_op(b, "flatten");
	return add_dense(b, 0, c, n_classes);
}

static int build_vgg16(struct builder *b, int size, int n_classes, int classic)
{
	int hw = size, c = build_features(b, vgg16_cfg, &hw);

	if (c < 0)
		return -1;
	add_op(b, "flatten");
	if (!classic)
		return add_dense(b, 0, c * hw * hw, n_classes);
	if (add_dense(b, 0, c * hw * hw, 4096))
		return -1;
	add_op(b, "relu");
	add_op(b, "dropout");
	if (add_dense(b, 3, 4096, 4096))
		return -1;
	add_op(b, "relu");
	add_op(b, "dropout");
	return add_dense(b, 6, 4096, n_classes);
}

/* ---- residual networks (graphs: nodes named, inputs by name) ---- */

/* conv k x k / stride, padding k/2, He-uniform weights, zero bias; reads
 * node `in` and is named `name`. */
static int res_conv(struct builder *b, const char *name, const char *in,
		    int cin, int cout, int k, int stride)
{
	int64_t ws[4] = { cout, cin, k, k }, bs[1] = { cout };
	float bound = sqrtf(6.0f / (float)(cout * k * k));

	json_array_append_new(b->arch,
			      json_pack("{s:s, s:s, s:[s], s:i, s:[i,i], s:[i,i], s:[i,i]}",
					"op", "conv2d", "name", name, "inputs", in,
					"out", cout, "kernel", k, k, "stride", stride,
					stride, "padding", k / 2, k / 2));
	return add_tensor(b, name, "weight", 4, ws, bound) ||
	       add_tensor(b, name, "bias", 1, bs, 0.05f);
}

static void res_node(struct builder *b, const char *op, const char *name,
		     const char *in)
{
	json_array_append_new(b->arch, json_pack("{s:s, s:s, s:[s]}", "op", op,
						 "name", name, "inputs", in));
}

/* A basic block: conv3x3/s, relu, conv3x3, + shortcut, relu. The shortcut
 * is the input, a 1x1 conv (option B) or, with option_a, every second
 * pixel padded with zero channels (the CIFAR ResNet paper's option A).
 * Writes the output node's name to out. */
static int res_block(struct builder *b, const char *p, const char *in,
		     int cin, int cout, int stride, int option_a, char *out)
{
	char n1[64], n2[64], r1[64], sc[64], sum[64], sl[64];
	int pad = (cout - cin) / 2;

	snprintf(n1, sizeof n1, "%s.conv1", p);
	snprintf(r1, sizeof r1, "%s.relu1", p);
	snprintf(n2, sizeof n2, "%s.conv2", p);
	snprintf(sum, sizeof sum, "%s.add", p);
	snprintf(out, 64, "%s.relu2", p);
	if (res_conv(b, n1, in, cin, cout, 3, stride))
		return -1;
	res_node(b, "relu", r1, n1);
	if (res_conv(b, n2, r1, cout, cout, 3, 1))
		return -1;
	snprintf(sc, sizeof sc, "%s", in);
	if (stride != 1 || cin != cout) {
		if (option_a) {
			snprintf(sl, sizeof sl, "%s.shortcut.slice", p);
			snprintf(sc, sizeof sc, "%s.shortcut.pad", p);
			json_array_append_new(b->arch,
				json_pack("{s:s, s:s, s:[s], s:[i,i]}", "op", "slice",
					  "name", sl, "inputs", in, "step", stride, stride));
			json_array_append_new(b->arch,
				json_pack("{s:s, s:s, s:[s], s:[i,i]}", "op", "pad",
					  "name", sc, "inputs", sl, "channels", pad,
					  cout - cin - pad));
		} else {
			snprintf(sc, sizeof sc, "%s.downsample", p);
			if (res_conv(b, sc, in, cin, cout, 1, stride))
				return -1;
		}
	}
	json_array_append_new(b->arch, json_pack("{s:s, s:s, s:[s,s]}", "op", "add",
						 "name", sum, "inputs", n2, sc));
	res_node(b, "relu", out, sum);
	return 0;
}

/* Stages of `blocks` basic blocks, the first of each stage (after the
 * first) halving the size; then global average pool and a dense head. */
static int res_stages(struct builder *b, const char *stem, int c,
		      const int *widths, int n_stages, int blocks, int option_a,
		      int n_classes)
{
	char in[64], out[64], p[32];
	int s, k;

	snprintf(in, sizeof in, "%s", stem);
	for (s = 0; s < n_stages; s++)
		for (k = 0; k < blocks; k++) {
			snprintf(p, sizeof p, "layer%d.%d", s + 1, k);
			if (res_block(b, p, in, c, widths[s], s && !k ? 2 : 1,
				      option_a, out))
				return -1;
			c = widths[s];
			snprintf(in, sizeof in, "%s", out);
		}
	res_node(b, "gap", "avgpool", in);
	res_node(b, "flatten", "flatten", "avgpool");
	{
		int64_t ws[2] = { n_classes, c }, bs[1] = { n_classes };

		json_array_append_new(b->arch, json_pack("{s:s, s:s, s:[s], s:i}",
							 "op", "dense", "name", "fc",
							 "inputs", "flatten",
							 "out", n_classes));
		return add_tensor(b, "fc", "weight", 2, ws, sqrtf(6.0f / (float)c)) ||
		       add_tensor(b, "fc", "bias", 1, bs, 0.0f);
	}
}

static int build_resnet18(struct builder *b, int n_classes)
{
	static const int widths[4] = { 64, 128, 256, 512 };

	if (res_conv(b, "conv1", "input", 3, 64, 7, 2))
		return -1;
	res_node(b, "relu", "relu", "conv1");
	json_array_append_new(b->arch,
		json_pack("{s:s, s:s, s:[s], s:[i,i], s:[i,i], s:[i,i]}", "op",
			  "maxpool", "name", "maxpool", "inputs", "relu", "kernel",
			  3, 3, "stride", 2, 2, "padding", 1, 1));
	return res_stages(b, "maxpool", 64, widths, 4, 2, 0, n_classes);
}

static int build_resnet20(struct builder *b, int n_classes)
{
	static const int widths[3] = { 16, 32, 64 };

	if (res_conv(b, "conv1", "input", 3, 16, 3, 1))
		return -1;
	res_node(b, "relu", "relu", "conv1");
	return res_stages(b, "relu", 16, widths, 3, 3, 1, n_classes);
}

static void builder_free(struct builder *b)
{
	int i;

	for (i = 0; i < b->n; i++) {
		free(b->owned[i]);
		free((char *)b->t[i].name);
	}
	free(b->owned);
	free(b->t);
	json_decref(b->arch);
}

/* Metadata strings: keys and values for modelfile_encode. */
static enum status encode(struct builder *b, const char *name, int size,
			  int n_classes, const char *const *classes, void **buf,
			  size_t *len, char *err)
{
	const char *keys[8], *vals[8];
	char input[64], src[96];
	char *arch_s, *classes_s;
	json_t *cl = json_array();
	enum status st;
	int i;

	for (i = 0; i < n_classes; i++) {
		char def[32];

		snprintf(def, sizeof def, "class%d", i);
		json_array_append_new(cl, json_string(classes ? classes[i] :
						      n_classes == 10 ? stl10_classes[i] : def));
	}
	arch_s = json_dumps(b->arch, JSON_COMPACT);
	classes_s = json_dumps(cl, JSON_COMPACT);
	json_decref(cl);
	snprintf(input, sizeof input, "[3, %d, %d]", size, size);
	snprintf(src, sizeof src, "builtin:%s", name);
	keys[0] = "advex.format";	vals[0] = strncmp(name, "resnet", 6) ? "1" : "2";
	keys[1] = "advex.arch";		vals[1] = arch_s ? arch_s : "";
	keys[2] = "advex.input";	vals[2] = input;
	keys[3] = "advex.classes";	vals[3] = classes_s ? classes_s : "";
	keys[4] = "advex.source";	vals[4] = src;
	keys[5] = "advex.channel_order"; vals[5] = "RGB";
	if (!arch_s || !classes_s)
		st = status_set(err, ST_ERR_NOMEM, "out of memory");
	else
		st = modelfile_encode(b->t, b->n, keys, vals, 6, buf, len, err);
	free(arch_s);
	free(classes_s);
	return st;
}

enum status arch_build(const char *name, int size, int n_classes,
		       const char *const *classes, uint64_t seed,
		       struct modelfile **out, char *err)
{
	struct builder b = { 0 };
	char label[64];
	void *buf = NULL;
	size_t len = 0;
	enum status st;
	int rc;

	*out = NULL;
	if (!arch_describe(name))
		return status_set(err, ST_ERR_ARG, "unknown architecture '%s'", name);
	if (size < 32 || size % 32 || n_classes < 1 || n_classes > 4096)
		return status_set(err, ST_ERR_ARG,
				  "%s: input size must be a multiple of 32, classes 1..4096",
				  name);
	b.arch = json_array();
	rng_seed(&b.rng, seed);
	if (!strcmp(name, "vgg-compact"))
		rc = build_compact(&b, size, n_classes);
	else if (!strcmp(name, "resnet18"))
		rc = build_resnet18(&b, n_classes);
	else if (!strcmp(name, "resnet20"))
		rc = build_resnet20(&b, n_classes);
	else
		rc = build_vgg16(&b, size, n_classes, !strcmp(name, "vgg16"));
	if (rc || !b.arch) {
		builder_free(&b);
		return status_set(err, ST_ERR_NOMEM, "%s: out of memory", name);
	}
	st = encode(&b, name, size, n_classes, classes, &buf, &len, err);
	builder_free(&b);
	if (st != ST_OK)
		return st;
	snprintf(label, sizeof label, "builtin:%s", name);
	return modelfile_open_buffer(buf, len, label, out, err);
}
