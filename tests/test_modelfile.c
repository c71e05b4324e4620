/* test_modelfile.c - model file reading, writing and refusal of bad files.
 *
 * Bad files are written byte by byte here, not through modelfile_encode, so
 * the reader is tested against what a careless or hostile writer produces.
 * Every refusal shows the message it got, so the TAP log doubles as a
 * catalogue of what users will see.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "modelfile.h"
#include "status.h"
#include "tap.h"

struct ctx {
	struct tap tap;
	char dir[PATH_MAX];	/* fresh temp dir for this run */
};

static void path_in(const struct ctx *c, const char *name, char out[PATH_MAX])
{
	int n = snprintf(out, PATH_MAX, "%s/%s", c->dir, name);

	if (n < 0 || n >= PATH_MAX)
		abort();	/* the temp dir name is short; cannot happen */
}

static int write_bytes(const char *path, const void *bytes, size_t len)
{
	FILE *f = fopen(path, "wb");
	int bad;

	if (!f)
		return -1;
	bad = len && fwrite(bytes, 1, len, f) != len;
	return fclose(f) != 0 || bad ? -1 : 0;
}

/* A safetensors file by hand: 8-byte little-endian header length, the header
 * text as given, then data_len bytes of data. Returns a malloc'd buffer. */
static unsigned char *raw_file(const char *header, size_t data_len,
			       size_t *len)
{
	size_t hlen = strlen(header);
	unsigned char *b = calloc(1, 8 + hlen + data_len);

	if (!b)
		abort();
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
	memcpy(b + 8, header, hlen);
	for (size_t i = 0; i < data_len; i++)
		b[8 + hlen + i] = (unsigned char)i;
	*len = 8 + hlen + data_len;
	return b;
}

/* Write bytes to NAME in the temp dir and check that opening it fails with
 * want, that the message is one line and names the file, and that it holds
 * each of the (up to two) phrases. */
static void expect_refused_bytes(struct ctx *c, const char *what,
				 const char *name, const void *bytes,
				 size_t len, enum status want,
				 const char *phrase1, const char *phrase2)
{
	char path[PATH_MAX], err[ERR_MAX] = "";
	struct modelfile *mf = (struct modelfile *)&mf;	/* open must reset it */
	enum status st;

	path_in(c, name, path);
	if (write_bytes(path, bytes, len) != 0) {
		tap_ok(&c->tap, 0, "%s: cannot write %s", what, path);
		return;
	}
	st = modelfile_open(path, &mf, err);
	tap_ok(&c->tap,
	       st == want && mf == NULL && strstr(err, name) &&
		       !strchr(err, '\n') && strstr(err, phrase1) &&
		       (!phrase2 || strstr(err, phrase2)),
	       "%s refused (%s): %s", what, status_str(st), err);
	if (st == ST_OK)
		modelfile_close(mf);
}

static void expect_refused(struct ctx *c, const char *what, const char *name,
			   const char *header, size_t data_len,
			   enum status want, const char *phrase1,
			   const char *phrase2)
{
	size_t len;
	unsigned char *b = raw_file(header, data_len, &len);

	expect_refused_bytes(c, what, name, b, len, want, phrase1, phrase2);
	free(b);
}

/* ---- round trip ---------------------------------------------------------- */

#define N_OUT 5

struct sample {
	float w[4 * 3 * 3 * 3], bias[4], scalar[1], fc[10 * 7];
	struct mf_out_tensor t[N_OUT];
};

static void make_sample(struct sample *s)
{
	for (size_t i = 0; i < sizeof s->w / sizeof s->w[0]; i++)
		s->w[i] = (float)i * 0.25f - 3.0f;
	s->bias[0] = -0.0f;
	s->bias[1] = INFINITY;
	s->bias[2] = 1e-40f;	/* subnormal */
	s->bias[3] = 3.5f;
	s->scalar[0] = 42.0f;
	for (size_t i = 0; i < sizeof s->fc / sizeof s->fc[0]; i++)
		s->fc[i] = 1.0f / (float)(i + 1);
	s->t[0] = (struct mf_out_tensor){ "features.0.weight", 4, { 4, 3, 3, 3 }, s->w };
	s->t[1] = (struct mf_out_tensor){ "features.0.bias", 1, { 4 }, s->bias };
	s->t[2] = (struct mf_out_tensor){ "scalar", 0, { 0 }, s->scalar };
	s->t[3] = (struct mf_out_tensor){ "empty", 2, { 0, 5 }, NULL };
	s->t[4] = (struct mf_out_tensor){ "classifier.weight", 2, { 10, 7 }, s->fc };
}

