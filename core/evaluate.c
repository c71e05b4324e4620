/* evaluate.c - batched accuracy and confusion matrix (see evaluate.h). */
#include "evaluate.h"

#include <math.h>
#include <stdlib.h>

/* Predicted class of one output row; also whether its smallest softmax
 * probability is below 1e-7 (computed from logits, stable). */
static int row_pred(const float *z, int k, int probs, int *tiny)
{
	int i, arg = 0;
	double lse = 0.0, zmin = z[0];

	for (i = 1; i < k; i++) {
		if (z[i] > z[arg])
			arg = i;
		if (z[i] < zmin)
			zmin = z[i];
	}
	if (probs) {
		*tiny = zmin < 1e-7;
		return arg;
	}
	for (i = 0; i < k; i++)
		lse += exp((double)z[i] - z[arg]);
	lse = z[arg] + log(lse);
	*tiny = zmin - lse < log(1e-7);
	return arg;
}

enum status evaluate_run(struct net *n, struct dataset *d, int limit,
			 float *buf, struct eval_result *r,
			 void (*progress)(int done, int total, void *user),
			 void *user, char *err)
{
	int total = dataset_count(d);

	if (limit > 0 && limit < total)
		total = limit;
	return evaluate_range(n, d, 0, total, buf, r, progress, user, err);
}

enum status evaluate_range(struct net *n, struct dataset *d, int lo, int hi,
			   float *buf, struct eval_result *r,
			   void (*progress)(int done, int total, void *user),
			   void *user, char *err)
{
	const struct net_info *in = net_get_info(n);
	size_t npix = (size_t)3 * in->in_h * in->in_w;
	int total, i, b, tiny_count = 0;
	enum status st;

	r->confusion = NULL;
	if (lo < 0 || hi < lo || hi > dataset_count(d))
		return status_set(err, ST_ERR_ARG, "%s: images %d..%d: outside 0..%d",
				  dataset_path(d), lo, hi - 1, dataset_count(d) - 1);
	total = hi - lo;
	if (dataset_n_classes(d) != in->n_classes)
		return status_set(err, ST_ERR_SHAPE,
				  "%s: %d classes, but the model has %d",
				  dataset_path(d), dataset_n_classes(d), in->n_classes);
	if (dataset_height(d) != in->in_h || dataset_width(d) != in->in_w)
		return status_set(err, ST_ERR_SHAPE,
				  "%s: images are %dx%d, but the model takes %dx%d",
				  dataset_path(d), dataset_width(d), dataset_height(d),
				  in->in_w, in->in_h);
	if (total > 0 && dataset_label(d, lo) < 0)
		return status_set(err, ST_ERR_ARG, "%s: split '%s' has no labels",
				  dataset_path(d), dataset_split(d));
	r->confusion = calloc((size_t)in->n_classes * in->n_classes, sizeof(int));
	if (!r->confusion)
		return status_set(err, ST_ERR_NOMEM, "out of memory");
	r->n_classes = in->n_classes;
	r->total = total;
	r->correct = 0;
	for (i = 0; i < total; i += in->max_batch) {
		int nb = total - i < in->max_batch ? total - i : in->max_batch;
		const float *z;

		for (b = 0; b < nb; b++)
			if ((st = dataset_image(d, lo + i + b, buf + b * npix, err)) != ST_OK)
				return st;
		z = net_forward(n, buf, nb);
		for (b = 0; b < nb; b++) {
			int tiny, p = row_pred(z + b * in->n_classes, in->n_classes,
					       in->outputs_probs, &tiny);
			int y = dataset_label(d, lo + i + b);

			r->confusion[y * in->n_classes + p]++;
			r->correct += p == y;
			tiny_count += tiny;
		}
		if (progress)
			progress(i + nb, total, user);
	}
	r->min_prob_below = total ? (double)tiny_count / total : 0.0;
	return ST_OK;
}
