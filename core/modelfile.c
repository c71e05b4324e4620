/* modelfile.c - read and write advex model files (safetensors, F32 only).
 *
 * A model file comes from anywhere, so nothing in it is used before it is
 * checked: the header length, then the JSON (parsed by jansson with duplicate
 * keys refused), then every tensor entry, then the tensors' byte ranges
 * against each other. A failure leaves one line in err naming the file and,
 * where one is at fault, the tensor. Statuses:
 *
 *   ST_ERR_IO           the file cannot be opened, mapped, written or renamed
 *   ST_ERR_NOMEM        an allocation failed
 *   ST_ERR_FORMAT       the bytes are not a well-formed safetensors file
 *   ST_ERR_UNSUPPORTED  well-formed, but a tensor's dtype is not F32
 *   ST_ERR_ARG          a bad argument (bad tensors given to encode/write)
 *
 * Tensors are indexed in order of their data offset (ties: header order), so
 * a file written by modelfile_encode reads back in the order it was written,
 * whatever order the JSON object's keys come in.
 */
#define _POSIX_C_SOURCE 200809L

#include "modelfile.h"
#include "outpath.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#define LEN_FIELD 8		/* the u64 header length at the start */
#define F32_SIZE 4
#define META_KEY "__metadata__"
#define NAME_SHOW 80		/* longest name quoted in a message */
#define SHAPE_SHOW 200		/* "[d0, d1, ...]" for MODELFILE_MAX_DIMS dims */

_Static_assert(sizeof(float) == F32_SIZE, "F32 tensors need a 4-byte float");

enum mf_storage {
	MF_NONE,		/* nothing to release (file shorter than 8 bytes) */
	MF_MAPPED,		/* base is an mmap of the file */
	MF_MALLOC,		/* base is a buffer handed to modelfile_open_buffer */
};

/* A tensor plus what is needed to order and check it. */
struct mf_entry {
	struct mf_tensor t;
	uint64_t begin, end;	/* data_offsets, relative to the data region */
	size_t order;		/* position in the header; keeps the sort stable */
};

struct modelfile {
	char *path;		/* path or label, for messages */
	const unsigned char *base;	/* the whole file */
	size_t len;
	enum mf_storage storage;	/* how base is released */
	json_t *header;		/* owns the tensor names and metadata strings */
	json_t *meta;		/* "__metadata__" inside header, or NULL */
	int n;
	struct mf_entry *entries;	/* n, sorted by data offset */
	struct mf_entry **by_name;	/* n, sorted by name (modelfile_find) */
};

/* What validating a tensor entry needs to know about the file. */
struct mf_check {
	const char *label;
	const unsigned char *data;	/* start of the data region */
	uint64_t data_len;
	char *err;
};

/* ---- byte order ---------------------------------------------------------- */

static uint64_t get_le64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = LEN_FIELD - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void put_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < LEN_FIELD; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* The compiler folds this to a constant; it keeps big-endian hosts correct
 * without depending on a platform macro. */
static int host_is_little_endian(void)
{
	const uint32_t one = 1;
	unsigned char first;

	memcpy(&first, &one, 1);
	return first == 1;
}

/* Copy count 32-bit words between host order and little-endian file order
 * (the same operation both ways). memcpy because file data need not be
 * 4-byte aligned. */
static void copy_le32(void *dst, const void *src, size_t count)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	if (count == 0)
		return;
	if (host_is_little_endian()) {
		memcpy(dst, src, count * F32_SIZE);
		return;
	}
	for (size_t i = 0; i < count; i++, d += 4, s += 4) {
		d[0] = s[3];
		d[1] = s[2];
		d[2] = s[1];
		d[3] = s[0];
	}
}

/* ---- messages ------------------------------------------------------------ */

/* A name fit to quote: very long names are cut (at a UTF-8 boundary) so the
 * message still fits ERR_MAX and ends with its point. */