static const char *const meta_keys[] = { "advex.format", "advex.input",
					 "advex.source" };
static const char *const meta_values[] = { "1", "[3, 96, 96]",
					   "test: \xc3\xbcnic\xc3\xb6" "de" };

static size_t out_count(const struct mf_out_tensor *t)
{
	size_t n = 1;

	for (int d = 0; d < t->ndim; d++)
		n *= (size_t)t->shape[d];
	return n;
}

/* One tensor read back exactly as written: name, shape, bits. */
static int same_tensor(const struct mf_tensor *got,
		       const struct mf_out_tensor *want)
{
	size_t n = out_count(want);
	float *buf = malloc((n ? n : 1) * sizeof *buf);
	int ok = got && strcmp(got->name, want->name) == 0 &&
		 got->ndim == want->ndim && got->count == n;

	for (int d = 0; ok && d < want->ndim; d++)
		ok = got->shape[d] == want->shape[d];
	if (ok && n) {
		modelfile_read_f32(got, buf);
		ok = memcmp(buf, want->data, n * sizeof *buf) == 0;
	}
	free(buf);
	return ok;
}

static void check_contents(struct ctx *c, const struct modelfile *mf,
			   const struct sample *s, const char *how)
{
	int ok = modelfile_count(mf) == N_OUT;

	for (int i = 0; ok && i < N_OUT; i++)
		ok = same_tensor(modelfile_tensor(mf, i), &s->t[i]) &&
		     modelfile_find(mf, s->t[i].name) == modelfile_tensor(mf, i);
	tap_ok(&c->tap, ok, "%s: %d tensors in write order, names, shapes and "
	       "bits match (incl. -0, inf, subnormal, 0-d and empty tensors)",
	       how, modelfile_count(mf));
	tap_ok(&c->tap, !modelfile_find(mf, "nope") &&
		       !modelfile_tensor(mf, -1) &&
		       !modelfile_tensor(mf, N_OUT),
	       "%s: unknown name and out-of-range index give NULL", how);
	ok = 1;
	for (int i = 0; i < 3; i++) {
		const char *v = modelfile_meta(mf, meta_keys[i]);

		ok = ok && v && strcmp(v, meta_values[i]) == 0;
	}
	tap_ok(&c->tap, ok && !modelfile_meta(mf, "advex.arch"),
	       "%s: metadata read back (source = '%s'), missing key is NULL",
	       how, modelfile_meta(mf, "advex.source"));
}

/* No "*.tmp.*" file left in the temp dir. */
static int no_temp_files(const struct ctx *c)
{
	DIR *d = opendir(c->dir);
	struct dirent *e;
	int clean = 1;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		if (strstr(e->d_name, ".tmp."))
			clean = 0;
	closedir(d);
	return clean;
}

static void test_round_trip(struct ctx *c)
{
	char path[PATH_MAX], err[ERR_MAX] = "";
	struct sample s;
	struct modelfile *mf = NULL;
	enum status st;

	make_sample(&s);
	path_in(c, "round.safetensors", path);
	st = modelfile_write(path, s.t, N_OUT, meta_keys, meta_values, 3, err);
	tap_ok(&c->tap, st == ST_OK, "modelfile_write succeeds (%s)",
	       st == ST_OK ? "ok" : err);
	tap_ok(&c->tap, no_temp_files(c),
	       "modelfile_write leaves no temp file behind");
	st = modelfile_open(path, &mf, err);
	if (!tap_ok(&c->tap, st == ST_OK && mf, "written file opens (%s)",
		    st == ST_OK ? "ok" : err))
		return;
	tap_ok(&c->tap, strcmp(modelfile_path(mf), path) == 0,
	       "modelfile_path is the path opened");
	check_contents(c, mf, &s, "file");
	modelfile_close(mf);
}

