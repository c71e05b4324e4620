/* fieldsig.c - receptive-field signatures (see fieldsig.h).
 *
 * Hashing: values and combinations are chained with one multiply each
 * (h = (rotl(h, 5) ^ v) * K, order-sensitive), windows are weighted sums
 * (below); every result goes through splitmix64's finalizer, so that each
 * output bit depends on every input bit before the next layer uses it.
 */
#include "fieldsig.h"

#include <string.h>

#include "simd.h"

#define FIELDSIG_K 0x9e3779b97f4a7c15ull
#define FIELDSIG_PAD 0x6a09e667f3bcc909ull	/* an outside position */
#define FIELDSIG_CONST 0xbb67ae8584caa73bull	/* seed of a pad constant */

static inline uint64_t fieldsig_link(uint64_t h, uint64_t v)
{
	return (((h << 5) | (h >> 59)) ^ v) * FIELDSIG_K;
}

static inline uint64_t fieldsig_final(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t fieldsig_float(float v)
{
	uint32_t u;

	memcpy(&u, &v, sizeof u);
	return u == 0x80000000u ? 0 : u;	/* -0 acts as +0 */
}

void fieldsig_values(int c, size_t hw, const float *x, uint64_t *sig)
{
	size_t i;
	int ci;

	for (i = 0; i < hw; i++)
		sig[i] = FIELDSIG_K;
	for (ci = 0; ci < c; ci++)
		for (i = 0; i < hw; i++)
			sig[i] = fieldsig_link(sig[i], fieldsig_float(x[(size_t)ci * hw + i]));
	for (i = 0; i < hw; i++)
		sig[i] = fieldsig_final(sig[i]);
}

/* The padded input a window reads: rows and columns from -ph, -pw to the
 * last window's end, positions outside the input as FIELDSIG_PAD. */
static void fieldsig_padded(const struct fieldsig_window *wd, const uint64_t *in,
			    uint64_t *pad, int ph_, int pw_)
{
	int y, x, x0 = wd->pw, x1 = wd->pw + wd->w < pw_ ? wd->pw + wd->w : pw_;

	for (y = 0; y < ph_; y++) {
		int iy = y - wd->ph;
		uint64_t *row = pad + (size_t)y * pw_;

		if (iy < 0 || iy >= wd->h) {
			for (x = 0; x < pw_; x++)
				row[x] = FIELDSIG_PAD;
			continue;
		}
		for (x = 0; x < x0; x++)
			row[x] = FIELDSIG_PAD;
		memcpy(row + x0, in + (size_t)iy * wd->w, sizeof *row * (size_t)(x1 - x0));
		for (x = x1; x < pw_; x++)
			row[x] = FIELDSIG_PAD;
	}
}

size_t fieldsig_window_work(const struct fieldsig_window *wd)
{
	return (size_t)((wd->oh - 1) * wd->sh + wd->kh) *
	       (size_t)((wd->ow - 1) * wd->sw + wd->kw);
}

/* Each window's hash is sum_k K_k * in_k (mod 2^64, K_k distinct odd
 * constants: a difference in one element always changes the sum) through
 * the finalizer: loops without branches over the padded input, which the
 * compiler vectorizes - hashing element by element with bounds checks
 * cost 2.3 ms per VGG16 image. Static: clang 14 emits no resolver for an
 * external function with target_clones. */
SIMD_CLONES static void fieldsig_sums(const struct fieldsig_window *wd,
				      const uint64_t *work, int pw_, uint64_t *out)
{
	int oy, ox, ki, kj, ow = wd->ow, sw = wd->sw;
	size_t n = (size_t)wd->oh * wd->ow, i;

	for (i = 0; i < n; i++)
		out[i] = 0;
	for (ki = 0; ki < wd->kh; ki++)
		for (kj = 0; kj < wd->kw; kj++) {
			uint64_t k = FIELDSIG_K * (2u * (unsigned)(ki * wd->kw + kj) + 1u);

			for (oy = 0; oy < wd->oh; oy++) {
				const uint64_t *restrict src =
					work + (size_t)(oy * wd->sh + ki) * pw_ + kj;
				uint64_t *restrict dst = out + (size_t)oy * ow;

				if (sw == 1)
					for (ox = 0; ox < ow; ox++)
						dst[ox] += k * src[ox];
				else
					for (ox = 0; ox < ow; ox++)
						dst[ox] += k * src[(size_t)ox * sw];
			}
		}
	for (i = 0; i < n; i++)
		out[i] = fieldsig_final(out[i]);
}

void fieldsig_window(const struct fieldsig_window *wd, const uint64_t *in,
		     uint64_t *out, uint64_t *work)
{
	int ph_ = (wd->oh - 1) * wd->sh + wd->kh, pw_ = (wd->ow - 1) * wd->sw + wd->kw;

	fieldsig_padded(wd, in, work, ph_, pw_);
	fieldsig_sums(wd, work, pw_, out);
}

void fieldsig_combine(const uint64_t *a, const uint64_t *b, size_t n,
		      uint64_t *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		out[i] = fieldsig_final(fieldsig_link(fieldsig_link(FIELDSIG_K, a[i]),
						      b[i]));
}

void fieldsig_pad(int h, int w, int top, int left, int bottom, int right,
		  float value, const uint64_t *in, uint64_t *out)
{
	int ow = w + left + right, oh = h + top + bottom, y, x;
	uint64_t c = fieldsig_final(fieldsig_link(FIELDSIG_CONST,
						  fieldsig_float(value)));

	for (y = 0; y < oh; y++)
		for (x = 0; x < ow; x++) {
			int iy = y - top, ix = x - left;

			out[(size_t)y * ow + x] = iy >= 0 && iy < h && ix >= 0 && ix < w ?
				in[(size_t)iy * w + ix] : c;
		}
}

void fieldsig_slice(int w, int h0, int w0, int sh, int sw, int oh, int ow,
		    const uint64_t *in, uint64_t *out)
{
	int i, j;

	for (i = 0; i < oh; i++)
		for (j = 0; j < ow; j++)
			out[(size_t)i * ow + j] =
				in[(size_t)(h0 + i * sh) * w + w0 + (size_t)j * sw];
}
