/* cifar10.c - the official CIFAR-10 binary directory (see cifar10.h).
 *
 * Every file here is untrusted: each batch file's size must be a whole
 * number of records, every label byte is range-checked before it is used,
 * and the counts are summed in 64 bits before they become an int.
 */
#define _POSIX_C_SOURCE 200809L

#include "cifar10.h"

#include "classnames.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PLANE (CIFAR10_SIDE * CIFAR10_SIDE)

static const char *const cifar10_default_names[CIFAR10_MAX_CLASSES] = {
	"airplane", "automobile", "bird", "cat", "deer",
	"dog", "frog", "horse", "ship", "truck",
};

/* One mapped batch file. */
struct batch {
	char name[32];			/* "data_batch_3.bin" */
	const unsigned char *map;	/* read-only mapping of the file */
	size_t len;
	int first;			/* split index of its record 0 */
	int count;			/* records */
};

struct cifar10 {
	char *dir;			/* as given */
	char split[8];			/* "train" or "test" */
	struct batch files[CIFAR10_TRAIN_FILES];
	int n_files;			/* 5 (train) or 1 (test) */
	int count;			/* images over all files */
	unsigned char *labels;		/* count labels 0..9, owned */
	int max_label;			/* largest label seen */
	int n_classes;
	char *names[CIFAR10_MAX_CLASSES];	/* owned */
};

/* "dir/name", malloc'd (NULL when out of memory). */
static char *path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s/%s", dir, name);
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

int cifar10_looks_like(const char *dir)
{
	return is_file(dir, "test_batch.bin") ||
	       is_file(dir, "data_batch_1.bin");
}

/* ---- the batch files --------------------------------------------------- */

/* What the split is made of, for the message about a missing file. */
static const char *split_files(const struct cifar10 *s)
{
	return strcmp(s->split, "train") == 0
		       ? "data_batch_1.bin .. data_batch_5.bin"
		       : "test_batch.bin";
}

/* Map dir/b->name and check that it is a whole, non-zero number of
 * records; first is the split index of its record 0. */
static enum status map_batch(struct cifar10 *s, struct batch *b, int first,
			     char *err)
{
	char *path = path_join(s->dir, b->name);
	struct stat sb;
	enum status st = ST_OK;
	intmax_t records;
	void *m;
	int fd;

	if (!path)
		return status_set(err, ST_ERR_NOMEM, "%s: out of memory",
				  s->dir);
	/* O_NONBLOCK: a FIFO must not block the open (refused below) */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT)
			st = status_set(err, ST_ERR_IO,
					"%s: missing (the CIFAR-10 %s split is "
					"%s in %s)", path, s->split,
					split_files(s), s->dir);
		else
			st = status_set(err, ST_ERR_IO, "%s: cannot open: %s",
					path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		st = status_set(err, ST_ERR_FORMAT, "%s: not a regular file",
				path);
		goto out;
	}
	if (sb.st_size % CIFAR10_RECORD_BYTES != 0) {
		/* a download cut short, or another data set's file */
		st = status_set(err, ST_ERR_FORMAT,
				"%s: size %jd bytes is not a multiple of 3,073 "
				"(one record: a label byte and a 3x32x32 "
				"image): %jd bytes left over", path,
				(intmax_t)sb.st_size,
				(intmax_t)(sb.st_size % CIFAR10_RECORD_BYTES));
		goto out;
	}
	if (sb.st_size == 0) {
		st = status_set(err, ST_ERR_FORMAT, "%s: empty (no records)",
				path);
		goto out;
	}
	records = (intmax_t)(sb.st_size / CIFAR10_RECORD_BYTES);
	if (records > INT_MAX - first || (uintmax_t)sb.st_size > SIZE_MAX) {
		st = status_set(err, ST_ERR_FORMAT,
				"%s: %jd records: more than %d in the split",
				path, records, INT_MAX);
		goto out;
	}
	m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (m == MAP_FAILED) {
		st = status_set(err, ST_ERR_IO, "%s: cannot map: %s", path,
				strerror(errno));
		goto out;
	}
	b->map = m;
	b->len = (size_t)sb.st_size;
	b->first = first;
	b->count = (int)records;
out:
	if (fd >= 0)
		close(fd);
	free(path);
	return st;
}

/* Copy every record's label byte out of the mappings, checking each. */
static enum status read_labels(struct cifar10 *s, char *err)
{
	int k, r;

	s->labels = malloc((size_t)s->count);
	if (!s->labels)
		return status_set(err, ST_ERR_NOMEM, "%s: out of memory",
				  s->dir);
	for (k = 0; k < s->n_files; k++) {
		const struct batch *b = &s->files[k];

		for (r = 0; r < b->count; r++) {
			unsigned char v =
				b->map[(size_t)r * CIFAR10_RECORD_BYTES];

			if (v >= CIFAR10_MAX_CLASSES)
				return status_set(err, ST_ERR_FORMAT,
						  "%s/%s: record %d has label "
						  "%u, outside 0..%d (not a "
						  "CIFAR-10 batch file?)",
						  s->dir, b->name, r, v,
						  CIFAR10_MAX_CLASSES - 1);
			if (v > s->max_label)
				s->max_label = v;
			s->labels[b->first + r] = v;
		}
	}
	return ST_OK;
}

/* ---- class names ------------------------------------------------------- */

