/* attack_dump.c - run advex's attacks through the public core/attack.h API
 * on raw images and write what tests/test_attacks_ref.py compares with its
 * PyTorch references: every step, the iterates, the results.
 *
 * usage: attack_dump MODEL CONV BATCH KIND NORM EPS ITERS SEED TARGET
 *                    RESTARTS QUANTIZE DUMP_X IN OUT
 *   IN:   raw float32 pixels (N,3,H,W) in [0,1]
 *   TARGET -1: untargeted (true label = the prediction at x0)
 *   BATCH 1: attack_step, one image after the other; > 1: attack_batch
 *         with that many slots, images in lockstep
 *   OUT.txt: "step IMG ITER LOSS PRED SUCCESS QUERIES HAS_GRAD" per step,
 *         "final IMG SUCCESS PRED LOSS PERT_LINF PERT_L2 QUERIES" per image
 *   OUT.res: raw float32 (N,3,H,W): attack_x_result of each image
 *   OUT.x (DUMP_X 1, BATCH 1): raw float32, per step the point evaluated
 *         (x_adv before attack_step), image after image
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attack.h"
#include "blas.h"
#include "modelfile.h"
#include "net.h"
#include "status.h"

struct dump {
	FILE *txt, *xf;
	size_t px;
};

static void put_step(struct dump *d, int img, const struct attack_report *r)
{
	fprintf(d->txt, "step %d %d %.17g %d %d %ld %d\n", img, r->iter, r->loss, r->pred,
		r->success, r->queries, r->has_grad);
}

static void put_final(struct dump *d, int img, const struct attack_report *r)
{
	fprintf(d->txt, "final %d %d %d %.17g %.9g %.9g %ld\n", img, r->success, r->pred,
		r->loss, r->pert_linf, r->pert_l2, r->queries);
}

static int run_single(struct net *n, const struct attack_params *p, const float *x,
		      int count, struct dump *d, float *res)
{
	struct attack_report r;
	struct attack *a;
	char err[512];
	int i, fin;

	if (attack_new(n, &a, err) != ST_OK)
		return fprintf(stderr, "attack_dump: %s\n", err), 1;
	for (i = 0; i < count; i++) {
		if (attack_reset(a, x + (size_t)i * d->px, p, err) != ST_OK)
			return fprintf(stderr, "attack_dump: %s\n", err), 1;
		do {
			if (d->xf && fwrite(attack_x_adv(a), sizeof(float), d->px, d->xf) != d->px)
				return perror("attack_dump"), 1;
			fin = attack_step(a, &r);
			put_step(d, i, &r);
		} while (fin == 0);
		attack_evaluate(a, &r);
		put_final(d, i, &r);
		memcpy(res + (size_t)i * d->px, attack_x_result(a), sizeof(float) * d->px);
	}
	attack_free(a);
	return 0;
}

static int run_batch(struct net *n, const struct attack_params *p, const float *x,
		     int count, int slots, struct dump *d, float *res)
{
	struct attack_report *reps = calloc((size_t)slots, sizeof *reps);
	int *img = calloc((size_t)slots, sizeof *img), next = 0, busy, s;
	struct attack_batch *b;
	char err[512];

	if (!reps || !img || attack_batch_new(n, slots, &b, err) != ST_OK)
		return fprintf(stderr, "attack_dump: batch\n"), 1;
	for (s = 0; s < slots; s++)
		img[s] = -1;
	do {
		for (s = 0; s < slots; s++) {
			struct attack *a = attack_batch_attack(b, s);

			if (attack_batch_op(b, s) == ATTACK_OP_EVALUATE) {
				put_final(d, img[s], &reps[s]);
				memcpy(res + (size_t)img[s] * d->px, attack_x_result(a),
				       sizeof(float) * d->px);
				attack_batch_set_op(b, s, ATTACK_OP_NONE, err);
			} else if (attack_batch_op(b, s) == ATTACK_OP_STEP) {
				put_step(d, img[s], &reps[s]);
				if (reps[s].finished)
					attack_batch_set_op(b, s, ATTACK_OP_EVALUATE, err);
			}
			if (attack_batch_op(b, s) == ATTACK_OP_NONE && next < count) {
				img[s] = next;
				if (attack_reset(a, x + (size_t)next++ * d->px, p, err) != ST_OK)
					return fprintf(stderr, "attack_dump: %s\n", err), 1;
				attack_batch_set_op(b, s, ATTACK_OP_STEP, err);
			}
		}
		busy = attack_batch_step(b, reps);
	} while (busy);
	attack_batch_free(b);
	free(reps);
	free(img);
	return 0;
}

int main(int argc, char **argv)
{
	char err[512], path[4096];
	struct attack_params p = attack_params_default();
	struct dump d = { NULL, NULL, 0 };
	struct modelfile *mf;
	struct net *n;
	const struct net_info *in;
	int batch, count, rc;
	long bytes;
	float *x, *res;
	FILE *f;

	if (argc != 15) {
		fprintf(stderr, "usage: attack_dump MODEL CONV BATCH KIND NORM EPS ITERS SEED "
			"TARGET RESTARTS QUANTIZE DUMP_X IN OUT\n");
		return 2;
	}
	batch = atoi(argv[3]);
	if (batch < 1 || attack_kind_parse(argv[4], &p.kind, err) != ST_OK ||
	    attack_norm_parse(argv[5], &p.norm, err) != ST_OK)
		return fprintf(stderr, "attack_dump: bad arguments\n"), 2;
	p.eps = atof(argv[6]);
	p.alpha = p.eps;
	p.iters = atoi(argv[7]);
	p.seed = strtoull(argv[8], NULL, 10);
	p.target = atoi(argv[9]);
	p.restarts = atoi(argv[10]);
	p.quantize = atoi(argv[11]);
	blas_set_threads(1);
	if (modelfile_open(argv[1], &mf, err) != ST_OK ||
	    net_create(mf, batch, 0, 1, &n, err) != ST_OK)
		return fprintf(stderr, "attack_dump: %s\n", err), 1;
	modelfile_close(mf);
	if (strcmp(argv[2], "auto") &&
	    net_set_conv_mode(n, !strcmp(argv[2], "im2col") ? NET_CONV_IM2COL :
			      NET_CONV_WINOGRAD, err) != ST_OK)
		return fprintf(stderr, "attack_dump: %s\n", err), 1;
	in = net_get_info(n);
	d.px = (size_t)in->in_c * in->in_h * in->in_w;
	if (!(f = fopen(argv[13], "rb")))
		return perror(argv[13]), 1;
	fseek(f, 0, SEEK_END);
	bytes = ftell(f);
	rewind(f);
	count = (int)(bytes / (long)(d.px * sizeof(float)));
	x = malloc((size_t)bytes);
	res = malloc((size_t)bytes);
	if (!x || !res || count < 1 || fread(x, 1, (size_t)bytes, f) != (size_t)bytes)
		return fprintf(stderr, "attack_dump: cannot read %s\n", argv[13]), 1;
	fclose(f);
	snprintf(path, sizeof path, "%s.txt", argv[14]);
	if (!(d.txt = fopen(path, "w")))
		return perror(path), 1;
	snprintf(path, sizeof path, "%s.x", argv[14]);
	if (atoi(argv[12]) && batch == 1 && !(d.xf = fopen(path, "wb")))
		return perror(path), 1;
	rc = batch == 1 ? run_single(n, &p, x, count, &d, res) :
	     run_batch(n, &p, x, count, batch, &d, res);
	snprintf(path, sizeof path, "%s.res", argv[14]);
	if (!rc && (!(f = fopen(path, "wb")) ||
		    fwrite(res, 1, (size_t)bytes, f) != (size_t)bytes || fclose(f)))
		return perror(path), 1;
	if (fclose(d.txt) || (d.xf && fclose(d.xf)))
		return perror(argv[14]), 1;
	net_free(n);
	free(x);
	free(res);
	return rc;
}
