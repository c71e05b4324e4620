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
	/* feature caching (train.h): node cut-1's output per image */
	int cut;		/* = o.freeze when caching, else 0 */
	size_t fs;		/* values per image at the cut */
	int n_test;		/* test images cached */
	int have_cache;		/* ftrain/ftest are filled */
	float *ftrain;		/* n_train * fs */
	float *ftest;		/* n_test * fs, NULL without a test split */
	float *fx;		/* a batch of them (max_batch * fs) */
	char note[ERR_MAX];
};

struct train_opts train_opts_default(void)
{
	struct train_opts o = {
		.epochs = 10, .batch = 32, .optim = TRAIN_SGD, .lr = 0.05f,
		.momentum = 0.9f, .weight_decay = 5e-4f, .sched = TRAIN_COSINE,
		.warmup_epochs = 1, .crop_pad = 4, .flip = 1, .seed = 1,
		.cache = 1, .cache_limit_mb = 4096,
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

/* Decide whether to train on cached outputs of the frozen body (train.h)
 * and allocate them; t->note says what was decided. Fails only for lack of
 * memory for the small batch buffer. */
static enum status plan_cache(struct trainer *t, char *err)
{
	const struct net_info *in = net_get_info(t->net);
	struct net_layer_info li;
	int f = t->o.freeze, i, n_test;
	double mib;

	if (!t->o.cache || f <= 0)
		return ST_OK;
	if (!(t->fs = net_cut_size(t->net, f))) {
		snprintf(t->note, sizeof t->note,
			 "no feature cache: nodes %d.. read tensors from below node %d "
			 "(not a clean cut of the graph); running the whole network",
			 f, f - 1);
		return ST_OK;
	}
	for (i = 0; i < f; i++) {
		net_layer(t->net, i, &li);
		if (li.op == NET_DROPOUT) {
			snprintf(t->note, sizeof t->note,
				 "no feature cache: node %d below --freeze %d is a dropout, "
				 "which draws a new mask every step", i, f);
			return ST_OK;
		}
	}
	n_test = t->test ? dataset_count(t->test) : 0;
	if (n_test && (dataset_height(t->test) != in->in_h ||
		       dataset_width(t->test) != in->in_w ||
		       dataset_n_classes(t->test) != in->n_classes ||
		       dataset_label(t->test, 0) < 0))
		return status_set(err, ST_ERR_SHAPE,
				  "%s: the test split does not match the model "
				  "(image size, classes or labels)", dataset_path(t->test));
	mib = (double)t->fs * sizeof(float) * ((double)t->n_train + n_test) /
	      (1024.0 * 1024.0);
	if (mib > (double)t->o.cache_limit_mb) {
		snprintf(t->note, sizeof t->note,
			 "no feature cache: %d+%d images x %zu values of node %d's output "
			 "take %.0f MiB, over the %zu MiB limit (--cache-limit); running "
			 "the whole network",
			 t->n_train, n_test, t->fs, f - 1, mib, t->o.cache_limit_mb);
		return ST_OK;
	}
	t->ftrain = malloc(sizeof(float) * t->fs * (size_t)t->n_train);
	t->ftest = n_test ? malloc(sizeof(float) * t->fs * (size_t)n_test) : NULL;
	t->fx = malloc(sizeof(float) * t->fs * (size_t)in->max_batch);
	if (!t->fx)
		return status_set(err, ST_ERR_NOMEM, "out of memory for the trainer");
	if (!t->ftrain || (n_test && !t->ftest)) {
		free(t->ftrain);
		free(t->ftest);
		t->ftrain = t->ftest = NULL;
		snprintf(t->note, sizeof t->note,
			 "no feature cache: cannot allocate %.0f MiB for it; running "
			 "the whole network", mib);
		return ST_OK;
	}
	t->cut = f;
	t->n_test = n_test;
	snprintf(t->note, sizeof t->note,
		 "feature cache: nodes 0..%d run once per image (%d training and "
		 "%d test images, %zu values each, %.0f MiB), then every step runs "
		 "nodes %d..%d only%s",
		 f - 1, t->n_train, n_test, t->fs, mib, f, in->n_layers - 1,
		 t->o.crop_pad || t->o.flip ?
		 "; random crop and flip are off (they cannot apply to cached "
		 "features; --no-cache keeps them)" : "");
	t->o.crop_pad = 0;
	t->o.flip = 0;
	return ST_OK;
}

const char *train_note(const struct trainer *t)
{
	return t->note;
}

enum status train_new(struct net *n, struct dataset *train,
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
		train_free(t);
		return status_set(err, ST_ERR_NOMEM, "out of memory for the trainer");
	}
	mark_decay(t);
	net_set_trainable_from(n, o->freeze);
	net_zero_grads(n);	/* from here on update() keeps them zeroed */
	if ((st = plan_cache(t, err)) != ST_OK) {
		train_free(t);
		return st;
	}
	*out = t;
	return ST_OK;
}

void train_free(struct trainer *t)
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
	free(t->ftrain);
	free(t->ftest);
	free(t->fx);
	free(t);
}

int train_epoch(const struct trainer *t)
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

