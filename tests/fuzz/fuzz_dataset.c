/* fuzz_dataset.c - libFuzzer harness for the STL-10 and CIFAR-10 binary
 * directories. The input is split at "\n--\n" into up to three parts
 * written as the directory's files: for STL-10 test_X.bin (the first part
 * repeated to 1..3 whole images, so sizes are mostly valid), test_y.bin and
 * class_names.txt; for CIFAR-10 test_batch.bin (1..3 records whose label
 * bytes come from the second part) and batches.meta.txt. The first byte
 * picks the kind and the count; an empty part leaves its file out, so the
 * missing-file paths are reached too. Every image is then read. */
#define _GNU_SOURCE	/* memmem */

#include "cifar10.h"
#include "dataset.h"
#include "stl10.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* a fresh temporary directory per fuzzing process: libFuzzer's entry
 * points take no context, so it lives at file scope */
static char dir[64];

static void put(const char *name, const uint8_t *p, size_t n);

static void remove_dir_files(void)
{
	put("test_X.bin", NULL, 0);
	put("test_y.bin", NULL, 0);
	put("class_names.txt", NULL, 0);
	put("test_batch.bin", NULL, 0);
	put("batches.meta.txt", NULL, 0);
}

static void remove_dir(void)
{
	remove_dir_files();
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(dir, sizeof dir, "/tmp/advex-fuzz-dataset-XXXXXX");
	if (!mkdtemp(dir))
		abort();
	atexit(remove_dir);
	return 0;
}

static void put(const char *name, const uint8_t *p, size_t n)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	unlink(path);
	if (!p)
		return;
	f = fopen(path, "wb");
	if (!f)
		abort();
	if (n && fwrite(p, 1, n, f) != n)
		abort();
	fclose(f);
}

/* part 0 repeated to fill count records of rec bytes; label bytes (the
 * first of each record) from lab when lab_n > 0. */
static uint8_t *fill(const uint8_t *p, size_t n, size_t rec, int count,
		     const uint8_t *lab, size_t lab_n)
{
	size_t total = rec * (size_t)count, i;
	uint8_t *b = malloc(total);

	if (!b)
		abort();
	for (i = 0; i < total; i++)
		b[i] = n ? p[i % n] : (uint8_t)i;
	for (i = 0; lab_n && i < (size_t)count; i++)
		b[i * rec] = lab[i % lab_n];
	return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char sep[] = "\n--\n";
	const uint8_t *part[3] = { NULL, NULL, NULL }, *p, *end;
	size_t len[3] = { 0, 0, 0 };
	char err[ERR_MAX], note[ERR_MAX];
	struct dataset *d = NULL;
	float *pix;
	int k = 0, count, cifar, i;
	uint8_t *b;

	if (size < 1)
		return 0;
	cifar = data[0] & 1;
	count = 1 + (data[0] >> 1) % 3;
	p = data + 1;
	end = data + size;
	while (k < 3) {
		const uint8_t *s = k < 2 ? memmem(p, (size_t)(end - p), sep, 4) : NULL;

		part[k] = p;
		len[k] = (size_t)((s ? s : end) - p);
		k++;
		if (!s)
			break;
		p = s + 4;
	}
	remove_dir_files();
	if (cifar) {
		b = fill(part[0], len[0], CIFAR10_RECORD_BYTES, count, part[1], len[1]);
		put("test_batch.bin", b, CIFAR10_RECORD_BYTES * (size_t)count);
		free(b);
		if (len[2])
			put("batches.meta.txt", part[2], len[2]);
	} else {
		b = fill(part[0], len[0], STL10_IMAGE_BYTES, count, NULL, 0);
		put("test_X.bin", b, STL10_IMAGE_BYTES * (size_t)count);
		free(b);
		if (part[1])
			put("test_y.bin", part[1], len[1]);
		if (len[2])
			put("class_names.txt", part[2], len[2]);
	}
	if (dataset_open(dir, "test", &d, note, err) != ST_OK)
		return 0;
	pix = malloc(sizeof *pix * 3 * (size_t)dataset_height(d) *
		     (size_t)dataset_width(d));
	for (i = 0; pix && i < dataset_count(d); i++) {
		char name[256];

		dataset_image(d, i, pix, err);
		dataset_label(d, i);
		dataset_image_name(d, i, name, sizeof name);
	}
	for (i = 0; i < dataset_n_classes(d); i++)
		dataset_class_name(d, i);
	free(pix);
	dataset_close(d);
	return 0;
}
