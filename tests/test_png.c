/* test_png.c - image.c against PNGs written here with raw libpng calls:
 * every color type and bit depth reads back to the documented values
 * exactly; image_write_png round-trips to round(255x)/255, keeps its tEXt
 * chunks, and fails cleanly (path named, no temporary file left). */
#define _GNU_SOURCE	/* memmem */

#include "image.h"
#include "tap.h"

#include <dirent.h>
#include <math.h>
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One test image: samples as stored in the file, before any expansion. */
struct raw {
	const char *what;
	int color_type, depth, w, h;
	uint16_t *s;		/* h*w*channels samples */
	png_color pal[256];
	int n_pal;
	png_byte trns[256];	/* palette alphas */
	int n_trns;
	int gray_trns;		/* gray tRNS value, or -1 */
};

static uint32_t rng_next(uint32_t *st)
{
	*st = *st * 1664525u + 1013904223u;
	return *st >> 8;
}

static int channels(int color_type)
{
	switch (color_type) {
	case PNG_COLOR_TYPE_GRAY_ALPHA:
		return 2;
	case PNG_COLOR_TYPE_RGB:
		return 3;
	case PNG_COLOR_TYPE_RGB_ALPHA:
		return 4;
	default:
		return 1;	/* gray, palette */
	}
}

/* Pack one row of samples as the PNG stores them (MSB first, big-endian). */
static void pack_row(const struct raw *r, const uint16_t *s, png_byte *row)
{
	int n = r->w * channels(r->color_type), i;

	if (r->depth == 16) {
		for (i = 0; i < n; i++) {
			row[2 * i] = (png_byte)(s[i] >> 8);
			row[2 * i + 1] = (png_byte)s[i];
		}
	} else if (r->depth == 8) {
		for (i = 0; i < n; i++)
			row[i] = (png_byte)s[i];
	} else {
		int per = 8 / r->depth;

		memset(row, 0, (size_t)(n + per - 1) / per);
		for (i = 0; i < n; i++)
			row[i / per] |= (png_byte)(s[i] << (8 - r->depth *
							    (i % per + 1)));
	}
}

static int write_raw(const char *path, const struct raw *r)
{
	FILE *f = fopen(path, "wb");
	png_structp png;
	png_infop info;
	png_byte *row;
	int y, nc = channels(r->color_type);

	if (!f)
		return -1;
	png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	info = png_create_info_struct(png);
	row = malloc((size_t)r->w * nc * 2 + 1);
	if (setjmp(png_jmpbuf(png))) {
		png_destroy_write_struct(&png, &info);
		fclose(f);
		free(row);
		return -1;
	}
	png_init_io(png, f);
	png_set_IHDR(png, info, r->w, r->h, r->depth, r->color_type,
		     PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
		     PNG_FILTER_TYPE_DEFAULT);
	if (r->n_pal)
		png_set_PLTE(png, info, r->pal, r->n_pal);
	if (r->n_trns)
		png_set_tRNS(png, info, r->trns, r->n_trns, NULL);
	if (r->gray_trns >= 0) {
		png_color_16 t = { 0 };

		t.gray = (png_uint_16)r->gray_trns;
		png_set_tRNS(png, info, NULL, 0, &t);
	}
	png_write_info(png, info);
	for (y = 0; y < r->h; y++) {
		pack_row(r, r->s + (size_t)y * r->w * nc, row);
		png_write_row(png, row);
	}
	png_write_end(png, info);
	png_destroy_write_struct(&png, &info);
	free(row);
	return fclose(f);
}

/* A sample as the reader gives it in 8 bits: low depths scale up exactly,
 * 16 bits round to nearest (v/257: never a tie). */
static int to8(int v, int depth)
{
	switch (depth) {
	case 1:
		return v * 255;
	case 2:
		return v * 85;
	case 4:
		return v * 17;
	case 16:
		return (2 * v + 257) / 514;
	default:
		return v;
	}
}

