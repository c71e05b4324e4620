/* image.h - PNG images in and out through libpng.
 *
 * In memory an image is float32 planar (3, H, W) with pixels in [0,1], the
 * same layout the network takes. Any PNG color type and bit depth is
 * accepted on read (gray, gray+alpha, palette, RGB, RGBA; 1..16 bits);
 * alpha is composited over black. Writing produces 8-bit RGB, through a
 * temporary name and a rename, with optional tEXt key/value chunks.
 */
#ifndef ADVEX_IMAGE_H
#define ADVEX_IMAGE_H

#include "status.h"

/* Read a PNG. On success *pix is malloc'd (3*H*W floats, caller frees). */
enum status image_read_png(const char *path, float **pix, int *h, int *w,
			   char *err);

/* Read a PNG that must be exactly h x w into pix (3*h*w floats). */
enum status image_load_png(const char *path, int h, int w, float *pix,
			   char *err);

/* Write pix (3,h,w) in [0,1] (clamped, rounded to nearest) as 8-bit RGB.
 * keys/values: n_text tEXt chunks (Latin-1 keywords of 1..79 bytes). */
enum status image_write_png(const char *path, const float *pix, int h, int w,
			    const char *const *keys, const char *const *values,
			    int n_text, char *err);

#endif
