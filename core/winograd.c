/* winograd.c - F(2x2,3x3) Winograd convolution (see winograd.h).
 *
 * With d a 4x4 input tile, g a 3x3 kernel and
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
 *   G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
 *   A^T = [1 1 1 0; 0 1 -1 -1]
 * the 2x2 output tile is  A^T [ (G g G^T) .* (B^T d B) ] A.
 * The sum over input channels commutes with the element-wise product, so
 * for each of the 16 elements e the channel sum is one matrix product
 *   M[e] (K x T) = U[e] (K x C) * V[e] (C x T)
 * over all T tiles of the image: that is where the time goes, in BLAS.
 *
 * Backward to the input is the same algorithm applied to dy with the
 * transposed, 180-degree-rotated kernel and padding 2 - p. Rotating g by
 * 180 degrees reverses the columns of G, which equals swapping rows 0 and 3
 * of G; so the rotated kernel's U is U with elements 0 and 3 swapped along
 * both axes, and the k/c transpose is the transpose flag of the product.
 * No second set of weights is needed.
 */
#include "winograd.h"

#include <string.h>

#include "blas.h"

/* One convolution as the Winograd code sees it: the forward pass, or the
 * backward pass viewed as a forward convolution of dy. Padding may be 0..2
 * here (backward of a pad-0 layer pads by 2). */
struct wg_geom {
	int c, h, w;	/* input planes and size */
	int k;		/* output planes */
	int ph, pw;	/* zero padding */
	int oh, ow;	/* output size = h + 2ph - 2, w + 2pw - 2 */
	int th, tw;	/* 2x2 output tiles down and across */
	int rw;		/* padded row length 2*tw + 2 of the row scratch */
};

static void wg_geom_init(struct wg_geom *g, int c, int h, int w, int k,
			 int ph, int pw)
{
	g->c = c;
	g->h = h;
	g->w = w;
	g->k = k;
	g->ph = ph;
	g->pw = pw;
	g->oh = h + 2 * ph - 2;
	g->ow = w + 2 * pw - 2;
	g->th = (g->oh + 1) / 2;
	g->tw = (g->ow + 1) / 2;
	g->rw = 2 * g->tw + 2;
}

static void wg_geom_forward(const struct conv_shape *s, struct wg_geom *g)
{
	wg_geom_init(g, s->c, s->h, s->w, s->k, s->ph, s->pw);
}

static void wg_geom_backward(const struct conv_shape *s, struct wg_geom *g)
{
	wg_geom_init(g, s->k, s->oh, s->ow, s->c, 2 - s->ph, 2 - s->pw);
}

static size_t wg_tiles(const struct wg_geom *g)
{
	return (size_t)g->th * g->tw;
}

/* Workspace of one pass: V (16 x C x T), M (16 x K x T), four transformed
 * rows and one row of zeros standing for the padding rows. */
static size_t wg_geom_work(const struct wg_geom *g)
{
	size_t t = wg_tiles(g);

	return 16 * t * ((size_t)g->c + g->k) + 4 * (size_t)g->rw +
	       (size_t)g->w;
}

int winograd_supported(const struct conv_shape *s)
{
	return s->kh == 3 && s->kw == 3 && s->sh == 1 && s->sw == 1 &&
	       s->ph >= 0 && s->ph <= 1 && s->pw >= 0 && s->pw <= 1 &&
	       s->oh == s->h + 2 * s->ph - 2 && s->ow == s->w + 2 * s->pw - 2 &&
	       s->oh > 0 && s->ow > 0;
}

size_t winograd_weight_size(const struct conv_shape *s)
{
	return 16 * (size_t)s->k * s->c;
}

size_t winograd_work_size(const struct conv_shape *s)
{
	struct wg_geom f, b;
	size_t nf, nb;

	wg_geom_forward(s, &f);
	wg_geom_backward(s, &b);
	nf = wg_geom_work(&f);
	nb = wg_geom_work(&b);
	return nf > nb ? nf : nb;
}

/* U = G g G^T for one 3x3 kernel g, in double so that the only rounding is
 * the final one. u[a*4+b] goes to wf[(a*4+b)*stride]. */
static void wg_kernel_transform(const float *g, float *u, size_t stride)
{
	static const double gm[4][3] = {
		{ 1.0, 0.0, 0.0 },
		{ 0.5, 0.5, 0.5 },
		{ 0.5, -0.5, 0.5 },
		{ 0.0, 0.0, 1.0 },
	};
	double t[4][3];
	int a, b, i, j;

	for (a = 0; a < 4; a++)
		for (j = 0; j < 3; j++) {
			t[a][j] = 0.0;
			for (i = 0; i < 3; i++)
				t[a][j] += gm[a][i] * g[i * 3 + j];
		}
	for (a = 0; a < 4; a++)
		for (b = 0; b < 4; b++) {
			double v = 0.0;

			for (j = 0; j < 3; j++)
				v += t[a][j] * gm[b][j];
			u[(size_t)(a * 4 + b) * stride] = (float)v;
		}
}