/* The RGBA8 the documented rules give for pixel p of r. */
static void expect_rgba(const struct raw *r, int p, int rgba[4])
{
	const uint16_t *s = r->s + (size_t)p * channels(r->color_type);
	int c;

	rgba[3] = 255;
	switch (r->color_type) {
	case PNG_COLOR_TYPE_PALETTE:
		rgba[0] = r->pal[s[0]].red;
		rgba[1] = r->pal[s[0]].green;
		rgba[2] = r->pal[s[0]].blue;
		if (s[0] < r->n_trns)
			rgba[3] = r->trns[s[0]];
		return;
	case PNG_COLOR_TYPE_GRAY:
	case PNG_COLOR_TYPE_GRAY_ALPHA:
		rgba[0] = rgba[1] = rgba[2] = to8(s[0], r->depth);
		if (r->color_type == PNG_COLOR_TYPE_GRAY_ALPHA)
			rgba[3] = to8(s[1], r->depth);
		if (r->gray_trns == s[0])
			rgba[3] = 0;
		return;
	default:
		for (c = 0; c < channels(r->color_type); c++)
			rgba[c] = to8(s[c], r->depth);
	}
}

/* Write r, read it with image_read_png, compare every value exactly. */
static void check_raw(struct tap *t, const char *dir, struct raw *r)
{
	char path[512], err[ERR_MAX] = "";
	float *pix = NULL;
	int h = 0, w = 0, p, c, bad = 0, first = -1;
	enum status st;

	snprintf(path, sizeof path, "%s/raw.png", dir);
	if (!tap_ok(t, write_raw(path, r) == 0, "%s: test PNG written",
		    r->what))
		return;
	st = image_read_png(path, &pix, &h, &w, err);
	if (!tap_ok(t, st == ST_OK && h == r->h && w == r->w,
		    "%s: read %dx%d (%s)", r->what, w, h, err))
		return;
	for (p = 0; p < r->w * r->h; p++) {
		int e[4];

		expect_rgba(r, p, e);
		for (c = 0; c < 3; c++) {
			float want = (float)(e[c] * e[3]) / 65025.0f;

			if (pix[c * r->w * r->h + p] != want) {
				bad++;
				if (first < 0)
					first = p;
			}
		}
	}
	if (first >= 0) {
		int e[4];

		expect_rgba(r, first, e);
		tap_diag("pixel %d: got %.9g, want rgba %d %d %d %d", first,
			 pix[first], e[0], e[1], e[2], e[3]);
	}
	tap_ok(t, bad == 0, "%s: all %d values exact (%d off)", r->what,
	       3 * r->w * r->h, bad);
	free(pix);
}

/* A w x h image of random samples below 2^depth (palette indices: the
 * tests give palettes all 2^depth entries). */
static void fill_raw(struct raw *r, const char *what, int color_type,
		     int depth, int w, int h, uint32_t seed)
{
	int n = w * h * channels(color_type), i;

	memset(r, 0, sizeof *r);
	r->what = what;
	r->color_type = color_type;
	r->depth = depth;
	r->w = w;
	r->h = h;
	r->gray_trns = -1;
	r->s = malloc(sizeof *r->s * (size_t)n);
	for (i = 0; i < n; i++)
		r->s[i] = (uint16_t)(rng_next(&seed) % (1u << depth));
}

static void random_palette(struct raw *r, int n, uint32_t seed)
{
	int i;

	r->n_pal = n;
	for (i = 0; i < n; i++) {
		r->pal[i].red = (png_byte)rng_next(&seed);
		r->pal[i].green = (png_byte)rng_next(&seed);
		r->pal[i].blue = (png_byte)rng_next(&seed);
	}
}