static void test_encode_buffer(struct ctx *c)
{
	char err[ERR_MAX] = "";
	struct sample s;
	struct modelfile *mf = NULL;
	unsigned char *buf;
	size_t len;
	uint64_t hlen = 0;
	enum status st;

	make_sample(&s);
	st = modelfile_encode(s.t, N_OUT, meta_keys, meta_values, 3,
			      (void **)&buf, &len, err);
	if (!tap_ok(&c->tap, st == ST_OK, "modelfile_encode succeeds (%s)",
		    st == ST_OK ? "ok" : err))
		return;
	for (int i = 7; i >= 0; i--)
		hlen = hlen << 8 | buf[i];
	tap_ok(&c->tap, hlen % 8 == 0 && buf[8 + hlen - 1] != '\0',
	       "encoded header length %llu is a multiple of 8",
	       (unsigned long long)hlen);
	st = modelfile_open_buffer(buf, len, "buf.safetensors", &mf, err);
	if (!tap_ok(&c->tap, st == ST_OK, "encoded buffer opens (%s)",
		    st == ST_OK ? "ok" : err))
		return;
	tap_ok(&c->tap, strcmp(modelfile_path(mf), "buf.safetensors") == 0,
	       "modelfile_path is the label");
	check_contents(c, mf, &s, "buffer");
	modelfile_close(mf);

	st = modelfile_encode(NULL, 0, NULL, NULL, 0, (void **)&buf, &len, err);
	if (st == ST_OK)
		st = modelfile_open_buffer(buf, len, "none", &mf, err);
	tap_ok(&c->tap, st == ST_OK && modelfile_count(mf) == 0 &&
		       !modelfile_meta(mf, "advex.format"),
	       "a file with no tensors and no metadata round-trips");
	if (st == ST_OK)
		modelfile_close(mf);
}

/* ---- what the reader accepts that encode never writes ------------------- */

static void test_accepted(struct ctx *c)
{
	/* Tensors listed out of offset order, a gap between them, and a
	 * 13-byte header so the data region is not 4-byte aligned. */
	const char *hdr = "{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]},"
			  "\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4],\"extra\":1}}";
	char padded[256], err[ERR_MAX] = "";
	struct modelfile *mf = NULL;
	const struct mf_tensor *a, *b;
	float va = 1.5f, vb = -2.25f, got_a = 0, got_b = 0;
	unsigned char *buf;
	size_t len, hlen;
	enum status st;

	/* Trailing spaces: hlen % 4 == 1 puts the data at an odd address. */
	snprintf(padded, sizeof padded, "%s ", hdr);
	while (strlen(padded) % 4 != 1)
		strcat(padded, " ");
	hlen = strlen(padded);
	buf = raw_file(padded, 12, &len);
	memcpy(buf + 8 + hlen, &va, 4);
	memcpy(buf + 8 + hlen + 8, &vb, 4);
	st = modelfile_open_buffer(buf, len, "odd.safetensors", &mf, err);
	if (!tap_ok(&c->tap, st == ST_OK, "unaligned data, gap, unknown key "
		    "and out-of-order header accepted (%s)",
		    st == ST_OK ? "ok" : err))
		return;
	a = modelfile_tensor(mf, 0);
	b = modelfile_tensor(mf, 1);
	tap_ok(&c->tap, a && b && strcmp(a->name, "a") == 0 &&
		       strcmp(b->name, "b") == 0 && a->ndim == 0 &&
		       a->count == 1,
	       "tensors are indexed in data-offset order (0: '%s', 1: '%s')",
	       a ? a->name : "?", b ? b->name : "?");
	if (a && b) {
		modelfile_read_f32(a, &got_a);
		modelfile_read_f32(b, &got_b);
	}
	tap_ok(&c->tap, got_a == va && got_b == vb,
	       "unaligned data reads back (%g, %g)", got_a, got_b);
	modelfile_close(mf);
}

/* ---- refusals -------------------------------------------------------------- */