static const char *show(char buf[NAME_SHOW], const char *s)
{
	size_t n = strlen(s);

	if (n < NAME_SHOW)
		return s;
	n = NAME_SHOW - 4;
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	memcpy(buf, s, n);
	memcpy(buf + n, "...", 4);
	return buf;
}

/* Names and jansson's error text come from the file and may hold control
 * characters; the message must stay one line. */
static void one_line(char *err)
{
	if (!err)
		return;
	for (; *err; err++)
		if ((unsigned char)*err < 0x20 || *err == 0x7f)
			*err = '?';
}

static const char *fmt_shape(char buf[SHAPE_SHOW], const int64_t *shape,
			     int ndim)
{
	size_t used = 0;

	/* At most MODELFILE_MAX_DIMS * 22 + 3 bytes, so SHAPE_SHOW suffices. */
	buf[used++] = '[';
	for (int i = 0; i < ndim; i++)
		used += (size_t)snprintf(buf + used, SHAPE_SHOW - used,
					 "%s%" PRId64, i ? ", " : "", shape[i]);
	snprintf(buf + used, SHAPE_SHOW - used, "]");
	return buf;
}

/* ---- validation ---------------------------------------------------------- */

static enum status check_dtype(const struct mf_check *c, const char *name,
			       json_t *entry)
{
	char nb[NAME_SHOW], db[NAME_SHOW];
	json_t *dtype = json_object_get(entry, "dtype");

	if (!json_is_string(dtype))
		return status_set(c->err, ST_ERR_FORMAT,
				  "%s: tensor '%s': dtype is missing or not a string",
				  c->label, show(nb, name));
	if (strcmp(json_string_value(dtype), "F32") != 0)
		return status_set(c->err, ST_ERR_UNSUPPORTED,
				  "%s: tensor '%s': dtype '%s' is not supported (only F32)",
				  c->label, show(nb, name),
				  show(db, json_string_value(dtype)));
	return ST_OK;
}

/* Fill t->ndim, t->shape and t->count; count*4 must fit a size_t. */
static enum status check_shape(const struct mf_check *c, const char *name,
			       json_t *entry, struct mf_tensor *t)
{
	char nb[NAME_SHOW];
	json_t *shape = json_object_get(entry, "shape");
	size_t ndim, count = 1;

	if (!json_is_array(shape))
		return status_set(c->err, ST_ERR_FORMAT,
				  "%s: tensor '%s': shape is missing or not an array",
				  c->label, show(nb, name));
	ndim = json_array_size(shape);
	if (ndim > MODELFILE_MAX_DIMS)
		return status_set(c->err, ST_ERR_FORMAT,
				  "%s: tensor '%s': shape has %zu dims, more than %d",
				  c->label, show(nb, name), ndim, MODELFILE_MAX_DIMS);
	for (size_t i = 0; i < ndim; i++) {
		json_t *d = json_array_get(shape, i);
		json_int_t v;

		if (!json_is_integer(d))
			return status_set(c->err, ST_ERR_FORMAT,
					  "%s: tensor '%s': shape[%zu] is not an integer",
					  c->label, show(nb, name), i);
		v = json_integer_value(d);
		if (v < 0)
			return status_set(c->err, ST_ERR_FORMAT,
					  "%s: tensor '%s': shape[%zu] is negative (%" PRId64 ")",
					  c->label, show(nb, name), i, (int64_t)v);
		if (v != 0 && count > (SIZE_MAX / F32_SIZE) / (uint64_t)v)
			return status_set(c->err, ST_ERR_FORMAT,
					  "%s: tensor '%s': shape has too many elements",
					  c->label, show(nb, name));
		count *= (size_t)v;
		t->shape[i] = (int64_t)v;
	}
	t->ndim = (int)ndim;
	t->count = count;
	return ST_OK;
}

/* Fill e->begin, e->end and e->t.data once the range is inside the data
 * region and exactly as long as the shape says. */
