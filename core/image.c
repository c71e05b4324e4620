/* image.c - PNG in and out through libpng (see image.h).
 *
 * Reading uses libpng's simplified API, which expands every color type and
 * bit depth for us; we ask it for 8-bit RGBA and composite the alpha
 * ourselves, because with background == NULL it composites onto whatever the
 * output buffer already holds, in linear light. Writing uses the full API,
 * since the simplified one cannot add tEXt chunks.
 */
#define _POSIX_C_SOURCE 200809L

#include "image.h"
#include "outpath.h"

#include <errno.h>
#include <fcntl.h>
#include <png.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- reading ----------------------------------------------------------- */

/* libpng allocates a chunk's declared length (up to 2 GiB) before reading
 * it: a 200-byte file whose tEXt chunk claims 2 GB cost 2.1 GB and 11 s.
 * A chunk cannot be longer than the file, so before libpng sees the data,
 * every chunk header up to IEND (or a cut IDAT) is checked against the
 * size; memory then stays bounded by the file. get(at, 8 bytes) reads a chunk header at
 * offset at. 0 when they fit (or the signature is not PNG's: libpng
 * reports that), else -1 with the chunk named in err. */
static int chunks_fit(const char *what, uint64_t size,
		      int (*get)(void *src, uint64_t at, unsigned char b[8]),
		      void *src, char *err)
{
	static const unsigned char sig[8] = { 137, 80, 78, 71, 13, 10, 26, 10 };
	unsigned char b[8];
	uint64_t at = 8;

	if (size < 8 || get(src, 0, b) || memcmp(b, sig, 8))
		return 0;
	while (at + 8 <= size && !get(src, at, b)) {
		uint64_t len = (uint64_t)b[0] << 24 | (uint64_t)b[1] << 16 |
			       (uint64_t)b[2] << 8 | b[3];

		/* libpng reads image data piecewise: a cut IDAT is
		 * reported as truncated, after the header has been read */
		if (len > size - at - 8 && !memcmp(b + 4, "IDAT", 4))
			break;
		if (len > size - at - 8) {
			int k;

			for (k = 4; k < 8; k++)	/* a printable name */
				if (b[k] < 0x20 || b[k] > 0x7e)
					b[k] = '?';
			status_set(err, ST_ERR_FORMAT,
				   "%s: not a readable PNG: chunk '%.4s' at byte %ju "
				   "claims %ju bytes, past the end of the file",
				   what, (const char *)b + 4, (uintmax_t)at,
				   (uintmax_t)len);
			return -1;
		}
		if (!memcmp(b + 4, "IEND", 4))
			break;
		at += 12 + len;
	}
	return 0;
}

static int get_file(void *src, uint64_t at, unsigned char b[8])
{
	FILE *fp = src;

	return fseeko(fp, (off_t)at, SEEK_SET) != 0 || fread(b, 1, 8, fp) != 8;
}

struct mem_src {
	const unsigned char *p;
	size_t n;
};

static int get_mem(void *src, uint64_t at, unsigned char b[8])
{
	const struct mem_src *m = src;

	if (at > m->n || m->n - at < 8)
		return -1;
	memcpy(b, m->p + at, 8);
	return 0;
}

/* Open path and read its header into img. On success the caller owns *fp
 * and img (png_image_finish_read or png_image_free, then fclose). */
static enum status read_begin(const char *path, png_image *img, FILE **fp,
			      char *err)
{
	struct stat sb;
	int fd;

	*fp = NULL;
	/* O_NONBLOCK: opening a FIFO would wait for a writer forever; only a
	 * regular file is read (a device could stream without end) */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return status_set(err, ST_ERR_IO, "%s: cannot open: %s", path,
				  strerror(errno));
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return status_set(err, ST_ERR_IO, "%s: not a regular file",
				  path);
	}
	*fp = fdopen(fd, "rb");
	if (!*fp) {
		int e = errno;

		close(fd);
		return status_set(err, ST_ERR_IO, "%s: cannot open: %s", path,
				  strerror(e));
	}
	if (chunks_fit(path, (uint64_t)sb.st_size, get_file, *fp, err) ||
	    fseeko(*fp, 0, SEEK_SET) != 0) {
		fclose(*fp);
		*fp = NULL;
		return ST_ERR_FORMAT;
	}
	memset(img, 0, sizeof *img);
	img->version = PNG_IMAGE_VERSION;
	/* on failure libpng has already freed img */
	if (!png_image_begin_read_from_stdio(img, *fp)) {
		fclose(*fp);
		return status_set(err, ST_ERR_FORMAT,
				  "%s: not a readable PNG: %s", path,
				  img->message);
	}
	if (img->width == 0 || img->height == 0 ||
	    img->width > IMAGE_MAX_SIDE || img->height > IMAGE_MAX_SIDE) {
		png_image_free(img);
		fclose(*fp);
		return status_set(err, ST_ERR_UNSUPPORTED,
				  "%s: unsupported size %ux%u (at most %dx%d)",
				  path, img->width, img->height, IMAGE_MAX_SIDE,
				  IMAGE_MAX_SIDE);
	}
	return ST_OK;
}