#define T_A(dtype, shape, offs) \
	"{\"a\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":" offs "}}"

static void test_bad_length_field(struct ctx *c)
{
	unsigned char b[32] = { 0 };
	uint64_t v;

	expect_refused_bytes(c, "empty file", "empty.safetensors", b, 0,
			     ST_ERR_FORMAT, "shorter", NULL);
	expect_refused_bytes(c, "file < 8 bytes", "short.safetensors", b, 5,
			     ST_ERR_FORMAT, "shorter", NULL);
	expect_refused_bytes(c, "header length 0", "zero.safetensors", b, 16,
			     ST_ERR_FORMAT, "header length is 0", NULL);
	b[0] = 100;	/* 100 bytes of header promised, 24 present */
	memcpy(b + 8, "{}", 2);
	expect_refused_bytes(c, "header length beyond the file",
			     "beyond.safetensors", b, 32, ST_ERR_FORMAT,
			     "runs past the end of the file", NULL);
	memset(b, 0, 8);
	b[5] = 1;	/* 2^40 */
	expect_refused_bytes(c, "header length 2^40", "huge.safetensors", b,
			     32, ST_ERR_FORMAT, "exceeds the limit", NULL);
	v = (uint64_t)MODELFILE_MAX_HEADER + 1;
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	expect_refused_bytes(c, "header length MODELFILE_MAX_HEADER+1",
			     "max1.safetensors", b, 32, ST_ERR_FORMAT,
			     "exceeds the limit", NULL);
}

static void test_bad_json(struct ctx *c)
{
	expect_refused(c, "invalid JSON", "json.safetensors", "{\"a\": ", 0,
		       ST_ERR_FORMAT, "not valid JSON", "line 1");
	expect_refused(c, "header not valid UTF-8", "utf8.safetensors",
		       "{\"a\xff\":{}}", 0, ST_ERR_FORMAT, "not valid JSON",
		       NULL);
	expect_refused(c, "header a JSON array", "array.safetensors", "[1,2]",
		       0, ST_ERR_FORMAT, "not a JSON object", NULL);
	expect_refused(c, "duplicate key", "dup.safetensors",
		       "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
		       "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
		       8, ST_ERR_FORMAT, "duplicate", NULL);
	expect_refused(c, "tensor entry not an object", "entry.safetensors",
		       "{\"a\":[1]}", 0, ST_ERR_FORMAT, "'a'",
		       "not an object");
	expect_refused(c, "metadata value not a string", "meta.safetensors",
		       "{\"__metadata__\":{\"advex.format\":1}}", 0,
		       ST_ERR_FORMAT, "'advex.format'", "not a string");
	expect_refused(c, "metadata not an object", "metaobj.safetensors",
		       "{\"__metadata__\":\"x\"}", 0, ST_ERR_FORMAT,
		       "__metadata__", "not an object");
	expect_refused(c, "newline in a tensor name kept to one line",
		       "nl.safetensors",
		       "{\"x\\ny\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
		       1, ST_ERR_UNSUPPORTED, "'x?y'", NULL);
}