static enum status check_offsets(const struct mf_check *c, const char *name,
				 json_t *entry, struct mf_entry *e)
{
	char nb[NAME_SHOW], sb[SHAPE_SHOW];
	json_t *offs = json_object_get(entry, "data_offsets");
	int64_t b, end;

	if (!json_is_array(offs) || json_array_size(offs) != 2 ||
	    !json_is_integer(json_array_get(offs, 0)) ||
	    !json_is_integer(json_array_get(offs, 1)))
		return status_set(c->err, ST_ERR_FORMAT,
				  "%s: tensor '%s': data_offsets must be an array of two integers",
				  c->label, show(nb, name));
	b = json_integer_value(json_array_get(offs, 0));
	end = json_integer_value(json_array_get(offs, 1));
	if (b < 0 || end < 0)
		return status_set(c->err, ST_ERR_FORMAT,
				  "%s: tensor '%s': data_offsets [%" PRId64 ", %" PRId64 "] are negative",
				  c->label, show(nb, name), b, end);
	if (end < b)
		return status_set(c->err, ST_ERR_FORMAT,
				  "%s: tensor '%s': data_offsets [%" PRId64 ", %" PRId64 "] end before they begin",
				  c->label, show(nb, name), b, end);
	if ((uint64_t)end > c->data_len)
		return status_set(c->err, ST_ERR_FORMAT,
				  "%s: tensor '%s': data_offsets [%" PRId64 ", %" PRId64 "] run past the end of the data region (%" PRIu64 " bytes)",
				  c->label, show(nb, name), b, end, c->data_len);
	/* count*4 cannot overflow: check_shape bounded count by SIZE_MAX/4. */
	if ((uint64_t)(end - b) != (uint64_t)e->t.count * F32_SIZE)
		return status_set(c->err, ST_ERR_FORMAT,
				  "%s: tensor '%s': shape %s needs %zu bytes but data_offsets [%" PRId64 ", %" PRId64 "] span %" PRId64,
				  c->label, show(nb, name),
				  fmt_shape(sb, e->t.shape, e->t.ndim),
				  e->t.count * F32_SIZE, b, end, end - b);
	e->begin = (uint64_t)b;
	e->end = (uint64_t)end;
	e->t.data = c->data + b;
	return ST_OK;
}

static enum status check_tensor(const struct mf_check *c, const char *name,
				json_t *entry, struct mf_entry *e)
{
	char nb[NAME_SHOW];
	enum status st;

	/* Keys other than dtype, shape and data_offsets are ignored, as the
	 * safetensors reference reader does. */
	if (!json_is_object(entry))
		return status_set(c->err, ST_ERR_FORMAT,
				  "%s: tensor '%s': entry is not an object",
				  c->label, show(nb, name));
	e->t.name = name;
	if ((st = check_dtype(c, name, entry)) != ST_OK ||
	    (st = check_shape(c, name, entry, &e->t)) != ST_OK ||
	    (st = check_offsets(c, name, entry, e)) != ST_OK)
		return st;
	return ST_OK;
}

static int by_name(const void *pa, const void *pb)
{
	const struct mf_entry *const *a = pa, *const *b = pb;

	return strcmp((*a)->t.name, (*b)->t.name);
}

static int by_offset(const void *pa, const void *pb)
{
	const struct mf_entry *a = pa, *b = pb;

	if (a->begin != b->begin)
		return a->begin < b->begin ? -1 : 1;
	if (a->end != b->end)
		return a->end < b->end ? -1 : 1;
	return a->order < b->order ? -1 : a->order > b->order;
}

/* Entries are sorted by begin; a non-empty tensor that starts before the
 * previous non-empty one ends overlaps it. Empty tensors own no bytes. */
static enum status check_overlaps(const struct mf_check *c,
				  const struct mf_entry *e, int n)
{
	char ab[NAME_SHOW], bb[NAME_SHOW];
	const struct mf_entry *prev = NULL;

	for (int i = 0; i < n; i++) {
		if (e[i].begin == e[i].end)
			continue;
		if (prev && e[i].begin < prev->end)
			return status_set(c->err, ST_ERR_FORMAT,
					  "%s: tensors '%s' [%" PRIu64 ", %" PRIu64 "] and '%s' [%" PRIu64 ", %" PRIu64 "] overlap",
					  c->label, show(ab, prev->t.name),
					  prev->begin, prev->end,
					  show(bb, e[i].t.name), e[i].begin,
					  e[i].end);
		prev = &e[i];
	}
	return ST_OK;
}

