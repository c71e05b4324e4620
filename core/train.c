/* train.c - mini-batch training (see train.h). */
#include "train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evaluate.h"
#include "loss.h"
#include "modelfile.h"
#include "clock.h"
#include "rng.h"

struct trainer {
	struct net *net;
	struct dataset *train, *test;
	struct train_opts o;
	int n_train;		/* images used per epoch */
	int epoch;		/* epochs completed */
	int *order;		/* n_train shuffled indices */
	float *x;		/* batch of images (max_batch * npix) */
	float *img;		/* one image before augmentation */
	float *dz;		/* batch * classes */
	float *m, *v;		/* optimizer state: SGD velocity / Adam moments */
	unsigned char *decay;	/* 1 where weight decay applies (weights) */
	size_t n_params, npix;
	size_t first_param;	/* parameters below belong to frozen layers */
	long adam_t;		/* Adam step count (bias correction) */
};

struct train_opts train_opts_default(void)
{
	struct train_opts o = {
		.epochs = 10, .batch = 32, .optim = TRAIN_SGD, .lr = 0.05f,
		.momentum = 0.9f, .weight_decay = 5e-4f, .sched = TRAIN_COSINE,
		.warmup_epochs = 1, .crop_pad = 4, .flip = 1, .seed = 1,
	};
	return o;
}


/* Which parameters get weight decay (weights, not biases), and where the
 * trainable ones start: parameters are laid out in layer order, so frozen
 * layers' are a prefix that the optimizer must not touch at all (not even
 * by decay). */
static void mark_decay(struct trainer *t)
{
	struct net_param_view v;
	float *base = net_params(t->net, NULL);
	int i;

	t->first_param = t->n_params;
	for (i = 0; i < net_get_info(t->net)->n_layers; i++) {
		net_layer_params(t->net, i, &v);
		if (!v.nw)
			continue;
		memset(t->decay + (v.w - base), 1, v.nw);
		if (i >= t->o.freeze && (size_t)(v.w - base) < t->first_param)
			t->first_param = (size_t)(v.w - base);
	}
}

static enum status check_opts(const struct trainer *t, char *err)
{
	const struct net_info *in = net_get_info(t->net);
	const struct train_opts *o = &t->o;

	if (o->epochs < 1 || o->batch < 1 || o->batch > in->max_batch)
		return status_set(err, ST_ERR_ARG,
				  "epochs must be >= 1 and batch 1..%d", in->max_batch);
	if (!(o->lr > 0.0f) || o->momentum < 0.0f || o->momentum >= 1.0f ||
	    o->weight_decay < 0.0f)
		return status_set(err, ST_ERR_ARG,
				  "need lr > 0, 0 <= momentum < 1, weight decay >= 0");
	if (o->freeze < 0 || o->freeze >= in->n_layers)
		return status_set(err, ST_ERR_ARG,
				  "--freeze %d: the model has layers 0..%d", o->freeze,
				  in->n_layers - 1);
	if (!net_param_grads(t->net, NULL))
		return status_set(err, ST_ERR_ARG,
				  "the network was created without parameter gradients");
	if (dataset_n_classes(t->train) != in->n_classes ||
	    dataset_height(t->train) != in->in_h ||
	    dataset_width(t->train) != in->in_w)
		return status_set(err, ST_ERR_SHAPE,
				  "%s: %d classes of %dx%d images, but the model has %d classes of %dx%d",
				  dataset_path(t->train), dataset_n_classes(t->train),
				  dataset_width(t->train), dataset_height(t->train),
				  in->n_classes, in->in_w, in->in_h);
	if (dataset_count(t->train) < 1 || dataset_label(t->train, 0) < 0)
		return status_set(err, ST_ERR_ARG, "%s: split '%s' has no labelled images",
				  dataset_path(t->train), dataset_split(t->train));
	return ST_OK;
}

