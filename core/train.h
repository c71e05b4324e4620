/* train.h - training a network on CPU: mini-batch SGD with momentum and
 * weight decay (or Adam), cross-entropy on the logits, random crop and
 * horizontal flip, a cosine or step learning-rate schedule, test accuracy
 * each epoch, and a checkpoint that --resume continues from.
 *
 * The trainer owns its batch buffers and optimizer state, sized once; an
 * epoch reads images on demand from the dataset and allocates nothing.
 */
#ifndef ADVEX_TRAIN_H
#define ADVEX_TRAIN_H

#include <stdint.h>

#include "dataset.h"
#include "net.h"
#include "status.h"

enum train_optim { TRAIN_SGD, TRAIN_ADAM };
enum train_sched { TRAIN_COSINE, TRAIN_STEP, TRAIN_CONST };

struct train_opts {
	int epochs;		/* total epochs */
	int batch;		/* images per step; the net needs max_batch >= it */
	enum train_optim optim;
	float lr;		/* peak learning rate */
	float momentum;		/* SGD momentum (Adam: beta1) */
	float weight_decay;	/* L2 on weights (not biases), decoupled for Adam */
	enum train_sched sched;
	int warmup_epochs;	/* linear warm-up before the schedule */
	int crop_pad;		/* random crop after zero-padding by this (0: off) */
	int flip;		/* random horizontal flip */
	uint64_t seed;		/* shuffling, augmentation, dropout */
	int freeze;		/* layers below this index are not trained */
	int limit;		/* use only the first N training images (0: all) */
	int cache;		/* with freeze: train the head on the frozen
				   body's output, computed once (see below) */
	size_t cache_limit_mb;	/* most memory the cached outputs may take */
};

/* Defaults: SGD, lr 0.05, momentum 0.9, wd 5e-4, cosine, batch 32,
 * crop pad 4, flip on, seed 1, cache on with a 4096 MiB limit.
 *
 * Feature caching: when freeze > 0, the graph has a clean cut there
 * (net_cut_size), no node below it is a dropout, and the outputs of node
 * freeze-1 for the training and test images fit in cache_limit_mb, the
 * first epoch computes them once (nodes 0..freeze-1, with the same kernels
 * as an uncached step) and every epoch then runs only nodes freeze.. on
 * them: the same steps as without the cache, minus the frozen body's
 * forward, so the same model, byte for byte. Random crop and flip cannot apply to cached
 * outputs, so they are turned off (train_note says so); cache 0 keeps
 * them and runs the whole network every step. */
struct train_opts train_opts_default(void);

struct train_progress {
	int epoch, epochs;	/* 1-based epoch */
	int step, steps;	/* 1-based step within the epoch */
	double loss;		/* running mean training loss this epoch */
	double train_acc;	/* running training accuracy this epoch */
	double test_acc;	/* after the epoch (-1 while training) */
	float lr;
	double elapsed_s;	/* since the epoch started */
	double eta_s;		/* estimated seconds to the end of the epoch */
	int caching;		/* 1: computing the cached body outputs;
				   step/steps count images, loss and acc 0 */
	double cache_s;		/* seconds spent computing them (this epoch) */
};

/* Called after every step and once more at the end of each epoch with
 * test_acc set. A non-zero return stops training (the epoch is not saved). */
typedef int (*train_cb)(const struct train_progress *p, void *user);

struct trainer;

/* n must have been created with want_param_grads and max_batch >= batch.
 * test may be NULL (no test accuracy). */
enum status train_new(struct net *n, struct dataset *train,
			struct dataset *test, const struct train_opts *o,
			struct trainer **out, char *err);
void train_free(struct trainer *t);

/* What train_new decided about feature caching, in one sentence for the
 * user ("" when freeze is 0 or caching was not asked for); owned by t. */
const char *train_note(const struct trainer *t);

/* Epochs already done (after train_load_state, the checkpoint's). */
int train_epoch(const struct trainer *t);

/* Run the next epoch and evaluate on the test set. *stopped is set when the
 * callback asked to stop. */
enum status train_run_epoch(struct trainer *t, train_cb cb, void *user,
			      int *stopped, char *err);

/* Checkpoint: the model to path (a normal advex model file, loadable by
 * every command) and the optimizer state and epoch to path + ".state". */
enum status train_save(const struct trainer *t, const char *path, char *err);
/* Read path + ".state" written by train_save for this same network. */
enum status train_load_state(struct trainer *t, const char *path, char *err);

#endif
