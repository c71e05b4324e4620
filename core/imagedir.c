/* imagedir.c - a folder of class sub-folders of PNG files (see imagedir.h). */
#define _POSIX_C_SOURCE 200809L

#include "imagedir.h"

#include "image.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

struct imagedir {
	char *dir;		/* the folder scanned, as given */
	int n_classes;
	char **classes;		/* n_classes names, owned */
	int count;
	char **files;		/* count paths "dir/class/file.png", owned */
	int *labels;		/* count class indices */
	int h, w;		/* the size of files[0] */
};

/* A growing list of malloc'd strings. */
struct names {
	char **v;
	int n, cap;
};

enum entry_kind { ENTRY_DIR, ENTRY_PNG };

static void names_free(struct names *l)
{
	int i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

static int names_add(struct names *l, const char *s)
{
	if (l->n == INT_MAX)
		return -1;
	if (l->n == l->cap) {
		int cap = l->cap ? (l->cap > INT_MAX / 2 ? INT_MAX : 2 * l->cap)
				 : 16;
		char **v = realloc(l->v, sizeof *v * (size_t)cap);

		if (!v)
			return -1;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n] = strdup(s);
	if (!l->v[l->n])
		return -1;
	l->n++;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "a/b", malloc'd. */
static char *path_join(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s/%s", a, b);
	return p;
}

static int is_png_name(const char *name)
{
	size_t n = strlen(name);

	return n > 4 && strcasecmp(name + n - 4, ".png") == 0;
}

/* Does dir/name (following links) fit kind? */
static int entry_is(const char *dir, const char *name, enum entry_kind kind)
{
	struct stat sb;
	char *p;
	int ok;

	if (name[0] == '.' || (kind == ENTRY_PNG && !is_png_name(name)))
		return 0;
	p = path_join(dir, name);
	if (!p)
		return 0;
	ok = stat(p, &sb) == 0 &&
	     (kind == ENTRY_DIR ? S_ISDIR(sb.st_mode) : S_ISREG(sb.st_mode));
	free(p);
	return ok;
}

/* The entries of dir of the given kind, sorted by name. */
static enum status list_dir(const char *dir, enum entry_kind kind,
			    struct names *out, char *err)
{
	struct dirent *e;
	DIR *dp = opendir(dir);

	if (!dp)
		return status_set(err, ST_ERR_IO, "%s: cannot open folder: %s",
				  dir, strerror(errno));
	while ((e = readdir(dp))) {
		if (!entry_is(dir, e->d_name, kind))
			continue;
		if (names_add(out, e->d_name) != 0) {
			closedir(dp);
			names_free(out);
			return status_set(err, ST_ERR_NOMEM,
					  "%s: out of memory", dir);
		}
	}
	closedir(dp);
	if (out->n > 1)
		qsort(out->v, (size_t)out->n, sizeof *out->v, cmp_str);
	return ST_OK;
}

/* 1 when dir holds a *.png file; stops at the first. */
static int has_png(const char *dir)
{
	struct dirent *e;
	DIR *dp = opendir(dir);
	int found = 0;

	if (!dp)
		return 0;
	while (!found && (e = readdir(dp)))
		found = entry_is(dir, e->d_name, ENTRY_PNG);
	closedir(dp);
	return found;
}

int imagedir_looks_like(const char *dir)
{
	struct dirent *e;
	DIR *dp = opendir(dir);
	int found = 0;

	if (!dp)
		return 0;
	while (!found && (e = readdir(dp))) {
		char *sub;

		if (!entry_is(dir, e->d_name, ENTRY_DIR))
			continue;
		sub = path_join(dir, e->d_name);
		found = sub && has_png(sub);
		free(sub);
	}
	closedir(dp);
	return found;
}

/* Append the PNGs of class c (folder sub) to d. */
static enum status add_class(struct imagedir *d, int c, const char *sub,
			     char *err)
{
	struct names files = { 0 };
	enum status st = list_dir(sub, ENTRY_PNG, &files, err);
	int i;

	if (st != ST_OK)
		return st;
	if (files.n > INT_MAX - d->count) {
		names_free(&files);
		return status_set(err, ST_ERR_UNSUPPORTED,
				  "%s: too many images", d->dir);
	}
	if (files.n > 0) {
		char **f = realloc(d->files,
				   sizeof *f * (size_t)(d->count + files.n));
		int *l = f ? realloc(d->labels, sizeof *l *
				     (size_t)(d->count + files.n)) : NULL;

		if (f)
			d->files = f;
		if (l)
			d->labels = l;
		if (!f || !l) {
			names_free(&files);
			return status_set(err, ST_ERR_NOMEM,
					  "%s: out of memory", sub);
		}
	}
	for (i = 0; i < files.n; i++) {
		char *p = path_join(sub, files.v[i]);

		if (!p) {
			names_free(&files);
			return status_set(err, ST_ERR_NOMEM,
					  "%s: out of memory", sub);
		}
		d->files[d->count] = p;
		d->labels[d->count] = c;
		d->count++;
	}
	names_free(&files);
	return ST_OK;
}

static enum status scan(struct imagedir *d, char *err)
{
	struct names classes = { 0 };
	enum status st = list_dir(d->dir, ENTRY_DIR, &classes, err);
	int c;

	if (st != ST_OK)
		return st;
	if (classes.n == 0) {
		names_free(&classes);
		return status_set(err, ST_ERR_FORMAT,
				  "%s: no class sub-folders (expected "
				  "%s/<class>/*.png)", d->dir, d->dir);
	}
	/* the list now belongs to d */
	d->classes = classes.v;
	d->n_classes = classes.n;
	for (c = 0; c < d->n_classes && st == ST_OK; c++) {
		char *sub = path_join(d->dir, d->classes[c]);

		if (!sub)
			return status_set(err, ST_ERR_NOMEM,
					  "%s: out of memory", d->dir);
		st = add_class(d, c, sub, err);
		free(sub);
	}
	if (st == ST_OK && d->count == 0)
		st = status_set(err, ST_ERR_FORMAT,
				"%s: no PNG files in its %d class sub-folders",
				d->dir, d->n_classes);
	return st;
}

enum status imagedir_open(const char *dir, struct imagedir **out, char *err)
{
	struct imagedir *d;
	enum status st;

	*out = NULL;
	d = calloc(1, sizeof *d);
	if (!d || !(d->dir = strdup(dir))) {
		free(d);
		return status_set(err, ST_ERR_NOMEM, "%s: out of memory", dir);
	}
	st = scan(d, err);
	if (st == ST_OK)
		st = image_png_size(d->files[0], &d->h, &d->w, err);
	if (st != ST_OK) {
		imagedir_close(d);
		return st;
	}
	*out = d;
	return ST_OK;
}

void imagedir_close(struct imagedir *d)
{
	int i;

	if (!d)
		return;
	for (i = 0; i < d->n_classes; i++)
		free(d->classes[i]);
	for (i = 0; i < d->count; i++)
		free(d->files[i]);
	free(d->classes);
	free(d->files);
	free(d->labels);
	free(d->dir);
	free(d);
}

int imagedir_count(const struct imagedir *d)
{
	return d->count;
}

int imagedir_height(const struct imagedir *d)
{
	return d->h;
}

int imagedir_width(const struct imagedir *d)
{
	return d->w;
}

int imagedir_n_classes(const struct imagedir *d)
{
	return d->n_classes;
}

const char *imagedir_class_name(const struct imagedir *d, int c)
{
	if (c < 0 || c >= d->n_classes)
		return NULL;
	return d->classes[c];
}

int imagedir_label(const struct imagedir *d, int i)
{
	if (i < 0 || i >= d->count)
		return -1;
	return d->labels[i];
}

void imagedir_image_name(const struct imagedir *d, int i, char *buf, int n)
{
	if (n <= 0)
		return;
	if (i < 0 || i >= d->count)
		snprintf(buf, (size_t)n, "%s#%d", d->dir, i);
	else
		snprintf(buf, (size_t)n, "%s", d->files[i]);
}

enum status imagedir_image(const struct imagedir *d, int i, float *pix,
			   char *err)
{
	int h, w;
	enum status st;

	if (i < 0 || i >= d->count)
		return status_set(err, ST_ERR_ARG,
				  "%s: image %d out of range (0..%d)", d->dir,
				  i, d->count - 1);
	/* The size from the header first: a small file can claim 16384x16384,
	 * which would cost gigabytes and seconds to decode only to be
	 * refused. image_load_png checks the header again before decoding,
	 * so a file replaced in between is still refused. */
	st = image_png_size(d->files[i], &h, &w, err);
	if (st != ST_OK)
		return st;
	if (h != d->h || w != d->w)
		return status_set(err, ST_ERR_SHAPE,
				  "%s: image is %dx%d but the images of %s are "
				  "%dx%d (the size of %s)", d->files[i], w, h,
				  d->dir, d->w, d->h, d->files[0]);
	return image_load_png(d->files[i], d->h, d->w, pix, err);
}