static void test_bad_tensors(struct ctx *c)
{
	expect_refused(c, "truncated file", "trunc.safetensors",
		       T_A("F32", "[6]", "[0,24]"), 16, ST_ERR_FORMAT, "'a'",
		       "run past the end of the data region (16 bytes)");
	expect_refused(c, "dtype F16", "f16.safetensors",
		       T_A("F16", "[2]", "[0,4]"), 4, ST_ERR_UNSUPPORTED, "'a'",
		       "'F16'");
	expect_refused(c, "dtype I64", "i64.safetensors",
		       T_A("I64", "[2]", "[0,16]"), 16, ST_ERR_UNSUPPORTED,
		       "'a'", "'I64'");
	expect_refused(c, "missing dtype", "nodtype.safetensors",
		       "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
		       ST_ERR_FORMAT, "'a'", "dtype");
	expect_refused(c, "negative shape", "neg.safetensors",
		       T_A("F32", "[2,-1]", "[0,4]"), 4, ST_ERR_FORMAT, "'a'",
		       "negative");
	expect_refused(c, "non-integer shape", "real.safetensors",
		       T_A("F32", "[2.5]", "[0,8]"), 8, ST_ERR_FORMAT, "'a'",
		       "not an integer");
	expect_refused(c, "string in shape", "str.safetensors",
		       T_A("F32", "[\"2\"]", "[0,8]"), 8, ST_ERR_FORMAT, "'a'",
		       "not an integer");
	expect_refused(c, "shape not an array", "shapeobj.safetensors",
		       T_A("F32", "2", "[0,8]"), 8, ST_ERR_FORMAT, "'a'",
		       "shape");
	expect_refused(c, "9 dims", "dims.safetensors",
		       T_A("F32", "[1,1,1,1,1,1,1,1,1]", "[0,4]"), 4,
		       ST_ERR_FORMAT, "'a'", "more than 8");
	expect_refused(c, "shape product overflow", "ovf.safetensors",
		       T_A("F32", "[4294967296,4294967296]", "[0,4]"), 4,
		       ST_ERR_FORMAT, "'a'", "too many elements");
	expect_refused(c, "integer too big for JSON reader", "big.safetensors",
		       T_A("F32", "[99999999999999999999]", "[0,4]"), 4,
		       ST_ERR_FORMAT, "not valid JSON", NULL);
	expect_refused(c, "shape/length mismatch", "mismatch.safetensors",
		       T_A("F32", "[3]", "[0,16]"), 16, ST_ERR_FORMAT, "'a'",
		       "shape [3] needs 12 bytes");
	expect_refused(c, "end < begin", "order.safetensors",
		       T_A("F32", "[1]", "[16,8]"), 16, ST_ERR_FORMAT, "'a'",
		       "end before they begin");
	expect_refused(c, "negative offset", "negoff.safetensors",
		       T_A("F32", "[1]", "[-4,0]"), 16, ST_ERR_FORMAT, "'a'",
		       "negative");
	expect_refused(c, "three data_offsets", "three.safetensors",
		       T_A("F32", "[1]", "[0,4,8]"), 16, ST_ERR_FORMAT, "'a'",
		       "two integers");
	expect_refused(c, "overlapping offsets", "overlap.safetensors",
		       "{\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]},"
		       "\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
		       24, ST_ERR_FORMAT, "'a' [0, 16] and 'b' [8, 24] overlap",
		       NULL);
	expect_refused(c, "tensor inside another", "inside.safetensors",
		       "{\"a\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[0,32]},"
		       "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,8]},"
		       "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}",
		       32, ST_ERR_FORMAT, "'a'", "'b'");
}

/* ---- truncation at every length ------------------------------------------ */

/* Cut a valid file at every length; only the full length may open. Each cut
 * goes through the file path (mmap) and through an exactly-sized malloc'd
 * buffer, which ASan watches for reads past the end. */
static void test_every_truncation(struct ctx *c)
{
	char path[PATH_MAX], err[ERR_MAX], first_bad[ERR_MAX + 64] = "";
	struct sample s;
	struct modelfile *mf;
	unsigned char *full, *cut;
	size_t len, bad = 0;
	enum status st;

	make_sample(&s);
	if (modelfile_encode(s.t, N_OUT, meta_keys, meta_values, 3,
			     (void **)&full, &len, err) != ST_OK) {
		tap_ok(&c->tap, 0, "encode for truncation test: %s", err);
		return;
	}
	path_in(c, "cut.safetensors", path);
	for (size_t k = 0; k <= len; k++) {
		int want_ok = k == len;

		write_bytes(path, full, k);
		st = modelfile_open(path, &mf, err);
		if ((st == ST_OK) != want_ok ||
		    (!want_ok && (mf || !strstr(err, "cut.safetensors")))) {
			if (!bad++)
				snprintf(first_bad, sizeof first_bad,
					 "file cut at %zu: %s", k, err);
		}
		if (st == ST_OK)
			modelfile_close(mf);
		cut = malloc(k ? k : 1);
		memcpy(cut, full, k);
		st = modelfile_open_buffer(cut, k, "cut-buffer", &mf, err);
		if ((st == ST_OK) != want_ok && !bad++)
			snprintf(first_bad, sizeof first_bad,
				 "buffer cut at %zu: %s", k, err);
		if (st == ST_OK)
			modelfile_close(mf);
	}
	free(full);
	tap_ok(&c->tap, bad == 0, "file and buffer cut at each of 0..%zu bytes: "
	       "all refused cleanly, full length opens%s%s", len,
	       bad ? "; first bad: " : "", first_bad);
}