static void test_color_types(struct tap *t, const char *dir)
{
	static const struct {
		const char *what;
		int ct, depth;
	} plain[] = {
		{ "gray 1-bit", PNG_COLOR_TYPE_GRAY, 1 },
		{ "gray 2-bit", PNG_COLOR_TYPE_GRAY, 2 },
		{ "gray 4-bit", PNG_COLOR_TYPE_GRAY, 4 },
		{ "gray 8-bit", PNG_COLOR_TYPE_GRAY, 8 },
		{ "gray+alpha 8-bit", PNG_COLOR_TYPE_GRAY_ALPHA, 8 },
		{ "gray+alpha 16-bit", PNG_COLOR_TYPE_GRAY_ALPHA, 16 },
		{ "RGB 8-bit", PNG_COLOR_TYPE_RGB, 8 },
		{ "RGB 16-bit", PNG_COLOR_TYPE_RGB, 16 },
		{ "RGBA 8-bit", PNG_COLOR_TYPE_RGB_ALPHA, 8 },
		{ "RGBA 16-bit", PNG_COLOR_TYPE_RGB_ALPHA, 16 },
	};
	struct raw r;
	size_t k;
	int i;

	for (k = 0; k < sizeof plain / sizeof plain[0]; k++) {
		/* odd width: rows of low depths end mid-byte */
		fill_raw(&r, plain[k].what, plain[k].ct, plain[k].depth, 13, 7,
			 (uint32_t)k + 1);
		check_raw(t, dir, &r);
		free(r.s);
	}

	/* every 16-bit value once: the 16 -> 8 rounding, and no gamma
	 * change for a file without gAMA */
	fill_raw(&r, "gray 16-bit, all 65,536 values", PNG_COLOR_TYPE_GRAY, 16,
		 256, 256, 1);
	for (i = 0; i < 65536; i++)
		r.s[i] = (uint16_t)i;
	check_raw(t, dir, &r);
	free(r.s);

	fill_raw(&r, "gray 8-bit with tRNS gray 128", PNG_COLOR_TYPE_GRAY, 8,
		 16, 16, 2);
	for (i = 0; i < 256; i++)
		r.s[i] = (uint16_t)i;
	r.gray_trns = 128;
	check_raw(t, dir, &r);
	free(r.s);

	fill_raw(&r, "palette 8-bit", PNG_COLOR_TYPE_PALETTE, 8, 16, 16, 3);
	random_palette(&r, 256, 99);
	check_raw(t, dir, &r);
	free(r.s);

	fill_raw(&r, "palette 8-bit with tRNS", PNG_COLOR_TYPE_PALETTE, 8, 16,
		 16, 4);
	random_palette(&r, 256, 98);
	r.n_trns = 200;	/* entries past the tRNS list stay opaque */
	for (i = 0; i < r.n_trns; i++)
		r.trns[i] = (png_byte)(i * 7 + 3);
	r.trns[0] = 0;
	check_raw(t, dir, &r);
	free(r.s);

	fill_raw(&r, "palette 2-bit with tRNS", PNG_COLOR_TYPE_PALETTE, 2, 11,
		 5, 5);
	random_palette(&r, 4, 97);
	r.n_trns = 2;
	r.trns[0] = 0;
	r.trns[1] = 77;
	check_raw(t, dir, &r);
	free(r.s);
}

/* A value the writer gets: in range, ties, out of range, NaN. */
static float probe_value(int i, uint32_t *seed)
{
	static const float special[] = { 0.0f, 1.0f, 0.5f, -0.25f, 1.75f,
					 1.0f / 255, 0.5f / 255, 254.5f / 255,
					 -0.0f, 1e-9f };

	if (i < (int)(sizeof special / sizeof special[0]))
		return special[i];
	if (i == 10)
		return NAN;
	return (float)(rng_next(seed) % 1000001) / 1000000.0f * 1.2f - 0.1f;
}

static float expect_written(float x)
{
	double v = x;

	if (!(v > 0))
		return 0.0f;
	if (v > 1)
		v = 1;
	return (float)(int)round(v * 255.0) / 255.0f;
}

static void test_round_trip(struct tap *t, const char *dir)
{
	const int h = 9, w = 17, n = 3 * 9 * 17;
	char path[512], err[ERR_MAX] = "";
	float *in = malloc(sizeof *in * n), *out = NULL;
	uint32_t seed = 7;
	int i, rh = 0, rw = 0, bad = 0;
	enum status st;

	for (i = 0; i < n; i++)
		in[i] = probe_value(i, &seed);
	snprintf(path, sizeof path, "%s/rt.png", dir);
	st = image_write_png(path, in, h, w, NULL, NULL, 0, err);
	tap_ok(t, st == ST_OK, "image_write_png writes (%s)", err);
	st = image_read_png(path, &out, &rh, &rw, err);
	tap_ok(t, st == ST_OK && rh == h && rw == w, "and it reads back %dx%d",
	       rw, rh);
	for (i = 0; out && i < n; i++)
		if (out[i] != expect_written(in[i])) {
			if (!bad)
				tap_diag("value %d: wrote %.9g read %.9g", i,
					 in[i], out[i]);
			bad++;
		}
	tap_ok(t, out && bad == 0,
	       "read(write(x)) == round(255 clamp(x))/255 for all %d values "
	       "(clamping, NaN, ties)", n);
	free(out);

	/* image_load_png: right size into a buffer, wrong size refused */
	out = malloc(sizeof *out * n);
	st = image_load_png(path, h, w, out, err);
	tap_ok(t, st == ST_OK && out[0] == expect_written(in[0]) &&
	       out[n - 1] == expect_written(in[n - 1]),
	       "image_load_png reads the right size");
	st = image_load_png(path, w, h, out, err);
	tap_ok(t, st == ST_ERR_SHAPE && strstr(err, path) &&
	       strstr(err, "17x9"), "image_load_png refuses 9x17: %s", err);
	st = image_png_size(path, &rh, &rw, err);
	tap_ok(t, st == ST_OK && rh == h && rw == w,
	       "image_png_size reads the header: %dx%d", rw, rh);
	free(out);
	free(in);
}