enum status trainer_new(struct net *n, struct dataset *train,
			struct dataset *test, const struct train_opts *o,
			struct trainer **out, char *err)
{
	const struct net_info *in = net_get_info(n);
	struct trainer *t = calloc(1, sizeof *t);
	enum status st;

	*out = NULL;
	if (!t)
		return status_set(err, ST_ERR_NOMEM, "out of memory");
	t->net = n;
	t->train = train;
	t->test = test;
	t->o = *o;
	if ((st = check_opts(t, err)) != ST_OK) {
		free(t);
		return st;
	}
	t->n_train = dataset_count(train);
	if (o->limit > 0 && o->limit < t->n_train)
		t->n_train = o->limit;
	net_params(n, &t->n_params);
	t->npix = (size_t)3 * in->in_h * in->in_w;
	t->order = malloc(sizeof *t->order * (size_t)t->n_train);
	t->x = malloc(sizeof *t->x * t->npix * (size_t)in->max_batch);
	t->img = malloc(sizeof *t->img * t->npix);
	t->dz = malloc(sizeof *t->dz * (size_t)in->n_classes * (size_t)in->max_batch);
	t->m = calloc(t->n_params, sizeof *t->m);
	t->v = o->optim == TRAIN_ADAM ? calloc(t->n_params, sizeof *t->v) : NULL;
	t->decay = calloc(t->n_params, 1);
	if (!t->order || !t->x || !t->img || !t->dz || !t->m || !t->decay ||
	    (o->optim == TRAIN_ADAM && !t->v)) {
		trainer_free(t);
		return status_set(err, ST_ERR_NOMEM, "out of memory for the trainer");
	}
	mark_decay(t);
	net_set_trainable_from(n, o->freeze);
	*out = t;
	return ST_OK;
}

void trainer_free(struct trainer *t)
{
	if (!t)
		return;
	free(t->order);
	free(t->x);
	free(t->img);
	free(t->dz);
	free(t->m);
	free(t->v);
	free(t->decay);
	free(t);
}

int trainer_epoch(const struct trainer *t)
{
	return t->epoch;
}

/* Learning rate at fractional epoch e (0-based). */
static float lr_at(const struct train_opts *o, double e)
{
	double f, T = o->epochs - o->warmup_epochs;

	if (e < o->warmup_epochs)
		return (float)(o->lr * (e + 1e-3) / o->warmup_epochs);
	f = T > 0 ? (e - o->warmup_epochs) / T : 1.0;
	switch (o->sched) {
	case TRAIN_COSINE:
		return (float)(o->lr * 0.5 * (1.0 + cos(M_PI * f)));
	case TRAIN_STEP:
		return o->lr * (f < 0.5 ? 1.0f : f < 0.75 ? 0.1f : 0.01f);
	case TRAIN_CONST:
		break;
	}
	return o->lr;
}

/* Random crop (shift within a zero-padded frame) and horizontal flip. */
static void augment(const struct trainer *t, struct rng *r, const float *src,
		    float *dst, int h, int w)
{
	int p = t->o.crop_pad, c, y, x;
	int dy = p ? (int)(rng_next(r) % (uint64_t)(2 * p + 1)) - p : 0;
	int dx = p ? (int)(rng_next(r) % (uint64_t)(2 * p + 1)) - p : 0;
	int flip = t->o.flip && (rng_next(r) >> 63);

	for (c = 0; c < 3; c++)
		for (y = 0; y < h; y++)
			for (x = 0; x < w; x++) {
				int sy = y + dy, sx = (flip ? w - 1 - x : x) + dx;

				dst[(c * h + y) * w + x] =
					sy < 0 || sy >= h || sx < 0 || sx >= w ? 0.0f :
					src[(c * h + sy) * w + sx];
			}
}

static void shuffle(struct trainer *t, struct rng *r)
{
	int i;

	for (i = 0; i < t->n_train; i++)
		t->order[i] = i;
	for (i = t->n_train - 1; i > 0; i--) {
		int j = (int)(rng_next(r) % (uint64_t)(i + 1)), k = t->order[i];

		t->order[i] = t->order[j];
		t->order[j] = k;
	}
}