static enum status check_meta(const struct mf_check *c, json_t *meta)
{
	char kb[NAME_SHOW];
	const char *key;
	json_t *value;

	if (!json_is_object(meta))
		return status_set(c->err, ST_ERR_FORMAT,
				  "%s: " META_KEY " is not an object", c->label);
	json_object_foreach(meta, key, value)
		if (!json_is_string(value))
			return status_set(c->err, ST_ERR_FORMAT,
					  "%s: metadata '%s' is not a string",
					  c->label, show(kb, key));
	return ST_OK;
}

/* Check the length field and parse the header into mf->header. */
static enum status load_header(struct modelfile *mf, uint64_t *hlen, char *err)
{
	json_error_t jerr;

	if (mf->len < LEN_FIELD)
		return status_set(err, ST_ERR_FORMAT,
				  "%s: file is %zu bytes, shorter than the 8-byte header length",
				  mf->path, mf->len);
	*hlen = get_le64(mf->base);
	if (*hlen == 0)
		return status_set(err, ST_ERR_FORMAT, "%s: header length is 0",
				  mf->path);
	if (*hlen > MODELFILE_MAX_HEADER)
		return status_set(err, ST_ERR_FORMAT,
				  "%s: header length %" PRIu64 " exceeds the limit of %u bytes",
				  mf->path, *hlen, MODELFILE_MAX_HEADER);
	if (*hlen > mf->len - LEN_FIELD)
		return status_set(err, ST_ERR_FORMAT,
				  "%s: header length %" PRIu64 " runs past the end of the file (%zu bytes follow the length field)",
				  mf->path, *hlen, mf->len - LEN_FIELD);
	mf->header = json_loadb((const char *)mf->base + LEN_FIELD,
				(size_t)*hlen, JSON_REJECT_DUPLICATES, &jerr);
	if (!mf->header)
		return status_set(err, ST_ERR_FORMAT,
				  "%s: header is not valid JSON: %s (line %d, column %d, byte %d)",
				  mf->path, jerr.text, jerr.line, jerr.column,
				  jerr.position);
	if (!json_is_object(mf->header))
		return status_set(err, ST_ERR_FORMAT,
				  "%s: header is not a JSON object", mf->path);
	return ST_OK;
}

static enum status load_tensors(struct modelfile *mf, const struct mf_check *c)
{
	size_t n = json_object_size(mf->header) - (mf->meta ? 1 : 0), i = 0;
	const char *key;
	json_t *value;
	enum status st;

	if (n > INT_MAX)
		return status_set(c->err, ST_ERR_FORMAT, "%s: too many tensors",
				  c->label);
	mf->entries = calloc(n ? n : 1, sizeof *mf->entries);
	if (!mf->entries)
		return status_set(c->err, ST_ERR_NOMEM, "%s: out of memory",
				  c->label);
	json_object_foreach(mf->header, key, value) {
		if (strcmp(key, META_KEY) == 0)
			continue;
		mf->entries[i].order = i;
		st = check_tensor(c, key, value, &mf->entries[i]);
		if (st != ST_OK)
			return st;
		i++;
	}
	mf->n = (int)n;
	qsort(mf->entries, n, sizeof *mf->entries, by_offset);
	/* a name index, so that a net of many layers finds its tensors in
	 * log time (a linear search made loading quadratic) */
	mf->by_name = malloc(sizeof *mf->by_name * (n ? n : 1));
	if (!mf->by_name)
		return status_set(c->err, ST_ERR_NOMEM, "%s: out of memory", c->label);
	for (i = 0; i < n; i++)
		mf->by_name[i] = &mf->entries[i];
	qsort(mf->by_name, n, sizeof *mf->by_name, by_name);
	return check_overlaps(c, mf->entries, mf->n);
}

