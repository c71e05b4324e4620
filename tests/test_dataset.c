/* test_dataset.c - dataset.c, stl10.c, cifar10.c and imagedir.c against
 * small files written here: STL-10 binaries made by hand (column-major
 * orientation, channels, labels, class names, folds, every bad input),
 * CIFAR-10 batch files (row-major orientation, the order of the train
 * batches, bad files), image folders of PNGs, the choice between the
 * kinds, and bilinear resizing (--resize). */
#define _XOPEN_SOURCE 700	/* nftw, mkdtemp */

#include "cifar10.h"
#include "dataset.h"
#include "image.h"
#include "imagedir.h"
#include "resize.h"
#include "stl10.h"
#include "tap.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PLANE (96 * 96)
#define IMG STL10_IMAGE_BYTES

static const char *const stl10_names[10] = {
	"airplane", "bird", "car", "cat", "deer",
	"dog", "horse", "monkey", "ship", "truck",
};

/* ---- files ------------------------------------------------------------- */

static void put_file(const char *dir, const char *name, const void *data,
		     size_t n)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(data, 1, n, f) != n) {
		perror(path);
		exit(2);
	}
	fclose(f);
}

static void put_text(const char *dir, const char *name, const char *text)
{
	put_file(dir, name, text, strlen(text));
}

/* dir/sub, created; into buf. */
static char *make_dir(char *buf, size_t n, const char *dir, const char *sub)
{
	snprintf(buf, n, "%s/%s", dir, sub);
	if (mkdir(buf, 0700) != 0) {
		perror(buf);
		exit(2);
	}
	return buf;
}

