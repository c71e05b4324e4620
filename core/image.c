/* image.c - PNG reading through libpng's simplified API (see image.h). */
#include "image.h"

#include <png.h>
#include <stdlib.h>
#include <string.h>

enum status image_read_png(const char *path, float **pix, int *h, int *w,
			   char *err)
{
	png_image img;
	unsigned char *buf;
	size_t n, i, hw;
	float *out;
	int c;

	*pix = NULL;
	memset(&img, 0, sizeof img);
	img.version = PNG_IMAGE_VERSION;
	if (!png_image_begin_read_from_file(&img, path))
		return status_set(err, ST_ERR_FORMAT, "%s: not a readable PNG: %s",
				  path, img.message);
	img.format = PNG_FORMAT_RGB;
	if (img.width == 0 || img.height == 0 || img.width > 16384 ||
	    img.height > 16384) {
		png_image_free(&img);
		return status_set(err, ST_ERR_FORMAT, "%s: unsupported size %ux%u",
				  path, img.width, img.height);
	}
	n = PNG_IMAGE_SIZE(img);
	buf = malloc(n);
	hw = (size_t)img.width * img.height;
	out = malloc(3 * hw * sizeof *out);
	if (!buf || !out) {
		free(buf);
		free(out);
		png_image_free(&img);
		return status_set(err, ST_ERR_NOMEM, "%s: out of memory", path);
	}
	if (!png_image_finish_read(&img, NULL, buf, 0, NULL)) {
		free(buf);
		free(out);
		return status_set(err, ST_ERR_FORMAT, "%s: corrupt PNG: %s", path,
				  img.message);
	}
	/* interleaved RGB8 -> planar floats */
	for (c = 0; c < 3; c++)
		for (i = 0; i < hw; i++)
			out[c * hw + i] = buf[3 * i + c] / 255.0f;
	free(buf);
	*pix = out;
	*h = (int)img.height;
	*w = (int)img.width;
	return ST_OK;
}

enum status image_load_png(const char *path, int h, int w, float *pix,
			   char *err)
{
	float *tmp;
	int ih, iw;
	enum status st = image_read_png(path, &tmp, &ih, &iw, err);

	if (st != ST_OK)
		return st;
	if (ih != h || iw != w) {
		free(tmp);
		return status_set(err, ST_ERR_SHAPE,
				  "%s: image is %dx%d but the model takes %dx%d",
				  path, iw, ih, w, h);
	}
	memcpy(pix, tmp, sizeof *pix * 3 * (size_t)h * w);
	free(tmp);
	return ST_OK;
}
