/* stl10.c - the official STL-10 binary directory (see stl10.h).
 *
 * Every file here is untrusted: sizes are checked against each other before
 * anything is indexed, and the small text files are read with a size cap.
 */
#define _POSIX_C_SOURCE 200809L

#include "stl10.h"

#include "classnames.h"
#include "textfile.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PLANE (STL10_SIDE * STL10_SIDE)
#define MAX_FOLDS 10
#define MAX_FOLDS_BYTES (4 * 1024 * 1024)	/* fold_indices.txt: 47,794 */

static const char *const stl10_default_names[STL10_MAX_CLASSES] = {
	"airplane", "bird", "car", "cat", "deer",
	"dog", "horse", "monkey", "ship", "truck",
};

struct stl10 {
	char *dir;			/* as given */
	char split[16];			/* "train", "test", "unlabeled" */
	char x_name[32];		/* "test_X.bin" */
	const unsigned char *map;	/* SPLIT_X.bin, read-only mapping */
	size_t map_len;
	int count;			/* images */
	unsigned char *labels;		/* count labels 0..9; NULL: unlabeled */
	int max_label;			/* largest 1-based label; 0: none */
	int n_classes;
	char *names[STL10_MAX_CLASSES];	/* owned */
	int n_folds;
	int *fold_idx[MAX_FOLDS];	/* owned */
	int fold_n[MAX_FOLDS];
};

/* ---- small helpers ----------------------------------------------------- */

/* "dir/name", malloc'd (NULL when out of memory). */
static char *path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