static void update(struct trainer *t, float lr)
{
	float *p = net_params(t->net, NULL), *g = net_param_grads(t->net, NULL);
	const struct train_opts *o = &t->o;
	size_t i;

	if (o->optim == TRAIN_SGD) {
		for (i = t->first_param; i < t->n_params; i++) {
			float gi = g[i] + (t->decay[i] ? o->weight_decay * p[i] : 0.0f);

			t->m[i] = o->momentum * t->m[i] + gi;
			p[i] -= lr * t->m[i];
		}
		return;
	}
	/* Adam with decoupled weight decay (AdamW) */
	t->adam_t++;
	{
		const float b1 = o->momentum ? o->momentum : 0.9f, b2 = 0.999f;
		float c1 = 1.0f - powf(b1, (float)t->adam_t);
		float c2 = 1.0f - powf(b2, (float)t->adam_t);

		for (i = t->first_param; i < t->n_params; i++) {
			t->m[i] = b1 * t->m[i] + (1 - b1) * g[i];
			t->v[i] = b2 * t->v[i] + (1 - b2) * g[i] * g[i];
			p[i] -= lr * ((t->m[i] / c1) / (sqrtf(t->v[i] / c2) + 1e-8f) +
				      (t->decay[i] ? o->weight_decay * p[i] : 0.0f));
		}
	}
}

/* One optimizer step on images order[first .. first+nb). */
static enum status train_step(struct trainer *t, struct rng *r, int first,
			      int nb, float lr, double *loss, int *correct,
			      char *err)
{
	const struct net_info *in = net_get_info(t->net);
	int b, k = in->n_classes;
	const float *z;
	enum status st;

	for (b = 0; b < nb; b++) {
		st = dataset_image(t->train, t->order[first + b], t->img, err);
		if (st != ST_OK)
			return st;
		augment(t, r, t->img, t->x + b * t->npix, in->in_h, in->in_w);
	}
	z = net_forward(t->net, t->x, nb);
	for (b = 0; b < nb; b++) {
		int y = dataset_label(t->train, t->order[first + b]), i, arg = 0;
		float *dz = t->dz + b * k;

		*loss += loss_ce(k, z + b * k, y, NULL, dz);
		for (i = 1; i < k; i++)
			if (z[b * k + i] > z[b * k + arg])
				arg = i;
		*correct += arg == y;
		for (i = 0; i < k; i++)
			dz[i] /= (float)nb;	/* mean loss over the batch */
	}
	net_zero_grads(t->net);
	net_backward(t->net, t->dz, NULL);
	update(t, lr);
	return ST_OK;
}

enum status trainer_run_epoch(struct trainer *t, train_cb cb, void *user,
			      int *stopped, char *err)
{
	struct train_progress p = { 0 };
	int steps = (t->n_train + t->o.batch - 1) / t->o.batch, s, correct = 0;
	double loss = 0.0, t0 = clock_ms() / 1e3;
	struct eval_result er;
	struct rng r;
	enum status st;

	*stopped = 0;
	/* per-epoch seeds, so that a resumed run sees the same order */
	rng_seed(&r, t->o.seed * 1000003u + (uint64_t)t->epoch);
	shuffle(t, &r);
	net_set_training(t->net, 1, t->o.seed ^ ((uint64_t)t->epoch << 32));
	p.epoch = t->epoch + 1;
	p.epochs = t->o.epochs;
	p.steps = steps;
	p.test_acc = -1;
	for (s = 0; s < steps; s++) {
		int first = s * t->o.batch;
		int nb = t->n_train - first < t->o.batch ? t->n_train - first : t->o.batch;

		p.lr = lr_at(&t->o, t->epoch + (double)s / steps);
		st = train_step(t, &r, first, nb, p.lr, &loss, &correct, err);
		if (st != ST_OK) {
			net_set_training(t->net, 0, 0);
			return st;
		}
		p.step = s + 1;
		p.loss = loss / (first + nb);
		p.train_acc = (double)correct / (first + nb);
		p.elapsed_s = clock_ms() / 1e3 - t0;
		p.eta_s = p.elapsed_s / (s + 1) * (steps - s - 1);
		if (cb && cb(&p, user)) {
			net_set_training(t->net, 0, 0);
			*stopped = 1;
			return ST_OK;
		}
	}
	net_set_training(t->net, 0, 0);
	t->epoch++;
	if (t->test) {
		st = evaluate_run(t->net, t->test, 0, t->x, &er, NULL, NULL, err);
		if (st != ST_OK)
			return st;
		p.test_acc = er.total ? (double)er.correct / er.total : 0.0;
		free(er.confusion);
	}
	p.elapsed_s = clock_ms() / 1e3 - t0;
	p.eta_s = 0;
	if (cb)
		cb(&p, user);
	return ST_OK;
}

