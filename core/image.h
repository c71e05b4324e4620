/* image.h - PNG images in and out through libpng.
 *
 * In memory an image is float32 planar (3, H, W) with pixels in [0,1], the
 * same layout the network takes. Any PNG color type and bit depth is
 * accepted on read (gray, gray+alpha, palette with or without tRNS, RGB,
 * RGBA; 1..16 bits). Writing produces 8-bit RGB, through a temporary name
 * and a rename, with optional tEXt key/value chunks.
 *
 * What a read gives, exactly (libpng's simplified API does the expansion):
 *  - 1/2/4-bit gray is scaled to 8 bits (2-bit 1 -> 85/255, 1-bit 1 -> 1.0);
 *    gray is copied to all three channels; palette entries are looked up.
 *  - 16-bit samples become round(v * 255 / 65535) / 255. A 16-bit file with
 *    no gAMA/sRGB chunk is taken as sRGB-encoded, as PIL, OpenCV and imageio
 *    do (libpng's own default would take it as linear and brighten it).
 *    A file with a gAMA chunk other than sRGB's is converted to sRGB.
 *  - alpha (from the alpha channel or tRNS) is composited over black in the
 *    file's own encoding, not in linear light: out = c/255 * a/255, computed
 *    as (float)(c * a) / 65025. An opaque pixel is exactly c/255.
 * So an 8-bit RGB file written by image_write_png reads back bit-exactly.
 */
#ifndef ADVEX_IMAGE_H
#define ADVEX_IMAGE_H

#include <stddef.h>

#include "status.h"

/* The largest width or height read or written. */
#define IMAGE_MAX_SIDE 16384

/* Read a PNG. On success *pix is malloc'd (3*H*W floats, caller frees). */
enum status image_read_png(const char *path, float **pix, int *h, int *w,
			   char *err);

/* Read a PNG that must be exactly h x w into pix (3*h*w floats). The size
 * is checked from the header, before anything is decoded. */
enum status image_load_png(const char *path, int h, int w, float *pix,
			   char *err);

/* Height and width of a PNG from its header, without decoding it. */
enum status image_png_size(const char *path, int *h, int *w, char *err);

/* Write pix (3,h,w) in [0,1] (clamped, rounded to nearest; NaN -> 0) as
 * 8-bit RGB: a byte is round(255 * x). keys/values: n_text tEXt chunks
 * (keywords of 1..79 printable Latin-1 bytes without leading, trailing or
 * double spaces; values are stored as given). The file is written as
 * "PATH.tmp.<pid>", fsync'd and renamed over PATH; on failure the temporary
 * file is removed and PATH is untouched. */
enum status image_write_png(const char *path, const float *pix, int h, int w,
			    const char *const *keys, const char *const *values,
			    int n_text, char *err);

/* In memory, for the run log: the same PNG image_write_png writes, as
 * malloc'd bytes (*png, *len; caller frees), and the reverse, with the same
 * conversions as image_read_png (*pix malloc'd, 3*H*W floats, caller
 * frees). Messages name "in-memory PNG". */
enum status image_encode_png(const float *pix, int h, int w,
			     const char *const *keys, const char *const *values,
			     int n_text, unsigned char **png, size_t *len,
			     char *err);
enum status image_decode_png(const void *png, size_t len, float **pix, int *h,
			     int *w, char *err);

#endif
