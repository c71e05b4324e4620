/* dataset.c - one handle over the three kinds of labelled image sets
 * (see dataset.h): it decides which kind a directory is and dispatches to
 * stl10, cifar10 or imagedir.
 */
#define _POSIX_C_SOURCE 200809L

#include "dataset.h"

#include "cifar10.h"
#include "image.h"
#include "imagedir.h"
#include "resize.h"
#include "stl10.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct dataset {
	enum dataset_kind kind;
	char *path;		/* as given */
	char *split;		/* the split used; "": the image folder itself */
	struct stl10 *stl;	/* when kind == DATASET_STL10 */
	struct cifar10 *cif;	/* when kind == DATASET_CIFAR10 */
	struct imagedir *img;	/* when kind == DATASET_IMAGEDIR */
	int out_h, out_w;	/* dataset_resize; 0: the images' own size */
};

/* "a/b", malloc'd. */
static char *path_join(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s/%s", a, b);
	return p;
}

static int is_file(const char *dir, const char *name)
{
	struct stat sb;
	char *p = path_join(dir, name);
	int ok = p && stat(p, &sb) == 0 && S_ISREG(sb.st_mode);

	free(p);
	return ok;
}

/* An STL-10 binary directory holds at least one SPLIT_X.bin. */
static int is_stl10(const char *dir)
{
	return is_file(dir, "test_X.bin") || is_file(dir, "train_X.bin") ||
	       is_file(dir, "unlabeled_X.bin");
}

static enum status open_stl10(struct dataset *d, const char *dir,
			      const char *split, char *note, char *err)
{
	d->kind = DATASET_STL10;
	d->split = strdup(split);
	if (!d->split)
		return status_set(err, ST_ERR_NOMEM, "%s: out of memory", dir);
	return stl10_open(dir, split, &d->stl, note, err);
}

static enum status open_cifar10(struct dataset *d, const char *dir,
				const char *split, char *note, char *err)
{
	d->kind = DATASET_CIFAR10;
	d->split = strdup(split);
	if (!d->split)
		return status_set(err, ST_ERR_NOMEM, "%s: out of memory", dir);
	return cifar10_open(dir, split, &d->cif, note, err);
}

/* DIR/<split>/ when that is itself a folder of class folders, else DIR (so a
 * class that happens to be called "test" is not taken for a split). */
static enum status open_imagedir(struct dataset *d, const char *dir,
				 const char *split, char *err)
{
	char *sub = path_join(dir, split);
	enum status st;

	if (!sub)
		return status_set(err, ST_ERR_NOMEM, "%s: out of memory", dir);
	d->kind = DATASET_IMAGEDIR;
	if (imagedir_looks_like(sub)) {
		d->split = strdup(split);
		st = d->split ? imagedir_open(sub, &d->img, err)
			      : status_set(err, ST_ERR_NOMEM,
					   "%s: out of memory", dir);
	} else {
		d->split = strdup("");
		st = d->split ? imagedir_open(dir, &d->img, err)
			      : status_set(err, ST_ERR_NOMEM,
					   "%s: out of memory", dir);
	}
	free(sub);
	return st;
}

static int has_image_folder(const char *dir, const char *split)
{
	char *sub = path_join(dir, split);
	int yes = imagedir_looks_like(dir) || (sub && imagedir_looks_like(sub));

	free(sub);
	return yes;
}

/* DIR, or its stl10_binary/ sub-folder (the archive unpacks to that), is
 * STL-10; DIR or its cifar-10-batches-bin/ is CIFAR-10; else a folder of
 * class folders; else neither. */
static enum status open_kind(struct dataset *d, const char *dir,
			     const char *split, char *note, char *err)
{
	struct stat sb;
	char *nested, *nested_cifar;
	enum status st;

	if (stat(dir, &sb) != 0)
		return status_set(err, ST_ERR_IO, "%s: %s", dir,
				  strerror(errno));
	if (!S_ISDIR(sb.st_mode))
		return status_set(err, ST_ERR_ARG, "%s: not a directory", dir);
	if (is_stl10(dir))
		return open_stl10(d, dir, split, note, err);
	if (cifar10_looks_like(dir))
		return open_cifar10(d, dir, split, note, err);
	nested = path_join(dir, "stl10_binary");
	nested_cifar = path_join(dir, "cifar-10-batches-bin");
	if (!nested || !nested_cifar)
		st = status_set(err, ST_ERR_NOMEM, "%s: out of memory", dir);
	else if (is_stl10(nested))
		st = open_stl10(d, nested, split, note, err);
	else if (cifar10_looks_like(nested_cifar))
		st = open_cifar10(d, nested_cifar, split, note, err);
	else if (has_image_folder(dir, split))
		st = open_imagedir(d, dir, split, err);
	else
		st = status_set(err, ST_ERR_FORMAT,
				"%s: neither an STL-10 binary directory (no "
				"%s_X.bin), a CIFAR-10 binary directory (no "
				"%s) nor a folder of class sub-folders with "
				"PNG files", dir, split,
				strcmp(split, "train") == 0 ? "data_batch_1.bin"
							    : "test_batch.bin");
	free(nested);
	free(nested_cifar);
	return st;
}