/* The one validation behind modelfile_open and modelfile_open_buffer. */
static enum status validate(struct modelfile *mf, char *err)
{
	struct mf_check c = { .label = mf->path, .err = err };
	uint64_t hlen = 0;
	enum status st;

	if ((st = load_header(mf, &hlen, err)) != ST_OK)
		return st;
	c.data = mf->base + LEN_FIELD + hlen;
	c.data_len = mf->len - LEN_FIELD - hlen;
	mf->meta = json_object_get(mf->header, META_KEY);
	if (mf->meta && (st = check_meta(&c, mf->meta)) != ST_OK)
		return st;
	return load_tensors(mf, &c);
}

/* ---- opening and closing ------------------------------------------------- */

static struct modelfile *mf_new(const char *label)
{
	struct modelfile *mf = calloc(1, sizeof *mf);

	if (!mf)
		return NULL;
	mf->path = strdup(label);
	if (!mf->path) {
		free(mf);
		return NULL;
	}
	return mf;
}

/* Validate mf; hand it to *out, or release it (storage included). */
static enum status mf_finish(struct modelfile *mf, struct modelfile **out,
			     char *err)
{
	enum status st = validate(mf, err);

	if (st != ST_OK) {
		one_line(err);
		modelfile_close(mf);
		return st;
	}
	*out = mf;
	return ST_OK;
}

enum status modelfile_open_buffer(void *buf, size_t len, const char *label,
				  struct modelfile **out, char *err)
{
	struct modelfile *mf;

	if (!label)
		label = "(buffer)";
	if (!out || (!buf && len)) {
		free(buf);
		return status_set(err, ST_ERR_ARG,
				  "%s: modelfile_open_buffer: bad arguments", label);
	}
	*out = NULL;
	mf = mf_new(label);
	if (!mf) {
		free(buf);
		return status_set(err, ST_ERR_NOMEM, "%s: out of memory", label);
	}
	mf->base = buf;
	mf->len = len;
	mf->storage = MF_MALLOC;
	return mf_finish(mf, out, err);
}

enum status modelfile_open(const char *path, struct modelfile **out,
			   char *err)
{
	struct modelfile *mf;
	struct stat sb;
	void *map;
	int fd, e;

	if (!path || !out)
		return status_set(err, ST_ERR_ARG,
				  "modelfile_open: bad arguments");
	*out = NULL;
	/* O_NONBLOCK: opening a FIFO would otherwise wait for a writer
	 * forever; it changes nothing for a regular file, and anything else
	 * is refused below */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return status_set(err, ST_ERR_IO, "%s: cannot open: %s", path,
				  strerror(errno));
	if (fstat(fd, &sb) != 0) {
		e = errno;
		close(fd);
		return status_set(err, ST_ERR_IO, "%s: cannot stat: %s", path,
				  strerror(e));
	}
	if (!S_ISREG(sb.st_mode) || (uintmax_t)sb.st_size > SIZE_MAX) {
		close(fd);
		return status_set(err, ST_ERR_IO, "%s: %s", path,
				  S_ISREG(sb.st_mode) ? "too large to map"
						      : "not a regular file");
	}
	mf = mf_new(path);
	if (!mf) {
		close(fd);
		return status_set(err, ST_ERR_NOMEM, "%s: out of memory", path);
	}
	mf->len = (size_t)sb.st_size;
	/* A file shorter than the length field is refused by validate before
	 * any byte is read, so it is not mapped (mmap of 0 bytes fails). The
	 * mapping assumes nobody truncates the file while it is open. */
	if (mf->len >= LEN_FIELD) {
		map = mmap(NULL, mf->len, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED) {
			e = errno;
			close(fd);
			modelfile_close(mf);
			return status_set(err, ST_ERR_IO, "%s: cannot map: %s",
					  path, strerror(e));
		}
		mf->base = map;
		mf->storage = MF_MAPPED;
	}
	close(fd);
	return mf_finish(mf, out, err);
}