void winograd_prepare(const struct conv_shape *s, const float *w, float *wf)
{
	size_t kc = (size_t)s->k * s->c, i;

	/* wf[e][k][c]: kernel (k,c) is w + (k*C + c)*9, i.e. index i. */
	for (i = 0; i < kc; i++)
		wg_kernel_transform(w + i * 9, wf + i, kc);
}

/* ---- input transform: V = B^T d B --------------------------------------- */

/* Vertical half of B^T d B for one tile row: rows r0..r3 of the input (each
 * w long, or the zero row) become four padded rows s0..s3 of length rw,
 * with pw zeros on the left and zeros past the image on the right. Unit
 * stride over the whole row, so it vectorizes. */
static void wg_in_vertical(const struct wg_geom *g, const float *restrict r0,
			   const float *restrict r1, const float *restrict r2,
			   const float *restrict r3, float *restrict s)
{
	float *restrict s0 = s, *restrict s1 = s + g->rw;
	float *restrict s2 = s + 2 * g->rw, *restrict s3 = s + 3 * g->rw;
	int n = g->w, pad = g->pw, tail = g->rw - g->pw - g->w, i, a;

	for (a = 0; a < 4; a++) {
		float *row = s + (size_t)a * g->rw;

		for (i = 0; i < pad; i++)
			row[i] = 0.0f;
		for (i = 0; i < tail; i++)
			row[pad + n + i] = 0.0f;
	}
	s0 += pad;
	s1 += pad;
	s2 += pad;
	s3 += pad;
	for (i = 0; i < n; i++) {
		s0[i] = r0[i] - r2[i];
		s1[i] = r1[i] + r2[i];
		s2[i] = r2[i] - r1[i];
		s3[i] = r1[i] - r3[i];
	}
}

/* Horizontal half: padded row src (length 2*n + 2) -> the four elements
 * (a,0..3) of n consecutive tiles, v0..v3 each n long. Tile j covers
 * src[2j .. 2j+3]. */
static void wg_in_horizontal(int n, const float *restrict src,
			     float *restrict v0, float *restrict v1,
			     float *restrict v2, float *restrict v3)
{
	int j;

	for (j = 0; j < n; j++) {
		float d0 = src[2 * j], d1 = src[2 * j + 1];
		float d2 = src[2 * j + 2], d3 = src[2 * j + 3];

		v0[j] = d0 - d2;
		v1[j] = d1 + d2;
		v2[j] = d2 - d1;
		v3[j] = d1 - d3;
	}
}

/* x (C,H,W) -> v[e][c][t]; rows is 4*rw scratch, zero is w zeros. */
static void wg_input_transform(const struct wg_geom *g, const float *x,
			       float *v, float *rows, const float *zero)
{
	size_t t = wg_tiles(g), ct = (size_t)g->c * t, hw = (size_t)g->h * g->w;
	const float *r[4];
	int c, i, a;

	for (c = 0; c < g->c; c++) {
		const float *xc = x + c * hw;

		for (i = 0; i < g->th; i++) {
			size_t off = c * t + (size_t)i * g->tw;

			for (a = 0; a < 4; a++) {
				int y = 2 * i - g->ph + a;

				r[a] = y >= 0 && y < g->h ?
					xc + (size_t)y * g->w : zero;
			}
			wg_in_vertical(g, r[0], r[1], r[2], r[3], rows);
			for (a = 0; a < 4; a++) {
				float *ve = v + (size_t)(a * 4) * ct + off;

				wg_in_horizontal(g->tw, rows + (size_t)a * g->rw,
						 ve, ve + ct, ve + 2 * ct,
						 ve + 3 * ct);
			}
		}
	}
}

/* ---- output transform: Y = A^T M A -------------------------------------- */

/* One row of n tiles of one output plane: m[e] points at the tile row in
 * element e's plane; y0 / y1 (each 2n long) get the two output rows. No
 * clipping here, so the loop has no branch and vectorizes; the caller
 * copies out the part inside the image. */