enum status trainer_save(const struct trainer *t, const char *path, char *err)
{
	char state[4096], epoch[32], params[32], seed[32];
	const char *k[4], *v[4];
	struct mf_out_tensor ts[2];
	enum status st;
	int nt = 1;

	snprintf(epoch, sizeof epoch, "%d", t->epoch);
	k[0] = "advex.train.epoch";
	v[0] = epoch;
	st = net_save(t->net, path, k, v, 1, err);
	if (st != ST_OK)
		return st;
	snprintf(state, sizeof state, "%s.state", path);
	snprintf(params, sizeof params, "%zu", t->n_params);
	snprintf(seed, sizeof seed, "%llu", (unsigned long long)t->adam_t);
	memset(ts, 0, sizeof ts);
	ts[0].name = "optim.m";
	ts[0].ndim = 1;
	ts[0].shape[0] = (int64_t)t->n_params;
	ts[0].data = t->m;
	if (t->v) {
		ts[1] = ts[0];
		ts[1].name = "optim.v";
		ts[1].data = t->v;
		nt = 2;
	}
	k[1] = "advex.train.optim";
	v[1] = t->o.optim == TRAIN_ADAM ? "adam" : "sgd";
	k[2] = "advex.train.params";
	v[2] = params;
	k[3] = "advex.train.adam_t";
	v[3] = seed;
	return modelfile_write(state, ts, nt, k, v, 4, err);
}

enum status trainer_load_state(struct trainer *t, const char *path, char *err)
{
	char state[4096];
	struct modelfile *mf;
	const struct mf_tensor *m, *v;
	const char *e, *o, *np, *at;
	enum status st;

	snprintf(state, sizeof state, "%s.state", path);
	if ((st = modelfile_open(state, &mf, err)) != ST_OK)
		return st;
	e = modelfile_meta(mf, "advex.train.epoch");
	o = modelfile_meta(mf, "advex.train.optim");
	np = modelfile_meta(mf, "advex.train.params");
	at = modelfile_meta(mf, "advex.train.adam_t");
	m = modelfile_find(mf, "optim.m");
	v = modelfile_find(mf, "optim.v");
	if (!e || !o || !np || !m || strtoull(np, NULL, 10) != t->n_params ||
	    m->count != t->n_params ||
	    strcmp(o, t->o.optim == TRAIN_ADAM ? "adam" : "sgd") ||
	    (t->v && (!v || v->count != t->n_params))) {
		modelfile_close(mf);
		return status_set(err, ST_ERR_FORMAT,
				  "%s: not a training state for this model and optimizer", state);
	}
	modelfile_read_f32(m, t->m);
	if (t->v)
		modelfile_read_f32(v, t->v);
	t->epoch = atoi(e);
	t->adam_t = at ? atol(at) : 0;
	modelfile_close(mf);
	if (t->epoch < 0 || t->epoch > t->o.epochs)
		return status_set(err, ST_ERR_FORMAT, "%s: epoch %d out of range 0..%d",
				  state, t->epoch, t->o.epochs);
	return ST_OK;
}