/* The optimizer step. It also zeroes each gradient it has used, so that
 * the next backward accumulates from zero without a pass of its own over
 * the whole gradient block (frozen layers' gradients are never written:
 * backward stops at the first trainable node). */
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
			g[i] = 0.0f;
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
			g[i] = 0.0f;
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

	if (t->cut) {
		for (b = 0; b < nb; b++)
			memcpy(t->fx + b * t->fs,
			       t->ftrain + (size_t)t->order[first + b] * t->fs,
			       sizeof(float) * t->fs);
		z = net_forward_range(t->net, t->fx, nb, t->cut, in->n_layers - 1);
	} else {
		for (b = 0; b < nb; b++) {
			st = dataset_image(t->train, t->order[first + b], t->img, err);
			if (st != ST_OK)
				return st;
			augment(t, r, t->img, t->x + b * t->npix, in->in_h, in->in_w);
		}
		z = net_forward(t->net, t->x, nb);
	}
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
	net_backward(t->net, t->dz, NULL);	/* update() left the grads at 0 */
	update(t, lr);
	return ST_OK;
}

/* Node cut-1's output for images [0, count) of d into feats. */
static enum status cache_split(struct trainer *t, struct dataset *d, int count,
			       float *feats, struct train_progress *p, int done,
			       train_cb cb, void *user, int *stopped, char *err)
{
	const struct net_info *in = net_get_info(t->net);
	int i, b, nb;
	const float *f;
	enum status st;

	for (i = 0; i < count; i += nb) {
		nb = count - i < in->max_batch ? count - i : in->max_batch;
		for (b = 0; b < nb; b++)
			if ((st = dataset_image(d, i + b, t->x + b * t->npix, err)) != ST_OK)
				return st;
		f = net_forward_range(t->net, t->x, nb, 0, t->cut - 1);
		memcpy(feats + (size_t)i * t->fs, f, sizeof(float) * t->fs * (size_t)nb);
		p->step = done + i + nb;
		p->elapsed_s = clock_ms() / 1e3 - p->cache_s;
		p->eta_s = p->elapsed_s / p->step * (p->steps - p->step);
		if (cb && cb(p, user)) {
			*stopped = 1;
			return ST_OK;
		}
	}
	return ST_OK;
}

/* Fill the cache. The body runs exactly as in an uncached step (im2col,
 * what training nets use), so that the cached features are the bytes the
 * uncached path computes and training on them gives the same model.
 * Winograd would build the cache faster, but its rounding differs, and
 * SGD over a few hundred steps on a nearly tied new head magnified that to
 * half the size of the update (measured on VGG16 at 5,000 images). */
static enum status build_cache(struct trainer *t, train_cb cb, void *user,
			       int *stopped, double *secs, char *err)
{
	struct train_progress p = { 0 };
	enum status st;
	double t0 = clock_ms() / 1e3;

	p.epoch = t->epoch + 1;
	p.epochs = t->o.epochs;
	p.caching = 1;
	p.steps = t->n_train + t->n_test;
	p.test_acc = -1;
	p.cache_s = t0;		/* start time, for cache_split */
	net_set_training(t->net, 0, 0);
	st = cache_split(t, t->train, t->n_train, t->ftrain, &p, 0, cb, user,
			 stopped, err);
	if (st == ST_OK && !*stopped && t->n_test)
		st = cache_split(t, t->test, t->n_test, t->ftest, &p, t->n_train,
				 cb, user, stopped, err);
	*secs = clock_ms() / 1e3 - t0;
	if (st == ST_OK && !*stopped)
		t->have_cache = 1;
	return st;
}

/* Test accuracy on the cached test features. */
static double cached_test_acc(struct trainer *t)
{
	const struct net_info *in = net_get_info(t->net);
	int i, b, nb, k = in->n_classes, correct = 0;
	const float *z;

	for (i = 0; i < t->n_test; i += nb) {
		nb = t->n_test - i < in->max_batch ? t->n_test - i : in->max_batch;
		z = net_forward_range(t->net, t->ftest + (size_t)i * t->fs, nb,
				      t->cut, in->n_layers - 1);
		for (b = 0; b < nb; b++) {
			int c, arg = 0;

			for (c = 1; c < k; c++)
				if (z[b * k + c] > z[b * k + arg])
					arg = c;
			correct += arg == dataset_label(t->test, i + b);
		}
	}
	return t->n_test ? (double)correct / t->n_test : 0.0;
}

enum status train_run_epoch(struct trainer *t, train_cb cb, void *user,
			      int *stopped, char *err)
{
	struct train_progress p = { 0 };
	int steps = (t->n_train + t->o.batch - 1) / t->o.batch, s, correct = 0;
	double loss = 0.0, t0 = clock_ms() / 1e3;
	struct eval_result er;
	struct rng r;
	enum status st;
	double cache_s = 0.0;

	*stopped = 0;
	if (t->cut && !t->have_cache) {
		st = build_cache(t, cb, user, stopped, &cache_s, err);
		if (st != ST_OK || *stopped)
			return st;
		t0 = clock_ms() / 1e3;	/* the epoch's time is the training's */
	}
	/* per-epoch seeds, so that a resumed run sees the same order */
	rng_seed(&r, t->o.seed * 1000003u + (uint64_t)t->epoch);
	shuffle(t, &r);
	net_set_training(t->net, 1, t->o.seed ^ ((uint64_t)t->epoch << 32));
	p.epoch = t->epoch + 1;
	p.epochs = t->o.epochs;
	p.steps = steps;
	p.test_acc = -1;
	p.cache_s = cache_s;
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
	if (t->cut && t->test) {
		p.test_acc = cached_test_acc(t);
	} else if (t->test) {
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

enum status train_save(const struct trainer *t, const char *path, char *err)
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

enum status train_load_state(struct trainer *t, const char *path, char *err)
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