void modelfile_close(struct modelfile *mf)
{
	if (!mf)
		return;
	if (mf->storage == MF_MAPPED)
		munmap((void *)mf->base, mf->len);
	else if (mf->storage == MF_MALLOC)
		free((void *)mf->base);
	json_decref(mf->header);
	free(mf->entries);
	free(mf->by_name);
	free(mf->path);
	free(mf);
}

/* ---- access -------------------------------------------------------------- */

const char *modelfile_path(const struct modelfile *mf)
{
	return mf->path;
}

const char *modelfile_meta(const struct modelfile *mf, const char *key)
{
	/* json_string_value is NULL for a missing key (and for a NULL meta). */
	return json_string_value(json_object_get(mf->meta, key));
}

int modelfile_count(const struct modelfile *mf)
{
	return mf->n;
}

const struct mf_tensor *modelfile_tensor(const struct modelfile *mf, int i)
{
	if (i < 0 || i >= mf->n)
		return NULL;
	return &mf->entries[i].t;
}

/* Linear: a model has tens to hundreds of tensors, looked up once at load. */
int modelfile_index(const struct modelfile *mf, const struct mf_tensor *t)
{
	/* t is the member of one entry: its position, without a search */
	const char *base = (const char *)&mf->entries[0].t;
	size_t off;

	if (!mf->n || (const char *)t < base)
		return -1;
	off = (size_t)((const char *)t - base);
	if (off % sizeof *mf->entries || off / sizeof *mf->entries >= (size_t)mf->n)
		return -1;
	return (int)(off / sizeof *mf->entries);
}

