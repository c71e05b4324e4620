/* image.h - PNG images in and out through libpng.
 *
 * In memory an image is float32 planar (3, H, W) with pixels in [0,1], the
 * same layout the network takes. Any PNG color type and bit depth is
 * accepted on read (gray, palette, alpha, 16-bit are converted to RGB; alpha
 * is composited over black).
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

#endif
