/* grad_dump.c - input gradients of cross-entropy for test_ties.py.
 *
 * usage: grad_dump MODEL CONV THREADS BATCH TARGET IN OUT [DECISIONS]
 *   IN:  raw float32 pixels (N,3,H,W) in [0,1], N a multiple of nothing
 *   OUT: raw float32 gradients (N,3,H,W) of -log softmax(z)[TARGET]
 *        w.r.t. the pixels, each image its own loss.
 * CONV is auto, im2col or winograd; the images go through the network
 * BATCH at a time (the last forward may hold fewer), on THREADS threads.
 * The diagnose command writes one image's gradient; this runs the batched
 * kernels too, which only attack's batch mode reaches otherwise.
 *
 * DECISIONS: per image, for every ReLU node in order, its mask (uint8
 * out > 0, C*H*W) and for every max-pool its argmax (int32, C*OH*OW,
 * net_pool_argmax): the decisions behind the gradient, which test_ties.py
 * checks one by one against PyTorch float64. stdout says what the net
 * ran: "winograd convs N", then "decision L relu|pool COUNT" per node.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "loss.h"
#include "modelfile.h"
#include "net.h"
#include "status.h"

/* The decisions of image b of the last forward (see above). */
static int write_decisions(FILE *f, const struct net *n, int b)
{
	const struct net_info *in = net_get_info(n);
	struct net_layer_info li;
	int i;

	for (i = 0; i < in->n_layers; i++) {
		size_t sz, k;
		const float *o;
		const int32_t *a;

		net_layer(n, i, &li);
		sz = (size_t)li.c * li.h * li.w;
		if (li.op == NET_RELU && (o = net_node_output(n, i))) {
			for (k = 0; k < sz; k++)
				if (fputc(o[b * sz + k] > 0.0f, f) == EOF)
					return -1;
		} else if (li.op == NET_MAXPOOL && (a = net_pool_argmax(n, i))) {
			if (fwrite(a + b * sz, sizeof *a, sz, f) != sz)
				return -1;
		}
	}
	return 0;
}

static void print_decisions(const struct net *n)
{
	const struct net_info *in = net_get_info(n);
	struct net_layer_info li;
	int i;

	for (i = 0; i < in->n_layers; i++) {
		net_layer(n, i, &li);
		if (li.op == NET_RELU || li.op == NET_MAXPOOL)
			printf("decision %d %s %zu\n", i,
			       li.op == NET_RELU ? "relu" : "pool",
			       (size_t)li.c * li.h * li.w);
	}
}

int main(int argc, char **argv)
{
	char err[512];
	struct modelfile *mf;
	struct net *n;
	const struct net_info *in;
	enum net_conv_mode mode;
	int threads, batch, target, count, i, b;
	size_t px;
	long bytes;
	float *x, *g, *dz;
	FILE *f, *df = NULL;

	if (argc != 8 && argc != 9) {
		fprintf(stderr, "usage: grad_dump MODEL CONV THREADS BATCH TARGET IN OUT "
			"[DECISIONS]\n");
		return 2;
	}
	mode = !strcmp(argv[2], "im2col") ? NET_CONV_IM2COL :
	       !strcmp(argv[2], "winograd") ? NET_CONV_WINOGRAD : NET_CONV_AUTO;
	threads = atoi(argv[3]);
	batch = atoi(argv[4]);
	target = atoi(argv[5]);
	if (threads < 1 || batch < 1 || target < 0)
		return fprintf(stderr, "grad_dump: bad arguments\n"), 2;
	blas_set_threads(threads);
	if (modelfile_open(argv[1], &mf, err) != ST_OK ||
	    net_create(mf, batch, 0, threads, &n, err) != ST_OK)
		return fprintf(stderr, "grad_dump: %s\n", err), 1;
	modelfile_close(mf);
	if (mode != NET_CONV_AUTO && net_set_conv_mode(n, mode, err) != ST_OK)
		return fprintf(stderr, "grad_dump: %s\n", err), 1;
	printf("winograd convs %d\n", net_winograd_layers(n));
	print_decisions(n);
	if (argc == 9 && !(df = fopen(argv[8], "wb")))
		return perror(argv[8]), 1;
	in = net_get_info(n);
	px = (size_t)3 * in->in_h * in->in_w;
	if (!(f = fopen(argv[6], "rb")))
		return perror(argv[6]), 1;
	fseek(f, 0, SEEK_END);
	bytes = ftell(f);
	rewind(f);
	count = (int)(bytes / (long)(px * sizeof(float)));
	x = malloc((size_t)bytes);
	g = malloc((size_t)bytes);
	dz = malloc(sizeof(float) * in->n_classes * batch);
	if (!x || !g || !dz || count < 1 || fread(x, 1, (size_t)bytes, f) != (size_t)bytes ||
	    target >= in->n_classes)
		return fprintf(stderr, "grad_dump: cannot read %s\n", argv[6]), 1;
	fclose(f);
	for (i = 0; i < count; i += batch) {
		int nb = count - i < batch ? count - i : batch;
		const float *z = net_forward(n, x + i * px, nb);

		for (b = 0; df && b < nb; b++)
			if (write_decisions(df, n, b))
				return perror(argv[8]), 1;
		for (b = 0; b < nb; b++)
			loss_ce(in->n_classes, z + (size_t)b * in->n_classes, target,
				NULL, dz + (size_t)b * in->n_classes);
		net_backward(n, dz, g + i * px);
	}
	if (!(f = fopen(argv[7], "wb")) ||
	    fwrite(g, 1, (size_t)bytes, f) != (size_t)bytes || fclose(f))
		return perror(argv[7]), 1;
	if (df && fclose(df))
		return perror(argv[8]), 1;
	net_free(n);
	free(x);
	free(g);
	free(dz);
	return 0;
}