const struct mf_tensor *modelfile_find(const struct modelfile *mf,
				       const char *name)
{
	int lo = 0, hi = mf->n - 1;

	while (lo <= hi) {
		int mid = lo + (hi - lo) / 2;
		int c = strcmp(mf->by_name[mid]->t.name, name);

		if (!c)
			return &mf->by_name[mid]->t;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return NULL;
}

void modelfile_read_f32(const struct mf_tensor *t, float *dst)
{
	copy_le32(dst, t->data, t->count);
}

/* ---- encoding ------------------------------------------------------------ */

/* Element count of an output tensor, or an ST_ERR_ARG message. */
static enum status out_count(const struct mf_out_tensor *t, int i,
			     size_t *count, char *err)
{
	char nb[NAME_SHOW];

	*count = 1;
	if (t->ndim < 0 || t->ndim > MODELFILE_MAX_DIMS)
		return status_set(err, ST_ERR_ARG,
				  "tensor %d '%s': ndim %d is outside 0..%d", i,
				  show(nb, t->name), t->ndim, MODELFILE_MAX_DIMS);
	for (int d = 0; d < t->ndim; d++) {
		int64_t v = t->shape[d];

		if (v < 0)
			return status_set(err, ST_ERR_ARG,
					  "tensor %d '%s': shape[%d] is negative (%" PRId64 ")",
					  i, show(nb, t->name), d, v);
		if (v != 0 && *count > (SIZE_MAX / F32_SIZE) / (uint64_t)v)
			return status_set(err, ST_ERR_ARG,
					  "tensor %d '%s': shape has too many elements",
					  i, show(nb, t->name));
		*count *= (size_t)v;
	}
	if (*count && !t->data)
		return status_set(err, ST_ERR_ARG, "tensor %d '%s': no data",
				  i, show(nb, t->name));
	return ST_OK;
}

static json_t *out_entry(const struct mf_out_tensor *t, uint64_t begin,
			 uint64_t end)
{
	json_t *entry = json_object(), *shape = json_array(),
	       *offs = json_array();
	int bad = !entry || !shape || !offs;

	for (int d = 0; !bad && d < t->ndim; d++)
		bad = json_array_append_new(shape, json_integer(t->shape[d]));
	bad = bad || json_array_append_new(offs, json_integer((json_int_t)begin))
		  || json_array_append_new(offs, json_integer((json_int_t)end))
		  || json_object_set_new(entry, "dtype", json_string("F32"));
	/* set_new takes its reference even when it fails. */
	bad = json_object_set_new(entry, "shape", shape) || bad;
	bad = json_object_set_new(entry, "data_offsets", offs) || bad;
	if (bad) {
		json_decref(entry);
		return NULL;
	}
	return entry;
}

/* Add every tensor to root, laid out in the given order; *data_len is the
 * total size of the data region. */
static enum status add_tensors(json_t *root, const struct mf_out_tensor *t,
			       int n, size_t *data_len, char *err)
{
	char nb[NAME_SHOW];
	size_t count, off = 0;
	enum status st;

	for (int i = 0; i < n; i++) {
		if (!t[i].name || strcmp(t[i].name, META_KEY) == 0)
			return status_set(err, ST_ERR_ARG,
					  "tensor %d: missing or reserved name", i);
		if (json_object_get(root, t[i].name))
			return status_set(err, ST_ERR_ARG,
					  "tensor %d '%s': duplicate name", i,
					  show(nb, t[i].name));
		if ((st = out_count(&t[i], i, &count, err)) != ST_OK)
			return st;
		if (count * F32_SIZE > (size_t)INT64_MAX - off)
			return status_set(err, ST_ERR_ARG,
					  "tensor %d '%s': data too large", i,
					  show(nb, t[i].name));
		if (json_object_set_new(root, t[i].name,
					out_entry(&t[i], off, off + count * F32_SIZE)))
			return status_set(err, ST_ERR_ARG,
					  "tensor %d '%s': name is not valid UTF-8 (or out of memory)",
					  i, show(nb, t[i].name));
		off += count * F32_SIZE;
	}
	*data_len = off;
	return ST_OK;
}

static enum status add_meta(json_t *root, const char *const *keys,
			    const char *const *values, int n_meta, char *err)
{
	char kb[NAME_SHOW];
	json_t *meta;

	if (n_meta == 0)
		return ST_OK;
	meta = json_object();
	if (json_object_set_new(root, META_KEY, meta))
		return status_set(err, ST_ERR_NOMEM, "out of memory");
	for (int i = 0; i < n_meta; i++) {
		if (!keys[i] || !values[i])
			return status_set(err, ST_ERR_ARG,
					  "metadata %d: missing key or value", i);
		if (json_object_get(meta, keys[i]))
			return status_set(err, ST_ERR_ARG,
					  "metadata '%s': duplicate key",
					  show(kb, keys[i]));
		if (json_object_set_new(meta, keys[i], json_string(values[i])))
			return status_set(err, ST_ERR_ARG,
					  "metadata '%s': key or value is not valid UTF-8 (or out of memory)",
					  show(kb, keys[i]));
	}
	return ST_OK;
}

/* Lay out length field, padded header and data in one buffer. */
static enum status assemble(const char *hdr, const struct mf_out_tensor *t,
			    int n, size_t data_len, void **buf, size_t *len,
			    char *err)
{
	size_t hlen = strlen(hdr), padded = (hlen + 7) & ~(size_t)7, count;
	unsigned char *out, *p;

	/* Padding keeps the data region 8-byte aligned in the file. */
	if (padded > MODELFILE_MAX_HEADER)
		return status_set(err, ST_ERR_ARG,
				  "header would be %zu bytes, over the limit of %u",
				  padded, MODELFILE_MAX_HEADER);
	if (data_len > SIZE_MAX - LEN_FIELD - padded)
		return status_set(err, ST_ERR_ARG, "model too large");
	out = malloc(LEN_FIELD + padded + data_len);
	if (!out)
		return status_set(err, ST_ERR_NOMEM, "out of memory");
	put_le64(out, padded);
	memcpy(out + LEN_FIELD, hdr, hlen);
	memset(out + LEN_FIELD + hlen, ' ', padded - hlen);
	p = out + LEN_FIELD + padded;
	for (int i = 0; i < n; i++) {
		/* Already validated by add_tensors; cannot fail here. */
		out_count(&t[i], i, &count, NULL);
		copy_le32(p, t[i].data, count);
		p += count * F32_SIZE;
	}
	*buf = out;
	*len = LEN_FIELD + padded + data_len;
	return ST_OK;
}

enum status modelfile_encode(const struct mf_out_tensor *t, int n,
			     const char *const *keys, const char *const *values,
			     int n_meta, void **buf, size_t *len, char *err)
{
	json_t *root;
	char *hdr;
	size_t data_len = 0;
	enum status st;

	if (!buf || !len || n < 0 || n_meta < 0 || (n > 0 && !t) ||
	    (n_meta > 0 && (!keys || !values)))
		return status_set(err, ST_ERR_ARG,
				  "modelfile_encode: bad arguments");
	*buf = NULL;
	*len = 0;
	root = json_object();
	if (!root)
		return status_set(err, ST_ERR_NOMEM, "out of memory");
	st = add_tensors(root, t, n, &data_len, err);
	if (st == ST_OK)
		st = add_meta(root, keys, values, n_meta, err);
	if (st != ST_OK) {
		json_decref(root);
		return st;
	}
	/* Keys stay in insertion order (jansson >= 2.8), so the header lists
	 * tensors in layout order. */
	hdr = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (!hdr)
		return status_set(err, ST_ERR_NOMEM, "out of memory");
	st = assemble(hdr, t, n, data_len, buf, len, err);
	free(hdr);
	return st;
}

/* ---- writing ------------------------------------------------------------- */

static int write_all(int fd, const unsigned char *p, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Make the rename durable. Best effort: some file systems refuse fsync on
 * a directory, and the file itself is complete either way. */
static void sync_parent(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int fd;

	if (!slash) {
		dir = strdup(".");
	} else {
		dir = strndup(path, slash == path ? 1 : (size_t)(slash - path));
	}
	if (!dir)
		return;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(dir);
	if (fd < 0)
		return;
	fsync(fd);
	close(fd);
}

/* Write buf to tmp; on failure return errno (tmp may exist). */
static int write_tmp(const char *tmp, const void *buf, size_t len)
{
	int fd, e;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		  0666);
	if (fd < 0)
		return errno;
	if (write_all(fd, buf, len) != 0 || fsync(fd) != 0) {
		e = errno ? errno : EIO;
		close(fd);
		return e;
	}
	if (close(fd) != 0)
		return errno;
	return 0;
}

static enum status write_atomically(const char *path, const void *buf,
				    size_t len, char *err)
{
	size_t tmp_len = strlen(path) + 32;
	char *tmp = malloc(tmp_len);
	int e;

	if (!tmp)
		return status_set(err, ST_ERR_NOMEM, "%s: out of memory", path);
	if (outpath_check(path, err) != ST_OK) {
		free(tmp);
		return ST_ERR_IO;
	}
	snprintf(tmp, tmp_len, "%s.tmp.%ld", path, (long)getpid());
	errno = 0;
	e = write_tmp(tmp, buf, len);
	if (e != 0) {
		unlink(tmp);
		free(tmp);
		return status_set(err, ST_ERR_IO,
				  "%s: cannot write temporary file: %s", path,
				  strerror(e));
	}
	if (rename(tmp, path) != 0) {
		e = errno;
		unlink(tmp);
		free(tmp);
		return status_set(err, ST_ERR_IO, "%s: cannot rename into place: %s",
				  path, strerror(e));
	}
	free(tmp);
	sync_parent(path);
	return ST_OK;
}

enum status modelfile_write(const char *path, const struct mf_out_tensor *t,
			    int n, const char *const *keys,
			    const char *const *values, int n_meta, char *err)
{
	char inner[ERR_MAX] = "";
	void *buf;
	size_t len;
	enum status st;

	if (!path)
		return status_set(err, ST_ERR_ARG,
				  "modelfile_write: no path");
	st = modelfile_encode(t, n, keys, values, n_meta, &buf, &len, inner);
	if (st != ST_OK)
		return status_set(err, st, "%s: %s", path, inner);
	st = write_atomically(path, buf, len, err);
	free(buf);
	return st;
}