/* The tEXt chunks of path, read back with plain libpng. */
static int read_text(const char *path, char keys[][80], char vals[][80],
		     int max)
{
	FILE *f = fopen(path, "rb");
	png_structp png;
	png_infop info;
	png_textp text;
	int n = 0, i;

	if (!f)
		return -1;
	png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	info = png_create_info_struct(png);
	if (setjmp(png_jmpbuf(png))) {
		png_destroy_read_struct(&png, &info, NULL);
		fclose(f);
		return -1;
	}
	png_init_io(png, f);
	png_read_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
	png_get_text(png, info, &text, &n);
	for (i = 0; i < n && i < max; i++) {
		snprintf(keys[i], 80, "%s", text[i].key);
		snprintf(vals[i], 80, "%s", text[i].text);
	}
	png_destroy_read_struct(&png, &info, NULL);
	fclose(f);
	return n;
}

static void test_text(struct tap *t, const char *dir)
{
	static const char *const keys[] = { "Software", "advex label",
					    "Comment" };
	static const char *const vals[] = { "advex", "cat (3)",
					    "caf\xe9 eps=8/255" };
	static const char *const bad_keys[] = { "" };
	char path[512], err[ERR_MAX] = "", rk[8][80], rv[8][80];
	float pix[3 * 2 * 3] = { 0 };
	int n, i, same = 1;

	snprintf(path, sizeof path, "%s/text.png", dir);
	tap_ok(t, image_write_png(path, pix, 2, 3, keys, vals, 3, err) == ST_OK,
	       "write with 3 tEXt chunks (%s)", err);
	n = read_text(path, rk, rv, 8);
	for (i = 0; i < 3 && i < n; i++)
		same &= !strcmp(rk[i], keys[i]) && !strcmp(rv[i], vals[i]);
	tap_ok(t, n == 3 && same, "png_get_text finds the 3 chunks as written");
	snprintf(path, sizeof path, "%s/badkey.png", dir);
	tap_ok(t, image_write_png(path, pix, 2, 3, bad_keys, vals, 1, err) ==
		       ST_ERR_ARG && strstr(err, path) &&
		       access(path, F_OK) != 0,
	       "an empty keyword is refused and nothing written: %s", err);
}

/* No "NAME.tmp.*" left in dir. */
static int no_temp(const char *dir, const char *name)
{
	struct dirent *e;
	DIR *dp = opendir(dir);
	size_t n = strlen(name);
	int left = 0;

	if (!dp)
		return 0;
	while ((e = readdir(dp)))
		if (!strncmp(e->d_name, name, n) &&
		    !strncmp(e->d_name + n, ".tmp.", 5))
			left++;
	closedir(dp);
	return left == 0;
}

/* A chunk whose length field claims more than the file holds: libpng
 * would allocate the claimed size (2 GB here) before finding the file
 * short, so the reader refuses it from the chunk headers. Control: the
 * same PNG with its true length reads. */
static void test_chunk_bomb(struct tap *t, const char *dir)
{
	const char *key = "advex.note", *val = "x";
	float pix[3] = { 0.5f, 0.25f, 1.0f }, *out = NULL;
	unsigned char *png = NULL, *p;
	char path[512], err[ERR_MAX] = "";
	size_t len = 0;
	int h, w;
	FILE *f;

	if (!tap_ok(t, image_encode_png(pix, 1, 1, &key, &val, 1, &png, &len,
					err) == ST_OK, "a 1x1 PNG with a tEXt chunk"))
		return;
	p = memmem(png, len, "tEXt", 4);
	tap_ok(t, p && image_decode_png(png, len, &out, &h, &w, err) == ST_OK,
	       "control: it decodes as written");
	free(out);
	out = NULL;
	if (!p)
		goto out;
	p[-4] = 0x77;	/* the length: 0x77000000 + a little, about 2 GB */
	tap_ok(t, image_decode_png(png, len, &out, &h, &w, err) == ST_ERR_FORMAT &&
	       !out && strstr(err, "chunk 'tEXt'") && strstr(err, "past the end"),
	       "in memory: a tEXt chunk claiming ~2 GB refused: %s", err);
	snprintf(path, sizeof path, "%s/bomb.png", dir);
	f = fopen(path, "wb");
	if (f) {
		fwrite(png, 1, len, f);
		fclose(f);
	}
	tap_ok(t, image_read_png(path, &out, &h, &w, err) == ST_ERR_FORMAT &&
	       !out && strstr(err, path) && strstr(err, "chunk 'tEXt'"),
	       "from a file: refused naming it: %s", err);
	tap_ok(t, image_png_size(path, &h, &w, err) == ST_ERR_FORMAT,
	       "and its size is not read either");
out:
	free(png);
}

