/* grad_dump.c - input gradients of cross-entropy for test_ties.py.
 *
 * usage: grad_dump MODEL CONV THREADS BATCH TARGET IN OUT
 *   IN:  raw float32 pixels (N,3,H,W) in [0,1], N a multiple of nothing
 *   OUT: raw float32 gradients (N,3,H,W) of -log softmax(z)[TARGET]
 *        w.r.t. the pixels, each image its own loss.
 * CONV is auto, im2col or winograd; the images go through the network
 * BATCH at a time (the last forward may hold fewer), on THREADS threads.
 * The diagnose command writes one image's gradient; this runs the batched
 * kernels too, which only attack's batch mode reaches otherwise.
 *
 * stdout: one line "pool L tile T" per max-pool layer L that reads a conv
 * (through a ReLU or not): how that conv runs (0 im2col, 2 or 4 Winograd
 * F(2x2)/F(4x4)), by the rule net_set_conv_mode applies, so the test's
 * reference can use the same tie tolerance (pool_tie_eps). The count of
 * Winograd convs it implies is checked against net_winograd_layers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "loss.h"
#include "modelfile.h"
#include "net.h"
#include "status.h"
#include "winograd.h"

/* Print the tile of the conv behind every max-pool (see above); returns
 * the number of convs that run Winograd by that rule. */
static int print_pool_tiles(const struct net *n, enum net_conv_mode mode,
			    int max_batch)
{
	const struct net_info *in = net_get_info(n);
	struct net_layer_info li;
	int i, c = in->in_c, h = in->in_h, w = in->in_w, wino = 0;
	int *tile = calloc((size_t)in->n_layers, sizeof *tile);

	for (i = 0; tile && i < in->n_layers; i++) {
		struct conv_shape s = { 0 };
		int kh, kw, st, pd;

		net_layer(n, i, &li);
		if (li.op == NET_CONV &&
		    sscanf(li.kind, "conv2d %dx%d/%d p%d", &kh, &kw, &st, &pd) == 4) {
			s.c = c; s.h = h; s.w = w; s.k = li.c;
			s.kh = kh; s.kw = kw; s.sh = s.sw = st; s.ph = s.pw = pd;
			if (!conv_shape_init(&s) &&
			    (mode == NET_CONV_WINOGRAD ? winograd_supported(&s) :
			     mode == NET_CONV_AUTO ? winograd_preferred(&s, max_batch) : 0)) {
				tile[i] = winograd_tile(&s);
				wino++;
			}
		}
		if (li.op == NET_MAXPOOL) {
			int p = i - 1;

			if (p >= 0 && (net_layer(n, p, &li), li.op == NET_RELU))
				p--;
			if (p >= 0 && (net_layer(n, p, &li), li.op == NET_CONV))
				printf("pool %d tile %d\n", i, tile[p]);
			net_layer(n, i, &li);
		}
		c = li.c;
		h = li.h;
		w = li.w;
	}
	free(tile);
	return wino;
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
	FILE *f;

	if (argc != 8) {
		fprintf(stderr, "usage: grad_dump MODEL CONV THREADS BATCH TARGET IN OUT\n");
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
	    net_create(mf, batch, 0, &n, err) != ST_OK)
		return fprintf(stderr, "grad_dump: %s\n", err), 1;
	modelfile_close(mf);
	if (mode != NET_CONV_AUTO && net_set_conv_mode(n, mode, err) != ST_OK)
		return fprintf(stderr, "grad_dump: %s\n", err), 1;
	if (print_pool_tiles(n, mode, batch) != net_winograd_layers(n))
		return fprintf(stderr, "grad_dump: the Winograd rule here no longer "
			       "matches net_set_conv_mode's\n"), 1;
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

		for (b = 0; b < nb; b++)
			loss_ce(in->n_classes, z + (size_t)b * in->n_classes, target,
				NULL, dz + (size_t)b * in->n_classes);
		net_backward(n, dz, g + i * px);
	}
	if (!(f = fopen(argv[7], "wb")) ||
	    fwrite(g, 1, (size_t)bytes, f) != (size_t)bytes || fclose(f))
		return perror(argv[7]), 1;
	net_free(n);
	free(x);
	free(g);
	free(dz);
	return 0;
}