static enum status read_names(struct cifar10 *s, char *note, char *err)
{
	char *path = path_join(s->dir, "batches.meta.txt"), msg[ERR_MAX];
	enum status st;
	int missing, c;

	if (!path)
		return status_set(err, ST_ERR_NOMEM, "%s: out of memory",
				  s->dir);
	/* a missing file is not an error: keep its message out of err */
	st = classnames_read(path, CIFAR10_MAX_CLASSES, s->names,
			     &s->n_classes, &missing, msg);
	if (st != ST_OK && missing) {
		for (c = 0, st = ST_OK; c < CIFAR10_MAX_CLASSES; c++)
			if (!(s->names[c] = strdup(cifar10_default_names[c])))
				st = status_set(err, ST_ERR_NOMEM,
						"%s: out of memory", path);
		s->n_classes = CIFAR10_MAX_CLASSES;
		if (note && st == ST_OK)
			snprintf(note, ERR_MAX, "%s missing: using the "
				 "CIFAR-10 class names", path);
	} else if (st != ST_OK) {
		st = status_set(err, st, "%s", msg);
	}
	/* labels index the names: every label used needs one */
	if (st == ST_OK && s->n_classes <= s->max_label)
		st = status_set(err, ST_ERR_FORMAT,
				"%s has %d class names but the %s split uses "
				"label %d", path, s->n_classes, s->split,
				s->max_label);
	free(path);
	return st;
}

/* ---- the handle -------------------------------------------------------- */

enum status cifar10_open(const char *dir, const char *split,
			 struct cifar10 **out, char *note, char *err)
{
	struct cifar10 *s;
	enum status st = ST_OK;
	int k;

	*out = NULL;
	if (note)
		note[0] = '\0';
	if (!split)
		split = "test";
	if (strcmp(split, "train") && strcmp(split, "test"))
		return status_set(err, ST_ERR_ARG,
				  "%s: unknown CIFAR-10 split '%s' (train or "
				  "test)", dir, split);
	s = calloc(1, sizeof *s);
	if (!s || !(s->dir = strdup(dir))) {
		free(s);
		return status_set(err, ST_ERR_NOMEM, "%s: out of memory", dir);
	}
	snprintf(s->split, sizeof s->split, "%s", split);
	if (strcmp(split, "train") == 0) {
		s->n_files = CIFAR10_TRAIN_FILES;
		for (k = 0; k < s->n_files; k++)
			snprintf(s->files[k].name, sizeof s->files[k].name,
				 "data_batch_%d.bin", k + 1);
	} else {
		s->n_files = 1;
		snprintf(s->files[0].name, sizeof s->files[0].name,
			 "test_batch.bin");
	}
	for (k = 0; k < s->n_files && st == ST_OK; k++) {
		st = map_batch(s, &s->files[k], s->count, err);
		if (st == ST_OK)
			s->count += s->files[k].count;
	}
	if (st == ST_OK)
		st = read_labels(s, err);
	if (st == ST_OK)
		st = read_names(s, note, err);
	if (st != ST_OK) {
		cifar10_close(s);
		return st;
	}
	*out = s;
	return ST_OK;
}

void cifar10_close(struct cifar10 *s)
{
	int k;

	if (!s)
		return;
	for (k = 0; k < s->n_files; k++)
		if (s->files[k].map)
			munmap((void *)s->files[k].map, s->files[k].len);
	for (k = 0; k < CIFAR10_MAX_CLASSES; k++)
		free(s->names[k]);
	free(s->labels);
	free(s->dir);
	free(s);
}

int cifar10_count(const struct cifar10 *s)
{
	return s->count;
}

int cifar10_n_classes(const struct cifar10 *s)
{
	return s->n_classes;
}

const char *cifar10_class_name(const struct cifar10 *s, int c)
{
	if (c < 0 || c >= s->n_classes)
		return NULL;
	return s->names[c];
}

int cifar10_label(const struct cifar10 *s, int i)
{
	if (i < 0 || i >= s->count)
		return -1;
	return s->labels[i];
}

/* The file holding split index i (0 <= i < count). */
static const struct batch *batch_of(const struct cifar10 *s, int i)
{
	int k = 0;

	while (k + 1 < s->n_files && i >= s->files[k + 1].first)
		k++;
	return &s->files[k];
}

void cifar10_image_name(const struct cifar10 *s, int i, char *buf, int n)
{
	const struct batch *b;

	if (n <= 0)
		return;
	if (i < 0 || i >= s->count) {
		snprintf(buf, (size_t)n, "%s#%d", s->split, i);
		return;
	}
	b = batch_of(s, i);
	snprintf(buf, (size_t)n, "%s#%d", b->name, i - b->first);
}

enum status cifar10_image(const struct cifar10 *s, int i, float *pix,
			  char *err)
{
	const struct batch *b;
	const unsigned char *src;
	int k;

	if (i < 0 || i >= s->count)
		return status_set(err, ST_ERR_ARG,
				  "%s: image %d out of range (the %s split "
				  "has 0..%d)", s->dir, i, s->split,
				  s->count - 1);
	b = batch_of(s, i);
	/* skip the label byte; the planes are already row-major, as ours */
	src = b->map + (size_t)(i - b->first) * CIFAR10_RECORD_BYTES + 1;
	for (k = 0; k < 3 * PLANE; k++)
		pix[k] = src[k] / 255.0f;
	return ST_OK;
}