static void test_failures(struct tap *t, const char *dir)
{
	char path[512], err[ERR_MAX] = "", sub[512];
	float pix[3 * 4 * 4] = { 0 }, *out = NULL, *noise;
	uint32_t seed = 11;
	int h, w, i;
	long size;
	FILE *f;
	char *buf;

	snprintf(path, sizeof path, "%s/no/such/dir/x.png", dir);
	tap_ok(t, image_write_png(path, pix, 4, 4, NULL, NULL, 0, err) ==
		       ST_ERR_IO && strstr(err, path),
	       "write into a missing folder fails naming it: %s", err);

	/* the rename fails (a folder is in the way): temp file removed */
	snprintf(sub, sizeof sub, "%s/taken", dir);
	mkdir(sub, 0700);
	tap_ok(t, image_write_png(sub, pix, 4, 4, NULL, NULL, 0, err) ==
		       ST_ERR_IO && strstr(err, sub),
	       "a failed rename is an error: %s", err);
	tap_ok(t, no_temp(dir, "taken"), "and leaves no temporary file");
	rmdir(sub);

	tap_ok(t, image_write_png(path, pix, 0, 4, NULL, NULL, 0, err) ==
		       ST_ERR_ARG, "a 4x0 image is refused: %s", err);

	/* truncated: a valid file cut in half, in the middle of its pixels
	 * (noise does not compress, so the header is well before the cut) */
	noise = malloc(sizeof *noise * 3 * 64 * 64);
	for (i = 0; i < 3 * 64 * 64; i++)
		noise[i] = (float)(rng_next(&seed) % 256) / 255.0f;
	snprintf(path, sizeof path, "%s/cut.png", dir);
	image_write_png(path, noise, 64, 64, NULL, NULL, 0, err);
	free(noise);
	f = fopen(path, "rb");
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	rewind(f);
	buf = malloc((size_t)size);
	if (fread(buf, 1, (size_t)size, f) != (size_t)size)
		size = 0;
	fclose(f);
	f = fopen(path, "wb");
	fwrite(buf, 1, (size_t)size / 2, f);
	fclose(f);
	free(buf);
	tap_ok(t, image_read_png(path, &out, &h, &w, err) == ST_ERR_FORMAT &&
		       !out && strstr(err, path) && strstr(err, "truncated"),
	       "a truncated PNG is an error naming it: %s", err);
	tap_ok(t, image_png_size(path, &h, &w, err) == ST_OK && h == 64,
	       "(its header alone still reads)");

	snprintf(path, sizeof path, "%s/text.txt", dir);
	f = fopen(path, "w");
	fputs("not a png at all\n", f);
	fclose(f);
	tap_ok(t, image_read_png(path, &out, &h, &w, err) == ST_ERR_FORMAT &&
		       strstr(err, path) && strstr(err, "PNG"),
	       "a text file is not a PNG: %s", err);

	snprintf(path, sizeof path, "%s/missing.png", dir);
	tap_ok(t, image_read_png(path, &out, &h, &w, err) == ST_ERR_IO &&
		       strstr(err, path),
	       "a missing file is an I/O error naming it: %s", err);
}

static void cleanup(const char *dir)
{
	static const char *const names[] = { "raw.png", "rt.png", "text.png",
					     "cut.png", "text.txt" };
	char path[512];
	size_t i;

	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

int main(void)
{
	struct tap t = { 0 };
	char dir[] = "/tmp/advex-test-png-XXXXXX";

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_color_types(&t, dir);
	test_round_trip(&t, dir);
	test_text(&t, dir);
	test_failures(&t, dir);
	test_chunk_bomb(&t, dir);
	cleanup(dir);
	return tap_done(&t);
}
