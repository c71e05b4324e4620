/* evaluate.h - accuracy of a network on a labelled dataset, in batches. */
#ifndef ADVEX_EVALUATE_H
#define ADVEX_EVALUATE_H

#include "dataset.h"
#include "net.h"
#include "status.h"

struct eval_result {
	int total, correct;
	int n_classes;
	int *confusion;		/* n_classes x n_classes, [true][pred]; caller frees */
	double min_prob_below;	/* fraction of images whose least likely class
				 * has probability < 1e-7 (a confident model) */
};

/* Evaluate images [0, limit) (limit <= 0: all). The net's max_batch sets
 * the batch. buf: scratch of max_batch*3*H*W floats. progress (may be NULL)
 * is called after each batch with images done and total. */
enum status evaluate_run(struct net *n, struct dataset *d, int limit,
			 float *buf, struct eval_result *r,
			 void (*progress)(int done, int total, void *user),
			 void *user, char *err);

/* The same on images [lo, hi) (a shard of a sweep). */
enum status evaluate_range(struct net *n, struct dataset *d, int lo, int hi,
			   float *buf, struct eval_result *r,
			   void (*progress)(int done, int total, void *user),
			   void *user, char *err);

#endif