/* Append a sentence to the note (ERR_MAX bytes, may be NULL). */
static void note_add(char *note, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void note_add(char *note, const char *fmt, ...)
{
	size_t used;
	va_list ap;

	if (!note)
		return;
	used = strlen(note);
	if (used > 0 && used + 2 < ERR_MAX) {
		memcpy(note + used, "; ", 3);
		used += 2;
	}
	if (used + 1 >= ERR_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(note + used, ERR_MAX - used, fmt, ap);
	va_end(ap);
}

/* ---- the image file ---------------------------------------------------- */

static enum status map_images(struct stl10 *s, const char *path, char *err)
{
	struct stat sb;
	void *m;
	/* O_NONBLOCK: a FIFO must not block the open (refused below) */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0) {
		if (errno == ENOENT)
			return status_set(err, ST_ERR_IO,
					  "%s: missing (the STL-10 %s split is "
					  "not in %s)", path, s->split, s->dir);
		return status_set(err, ST_ERR_IO, "%s: cannot open: %s", path,
				  strerror(errno));
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return status_set(err, ST_ERR_FORMAT, "%s: not a regular file",
				  path);
	}
	if (sb.st_size % STL10_IMAGE_BYTES != 0) {
		close(fd);
		return status_set(err, ST_ERR_FORMAT,
				  "%s: size %jd bytes is not a multiple of "
				  "27,648 (one 3x96x96 image): %jd bytes left "
				  "over", path, (intmax_t)sb.st_size,
				  (intmax_t)(sb.st_size % STL10_IMAGE_BYTES));
	}
	if (sb.st_size == 0) {
		close(fd);
		return status_set(err, ST_ERR_FORMAT, "%s: empty (no images)",
				  path);
	}
	if (sb.st_size / STL10_IMAGE_BYTES > INT_MAX ||
	    (uintmax_t)sb.st_size > SIZE_MAX) {
		close(fd);
		return status_set(err, ST_ERR_FORMAT,
				  "%s: %jd images: more than %d", path,
				  (intmax_t)(sb.st_size / STL10_IMAGE_BYTES),
				  INT_MAX);
	}
	m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return status_set(err, ST_ERR_IO, "%s: cannot map: %s", path,
				  strerror(errno));
	s->map = m;
	s->map_len = (size_t)sb.st_size;
	s->count = (int)(sb.st_size / STL10_IMAGE_BYTES);
	return ST_OK;
}

/* ---- labels ------------------------------------------------------------ */

static enum status read_labels(struct stl10 *s, const char *x_path,
			       char *err)
{
	char y_name[32], *y_path, *buf = NULL;
	struct stat sb;
	size_t len;
	enum status st;
	int missing, i;

	snprintf(y_name, sizeof y_name, "%s_y.bin", s->split);
	y_path = path_join(s->dir, y_name);
	if (!y_path)
		return status_set(err, ST_ERR_NOMEM, "%s: out of memory",
				  s->dir);
	/* one byte per image: compare sizes before reading anything */
	if (stat(y_path, &sb) == 0 && S_ISREG(sb.st_mode) &&
	    sb.st_size != s->count) {
		st = status_set(err, ST_ERR_FORMAT,
				"%s has %jd labels but %s has %d images",
				y_path, (intmax_t)sb.st_size, x_path, s->count);
		goto out;
	}
	st = textfile_read(y_path, (size_t)s->count, &buf, &len, &missing, err);
	if (st != ST_OK)
		goto out;
	if (len != (size_t)s->count) {	/* it changed under us */
		st = status_set(err, ST_ERR_FORMAT,
				"%s has %zu labels but %s has %d images",
				y_path, len, x_path, s->count);
		goto out;
	}
	for (i = 0; i < s->count; i++) {
		unsigned char v = (unsigned char)buf[i];

		if (v < 1 || v > STL10_MAX_CLASSES) {
			st = status_set(err, ST_ERR_FORMAT,
					"%s: label %u at index %d is outside "
					"1..%d", y_path, v, i,
					STL10_MAX_CLASSES);
			goto out;
		}
		if (v > s->max_label)
			s->max_label = v;
		buf[i] = (char)(v - 1);
	}
	s->labels = (unsigned char *)buf;
	buf = NULL;
out:
	free(buf);
	free(y_path);
	return st;
}

/* ---- class names ------------------------------------------------------- */

static enum status default_names(struct stl10 *s, const char *path,
				 char *note, char *err)
{
	int c;

	for (c = 0; c < STL10_MAX_CLASSES; c++) {
		s->names[c] = strdup(stl10_default_names[c]);
		if (!s->names[c])
			return status_set(err, ST_ERR_NOMEM,
					  "%s: out of memory", path);
	}
	s->n_classes = STL10_MAX_CLASSES;
	note_add(note, "%s missing: using the STL-10 class names", path);
	return ST_OK;
}

static enum status read_names(struct stl10 *s, char *note, char *err)
{
	char *path = path_join(s->dir, "class_names.txt");
	char msg[ERR_MAX];
	enum status st;
	int missing;

	if (!path)
		return status_set(err, ST_ERR_NOMEM, "%s: out of memory",
				  s->dir);
	/* a missing file is not an error: keep its message out of err */
	st = classnames_read(path, STL10_MAX_CLASSES, s->names, &s->n_classes,
			     &missing, msg);
	if (st != ST_OK && missing)
		st = default_names(s, path, note, err);
	else if (st != ST_OK)
		st = status_set(err, st, "%s", msg);
	if (st == ST_OK && s->n_classes < s->max_label)
		st = status_set(err, ST_ERR_FORMAT,
				"%s has %d class names but %s_y.bin uses label "
				"%d", path, s->n_classes, s->split,
				s->max_label);
	free(path);
	return st;
}

/* ---- folds ------------------------------------------------------------- */

/* One fold per line: whitespace-separated zero-based train indices.
 * Returns 0, or -1 with why[] saying what is wrong. */
static int parse_folds(struct stl10 *s, char *buf, size_t len, char *why,
		       size_t why_n)
{
	char *p = buf, *line;
	int lineno = 0;

	while ((line = textfile_next_line(&p, buf + len))) {
		char *tok, *save = NULL;
		int k = s->n_folds, cap = 0;

		lineno++;
		if (!*textfile_trim(line))
			continue;
		if (k == MAX_FOLDS) {
			snprintf(why, why_n, "more than %d folds", MAX_FOLDS);
			return -1;
		}
		s->n_folds++;
		for (tok = strtok_r(line, " \t\r\v\f", &save); tok;
		     tok = strtok_r(NULL, " \t\r\v\f", &save)) {
			char *e;
			long v;

			errno = 0;
			v = strtol(tok, &e, 10);
			if (errno || *e || v < 0 || v >= s->count) {
				snprintf(why, why_n, "line %d: '%.20s' is not "
					 "a train index 0..%d", lineno, tok,
					 s->count - 1);
				return -1;
			}
			if (s->fold_n[k] == cap) {
				int *t;

				cap = cap ? 2 * cap : 1024;
				t = realloc(s->fold_idx[k], sizeof *t * cap);
				if (!t) {
					snprintf(why, why_n, "out of memory");
					return -1;
				}
				s->fold_idx[k] = t;
			}
			s->fold_idx[k][s->fold_n[k]++] = (int)v;
		}
	}
	return 0;
}

static void drop_folds(struct stl10 *s)
{
	int k;

	for (k = 0; k < MAX_FOLDS; k++) {
		free(s->fold_idx[k]);
		s->fold_idx[k] = NULL;
		s->fold_n[k] = 0;
	}
	s->n_folds = 0;
}

/* Optional: anything wrong becomes a note, never a failure. */
static void read_folds(struct stl10 *s, char *note)
{
	char *path, *buf, msg[ERR_MAX], why[128];
	size_t len;
	int missing;

	if (strcmp(s->split, "train") != 0)
		return;
	path = path_join(s->dir, "fold_indices.txt");
	if (!path)
		return;
	if (textfile_read(path, MAX_FOLDS_BYTES, &buf, &len, &missing, msg) !=
	    ST_OK) {
		if (!missing)
			note_add(note, "%s ignored", msg);
		free(path);
		return;
	}
	if (parse_folds(s, buf, len, why, sizeof why) != 0) {
		drop_folds(s);
		note_add(note, "%s: %s: folds ignored", path, why);
	}
	free(buf);
	free(path);
}

/* ---- the handle -------------------------------------------------------- */

static enum status check_split(const char *dir, const char *split, char *err)
{
	if (strcmp(split, "train") && strcmp(split, "test") &&
	    strcmp(split, "unlabeled"))
		return status_set(err, ST_ERR_ARG,
				  "%s: unknown STL-10 split '%s' (train, test "
				  "or unlabeled)", dir, split);
	return ST_OK;
}

enum status stl10_open(const char *dir, const char *split, struct stl10 **out,
		       char *note, char *err)
{
	struct stl10 *s;
	char *x_path = NULL;
	enum status st;

	*out = NULL;
	if (note)
		note[0] = '\0';
	if (!split)
		split = "test";
	st = check_split(dir, split, err);
	if (st != ST_OK)
		return st;
	s = calloc(1, sizeof *s);
	if (!s || !(s->dir = strdup(dir))) {
		free(s);
		return status_set(err, ST_ERR_NOMEM, "%s: out of memory", dir);
	}
	snprintf(s->split, sizeof s->split, "%s", split);
	snprintf(s->x_name, sizeof s->x_name, "%s_X.bin", split);
	x_path = path_join(dir, s->x_name);
	if (!x_path) {
		st = status_set(err, ST_ERR_NOMEM, "%s: out of memory", dir);
		goto out;
	}
	st = map_images(s, x_path, err);
	if (st == ST_OK && strcmp(split, "unlabeled") != 0)
		st = read_labels(s, x_path, err);
	if (st == ST_OK)
		st = read_names(s, note, err);
	if (st == ST_OK)
		read_folds(s, note);
out:
	free(x_path);
	if (st != ST_OK) {
		stl10_close(s);
		return st;
	}
	*out = s;
	return ST_OK;
}

void stl10_close(struct stl10 *s)
{
	int c;

	if (!s)
		return;
	if (s->map)
		munmap((void *)s->map, s->map_len);
	for (c = 0; c < STL10_MAX_CLASSES; c++)
		free(s->names[c]);
	drop_folds(s);
	free(s->labels);
	free(s->dir);
	free(s);
}

int stl10_count(const struct stl10 *s)
{
	return s->count;
}

int stl10_n_classes(const struct stl10 *s)
{
	return s->n_classes;
}

const char *stl10_class_name(const struct stl10 *s, int c)
{
	if (c < 0 || c >= s->n_classes)
		return NULL;
	return s->names[c];
}

int stl10_label(const struct stl10 *s, int i)
{
	if (!s->labels || i < 0 || i >= s->count)
		return -1;
	return s->labels[i];
}

void stl10_image_name(const struct stl10 *s, int i, char *buf, int n)
{
	if (n > 0)
		snprintf(buf, (size_t)n, "%s#%d", s->x_name, i);
}

enum status stl10_image(const struct stl10 *s, int i, float *pix, char *err)
{
	const unsigned char *src;
	int c, x, y;

	if (i < 0 || i >= s->count)
		return status_set(err, ST_ERR_ARG,
				  "%s/%s: image %d out of range (0..%d)",
				  s->dir, s->x_name, i, s->count - 1);
	src = s->map + (size_t)i * STL10_IMAGE_BYTES;
	/* the file runs down each column; we run along each row */
	for (c = 0; c < 3; c++)
		for (y = 0; y < STL10_SIDE; y++)
			for (x = 0; x < STL10_SIDE; x++)
				pix[c * PLANE + y * STL10_SIDE + x] =
					src[c * PLANE + x * STL10_SIDE + y] /
					255.0f;
	return ST_OK;
}

int stl10_n_folds(const struct stl10 *s)
{
	return s->n_folds;
}

int stl10_fold(const struct stl10 *s, int k, const int **idx)
{
	if (k < 0 || k >= s->n_folds)
		return -1;
	*idx = s->fold_idx[k];
	return s->fold_n[k];
}