static int rm_one(const char *path, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rm_tree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int has(const char *s, const char *part)
{
	return strstr(s, part) != NULL;
}

/* ---- STL-10 fixtures --------------------------------------------------- */

/* Byte for channel c at column x, row y of image data in the file's order. */
static unsigned char *at(unsigned char *img, int c, int x, int y)
{
	return img + c * PLANE + x * 96 + y;
}

/* A pattern that differs under transposition and between channels. */
static int pattern(int c, int x, int y)
{
	return (c * 50 + x * 2 + y * 7) % 256;
}

/* test_X.bin: image 0 one dot (channel 0, row 5, column 70); image 1
 * constant channels 10/20/30 with one bright dot in channels 1 and 2;
 * image 2 the pattern. test_y.bin: labels 1, 10, 5. */
static void make_test_split(const char *dir)
{
	unsigned char *x = calloc(3, IMG), y[3] = { 1, 10, 5 };
	int c, i, j;

	*at(x, 0, 70, 5) = 200;
	for (c = 0; c < 3; c++)
		memset(x + IMG + c * PLANE, 10 * (c + 1), PLANE);
	*at(x + IMG, 1, 3, 50) = 255;
	*at(x + IMG, 2, 95, 0) = 128;
	for (c = 0; c < 3; c++)
		for (i = 0; i < 96; i++)
			for (j = 0; j < 96; j++)
				*at(x + 2 * IMG, c, i, j) =
					(unsigned char)pattern(c, i, j);
	put_file(dir, "test_X.bin", x, 3 * IMG);
	put_file(dir, "test_y.bin", y, 3);
	free(x);
}

/* train: 10 blank images labelled 1..10; folds of one index each. */
static void make_train_split(const char *dir)
{
	unsigned char *x = calloc(10, IMG), y[10];
	int i;

	for (i = 0; i < 10; i++)
		y[i] = (unsigned char)(i + 1);
	put_file(dir, "train_X.bin", x, 10 * IMG);
	put_file(dir, "train_y.bin", y, 10);
	put_text(dir, "fold_indices.txt",
		 "0\n1 \n2\n3\n4\n5\n6\n7\n8 9\n9 8 7\n");
	free(x);
}

static const char names_file[] =
	"  plane \r\nbird\r\ncar\r\ncat\ndeer\ndog\nhorse\nmonkey\nship\n"
	"truck\n\n\n";

static void make_stl10(const char *dir)
{
	unsigned char *u = calloc(2, IMG);

	make_test_split(dir);
	make_train_split(dir);
	u[IMG + 1] = 9;
	put_file(dir, "unlabeled_X.bin", u, 2 * IMG);
	put_text(dir, "class_names.txt", names_file);
	free(u);
}

/* ---- STL-10 checks ----------------------------------------------------- */

static int count_nonzero(const float *p, int n)
{
	int i, k = 0;

	for (i = 0; i < n; i++)
		k += p[i] != 0.0f;
	return k;
}

static void check_pixels(struct tap *t, struct dataset *d, float *pix)
{
	char err[ERR_MAX] = "";
	int c, x, y, bad = 0;

	tap_ok(t, dataset_image(d, 0, pix, err) == ST_OK, "image 0 reads (%s)",
	       err);
	tap_ok(t, pix[0 * PLANE + 5 * 96 + 70] == 200 / 255.0f &&
	       count_nonzero(pix, 3 * PLANE) == 1,
	       "column-major: the dot at row 5, column 70 lands at "
	       "out[5*96 + 70] and nowhere else");
	dataset_image(d, 1, pix, err);
	tap_ok(t, pix[10] == 10 / 255.0f && pix[PLANE + 10] == 20 / 255.0f &&
	       pix[2 * PLANE + 10] == 30 / 255.0f,
	       "channels in order R, G, B (10, 20, 30)");
	tap_ok(t, pix[PLANE + 50 * 96 + 3] == 1.0f &&
	       pix[PLANE + 3 * 96 + 50] == 20 / 255.0f &&
	       pix[2 * PLANE + 0 * 96 + 95] == 128 / 255.0f &&
	       pix[2 * PLANE + 95 * 96 + 0] == 30 / 255.0f,
	       "green and blue dots upright too");
	dataset_image(d, 2, pix, err);
	for (c = 0; c < 3; c++)
		for (y = 0; y < 96; y++)
			for (x = 0; x < 96; x++)
				bad += pix[c * PLANE + y * 96 + x] !=
				       pattern(c, x, y) / 255.0f;
	tap_ok(t, bad == 0, "a full pattern: out[c][y][x] == byte c*9216 + "
	       "x*96 + y (%d off)", bad);
}

static void check_stl10_ok(struct tap *t, const char *dir, const char *top)
{
	char err[ERR_MAX] = "", note[ERR_MAX] = "x", name[64];
	float *pix = malloc(sizeof *pix * 3 * PLANE);
	struct dataset *d = NULL;
	enum status st = dataset_open(top, NULL, &d, note, err);

	if (!tap_ok(t, st == ST_OK, "open %s (%s)", top, err))
		goto out;
	tap_ok(t, dataset_kind(d) == DATASET_STL10 &&
	       !strcmp(dataset_path(d), top) &&
	       !strcmp(dataset_split(d), "test") && note[0] == '\0',
	       "STL-10, the path as given, split test by default, no note");
	tap_ok(t, dataset_count(d) == 3 && dataset_height(d) == 96 &&
	       dataset_width(d) == 96 && dataset_n_classes(d) == 10,
	       "3 images of 96x96, 10 classes");
	tap_ok(t, dataset_label(d, 0) == 0 && dataset_label(d, 1) == 9 &&
	       dataset_label(d, 2) == 4 && dataset_label(d, 3) == -1,
	       "labels 1, 10, 5 -> 0, 9, 4");
	tap_ok(t, !strcmp(dataset_class_name(d, 0), "plane") &&
	       !strcmp(dataset_class_name(d, 1), "bird") &&
	       !strcmp(dataset_class_name(d, 9), "truck") &&
	       !dataset_class_name(d, 10),
	       "class names trimmed of spaces and CR, blank tail ignored");
	dataset_image_name(d, 2, name, sizeof name);
	tap_ok(t, !strcmp(name, "test_X.bin#2"), "image name %s", name);
	check_pixels(t, d, pix);
	st = dataset_image(d, 3, pix, err);
	tap_ok(t, st == ST_ERR_ARG && has(err, "test_X.bin") &&
	       has(err, "out of range"), "index 3 refused: %s", err);
	st = dataset_image(d, -1, pix, err);
	tap_ok(t, st == ST_ERR_ARG && has(err, "out of range"),
	       "index -1 refused");
	(void)dir;
out:
	dataset_close(d);
	free(pix);
}

static void check_stl10_splits(struct tap *t, const char *dir)
{
	char err[ERR_MAX] = "", note[ERR_MAX] = "";
	float *pix = malloc(sizeof *pix * 3 * PLANE);
	struct stl10 *s = NULL;
	struct dataset *d = NULL;
	const int *idx = NULL;
	int i, ok = 1;

	if (tap_ok(t, stl10_open(dir, "train", &s, note, err) == ST_OK,
		   "train split (%s)", err)) {
		for (i = 0; i < 10; i++)
			ok &= stl10_label(s, i) == i;
		tap_ok(t, stl10_count(s) == 10 && ok,
		       "10 train images labelled 0..9");
		tap_ok(t, stl10_n_folds(s) == 10 &&
		       stl10_fold(s, 8, &idx) == 2 && idx[0] == 8 &&
		       idx[1] == 9 && stl10_fold(s, 9, &idx) == 3 &&
		       idx[2] == 7 && stl10_fold(s, 10, &idx) == -1,
		       "fold_indices.txt: 10 folds read");
		stl10_close(s);
	}
	if (tap_ok(t, dataset_open(dir, "unlabeled", &d, note, err) == ST_OK,
		   "unlabeled split (%s)", err)) {
		tap_ok(t, dataset_count(d) == 2 && dataset_label(d, 0) == -1 &&
		       dataset_label(d, 1) == -1, "no labels: -1");
		dataset_image(d, 1, pix, err);
		tap_ok(t, pix[1 * 96 + 0] == 9 / 255.0f,
		       "its image 1 reads (byte 1 = column 0, row 1)");
		dataset_close(d);
	}
	tap_ok(t, dataset_open(dir, "val", &d, note, err) == ST_ERR_ARG &&
	       has(err, "'val'"), "split 'val' refused: %s", err);
	free(pix);
}

/* A fresh folder T/name holding a valid test split, for breaking. */
static char *fresh(char *buf, size_t n, const char *top, const char *name)
{
	make_dir(buf, n, top, name);
	make_test_split(buf);
	put_text(buf, "class_names.txt", names_file);
	return buf;
}

static void check_stl10_bad(struct tap *t, const char *top)
{
	char dir[512], path[1024], err[ERR_MAX] = "", note[ERR_MAX] = "";
	unsigned char *x = calloc(4, IMG), y[3] = { 1, 0, 2 };
	struct dataset *d = NULL;
	enum status st;
	int c, same = 1;

	fresh(dir, sizeof dir, top, "badsize");
	put_file(dir, "test_X.bin", x, IMG + 100);
	st = dataset_open(dir, "test", &d, note, err);
	tap_ok(t, st == ST_ERR_FORMAT && has(err, "badsize/test_X.bin") &&
	       has(err, "27748") && has(err, "27,648") &&
	       has(err, "100 bytes left over"),
	       "size not a multiple of 27,648: %s", err);

	fresh(dir, sizeof dir, top, "fewlabels");
	put_file(dir, "test_y.bin", y, 2);
	st = dataset_open(dir, "test", &d, note, err);
	tap_ok(t, st == ST_ERR_FORMAT && has(err, "fewlabels/test_y.bin") &&
	       has(err, "2 labels") && has(err, "fewlabels/test_X.bin") &&
	       has(err, "3 images"), "label count mismatch: %s", err);

	fresh(dir, sizeof dir, top, "manylabels");
	put_file(dir, "test_y.bin", x, 4000);
	st = dataset_open(dir, "test", &d, note, err);
	tap_ok(t, st == ST_ERR_FORMAT && has(err, "4000 labels") &&
	       has(err, "3 images"), "too many labels: %s", err);

	fresh(dir, sizeof dir, top, "label0");
	put_file(dir, "test_y.bin", y, 3);
	st = dataset_open(dir, "test", &d, note, err);
	tap_ok(t, st == ST_ERR_FORMAT && has(err, "label0/test_y.bin") &&
	       has(err, "label 0") && has(err, "index 1") &&
	       has(err, "1..10"), "label 0: %s", err);

	fresh(dir, sizeof dir, top, "label11");
	y[1] = 2;
	y[2] = 11;
	put_file(dir, "test_y.bin", y, 3);
	st = dataset_open(dir, "test", &d, note, err);
	tap_ok(t, st == ST_ERR_FORMAT && has(err, "label11/test_y.bin") &&
	       has(err, "label 11") && has(err, "index 2"),
	       "label 11: %s", err);

	fresh(dir, sizeof dir, top, "nonames");
	snprintf(path, sizeof path, "%s/class_names.txt", dir);
	unlink(path);
	st = dataset_open(dir, "test", &d, note, err);
	if (tap_ok(t, st == ST_OK, "no class_names.txt still opens")) {
		char want[1024];

		snprintf(want, sizeof want, "%s/class_names.txt missing: using "
			 "the STL-10 class names", dir);
		tap_ok(t, !strcmp(note, want), "with the note: %s", note);
		for (c = 0; c < 10; c++)
			same &= !strcmp(dataset_class_name(d, c),
					stl10_names[c]);
		tap_ok(t, same && dataset_n_classes(d) == 10,
		       "and the STL-10 names, airplane .. truck");
		dataset_close(d);
	}

	fresh(dir, sizeof dir, top, "gapnames");
	put_text(dir, "class_names.txt", "a\nb\n\nc\n");
	st = dataset_open(dir, "test", &d, note, err);
	tap_ok(t, st == ST_ERR_FORMAT && has(err, "gapnames/class_names.txt") &&
	       has(err, "line 3 is empty"), "a blank line between names: %s",
	       err);

	fresh(dir, sizeof dir, top, "fewnames");
	put_text(dir, "class_names.txt", "a\nb\nc\n");
	st = dataset_open(dir, "test", &d, note, err);
	tap_ok(t, st == ST_ERR_FORMAT && has(err, "fewnames/class_names.txt") &&
	       has(err, "3 class names") && has(err, "label 10"),
	       "fewer names than the largest label: %s", err);

	fresh(dir, sizeof dir, top, "manynames");
	put_text(dir, "class_names.txt", "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\n");
	st = dataset_open(dir, "test", &d, note, err);
	tap_ok(t, st == ST_ERR_FORMAT && has(err, "more than 10"),
	       "11 names: %s", err);

	fresh(dir, sizeof dir, top, "nolabels");
	snprintf(path, sizeof path, "%s/test_y.bin", dir);
	unlink(path);
	st = dataset_open(dir, "test", &d, note, err);
	tap_ok(t, st == ST_ERR_IO && has(err, "nolabels/test_y.bin"),
	       "missing test_y.bin: %s", err);

	make_dir(dir, sizeof dir, top, "trainonly");
	make_train_split(dir);
	st = dataset_open(dir, "test", &d, note, err);
	tap_ok(t, st == ST_ERR_IO && has(err, "trainonly/test_X.bin") &&
	       has(err, "missing"), "missing test_X.bin: %s", err);

	fresh(dir, sizeof dir, top, "empty");
	put_file(dir, "test_X.bin", x, 0);
	st = dataset_open(dir, "test", &d, note, err);
	tap_ok(t, st == ST_ERR_FORMAT && has(err, "empty/test_X.bin") &&
	       has(err, "no images"),
	       "an empty test_X.bin: %s", err);

	/* folds are optional: a bad file is a note, not a failure */
	make_dir(dir, sizeof dir, top, "badfolds");
	make_train_split(dir);
	put_text(dir, "class_names.txt", names_file);
	put_text(dir, "fold_indices.txt", "0 1\n2 99\n");
	st = dataset_open(dir, "train", &d, note, err);
	tap_ok(t, st == ST_OK && has(note, "fold_indices.txt") &&
	       has(note, "'99'") && has(note, "ignored"),
	       "a bad fold_indices.txt only gives a note: %s", note);
	dataset_close(d);
	free(x);
}

/* ---- CIFAR-10 fixtures ------------------------------------------------- */

#define CPLANE (32 * 32)
#define CREC CIFAR10_RECORD_BYTES

static const char *const cifar_names[10] = {
	"airplane", "automobile", "bird", "cat", "deer",
	"dog", "frog", "horse", "ship", "truck",
};

/* Records per train batch file: uneven, so an off-by-one in the running
 * offsets lands in the wrong file. */
static const int cifar_batch_n[5] = { 2, 3, 1, 2, 2 };

/* The byte of channel c, row y, column x of record r of file f (0..4 the
 * data batches, 5 the test batch): differs under transposition (7y vs 2x),
 * between channels, records and files. */
static int cpat(int f, int r, int c, int y, int x)
{
	return (f * 41 + r * 13 + c * 50 + y * 7 + x * 2) % 256;
}

static int clabel(int f, int r)
{
	return (f * 3 + r * 7) % 10;
}

/* A record's bytes in the file's order: label, then planes row-major. */
static void fill_record(unsigned char *rec, int f, int r)
{
	int c, y, x;

	rec[0] = (unsigned char)clabel(f, r);
	for (c = 0; c < 3; c++)
		for (y = 0; y < 32; y++)
			for (x = 0; x < 32; x++)
				rec[1 + c * CPLANE + y * 32 + x] =
					(unsigned char)cpat(f, r, c, y, x);
}

/* File f with n records; test_batch.bin for f == 5. */
static void make_cifar_file(const char *dir, int f, int n)
{
	unsigned char *b = malloc((size_t)n * CREC);
	char name[32];
	int r;

	for (r = 0; r < n; r++)
		fill_record(b + (size_t)r * CREC, f, r);
	if (f == 5)
		snprintf(name, sizeof name, "test_batch.bin");
	else
		snprintf(name, sizeof name, "data_batch_%d.bin", f + 1);
	put_file(dir, name, b, (size_t)n * CREC);
	free(b);
}

/* As the release: names then one blank line. */
static const char cifar_meta[] =
	"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\n"
	"truck\n\n";

static void make_cifar(const char *dir)
{
	int f;

	for (f = 0; f < 5; f++)
		make_cifar_file(dir, f, cifar_batch_n[f]);
	make_cifar_file(dir, 5, 3);
	put_text(dir, "batches.meta.txt", cifar_meta);
}

/* ---- CIFAR-10 checks --------------------------------------------------- */

/* How many values of image (f, r) differ from the pattern read row-major
 * (transposed = 0) or column-major (transposed = 1). */
static int cifar_off(const float *pix, int f, int r, int transposed)
{
	int c, y, x, bad = 0;

	for (c = 0; c < 3; c++)
		for (y = 0; y < 32; y++)
			for (x = 0; x < 32; x++)
				bad += pix[c * CPLANE + y * 32 + x] !=
				       (transposed ? cpat(f, r, c, x, y)
						   : cpat(f, r, c, y, x)) /
					       255.0f;
	return bad;
}

static void check_cifar_test(struct tap *t, const char *dir, const char *top)
{
	char err[ERR_MAX] = "", note[ERR_MAX] = "x", name[64];
	float *pix = malloc(sizeof *pix * 3 * CPLANE);
	struct dataset *d = NULL;
	unsigned char *dot = calloc(1, CREC);
	enum status st = dataset_open(top, NULL, &d, note, err);
	int c, ok = 1;

	if (!tap_ok(t, st == ST_OK, "CIFAR-10: open %s (%s)", top, err))
		goto out;
	tap_ok(t, dataset_kind(d) == DATASET_CIFAR10 &&
	       !strcmp(dataset_kind_name(dataset_kind(d)), "cifar10") &&
	       !strcmp(dataset_path(d), top) &&
	       !strcmp(dataset_split(d), "test") && note[0] == '\0',
	       "kind cifar10, the path as given, split test, no note");
	tap_ok(t, dataset_count(d) == 3 && dataset_height(d) == 32 &&
	       dataset_width(d) == 32 && dataset_n_classes(d) == 10,
	       "3 images of 32x32, 10 classes");
	for (c = 0; c < 10; c++)
		ok &= !strcmp(dataset_class_name(d, c), cifar_names[c]);
	tap_ok(t, ok && !dataset_class_name(d, 10),
	       "batches.meta.txt: airplane .. truck, blank tail ignored");
	tap_ok(t, dataset_label(d, 0) == clabel(5, 0) &&
	       dataset_label(d, 2) == clabel(5, 2) && dataset_label(d, 3) == -1,
	       "labels %d, %d from the records' first bytes",
	       clabel(5, 0), clabel(5, 2));
	for (c = 0, ok = 1; c < 3; c++)
		ok &= dataset_image(d, c, pix, err) == ST_OK &&
		      cifar_off(pix, 5, c, 0) == 0;
	tap_ok(t, ok, "all 3 images: out[c][y][x] == byte 1 + c*1024 + "
	       "y*32 + x of the record");
	/* the control: the same images read column-major would not match */
	dataset_image(d, 1, pix, err);
	tap_ok(t, cifar_off(pix, 5, 1, 1) > 2900,
	       "control: a transposed (column-major) read differs at %d of "
	       "3072 values", cifar_off(pix, 5, 1, 1));
	dataset_image_name(d, 2, name, sizeof name);
	tap_ok(t, !strcmp(name, "test_batch.bin#2"), "image name %s", name);
	tap_ok(t, dataset_image(d, 3, pix, err) == ST_ERR_ARG &&
	       has(err, "out of range"), "index 3 refused: %s", err);
	dataset_close(d);

	/* one dot at row 5, column 20 of the green plane, label 9 */
	dot[0] = 9;
	dot[1 + CPLANE + 5 * 32 + 20] = 200;
	put_file(dir, "test_batch.bin", dot, CREC);
	if (tap_ok(t, dataset_open(dir, "test", &d, note, err) == ST_OK,
		   "a one-record test_batch.bin opens (%s)", err)) {
		dataset_image(d, 0, pix, err);
		tap_ok(t, pix[CPLANE + 5 * 32 + 20] == 200 / 255.0f &&
		       pix[CPLANE + 20 * 32 + 5] == 0.0f &&
		       count_nonzero(pix, 3 * CPLANE) == 1 &&
		       dataset_label(d, 0) == 9,
		       "the green dot at row 5, column 20 lands at "
		       "out[1][5][20], not at [1][20][5], label 9");
		dataset_close(d);
	}
	make_cifar_file(dir, 5, 3);
out:
	free(dot);
	free(pix);
}

static void check_cifar_train(struct tap *t, const char *dir)
{
	char err[ERR_MAX] = "", note[ERR_MAX] = "", name[64], want[64];
	float *pix = malloc(sizeof *pix * 3 * CPLANE);
	struct dataset *d = NULL;
	int f, r, i = 0, ok_lab = 1, ok_pix = 1, ok_name = 1;

	if (!tap_ok(t, dataset_open(dir, "train", &d, note, err) == ST_OK,
		    "CIFAR-10 train split opens (%s)", err))
		goto out;
	tap_ok(t, dataset_count(d) == 10 && !strcmp(dataset_split(d), "train"),
	       "train: 2+3+1+2+2 = 10 images");
	/* index i walks data_batch_1 .. data_batch_5 in order */
	for (f = 0; f < 5; f++)
		for (r = 0; r < cifar_batch_n[f]; r++, i++) {
			ok_lab &= dataset_label(d, i) == clabel(f, r);
			ok_pix &= dataset_image(d, i, pix, err) == ST_OK &&
				  cifar_off(pix, f, r, 0) == 0;
			dataset_image_name(d, i, name, sizeof name);
			snprintf(want, sizeof want, "data_batch_%d.bin#%d",
				 f + 1, r);
			ok_name &= !strcmp(name, want);
		}
	tap_ok(t, ok_lab, "labels follow data_batch_1..5 in order");
	tap_ok(t, ok_pix, "pixels too: image i is the right record of the "
	       "right file");
	tap_ok(t, ok_name, "names data_batch_K.bin#R (index 5 is %s)",
	       (dataset_image_name(d, 5, name, sizeof name), name));
	/* control: a reader that took the files in another order (5..1)
	 * would see other labels here */
	tap_ok(t, clabel(0, 0) != clabel(4, 0) && clabel(1, 2) != clabel(3, 1),
	       "control: the files' labels differ, so the order is seen");
	dataset_close(d);
	tap_ok(t, dataset_open(dir, "unlabeled", &d, note, err) ==
	       ST_ERR_ARG && has(err, "unknown CIFAR-10 split 'unlabeled'"),
	       "split unlabeled refused: %s", err);
out:
	dataset_close(d);
	free(pix);
}

/* A fresh CIFAR-10 folder T/name, for breaking. */
static char *cifar_fresh(char *buf, size_t n, const char *top,
			 const char *name)
{
	make_dir(buf, n, top, name);
	make_cifar(buf);
	return buf;
}

static void check_cifar_bad(struct tap *t, const char *top)
{
	char dir[512], path[1024], err[ERR_MAX] = "", note[ERR_MAX] = "";
	unsigned char *rec = calloc(3, CREC);
	struct dataset *d = NULL;
	struct cifar10 *s = NULL;
	enum status st;
	int c, same = 1;

	cifar_fresh(dir, sizeof dir, top, "c-short");
	fill_record(rec, 2, 0);
	put_file(dir, "data_batch_3.bin", rec, CREC + 1000);
	st = dataset_open(dir, "train", &d, note, err);
	tap_ok(t, st == ST_ERR_FORMAT && has(err, "c-short/data_batch_3.bin") &&
	       has(err, "4073") && has(err, "3,073") &&
	       has(err, "1000 bytes left over") && !strchr(err, '\n'),
	       "a truncated batch file: %s", err);
	st = dataset_open(dir, "test", &d, note, err);
	tap_ok(t, st == ST_OK, "the test split of the same folder still opens");
	dataset_close(d);

	cifar_fresh(dir, sizeof dir, top, "c-label");
	fill_record(rec, 5, 0);
	fill_record(rec + CREC, 5, 1);
	rec[CREC] = 10;
	put_file(dir, "test_batch.bin", rec, 2 * CREC);
	st = dataset_open(dir, "test", &d, note, err);
	tap_ok(t, st == ST_ERR_FORMAT && has(err, "c-label/test_batch.bin") &&
	       has(err, "record 1") && has(err, "label 10") &&
	       has(err, "0..9"), "label 10: %s", err);
	rec[CREC] = 255;
	put_file(dir, "data_batch_5.bin", rec, 2 * CREC);
	st = dataset_open(dir, "train", &d, note, err);
	tap_ok(t, st == ST_ERR_FORMAT && has(err, "c-label/data_batch_5.bin") &&
	       has(err, "record 1") && has(err, "label 255"),
	       "label 255 in the last train file: %s", err);

	cifar_fresh(dir, sizeof dir, top, "c-missing");
	snprintf(path, sizeof path, "%s/data_batch_4.bin", dir);
	unlink(path);
	st = dataset_open(dir, "train", &d, note, err);
	tap_ok(t, st == ST_ERR_IO && has(err, "c-missing/data_batch_4.bin") &&
	       has(err, "missing") && has(err, "data_batch_1.bin .. "
					       "data_batch_5.bin"),
	       "a missing data_batch_4.bin: %s", err);
	snprintf(path, sizeof path, "%s/test_batch.bin", dir);
	unlink(path);
	st = dataset_open(dir, "test", &d, note, err);
	tap_ok(t, st == ST_ERR_IO && has(err, "c-missing/test_batch.bin") &&
	       has(err, "missing"), "a missing test_batch.bin (found by "
	       "data_batch_1.bin): %s", err);

	cifar_fresh(dir, sizeof dir, top, "c-empty");
	put_file(dir, "test_batch.bin", rec, 0);
	st = dataset_open(dir, "test", &d, note, err);
	tap_ok(t, st == ST_ERR_FORMAT && has(err, "c-empty/test_batch.bin") &&
	       has(err, "no records"), "an empty test_batch.bin: %s", err);

	cifar_fresh(dir, sizeof dir, top, "c-nometa");
	snprintf(path, sizeof path, "%s/batches.meta.txt", dir);
	unlink(path);
	st = dataset_open(dir, "test", &d, note, err);
	if (tap_ok(t, st == ST_OK, "no batches.meta.txt still opens")) {
		char want[1200];

		snprintf(want, sizeof want, "%s missing: using the CIFAR-10 "
			 "class names", path);
		tap_ok(t, !strcmp(note, want), "with the note: %s", note);
		for (c = 0; c < 10; c++)
			same &= !strcmp(dataset_class_name(d, c),
					cifar_names[c]);
		tap_ok(t, same && dataset_n_classes(d) == 10,
		       "and the CIFAR-10 names, airplane .. truck");
		dataset_close(d);
	}

	/* a test split labelled 0 and 7: three names cover 0..2 only */
	cifar_fresh(dir, sizeof dir, top, "c-fewnames");
	fill_record(rec, 5, 0);
	fill_record(rec + CREC, 5, 1);
	rec[0] = 0;
	rec[CREC] = 7;
	put_file(dir, "test_batch.bin", rec, 2 * CREC);
	put_text(dir, "batches.meta.txt", " a \r\nb\nc\n");
	st = dataset_open(dir, "test", &d, note, err);
	tap_ok(t, st == ST_ERR_FORMAT &&
	       has(err, "c-fewnames/batches.meta.txt") &&
	       has(err, "3 class names") && has(err, "label 7"),
	       "fewer names than the largest label: %s", err);
	put_text(dir, "batches.meta.txt", "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\n");
	st = cifar10_open(dir, "test", &s, note, err);
	tap_ok(t, st == ST_ERR_FORMAT && has(err, "batches.meta.txt") &&
	       has(err, "more than 10"), "11 names: %s", err);
	put_text(dir, "batches.meta.txt", "a\n\nb\n");
	st = cifar10_open(dir, "test", &s, note, err);
	tap_ok(t, st == ST_ERR_FORMAT && has(err, "line 2 is empty"),
	       "a blank line between names: %s", err);
	put_text(dir, "batches.meta.txt", " a \r\nb\nc\nd\ne\nf\ng\nh\n");
	st = cifar10_open(dir, "test", &s, note, err);
	if (tap_ok(t, st == ST_OK, "8 names cover labels 0..7 (%s)", err)) {
		tap_ok(t, cifar10_n_classes(s) == 8 &&
		       !strcmp(cifar10_class_name(s, 0), "a") &&
		       !strcmp(cifar10_class_name(s, 7), "h"),
		       "names trimmed of spaces and CR");
		cifar10_close(s);
	}

	/* the parent of cifar-10-batches-bin/ */
	make_dir(dir, sizeof dir, top, "c-parent");
	make_dir(path, sizeof path, dir, "cifar-10-batches-bin");
	make_cifar(path);
	st = dataset_open(dir, "train", &d, note, err);
	tap_ok(t, st == ST_OK && dataset_kind(d) == DATASET_CIFAR10 &&
	       dataset_count(d) == 10, "the parent of cifar-10-batches-bin/ "
	       "opens as CIFAR-10 (%s)", err);
	dataset_close(d);
	free(rec);
}

/* ---- resizing ---------------------------------------------------------- */

static int near(float a, float b)
{
	return a - b < 1e-6f && b - a < 1e-6f;
}

static void check_resize_kernel(struct tap *t)
{
	/* PyTorch 1.13: F.interpolate(x, size, mode="bilinear",
	 * align_corners=False) of [[0, 1], [2, 3]] */
	static const float up44[16] = {
		0.00f, 0.25f, 0.75f, 1.00f, 0.50f, 0.75f, 1.25f, 1.50f,
		1.50f, 1.75f, 2.25f, 2.50f, 2.00f, 2.25f, 2.75f, 3.00f,
	};
	static const float up35[15] = {
		0.0f, 0.1f, 0.5f, 0.9f, 1.0f, 1.0f, 1.1f, 1.5f, 1.9f, 2.0f,
		2.0f, 2.1f, 2.5f, 2.9f, 3.0f,
	};
	float src[4] = { 0, 1, 2, 3 }, out[16], big[2 * 4 * 6], small[2 * 6];
	int k, y, x, ok = 1;

	resize_bilinear(src, 1, 2, 2, out, 4, 4);
	for (k = 0; k < 16; k++)
		ok &= near(out[k], up44[k]);
	tap_ok(t, ok, "resize 2x2 -> 4x4 as PyTorch's bilinear, "
	       "align_corners=False");
	resize_bilinear(src, 1, 2, 2, out, 3, 5);
	for (k = 0, ok = 1; k < 15; k++)
		ok &= near(out[k], up35[k]);
	tap_ok(t, ok, "resize 2x2 -> 3 rows x 5 columns (rows and columns "
	       "not swapped)");
	/* halving: each output is the mean of a 2x2 block, per channel */
	for (k = 0; k < 2 * 4 * 6; k++)
		big[k] = (float)((k * 37) % 101);
	resize_bilinear(big, 2, 4, 6, small, 2, 3);
	for (k = 0, ok = 1; k < 2; k++)
		for (y = 0; y < 2; y++)
			for (x = 0; x < 3; x++) {
				const float *b = big + k * 24 + 2 * y * 6 + 2 * x;

				ok &= near(small[k * 6 + y * 3 + x],
					   (b[0] + b[1] + b[6] + b[7]) / 4);
			}
	tap_ok(t, ok, "halving 2x4x6 -> 2x2x3 averages 2x2 blocks");
	/* to 1x1: the sample point is (1.5, 2.5), between rows 1-2 and
	 * columns 2-3 */
	resize_bilinear(big, 2, 4, 6, out, 1, 1);
	for (k = 0, ok = 1; k < 2; k++)
		ok &= near(out[k], (big[k * 24 + 1 * 6 + 2] + big[k * 24 + 1 * 6 + 3] +
				    big[k * 24 + 2 * 6 + 2] + big[k * 24 + 2 * 6 + 3]) / 4);
	tap_ok(t, ok, "to 1x1: each plane's value at its centre (1.5, 2.5)");
}

/* dataset_resize on the CIFAR-10 folder: 32x32 up to 96x96 and back. */
static void check_dataset_resize(struct tap *t, const char *dir)
{
	char err[ERR_MAX] = "", note[ERR_MAX] = "";
	float *pix = malloc(sizeof *pix * 3 * 96 * 96);
	float *ref = malloc(sizeof *ref * 3 * 96 * 96);
	float *own = malloc(sizeof *own * 3 * CPLANE);
	struct dataset *d = NULL;
	int k, ok = 1;

	if (!tap_ok(t, dataset_open(dir, "test", &d, note, err) == ST_OK,
		    "CIFAR-10 opens for resizing (%s)", err))
		goto out;
	dataset_image(d, 1, own, err);
	tap_ok(t, dataset_resize(d, 96, 96, err) == ST_OK &&
	       dataset_height(d) == 96 && dataset_width(d) == 96 &&
	       dataset_native_height(d) == 32 && dataset_native_width(d) == 32,
	       "resized to 96x96: height/width 96, native 32");
	resize_bilinear(own, 3, 32, 32, ref, 96, 96);
	tap_ok(t, dataset_image(d, 1, pix, err) == ST_OK &&
	       !memcmp(pix, ref, sizeof *pix * 3 * 96 * 96),
	       "image 1 at 96x96 is its 32x32 pixels resampled");
	/* the centre of output pixel (3y+1, 3x+1) is input pixel (y, x) */
	for (k = 0; k < 3 * CPLANE; k++)
		ok &= near(pix[(k / CPLANE) * 9216 + (3 * ((k % CPLANE) / 32) + 1) * 96 +
			       3 * (k % 32) + 1], own[k]);
	tap_ok(t, ok, "tripling keeps every input pixel at the centre of its "
	       "3x3 block");
	tap_ok(t, dataset_resize(d, 32, 32, err) == ST_OK &&
	       dataset_image(d, 1, pix, err) == ST_OK &&
	       !memcmp(pix, own, sizeof *pix * 3 * CPLANE),
	       "resizing to the own size gives the exact pixels back");
	tap_ok(t, dataset_resize(d, 0, 96, err) == ST_ERR_ARG &&
	       has(err, "96x0") && dataset_height(d) == 32,
	       "a side of 0 refused, size unchanged: %s", err);
	dataset_close(d);
out:
	free(pix);
	free(ref);
	free(own);
}

/* ---- image folders ----------------------------------------------------- */

/* A 3x6x8 image whose every value is (seed + k) % 256 / 255. */
static void put_png(struct tap *t, const char *dir, const char *name, int h,
		    int w, int seed)
{
	char path[1024], err[ERR_MAX] = "";
	float *pix = malloc(sizeof *pix * 3 * h * w);
	int k;

	for (k = 0; k < 3 * h * w; k++)
		pix[k] = (float)((seed + k) % 256) / 255.0f;
	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (image_write_png(path, pix, h, w, NULL, NULL, 0, err) != ST_OK)
		tap_ok(t, 0, "write %s: %s", path, err);
	free(pix);
}

/* The PNG chunk CRC (ISO 3309, as zlib's crc32), bit by bit. */
static unsigned long png_crc(const unsigned char *p, size_t n)
{
	unsigned long c = 0xffffffffUL;
	size_t i;
	int k;

	for (i = 0; i < n; i++) {
		c ^= p[i];
		for (k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320UL ^ (c >> 1) : c >> 1;
	}
	return c ^ 0xffffffffUL;
}

static void put_be32(unsigned char *p, unsigned long v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* dir/name: a valid PNG header claiming w x h (8-bit gray) followed by an
 * IDAT that holds only the start of a zlib stream, then IEND. The header
 * reads; decoding it fails ("truncated or corrupt"). So a reader that
 * refuses it for its size has not tried to decode it. */
static void put_png_header_only(const char *dir, const char *name,
				unsigned long w, unsigned long h)
{
	static const unsigned char sig[8] = { 137, 'P', 'N', 'G', 13, 10, 26,
					      10 };
	unsigned char b[8 + 25 + 14 + 12], *p = b;

	memcpy(p, sig, 8);
	p += 8;
	put_be32(p, 13);
	memcpy(p + 4, "IHDR", 4);
	put_be32(p + 8, w);
	put_be32(p + 12, h);
	p[16] = 8;		/* bit depth */
	p[17] = 0;		/* gray */
	p[18] = p[19] = p[20] = 0;
	put_be32(p + 21, png_crc(p + 4, 17));
	p += 25;
	put_be32(p, 2);
	memcpy(p + 4, "IDAT", 4);
	p[8] = 0x78;		/* zlib header, no data after it */
	p[9] = 0x9c;
	put_be32(p + 10, png_crc(p + 4, 6));
	p += 14;
	put_be32(p, 0);
	memcpy(p + 4, "IEND", 4);
	put_be32(p + 8, png_crc(p + 4, 4));
	put_file(dir, name, b, sizeof b);
}

/* T/name/{cat,dog}/ with 3 PNGs of 6x8 each, and things to skip. */
static void make_imagedir(struct tap *t, char *dir, size_t n, const char *top,
			  const char *name)
{
	char sub[1024];

	make_dir(dir, n, top, name);
	make_dir(sub, sizeof sub, dir, "dog");
	put_png(t, sub, "f.png", 6, 8, 50);
	put_png(t, sub, "D.PNG", 6, 8, 30);
	put_png(t, sub, "e.png", 6, 8, 40);
	put_text(sub, "notes.txt", "not an image\n");
	make_dir(sub, sizeof sub, dir, "cat");
	put_png(t, sub, "b.png", 6, 8, 10);
	put_png(t, sub, "a.png", 6, 8, 0);
	put_png(t, sub, "c.png", 6, 8, 20);
	put_png(t, sub, ".hidden.png", 6, 8, 99);
	make_dir(sub, sizeof sub, dir, ".git");
	put_png(t, sub, "x.png", 6, 8, 99);
	put_text(dir, "README", "two classes\n");
}

static void check_imagedir(struct tap *t, const char *top)
{
	static const int seeds[6] = { 0, 10, 20, 30, 40, 50 };
	char dir[512], err[ERR_MAX] = "", note[ERR_MAX] = "", name[1024],
	     want[1024];
	float *pix = malloc(sizeof *pix * 3 * 6 * 8);
	struct dataset *d = NULL;
	int i, k, ok = 1;

	make_imagedir(t, dir, sizeof dir, top, "imgs");
	if (!tap_ok(t, dataset_open(dir, NULL, &d, note, err) == ST_OK,
		    "image folder opens (%s)", err))
		goto out;
	tap_ok(t, dataset_kind(d) == DATASET_IMAGEDIR && note[0] == '\0' &&
	       !strcmp(dataset_split(d), ""),
	       "kind image folder, no note, no split sub-folder");
	tap_ok(t, dataset_count(d) == 6 && dataset_n_classes(d) == 2 &&
	       dataset_height(d) == 6 && dataset_width(d) == 8,
	       "6 images of 8x6 in 2 classes (hidden and non-PNG skipped)");
	tap_ok(t, !strcmp(dataset_class_name(d, 0), "cat") &&
	       !strcmp(dataset_class_name(d, 1), "dog") &&
	       !dataset_class_name(d, 2), "classes sorted: cat, dog");
	for (i = 0; i < 6; i++)
		ok &= dataset_label(d, i) == i / 3;
	tap_ok(t, ok && dataset_label(d, 6) == -1, "labels 0 0 0 1 1 1");
	dataset_image_name(d, 3, name, sizeof name);
	snprintf(want, sizeof want, "%s/dog/D.PNG", dir);
	tap_ok(t, !strcmp(name, want),
	       "files sorted bytewise, .PNG accepted: image 3 is %s", name);
	for (i = 0, ok = 1; i < 6; i++) {
		ok &= dataset_image(d, i, pix, err) == ST_OK;
		for (k = 0; k < 3 * 6 * 8; k++)
			ok &= pix[k] == (float)((seeds[i] + k) % 256) / 255.0f;
	}
	tap_ok(t, ok, "all 6 images read back exactly, in sorted order");
	tap_ok(t, dataset_image(d, 6, pix, err) == ST_ERR_ARG &&
	       has(err, "out of range"), "index 6 refused: %s", err);
	dataset_close(d);

	/* one PNG of another size: found when read, both sizes named */
	snprintf(name, sizeof name, "%s/cat", dir);
	put_png(t, name, "z.png", 5, 5, 0);
	if (tap_ok(t, dataset_open(dir, NULL, &d, note, err) == ST_OK,
		   "with a 5x5 PNG added it still opens")) {
		snprintf(want, sizeof want, "%s/cat/z.png", dir);
		tap_ok(t, dataset_image(d, 3, pix, err) == ST_ERR_SHAPE &&
		       has(err, want) && has(err, "5x5") && has(err, "8x6"),
		       "reading it names the file and both sizes: %s", err);
		dataset_close(d);
	}

	/* A PNG that claims 16384x16384 among 8x6 ones (a few dozen bytes
	 * that would decode to gigabytes): refused for its size from the
	 * header, before any decoding. The control: read on its own, the
	 * same file is refused as corrupt, so the size message above cannot
	 * come from a decode. */
	snprintf(name, sizeof name, "%s/dog", dir);
	put_png_header_only(name, "zz.png", 16384, 16384);
	if (tap_ok(t, dataset_open(dir, NULL, &d, note, err) == ST_OK,
		   "with a 16384x16384 PNG header added it still opens")) {
		float *big = NULL;
		int bh = 0, bw = 0;

		snprintf(want, sizeof want, "%s/dog/zz.png", dir);
		tap_ok(t, dataset_count(d) == 8 &&
		       dataset_image(d, 7, pix, err) == ST_ERR_SHAPE &&
		       has(err, want) && has(err, "16384x16384") &&
		       has(err, "8x6"),
		       "its size is refused before decoding: %s", err);
		tap_ok(t, image_read_png(want, &big, &bh, &bw, err) ==
		       ST_ERR_FORMAT && has(err, "corrupt"),
		       "control: decoding that file fails: %s", err);
		free(big);
		dataset_close(d);
	}
out:
	free(pix);
}

static void check_imagedir_layouts(struct tap *t, const char *top)
{
	char dir[512], sub[1024], sub2[1024], err[ERR_MAX] = "",
	     note[ERR_MAX] = "";
	struct dataset *d = NULL;
	struct imagedir *g = NULL;

	/* DIR/<split>/<class>/ */
	make_dir(dir, sizeof dir, top, "splits");
	make_dir(sub, sizeof sub, dir, "train");
	make_dir(sub2, sizeof sub2, sub, "a");
	put_png(t, sub2, "1.png", 4, 4, 0);
	put_png(t, sub2, "2.png", 4, 4, 0);
	make_dir(sub, sizeof sub, dir, "test");
	make_dir(sub2, sizeof sub2, sub, "b");
	put_png(t, sub2, "1.png", 4, 4, 0);
	if (tap_ok(t, dataset_open(dir, "train", &d, note, err) == ST_OK,
		   "DIR/train/<class>/ opens (%s)", err)) {
		tap_ok(t, !strcmp(dataset_split(d), "train") &&
		       dataset_count(d) == 2 &&
		       !strcmp(dataset_class_name(d, 0), "a"),
		       "split train: its 2 images, class a");
		dataset_close(d);
	}
	if (tap_ok(t, dataset_open(dir, NULL, &d, note, err) == ST_OK,
		   "and with no split (%s)", err)) {
		tap_ok(t, !strcmp(dataset_split(d), "test") &&
		       dataset_count(d) == 1, "it is the test split");
		dataset_close(d);
	}

	/* a class called "test" is a class, not a split */
	make_dir(dir, sizeof dir, top, "testclass");
	make_dir(sub, sizeof sub, dir, "test");
	put_png(t, sub, "1.png", 4, 4, 0);
	make_dir(sub, sizeof sub, dir, "other");
	put_png(t, sub, "1.png", 4, 4, 0);
	if (tap_ok(t, dataset_open(dir, "test", &d, note, err) == ST_OK,
		   "classes other/ and test/ open (%s)", err)) {
		tap_ok(t, dataset_n_classes(d) == 2 && dataset_count(d) == 2 &&
		       !strcmp(dataset_class_name(d, 1), "test"),
		       "test/ taken as a class");
		dataset_close(d);
	}

	/* imagedir_open on its own: no classes, no PNGs */
	make_dir(dir, sizeof dir, top, "noclasses");
	tap_ok(t, imagedir_open(dir, &g, err) == ST_ERR_FORMAT &&
	       has(err, "noclasses") && has(err, "no class sub-folders"),
	       "no class folders: %s", err);
	make_dir(sub, sizeof sub, dir, "a");
	put_text(sub, "x.jpg", "jpeg?");
	tap_ok(t, imagedir_open(dir, &g, err) == ST_ERR_FORMAT &&
	       has(err, "noclasses") && has(err, "no PNG files"),
	       "class folders without PNGs: %s", err);

	/* an unreadable first PNG fails the open, naming it */
	make_dir(dir, sizeof dir, top, "brokenfirst");
	make_dir(sub, sizeof sub, dir, "a");
	put_text(sub, "1.png", "not really a PNG");
	tap_ok(t, dataset_open(dir, NULL, &d, note, err) == ST_ERR_FORMAT &&
	       has(err, "brokenfirst/a/1.png"),
	       "a broken first PNG: %s", err);
}

/* ---- which kind -------------------------------------------------------- */

static void check_dispatch(struct tap *t, const char *top)
{
	char dir[512], sub[1024], err[ERR_MAX] = "", note[ERR_MAX] = "",
	     want[1024];
	struct dataset *d = NULL;

	/* the parent of stl10_binary/ */
	make_dir(dir, sizeof dir, top, "parent");
	make_dir(sub, sizeof sub, dir, "stl10_binary");
	make_stl10(sub);
	check_stl10_ok(t, sub, dir);

	/* the same through DIR/stl10_binary itself */
	if (tap_ok(t, dataset_open(sub, "train", &d, note, err) == ST_OK,
		   "DIR/stl10_binary itself opens")) {
		tap_ok(t, dataset_kind(d) == DATASET_STL10 &&
		       dataset_count(d) == 10 && !strcmp(dataset_path(d), sub),
		       "STL-10 train, 10 images, path as given");
		dataset_close(d);
	}

	make_dir(dir, sizeof dir, top, "neither");
	make_dir(sub, sizeof sub, dir, "empty-class");
	put_text(dir, "test_X.txt", "no");
	snprintf(want, sizeof want, "%s: neither an STL-10 binary directory "
		 "(no test_X.bin), a CIFAR-10 binary directory (no "
		 "test_batch.bin) nor a folder of class sub-folders with PNG "
		 "files", dir);
	tap_ok(t, dataset_open(dir, NULL, &d, note, err) == ST_ERR_FORMAT &&
	       !strcmp(err, want), "neither kind: %s", err);

	snprintf(dir, sizeof dir, "%s/does-not-exist", top);
	tap_ok(t, dataset_open(dir, NULL, &d, note, err) != ST_OK &&
	       has(err, "does-not-exist") && d == NULL,
	       "a missing directory: %s", err);
	snprintf(dir, sizeof dir, "%s/parent/stl10_binary/test_y.bin", top);
	tap_ok(t, dataset_open(dir, NULL, &d, note, err) == ST_ERR_ARG &&
	       has(err, "not a directory"), "a file: %s", err);
}

int main(void)
{
	struct tap t = { 0 };
	char top[] = "/tmp/advex-test-dataset-XXXXXX", dir[512];

	if (!mkdtemp(top)) {
		perror("mkdtemp");
		return 1;
	}
	make_dir(dir, sizeof dir, top, "stl");
	make_stl10(dir);
	check_stl10_ok(&t, dir, dir);
	check_stl10_splits(&t, dir);
	check_stl10_bad(&t, top);
	make_dir(dir, sizeof dir, top, "cifar-10-batches-bin");
	make_cifar(dir);
	check_cifar_test(&t, dir, dir);
	check_cifar_train(&t, dir);
	check_cifar_bad(&t, top);
	check_resize_kernel(&t);
	check_dataset_resize(&t, dir);
	check_imagedir(&t, top);
	check_imagedir_layouts(&t, top);
	check_dispatch(&t, top);
	rm_tree(top);
	return tap_done(&t);
}
