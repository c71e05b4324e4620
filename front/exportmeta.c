/* exportmeta.c - the tEXt chunks of an exported image (see exportmeta.h). */
#include "exportmeta.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "image.h"
#include "loss.h"

void exportmeta_fill(struct exportmeta *m, const struct attack_params *p,
		     int iters, const char *target, const char *true_label,
		     const char *source, const char *model, int64_t run)
{
	static const char *const keys[EXPORTMETA_N] = {
		"advex.attack", "advex.loss", "advex.norm", "advex.eps",
		"advex.alpha", "advex.iterations", "advex.target",
		"advex.true_label", "advex.source", "advex.model", "advex.run"
	};
	double levels = p->eps * 255.0;
	int i;

	if (levels >= 1.0 && levels < 256.0 && fabs(levels - nearbyint(levels)) < 1e-6)
		snprintf(m->eps, sizeof m->eps, "%.9g (%d/255)", p->eps, (int)nearbyint(levels));
	else
		snprintf(m->eps, sizeof m->eps, "%.9g", p->eps);
	snprintf(m->alpha, sizeof m->alpha, "%.9g", p->alpha);
	snprintf(m->iters, sizeof m->iters, "%d", iters);
	snprintf(m->run, sizeof m->run, "%lld", (long long)run);
	for (i = 0; i < EXPORTMETA_N; i++)
		m->keys[i] = keys[i];
	m->vals[0] = attack_kind_name(p->kind);
	m->vals[1] = loss_mode_name(p->loss.mode);
	m->vals[2] = attack_norm_name(p->norm);
	m->vals[3] = m->eps;
	m->vals[4] = m->alpha;
	m->vals[5] = m->iters;
	m->vals[6] = target ? target : "(untargeted)";
	m->vals[7] = true_label ? true_label : "(unknown)";
	m->vals[8] = source;
	m->vals[9] = model;
	m->vals[10] = m->run;
	m->n = EXPORTMETA_N;
}

enum status exportmeta_recheck(struct net *n, const char *path,
			       const struct attack_params *p, int label, int *pred,
			       int *success, char *err)
{
	const struct net_info *in = net_get_info(n);
	float *pix = malloc(sizeof(float) * 3 * (size_t)in->in_h * in->in_w);
	enum status st;
	int best;

	if (!pix)
		return status_set(err, ST_ERR_NOMEM, "out of memory to read %s back", path);
	if (in->in_c != 3)
		st = status_set(err, ST_ERR_ARG, "%s: the model takes %d channels, a PNG has 3",
				path, in->in_c);
	else
		st = image_load_png(path, in->in_h, in->in_w, pix, err);
	if (st == ST_OK) {
		best = loss_argmax(in->n_classes, net_forward(n, pix, 1));
		*pred = best;
		*success = p->target >= 0 ? best == p->target : best != label;
	}
	free(pix);
	return st;
}