/* Decode the image begun by read_begin into pix (3,H,W) and close fp
 * (NULL for an image read from memory). */
static enum status read_finish(const char *path, png_image *img, FILE *fp,
			       float *pix, char *err)
{
	size_t hw = (size_t)img->width * img->height, i;
	unsigned char *rgba = malloc(4 * hw);
	int c;

	if (!rgba) {
		png_image_free(img);
		if (fp)
			fclose(fp);
		return status_set(err, ST_ERR_NOMEM, "%s: out of memory", path);
	}
	/* Both can only be set after begin_read (it initialises them). */
	img->format = PNG_FORMAT_RGBA;
	img->flags |= PNG_IMAGE_FLAG_16BIT_sRGB;
	if (!png_image_finish_read(img, NULL, rgba, 0, NULL)) {
		free(rgba);
		if (fp)
			fclose(fp);
		return status_set(err, ST_ERR_FORMAT,
				  "%s: truncated or corrupt PNG: %s", path,
				  img->message);
	}
	if (fp)
		fclose(fp);
	/* interleaved RGBA8 -> planar floats, alpha over black */
	for (c = 0; c < 3; c++)
		for (i = 0; i < hw; i++)
			pix[c * hw + i] = (float)(rgba[4 * i + c] *
						  rgba[4 * i + 3]) / 65025.0f;
	free(rgba);
	return ST_OK;
}

enum status image_read_png(const char *path, float **pix, int *h, int *w,
			   char *err)
{
	png_image img;
	FILE *fp;
	float *out;
	enum status st;

	*pix = NULL;
	st = read_begin(path, &img, &fp, err);
	if (st != ST_OK)
		return st;
	out = malloc(3 * sizeof *out * img.width * img.height);
	if (!out) {
		png_image_free(&img);
		fclose(fp);
		return status_set(err, ST_ERR_NOMEM, "%s: out of memory", path);
	}
	*h = (int)img.height;
	*w = (int)img.width;
	st = read_finish(path, &img, fp, out, err);
	if (st != ST_OK) {
		free(out);
		return st;
	}
	*pix = out;
	return ST_OK;
}

enum status image_load_png(const char *path, int h, int w, float *pix,
			   char *err)
{
	png_image img;
	FILE *fp;
	enum status st = read_begin(path, &img, &fp, err);

	if (st != ST_OK)
		return st;
	if ((int)img.height != h || (int)img.width != w) {
		st = status_set(err, ST_ERR_SHAPE,
				"%s: image is %ux%u but the model takes %dx%d",
				path, img.width, img.height, w, h);
		png_image_free(&img);
		fclose(fp);
		return st;
	}
	return read_finish(path, &img, fp, pix, err);
}

enum status image_png_size(const char *path, int *h, int *w, char *err)
{
	png_image img;
	FILE *fp;
	enum status st = read_begin(path, &img, &fp, err);

	if (st != ST_OK)
		return st;
	*h = (int)img.height;
	*w = (int)img.width;
	png_image_free(&img);
	fclose(fp);
	return ST_OK;
}

/* ---- writing ----------------------------------------------------------- */

/* Where libpng's errors land: the message, and the way back out. */
struct png_fail {
	char msg[200];
	jmp_buf jb;
};

/* libpng's default handlers print to stderr; the library must not. */
static void on_png_error(png_structp png, png_const_charp msg)
{
	struct png_fail *f = png_get_error_ptr(png);

	snprintf(f->msg, sizeof f->msg, "%s", msg);
	longjmp(f->jb, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg)
{
	(void)png;
	(void)msg;
}

/* PNG keywords: 1..79 printable Latin-1 bytes, no leading, trailing or
 * double spaces. libpng would otherwise "fix" or drop them with a warning. */
static int keyword_ok(const char *k)
{
	size_t n = strlen(k), i;

	if (n < 1 || n > 79 || k[0] == ' ' || k[n - 1] == ' ')
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char b = (unsigned char)k[i];

		if (!((b >= 32 && b <= 126) || b >= 161))
			return 0;
		if (b == ' ' && k[i + 1] == ' ')
			return 0;
	}
	return 1;
}

