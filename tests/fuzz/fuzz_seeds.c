/* fuzz_seeds.c - writes the seed corpora of the fuzz harnesses into
 * OUT/model, OUT/png and OUT/dataset: small built-in networks saved as
 * model files, PNGs from the writer, and one STL-10 and one CIFAR-10 input
 * in fuzz_dataset's layout. Generated here, never downloaded. */
#define _POSIX_C_SOURCE 200809L

#include "arch.h"
#include "blas.h"
#include "image.h"
#include "modelfile.h"
#include "net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void sub_dir(char *buf, size_t n, const char *out, const char *name)
{
	snprintf(buf, n, "%s/%s", out, name);
	if (mkdir(buf, 0777) != 0) {
		struct stat sb;

		if (stat(buf, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
			perror(buf);
			exit(1);
		}
	}
}

static void put(const char *dir, const char *name, const void *p, size_t n)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

static void model_seed(const char *dir, const char *arch, int size, int k)
{
	char err[ERR_MAX], path[1024];
	struct modelfile *mf;
	struct net *n;

	snprintf(path, sizeof path, "%s/%s-%d.safetensors", dir, arch, size);
	if (arch_build(arch, size, k, NULL, 1, &mf, err) != ST_OK ||
	    net_create(mf, 1, 0, 1, &n, err) != ST_OK ||
	    net_save(n, path, NULL, NULL, 0, err) != ST_OK) {
		fprintf(stderr, "fuzz_seeds: %s: %s\n", path, err);
		exit(1);
	}
	net_free(n);
	modelfile_close(mf);
}

static void png_seed(const char *dir, const char *name, int h, int w)
{
	char err[ERR_MAX];
	float *pix = malloc(sizeof *pix * 3 * (size_t)h * (size_t)w);
	const char *key = "advex.seed", *val = "1";
	unsigned char *png;
	size_t len;
	int i;

	for (i = 0; pix && i < 3 * h * w; i++)
		pix[i] = (float)(i % 7) / 6.0f;
	if (!pix || image_encode_png(pix, h, w, &key, &val, 1, &png, &len, err) != ST_OK) {
		fprintf(stderr, "fuzz_seeds: %s: %s\n", name, err);
		exit(1);
	}
	put(dir, name, png, len);
	free(png);
	free(pix);
}

int main(int argc, char **argv)
{
	static const char stl[] = "\0" "0123456789abcdef" "\n--\n" "\1" "\n--\n"
				  "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n";
	static const char cifar[] = "\1" "0123456789abcdef" "\n--\n" "\3"
				    "\n--\n" "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n";
	char d[1024];

	if (argc != 2) {
		fprintf(stderr, "usage: fuzz_seeds OUTDIR\n");
		return 2;
	}
	blas_set_threads(1);
	sub_dir(d, sizeof d, argv[1], "");
	sub_dir(d, sizeof d, argv[1], "model");
	model_seed(d, "vgg-compact", 32, 3);
	model_seed(d, "resnet20", 32, 2);
	sub_dir(d, sizeof d, argv[1], "png");
	png_seed(d, "rgb-8x6.png", 6, 8);
	png_seed(d, "rgb-1x1.png", 1, 1);
	sub_dir(d, sizeof d, argv[1], "dataset");
	put(d, "stl10", stl, sizeof stl - 1);
	put(d, "cifar10", cifar, sizeof cifar - 1);
	return 0;
}