/* ---- writing and opening errors ------------------------------------------ */

static void test_write_errors(struct ctx *c)
{
	char path[PATH_MAX], err[ERR_MAX] = "";
	struct mf_out_tensor t[2] = {
		{ "w", 1, { 1 }, NULL },
		{ "w", 1, { 1 }, NULL },
	};
	float one = 1.0f;
	struct modelfile *mf = NULL;
	enum status st;

	t[0].data = t[1].data = &one;
	path_in(c, "no/such/dir/m.safetensors", path);
	st = modelfile_write(path, t, 1, NULL, NULL, 0, err);
	tap_ok(&c->tap, st == ST_ERR_IO && strstr(err, path),
	       "write into a missing directory fails (%s): %s",
	       status_str(st), err);

	path_in(c, "isdir", path);
	mkdir(path, 0700);
	st = modelfile_write(path, t, 1, NULL, NULL, 0, err);
	tap_ok(&c->tap, st == ST_ERR_IO && strstr(err, path) && no_temp_files(c),
	       "rename over a directory fails and removes the temp file: %s",
	       err);

	st = modelfile_open(path, &mf, err);
	tap_ok(&c->tap, st == ST_ERR_IO && !mf && strstr(err, path),
	       "opening a directory fails: %s", err);
	path_in(c, "missing.safetensors", path);
	st = modelfile_open(path, &mf, err);
	tap_ok(&c->tap, st == ST_ERR_IO && !mf && strstr(err, path),
	       "opening a missing file fails: %s", err);

	path_in(c, "refused.safetensors", path);
	st = modelfile_write(path, t, 2, NULL, NULL, 0, err);
	tap_ok(&c->tap, st == ST_ERR_ARG && strstr(err, path) &&
		       strstr(err, "duplicate"),
	       "duplicate tensor names refused by write: %s", err);
	t[1].name = "__metadata__";
	st = modelfile_write(path, t, 2, NULL, NULL, 0, err);
	tap_ok(&c->tap, st == ST_ERR_ARG, "reserved name refused: %s", err);
	t[1].name = "v";
	t[1].shape[0] = -2;
	st = modelfile_write(path, t, 2, NULL, NULL, 0, err);
	tap_ok(&c->tap, st == ST_ERR_ARG && strstr(err, "negative"),
	       "negative dim refused by write: %s", err);
	t[1].shape[0] = 3;
	t[1].data = NULL;
	st = modelfile_write(path, t, 2, NULL, NULL, 0, err);
	tap_ok(&c->tap, st == ST_ERR_ARG && strstr(err, "no data"),
	       "missing data refused by write: %s", err);
	tap_ok(&c->tap, access(path, F_OK) != 0 && no_temp_files(c),
	       "refused writes leave no file behind");
}

/* ---- temp dir ------------------------------------------------------------ */

static int remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[PATH_MAX];

	if (!d)
		return -1;
	while ((e = readdir(d))) {
		struct stat sb;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
			remove_tree(p);
		else
			unlink(p);
	}
	closedir(d);
	return rmdir(dir);
}

int main(void)
{
	struct ctx c = { { 0, 0 }, "" };
	const char *tmp = getenv("TMPDIR");

	snprintf(c.dir, sizeof c.dir, "%s/advex-modelfile-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(c.dir)) {
		perror("mkdtemp");
		return 1;
	}
	tap_diag("temp dir %s", c.dir);
	test_round_trip(&c);
	test_encode_buffer(&c);
	test_accepted(&c);
	test_bad_length_field(&c);
	test_bad_json(&c);
	test_bad_tensors(&c);
	test_every_truncation(&c);
	test_write_errors(&c);
	remove_tree(c.dir);
	return tap_done(&c.tap);
}