static unsigned char to_byte(float x)
{
	if (!(x > 0.0f))	/* also NaN */
		return 0;
	if (x >= 1.0f)
		return 255;
	/* round half away from zero, like round(); exact in double */
	return (unsigned char)((double)x * 255.0 + 0.5);
}

/* The PNG stream itself, onto f. Returns 0 on success, else -1 with
 * fail->msg set. Nothing that setjmp must preserve changes after it. */
static int write_stream(FILE *f, const float *pix, int h, int w,
			const char *const *keys, const char *const *values,
			int n_text, png_text *text, unsigned char *row,
			struct png_fail *fail)
{
	png_structp png;
	png_infop info = NULL;
	size_t hw = (size_t)h * w;
	int i, x, y;

	png = png_create_write_struct(PNG_LIBPNG_VER_STRING, fail, on_png_error,
				      on_png_warning);
	if (png)
		info = png_create_info_struct(png);
	if (!png || !info) {
		png_destroy_write_struct(&png, &info);
		snprintf(fail->msg, sizeof fail->msg, "out of memory");
		return -1;
	}
	if (setjmp(fail->jb)) {
		png_destroy_write_struct(&png, &info);
		return -1;
	}
	png_init_io(png, f);
	png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8,
		     PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
		     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	for (i = 0; i < n_text; i++) {
		text[i].compression = PNG_TEXT_COMPRESSION_NONE;
		text[i].key = (char *)keys[i];	/* png_set_text copies */
		text[i].text = (char *)values[i];
	}
	if (n_text > 0)
		png_set_text(png, info, text, n_text);
	png_write_info(png, info);
	for (y = 0; y < h; y++) {
		for (x = 0; x < w; x++) {
			size_t p = (size_t)y * w + x;

			row[3 * x + 0] = to_byte(pix[p]);
			row[3 * x + 1] = to_byte(pix[hw + p]);
			row[3 * x + 2] = to_byte(pix[2 * hw + p]);
		}
		png_write_row(png, row);
	}
	png_write_end(png, info);
	png_destroy_write_struct(&png, &info);
	return 0;
}

static enum status check_write_args(const char *path, int h, int w,
				    const char *const *keys,
				    const char *const *values, int n_text,
				    char *err)
{
	int i;

	if (h < 1 || w < 1 || h > IMAGE_MAX_SIDE || w > IMAGE_MAX_SIDE)
		return status_set(err, ST_ERR_ARG,
				  "%s: cannot write a %dx%d image (1..%d a "
				  "side)", path, w, h, IMAGE_MAX_SIDE);
	if (n_text < 0 || (n_text > 0 && (!keys || !values)))
		return status_set(err, ST_ERR_ARG, "%s: bad text chunk list",
				  path);
	for (i = 0; i < n_text; i++) {
		if (!keys[i] || !values[i] || !keyword_ok(keys[i]))
			return status_set(err, ST_ERR_ARG,
					  "%s: text keyword '%s' is not 1..79 "
					  "printable Latin-1 characters", path,
					  keys[i] ? keys[i] : "(null)");
	}
	return ST_OK;
}

/* Write into the already created temporary file fd, flush it to disk and
 * close it (fd is always closed). */
static enum status write_file(int fd, const char *path, const float *pix,
			      int h, int w, const char *const *keys,
			      const char *const *values, int n_text,
			      png_text *text, unsigned char *row, char *err)
{
	struct png_fail fail;
	FILE *f = fdopen(fd, "wb");
	int bad;

	if (!f) {
		close(fd);
		return status_set(err, ST_ERR_IO, "%s: cannot write: %s", path,
				  strerror(errno));
	}
	if (write_stream(f, pix, h, w, keys, values, n_text, text, row,
			 &fail) != 0) {
		fclose(f);
		return status_set(err, ST_ERR_IO, "%s: cannot write PNG: %s",
				  path, fail.msg);
	}
	bad = fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0;
	if (fclose(f) != 0 || bad)
		return status_set(err, ST_ERR_IO, "%s: cannot write: %s", path,
				  strerror(errno));
	return ST_OK;
}

