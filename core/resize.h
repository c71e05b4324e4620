/* resize.h - bilinear resampling of planar float images (--resize).
 *
 * Half-pixel centres: output pixel x samples the input at
 * (x + 0.5) * in_w / out_w - 0.5, clamped to the first and last pixel, and
 * mixes the two neighbours linearly (rows the same way). This is PyTorch's
 * F.interpolate(mode="bilinear", align_corners=False) and OpenCV's
 * INTER_LINEAR, without antialiasing: shrinking by 2 averages 2x2 blocks,
 * shrinking further skips pixels (it aliases, as those do).
 */
#ifndef ADVEX_RESIZE_H
#define ADVEX_RESIZE_H

/* src (c, sh, sw) to dst (c, dh, dw), both row-major planes; all sizes
 * >= 1. src and dst must not overlap. */
void resize_bilinear(const float *src, int c, int sh, int sw, float *dst,
		     int dh, int dw);

#endif