static void wg_out_row(const float *const m[16], float bias, int n,
		       float *restrict y0, float *restrict y1)
{
	const float *restrict m0 = m[0], *restrict m1 = m[1];
	const float *restrict m2 = m[2], *restrict m3 = m[3];
	const float *restrict m4 = m[4], *restrict m5 = m[5];
	const float *restrict m6 = m[6], *restrict m7 = m[7];
	const float *restrict m8 = m[8], *restrict m9 = m[9];
	const float *restrict m10 = m[10], *restrict m11 = m[11];
	const float *restrict m12 = m[12], *restrict m13 = m[13];
	const float *restrict m14 = m[14], *restrict m15 = m[15];
	int j;

	for (j = 0; j < n; j++) {
		/* Vertical: rows 0 and 1 of A^T M, column by column. */
		float p0 = m0[j] + m4[j] + m8[j], q0 = m4[j] - m8[j] - m12[j];
		float p1 = m1[j] + m5[j] + m9[j], q1 = m5[j] - m9[j] - m13[j];
		float p2 = m2[j] + m6[j] + m10[j], q2 = m6[j] - m10[j] - m14[j];
		float p3 = m3[j] + m7[j] + m11[j], q3 = m7[j] - m11[j] - m15[j];

		y0[2 * j] = p0 + p1 + p2 + bias;
		y0[2 * j + 1] = p1 - p2 - p3 + bias;
		y1[2 * j] = q0 + q1 + q2 + bias;
		y1[2 * j + 1] = q1 - q2 - q3 + bias;
	}
}

/* m[e][k][t] -> y (K,OH,OW), plus b[k] when b is not NULL; rows is 4*tw
 * scratch for the tile rows that stick out of the image. */
static void wg_output_transform(const struct wg_geom *g, const float *m,
				const float *b, float *y, float *rows)
{
	size_t t = wg_tiles(g), kt = (size_t)g->k * t;
	size_t ohw = (size_t)g->oh * g->ow, ow = (size_t)g->ow;
	float *r0 = rows, *r1 = rows + 2 * (size_t)g->tw;
	int full = g->ow % 2 == 0, k, i, e;
	const float *me[16];

	for (k = 0; k < g->k; k++) {
		float *yk = y + k * ohw, bias = b ? b[k] : 0.0f;

		for (i = 0; i < g->th; i++) {
			float *y0 = yk + 2 * i * ow;
			int two = 2 * i + 1 < g->oh;

			for (e = 0; e < 16; e++)
				me[e] = m + e * kt + k * t + (size_t)i * g->tw;
			if (full && two) {
				wg_out_row(me, bias, g->tw, y0, y0 + ow);
				continue;
			}
			/* Edge: odd width or the last row of an odd height. */
			wg_out_row(me, bias, g->tw, r0, r1);
			memcpy(y0, r0, ow * sizeof *y0);
			if (two)
				memcpy(y0 + ow, r1, ow * sizeof *y0);
		}
	}
}

/* ---- the passes ----------------------------------------------------------- */

/* Shared by both directions: transform x, 16 products with u, transform
 * back. back selects the rotated-transposed use of u (see the top). */
static void wg_run(const struct wg_geom *g, const float *x, const float *u,
		   int back, const float *b, float *y, float *work)
{
	size_t t = wg_tiles(g), ct = (size_t)g->c * t, kt = (size_t)g->k * t;
	size_t kc = (size_t)g->k * g->c;
	float *v = work, *m = v + 16 * ct, *rows = m + 16 * kt;
	float *zero = rows + 4 * (size_t)g->rw;
	int e;

	memset(zero, 0, (size_t)g->w * sizeof *zero);
	wg_input_transform(g, x, v, rows, zero);
	for (e = 0; e < 16; e++) {
		if (!back) {
			/* u[e] is (K x C) */
			blas_sgemm(0, 0, g->k, (int)t, g->c, 1.0f, u + e * kc,
				   g->c, v + e * ct, (int)t, 0.0f, m + e * kt,
				   (int)t);
		} else {
			/* Element (a,b) of the rotated kernel is element
			 * (r(a),r(b)) of u, r swapping 0 and 3; u[.] is the
			 * forward (C_fwd x K_fwd) = (g->k x g->c) transposed. */
			static const int r[4] = { 3, 1, 2, 0 };
			int src = r[e / 4] * 4 + r[e % 4];

			blas_sgemm(1, 0, g->k, (int)t, g->c, 1.0f, u + src * kc,
				   g->k, v + e * ct, (int)t, 0.0f, m + e * kt,
				   (int)t);
		}
	}
	wg_output_transform(g, m, b, y, rows);
}

void winograd_forward(const struct conv_shape *s, const float *x,
		      const float *wf, const float *b, float *y, float *work)
{
	struct wg_geom g;

	wg_geom_forward(s, &g);
	wg_run(&g, x, wf, 0, b, y, work);
}

void winograd_backward_input(const struct conv_shape *s, const float *dy,
			     const float *wf, float *dx, float *work)
{
	struct wg_geom g;

	wg_geom_backward(s, &g);
	wg_run(&g, dy, wf, 1, NULL, dx, work);
}