enum status image_write_png(const char *path, const float *pix, int h, int w,
			    const char *const *keys, const char *const *values,
			    int n_text, char *err)
{
	enum status st;
	size_t tn;
	char *tmp = NULL;
	unsigned char *row = NULL;
	png_text *text = NULL;
	int fd;

	st = check_write_args(path, h, w, keys, values, n_text, err);
	if (st == ST_OK)
		st = outpath_check(path, err);
	if (st != ST_OK)
		return st;
	tn = strlen(path) + 32;
	tmp = malloc(tn);
	row = malloc(3 * (size_t)w);
	text = calloc(n_text > 0 ? (size_t)n_text : 1, sizeof *text);
	if (!tmp || !row || !text) {
		st = status_set(err, ST_ERR_NOMEM, "%s: out of memory", path);
		goto out;
	}
	snprintf(tmp, tn, "%s.tmp.%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (fd < 0) {
		st = status_set(err, ST_ERR_IO,
				"%s: cannot create a temporary file next to "
				"it: %s", path, strerror(errno));
		goto out;
	}
	st = write_file(fd, path, pix, h, w, keys, values, n_text, text, row,
			err);
	if (st == ST_OK && rename(tmp, path) != 0)
		st = status_set(err, ST_ERR_IO,
				"%s: cannot rename %s to it: %s", path, tmp,
				strerror(errno));
	if (st != ST_OK)
		unlink(tmp);
out:
	free(tmp);
	free(row);
	free(text);
	return st;
}

/* ---- in memory ------------------------------------------------------------ */

enum status image_decode_png(const void *png, size_t len, float **pix, int *h,
			     int *w, char *err)
{
	const char *what = "in-memory PNG";
	png_image img;
	float *out;
	enum status st;

	*pix = NULL;
	if (png && chunks_fit(what, len, get_mem,
			      &(struct mem_src){ png, len }, err))
		return ST_ERR_FORMAT;
	memset(&img, 0, sizeof img);
	img.version = PNG_IMAGE_VERSION;
	if (!png || len == 0 ||
	    !png_image_begin_read_from_memory(&img, png, len))
		return status_set(err, ST_ERR_FORMAT, "%s: not a readable PNG: %s",
				  what, png && len ? img.message : "empty");
	if (img.width == 0 || img.height == 0 || img.width > IMAGE_MAX_SIDE ||
	    img.height > IMAGE_MAX_SIDE) {
		png_image_free(&img);
		return status_set(err, ST_ERR_UNSUPPORTED,
				  "%s: unsupported size %ux%u (at most %dx%d)",
				  what, img.width, img.height, IMAGE_MAX_SIDE,
				  IMAGE_MAX_SIDE);
	}
	out = malloc(3 * sizeof *out * img.width * img.height);
	if (!out) {
		png_image_free(&img);
		return status_set(err, ST_ERR_NOMEM, "%s: out of memory", what);
	}
	*h = (int)img.height;
	*w = (int)img.width;
	st = read_finish(what, &img, NULL, out, err);
	if (st != ST_OK) {
		free(out);
		return st;
	}
	*pix = out;
	return ST_OK;
}

/* The same stream image_write_png writes, into a growing buffer that
 * open_memstream keeps for us. */
enum status image_encode_png(const float *pix, int h, int w,
			     const char *const *keys, const char *const *values,
			     int n_text, unsigned char **png, size_t *len,
			     char *err)
{
	const char *what = "in-memory PNG";
	struct png_fail fail;
	unsigned char *row = NULL;
	png_text *text = NULL;
	char *buf = NULL;
	size_t n = 0;
	enum status st;
	FILE *f;

	*png = NULL;
	*len = 0;
	st = check_write_args(what, h, w, keys, values, n_text, err);
	if (st != ST_OK)
		return st;
	row = malloc(3 * (size_t)w);
	text = calloc(n_text > 0 ? (size_t)n_text : 1, sizeof *text);
	f = row && text ? open_memstream(&buf, &n) : NULL;
	if (!f) {
		free(row);
		free(text);
		return status_set(err, ST_ERR_NOMEM, "%s: out of memory", what);
	}
	if (write_stream(f, pix, h, w, keys, values, n_text, text, row,
			 &fail) != 0)
		st = status_set(err, ST_ERR_IO, "%s: cannot encode: %s", what,
				fail.msg);
	/* buf and n are only valid after the stream is closed */
	if (fclose(f) != 0 && st == ST_OK)
		st = status_set(err, ST_ERR_NOMEM, "%s: out of memory", what);
	free(row);
	free(text);
	if (st != ST_OK) {
		free(buf);
		return st;
	}
	*png = (unsigned char *)buf;
	*len = n;
	return ST_OK;
}
