/* fieldsig.h - receptive-field signatures: which positions of a feature
 * map are equal in exact arithmetic (issue #12).
 *
 * A convolutional network is translation invariant: an output at position
 * p is one function of the input pixels under p's receptive field (and of
 * where that field meets padding). Two positions whose fields hold the same
 * pixels, with padding in the same places, have the same value in exact
 * arithmetic - the ties that flat image regions make, and that a max-pool
 * must break the way PyTorch does (the first maximum in scan order).
 * Rounding differs from position to position in advex's GEMM and Winograd
 * kernels, so the float values cannot tell such ties from genuine near-ties;
 * the fields can.
 *
 * A signature is a 64-bit hash per position (shared by all channels) of the
 * position's receptive field: the image's pixel values there, and the
 * geometry of every window and padding on the way. Equal signatures mean
 * equal fields (up to a hash collision, about 2^-64 per pair), hence equal
 * values in exact arithmetic. Each operation maps its input's signatures to
 * its output's as it maps values to values: a convolution or pool hashes
 * its window, padding hashes as a marker of its own, pointwise and
 * per-channel operations keep them, add and concat combine them.
 *
 * Maps are (H, W) uint64_t per image. Nothing here allocates.
 */
#ifndef ADVEX_FIELDSIG_H
#define ADVEX_FIELDSIG_H

#include <stddef.h>
#include <stdint.h>

/* A window over an (h, w) map: kernel kh x kw, stride sh x sw, padding ph,
 * pw on each side, output oh x ow (as the conv or pool computed them;
 * window positions past the input, as ceil mode makes, count as padding). */
struct fieldsig_window {
	int h, w, kh, kw, sh, sw, ph, pw, oh, ow;
};

/* sig (hw) = the hash of each position's c values x (C, hw) - the input
 * image, or any map whose history is unknown (then equal signatures mean
 * bitwise equal values, which is the plain float comparison). -0 and +0
 * hash alike. */
void fieldsig_values(int c, size_t hw, const float *x, uint64_t *sig);

/* out (oh, ow) = the hash of each window of in (h, w); work holds
 * fieldsig_window_work(wd) values. */
size_t fieldsig_window_work(const struct fieldsig_window *wd);
void fieldsig_window(const struct fieldsig_window *wd, const uint64_t *in,
		     uint64_t *out, uint64_t *work);

/* out (n) = the hash of a[i] and b[i]: add and concat. out may be a. */
void fieldsig_combine(const uint64_t *a, const uint64_t *b, size_t n,
		      uint64_t *out);

/* Spatial constant padding: in (h, w) to out (h+top+bottom, w+left+right);
 * padded positions hash the constant. */
void fieldsig_pad(int h, int w, int top, int left, int bottom, int right,
		  float value, const uint64_t *in, uint64_t *out);

/* Strided slice: out (oh, ow)[i][j] = in (h, w)[h0 + i*sh][w0 + j*sw]. */
void fieldsig_slice(int w, int h0, int w0, int sh, int sw, int oh, int ow,
		    const uint64_t *in, uint64_t *out);

#endif
