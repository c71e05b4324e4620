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
				     NULL };
static const char *const descr[] = {
	"torchvision VGG16 layout, classic head C*H*W->4096->4096->classes",
	"torchvision VGG16 layout, small head C*H*W->classes",
	"4 blocks conv3x3(16,32,64,128)+relu+maxpool, global avgpool, dense",
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
	keys[0] = "advex.format";	vals[0] = "1";
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