enum status dataset_open(const char *dir, const char *split,
			 struct dataset **out, char *note, char *err)
{
	struct dataset *d;
	enum status st;

	*out = NULL;
	if (note)
		note[0] = '\0';
	if (!split)
		split = "test";
	d = calloc(1, sizeof *d);
	if (!d || !(d->path = strdup(dir))) {
		free(d);
		return status_set(err, ST_ERR_NOMEM, "%s: out of memory", dir);
	}
	st = open_kind(d, dir, split, note, err);
	if (st != ST_OK) {
		dataset_close(d);
		return st;
	}
	*out = d;
	return ST_OK;
}

void dataset_close(struct dataset *d)
{
	if (!d)
		return;
	stl10_close(d->stl);
	cifar10_close(d->cif);
	imagedir_close(d->img);
	free(d->split);
	free(d->path);
	free(d);
}

enum dataset_kind dataset_kind(const struct dataset *d)
{
	return d->kind;
}

const char *dataset_path(const struct dataset *d)
{
	return d->path;
}

const char *dataset_split(const struct dataset *d)
{
	return d->split;
}

const char *dataset_kind_name(enum dataset_kind kind)
{
	switch (kind) {
	case DATASET_STL10: return "stl10";
	case DATASET_CIFAR10: return "cifar10";
	case DATASET_IMAGEDIR: return "imagedir";
	}
	return "?";
}

int dataset_count(const struct dataset *d)
{
	if (d->stl)
		return stl10_count(d->stl);
	if (d->cif)
		return cifar10_count(d->cif);
	return imagedir_count(d->img);
}

/* The size the files hold, whatever dataset_resize asked for. */
static int native_height(const struct dataset *d)
{
	if (d->stl)
		return STL10_SIDE;
	if (d->cif)
		return CIFAR10_SIDE;
	return imagedir_height(d->img);
}

static int native_width(const struct dataset *d)
{
	if (d->stl)
		return STL10_SIDE;
	if (d->cif)
		return CIFAR10_SIDE;
	return imagedir_width(d->img);
}

int dataset_height(const struct dataset *d)
{
	return d->out_h ? d->out_h : native_height(d);
}

int dataset_width(const struct dataset *d)
{
	return d->out_w ? d->out_w : native_width(d);
}

int dataset_native_height(const struct dataset *d)
{
	return native_height(d);
}

int dataset_native_width(const struct dataset *d)
{
	return native_width(d);
}

enum status dataset_resize(struct dataset *d, int h, int w, char *err)
{
	if (h < 1 || w < 1 || h > IMAGE_MAX_SIDE || w > IMAGE_MAX_SIDE)
		return status_set(err, ST_ERR_ARG,
				  "%s: cannot resize to %dx%d (1..%d a side)",
				  d->path, w, h, IMAGE_MAX_SIDE);
	/* the own size: no resampling at all, so the pixels stay exact */
	if (h == native_height(d) && w == native_width(d))
		h = w = 0;
	d->out_h = h;
	d->out_w = w;
	return ST_OK;
}

int dataset_n_classes(const struct dataset *d)
{
	if (d->stl)
		return stl10_n_classes(d->stl);
	if (d->cif)
		return cifar10_n_classes(d->cif);
	return imagedir_n_classes(d->img);
}

const char *dataset_class_name(const struct dataset *d, int c)
{
	if (d->stl)
		return stl10_class_name(d->stl, c);
	if (d->cif)
		return cifar10_class_name(d->cif, c);
	return imagedir_class_name(d->img, c);
}

int dataset_label(const struct dataset *d, int i)
{
	if (d->stl)
		return stl10_label(d->stl, i);
	if (d->cif)
		return cifar10_label(d->cif, i);
	return imagedir_label(d->img, i);
}

void dataset_image_name(const struct dataset *d, int i, char *buf, int n)
{
	if (d->stl)
		stl10_image_name(d->stl, i, buf, n);
	else if (d->cif)
		cifar10_image_name(d->cif, i, buf, n);
	else
		imagedir_image_name(d->img, i, buf, n);
}

static enum status native_image(const struct dataset *d, int i, float *pix,
				char *err)
{
	if (d->stl)
		return stl10_image(d->stl, i, pix, err);
	if (d->cif)
		return cifar10_image(d->cif, i, pix, err);
	return imagedir_image(d->img, i, pix, err);
}

enum status dataset_image(const struct dataset *d, int i, float *pix,
			  char *err)
{
	int nh = native_height(d), nw = native_width(d);
	enum status st;
	float *tmp;

	if (!d->out_h)
		return native_image(d, i, pix, err);
	/* images are read one at a time outside any step loop: a buffer per
	 * call keeps the handle free of hidden state */
	tmp = malloc(sizeof *tmp * 3 * (size_t)nh * (size_t)nw);
	if (!tmp)
		return status_set(err, ST_ERR_NOMEM, "%s: out of memory",
				  d->path);
	st = native_image(d, i, tmp, err);
	if (st == ST_OK)
		resize_bilinear(tmp, 3, nh, nw, pix, d->out_h, d->out_w);
	free(tmp);
	return st;
}
