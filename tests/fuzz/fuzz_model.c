/* fuzz_model.c - libFuzzer harness: bytes as an advex model file (the
 * safetensors loader), then net creation and, on a small net, one forward
 * and one backward pass of a batch of 2. Built with ./configure
 * --enable-fuzzing (clang, libFuzzer, ASan + UBSan). Seeds: fuzz_seeds. */
#include "blas.h"
#include "modelfile.h"
#include "net.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Larger nets load and are checked, but running them would make each
 * input take seconds: the fuzzer should spend its time on the parser. */
#define MAX_PIXELS (64 * 64)
#define MAX_PARAMS 2000000

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	blas_set_threads(1);
	return 0;
}

static void run(struct net *n)
{
	const struct net_info *in = net_get_info(n);
	size_t npix = 3 * (size_t)in->in_h * in->in_w, i;
	float *x = malloc(sizeof *x * 2 * npix), *g = malloc(sizeof *g * 2 * npix);
	float *dz = malloc(sizeof *dz * 2 * (size_t)in->n_classes);

	if (x && g && dz) {
		for (i = 0; i < 2 * npix; i++)
			x[i] = (float)(i % 251) / 250.0f;
		for (i = 0; i < 2 * (size_t)in->n_classes; i++)
			dz[i] = i % 3 == 0 ? 1.0f : -0.5f;
		net_forward(n, x, 2);
		net_backward(n, dz, g);
	}
	free(x);
	free(g);
	free(dz);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[ERR_MAX];
	struct modelfile *mf;
	struct net *n = NULL;
	void *buf = malloc(size ? size : 1);

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	/* takes buf, also on failure */
	if (modelfile_open_buffer(buf, size, "fuzz.safetensors", &mf, err) != ST_OK)
		return 0;
	if (net_create(mf, 2, 0, 1, &n, err) == ST_OK) {
		const struct net_info *in = net_get_info(n);

		if ((size_t)in->in_h * in->in_w <= MAX_PIXELS &&
		    in->n_params <= MAX_PARAMS)
			run(n);
		net_free(n);
	}
	modelfile_close(mf);
	return 0;
}
