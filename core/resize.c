/* resize.c - bilinear resampling (see resize.h). */
#include "resize.h"

#include <stddef.h>

/* Where output coordinate i (of n) falls in an input of m pixels: the left
 * neighbour *i0, the right one *i1 and the weight *t of the right one. */
static void source_of(int i, int n, int m, int *i0, int *i1, float *t)
{
	double s = (i + 0.5) * ((double)m / n) - 0.5;
	int k;

	if (s < 0.0)
		s = 0.0;
	k = (int)s;
	if (k > m - 1)
		k = m - 1;
	*i0 = k;
	*i1 = k < m - 1 ? k + 1 : k;
	*t = (float)(s - k);
}

void resize_bilinear(const float *src, int c, int sh, int sw, float *dst,
		     int dh, int dw)
{
	int ch, y, x;

	for (ch = 0; ch < c; ch++) {
		const float *in = src + (size_t)ch * sh * sw;
		float *out = dst + (size_t)ch * dh * dw;

		for (y = 0; y < dh; y++) {
			const float *r0, *r1;
			int y0, y1;
			float ty;

			source_of(y, dh, sh, &y0, &y1, &ty);
			r0 = in + (size_t)y0 * sw;
			r1 = in + (size_t)y1 * sw;
			for (x = 0; x < dw; x++) {
				int x0, x1;
				float tx, top, bottom;

				source_of(x, dw, sw, &x0, &x1, &tx);
				top = r0[x0] + tx * (r0[x1] - r0[x0]);
				bottom = r1[x0] + tx * (r1[x1] - r1[x0]);
				out[(size_t)y * dw + x] = top + ty * (bottom - top);
			}
		}
	}
}
