/* winograd.c - Winograd convolution F(2x2,3x3) and F(4x4,3x3) (winograd.h).
 *
 * With d an (m+2)x(m+2) input tile, g a 3x3 kernel and the matrices B, G, A
 * of F(m x m, 3x3), the m x m output tile is  A^T [ (G g G^T) .* (B^T d B) ] A.
 * The sum over input channels commutes with the element-wise product, so
 * for each of the n = (m+2)^2 elements e the channel sum is one matrix
 * product over a block of T tiles:
 *   M[e] (K x T) = U[e] (K x C) * V[e] (C x T),
 * which is where the time goes, in BLAS. The transforms around it are
 * memory-bound loops written with the tile index innermost so that they
 * vectorize.
 *
 * Tiles are processed in blocks of whole tile rows, sized so that V and M
 * of one block stay in cache between the transform and the products
 * (see wg_block_rows).
 *
 * Backward to the input is the same algorithm applied to dy with the
 * transposed, 180-degree-rotated kernel and padding 2 - p. For F(2x2,3x3),
 * rotating g reverses the columns of G, which equals swapping rows 0 and 3
 * of G: the rotated kernel's U is U with elements 0 and 3 swapped along
 * both axes, and the k/c transpose is the transpose flag of the product,
 * so the forward weights serve both ways. F(4x4,3x3)'s interpolation
 * points are not symmetric that way, so it keeps a second, rotated copy.
 */
#include "winograd.h"

#include <string.h>

#include "blas.h"

/* One convolution as the Winograd code sees it: the forward pass, or the
 * backward pass viewed as a forward convolution of dy. Padding may be 0..2
 * here (the backward pass of a pad-0 layer pads by 2). */
struct wg_geom {
	int m;		/* output tile size: 2 or 4 */
	int n;		/* elements per tile: (m+2)^2 */
	int c, h, w;	/* input planes and size */
	int k;		/* output planes */
	int ph, pw;	/* zero padding */
	int oh, ow;	/* output size = h + 2ph - 2, w + 2pw - 2 */
	int th, tw;	/* tiles down and across */
	int rw;		/* padded row length m*tw + 2 of the row scratch */
	int brows;	/* tile rows per block */
};

/* Bytes of V and M for one block that should stay in cache: about the L2
 * of one core plus a share of L3. */
#define WG_BLOCK_FLOATS (768 * 1024)
/* Fewest tiles in a block: below this the products get too thin for BLAS
 * to run at full speed. */
#define WG_BLOCK_MIN_TILES 256

static int wg_block_rows(const struct wg_geom *g)
{
	long per_row = (long)g->n * (g->c + g->k) * g->tw;
	long rows = WG_BLOCK_FLOATS / per_row, blocks;

	if (rows * g->tw < WG_BLOCK_MIN_TILES)
		rows = (WG_BLOCK_MIN_TILES + g->tw - 1) / g->tw;
	if (rows < 1)
		rows = 1;
	if (rows >= g->th)
		return g->th;
	/* Even blocks rather than a short last one. */
	blocks = (g->th + rows - 1) / rows;
	return (int)((g->th + blocks - 1) / blocks);
}

static void wg_geom_init(struct wg_geom *g, int m, int c, int h, int w, int k,
			 int ph, int pw)
{
	g->m = m;
	g->n = (m + 2) * (m + 2);
	g->c = c;
	g->h = h;
	g->w = w;
	g->k = k;
	g->ph = ph;
	g->pw = pw;
	g->oh = h + 2 * ph - 2;
	g->ow = w + 2 * pw - 2;
	g->th = (g->oh + m - 1) / m;
	g->tw = (g->ow + m - 1) / m;
	g->rw = m * g->tw + 2;
	g->brows = wg_block_rows(g);
}

/* F(4x4,3x3) where the products are large: it needs 2.25 multiplies per
 * output and channel pair against 4 for F(2x2,3x3), but 36 elements per
 * tile against 16, so with few tiles its products get thin and its
 * weights (4x the kernel) dominate. */
static int wg_tile_size(const struct conv_shape *s)
{
	long t4 = (long)((s->oh + 3) / 4) * ((s->ow + 3) / 4);

	return t4 >= 128 ? 4 : 2;
}

static void wg_geom_forward(const struct conv_shape *s, int m,
			    struct wg_geom *g)
{
	wg_geom_init(g, m, s->c, s->h, s->w, s->k, s->ph, s->pw);
}

static void wg_geom_backward(const struct conv_shape *s, int m,
			     struct wg_geom *g)
{
	wg_geom_init(g, m, s->k, s->oh, s->ow, s->c, 2 - s->ph, 2 - s->pw);
}

/* Workspace of one pass: V (n x C x Tb) and M (n x K x Tb) of one block,
 * m+2 transformed rows, and one row of zeros that stands for the padding
 * rows above and below the image. */
static size_t wg_geom_work(const struct wg_geom *g)
{
	size_t tb = (size_t)g->brows * g->tw;

	return (size_t)g->n * tb * ((size_t)g->c + g->k) +
	       (size_t)(g->m + 2) * g->rw + (size_t)g->w;
}

int winograd_supported(const struct conv_shape *s)
{
	return s->kh == 3 && s->kw == 3 && s->sh == 1 && s->sw == 1 &&
	       s->ph >= 0 && s->ph <= 1 && s->pw >= 0 && s->pw <= 1 &&
	       s->oh == s->h + 2 * s->ph - 2 && s->ow == s->w + 2 * s->pw - 2 &&
	       s->oh > 0 && s->ow > 0 && s->c > 0 && s->k > 0;
}

int winograd_tile(const struct conv_shape *s)
{
	return wg_tile_size(s);
}

size_t winograd_weight_size(const struct conv_shape *s)
{
	size_t kc = (size_t)s->k * s->c;

	return wg_tile_size(s) == 4 ? 2 * 36 * kc : 16 * kc;
}

size_t winograd_work_size(const struct conv_shape *s)
{
	struct wg_geom f, b;
	size_t nf, nb;
	int m = wg_tile_size(s);

	wg_geom_forward(s, m, &f);
	wg_geom_backward(s, m, &b);
	nf = wg_geom_work(&f);
	nb = wg_geom_work(&b);
	return nf > nb ? nf : nb;
}

/* ---- weights: U = G g G^T ------------------------------------------------- */

static const double wg_g2[4 * 3] = {
	1.0, 0.0, 0.0,
	0.5, 0.5, 0.5,
	0.5, -0.5, 0.5,
	0.0, 0.0, 1.0,
};

static const double wg_g4[6 * 3] = {
	1.0 / 4, 0.0, 0.0,
	-1.0 / 6, -1.0 / 6, -1.0 / 6,
	-1.0 / 6, 1.0 / 6, -1.0 / 6,
	1.0 / 24, 1.0 / 12, 1.0 / 6,
	1.0 / 24, -1.0 / 12, 1.0 / 6,
	0.0, 0.0, 1.0,
};

/* U = G g G^T for one 3x3 kernel g (rotated by 180 degrees when rot is
 * set), G being a x 3; in double so that the only rounding is the last.
 * Element (i,j) goes to u[(i*a + j) * stride]. */
static void wg_kernel_transform(const double *gm, int a, const float *g,
				int rot, float *u, size_t stride)
{
	double t[6][3], k[3][3];
	int i, j, l;

	for (i = 0; i < 3; i++)
		for (j = 0; j < 3; j++)
			k[i][j] = rot ? g[(2 - i) * 3 + 2 - j] : g[i * 3 + j];
	for (i = 0; i < a; i++)
		for (j = 0; j < 3; j++) {
			t[i][j] = 0.0;
			for (l = 0; l < 3; l++)
				t[i][j] += gm[i * 3 + l] * k[l][j];
		}
	for (i = 0; i < a; i++)
		for (j = 0; j < a; j++) {
			double v = 0.0;

			for (l = 0; l < 3; l++)
				v += t[i][l] * gm[j * 3 + l];
			u[(size_t)(i * a + j) * stride] = (float)v;
		}
}

void winograd_prepare(const struct conv_shape *s, const float *w, float *wt)
{
	size_t kc = (size_t)s->k * s->c, i;

	/* wt[e][k][c]: kernel (k,c) is w + (k*C + c)*9, i.e. index i. */
	if (wg_tile_size(s) == 2) {
		for (i = 0; i < kc; i++)
			wg_kernel_transform(wg_g2, 4, w + i * 9, 0, wt + i, kc);
		return;
	}
	for (i = 0; i < kc; i++) {
		wg_kernel_transform(wg_g4, 6, w + i * 9, 0, wt + i, kc);
		wg_kernel_transform(wg_g4, 6, w + i * 9, 1, wt + 36 * kc + i,
				    kc);
	}
}

/* ---- input transform: V = B^T d B ----------------------------------------- */

/* Zero the parts of the a padded rows s (each rw long) that lie left and
 * right of the image. */
static void wg_pad_rows(const struct wg_geom *g, int a, float *s)
{
	int tail = g->rw - g->pw - g->w, r, i;

	for (r = 0; r < a; r++) {
		float *row = s + (size_t)r * g->rw;

		for (i = 0; i < g->pw; i++)
			row[i] = 0.0f;
		for (i = 0; i < tail; i++)
			row[g->pw + g->w + i] = 0.0f;
	}
}

/* F(2x2): vertical half of B^T d B for one tile row: input rows r[0..3]
 * (or the zero row) -> four padded rows in s. Unit stride, vectorizes. */
static void wg2_in_vertical(const struct wg_geom *g, const float *const r[4],
			    float *s)
{
	const float *restrict r0 = r[0], *restrict r1 = r[1];
	const float *restrict r2 = r[2], *restrict r3 = r[3];
	float *restrict s0 = s + g->pw, *restrict s1 = s0 + g->rw;
	float *restrict s2 = s1 + g->rw, *restrict s3 = s2 + g->rw;
	int i;

	/* The rows never overlap; restrict on locals is not enough for
	 * GCC to see that. */
	#pragma GCC ivdep
	for (i = 0; i < g->w; i++) {
		s0[i] = r0[i] - r2[i];
		s1[i] = r1[i] + r2[i];
		s2[i] = r2[i] - r1[i];
		s3[i] = r1[i] - r3[i];
	}
}

/* F(2x2): horizontal half. Padded row src -> elements 0..3 of n tiles,
 * tile j covering src[2j .. 2j+3]; v[b] is element b's output, n long. */
static void wg2_in_horizontal(int n, const float *restrict src,
			      float *restrict v0, float *restrict v1,
			      float *restrict v2, float *restrict v3)
{
	int j;

	/* The rows never overlap; restrict on locals is not enough for
	 * GCC to see that. */
	#pragma GCC ivdep
	for (j = 0; j < n; j++) {
		float d0 = src[2 * j], d1 = src[2 * j + 1];
		float d2 = src[2 * j + 2], d3 = src[2 * j + 3];

		v0[j] = d0 - d2;
		v1[j] = d1 + d2;
		v2[j] = d2 - d1;
		v3[j] = d1 - d3;
	}
}

/* F(4x4): vertical half, input rows r[0..5] -> six padded rows in s. */
static void wg4_in_vertical(const struct wg_geom *g, const float *const r[6],
			    float *s)
{
	const float *restrict r0 = r[0], *restrict r1 = r[1];
	const float *restrict r2 = r[2], *restrict r3 = r[3];
	const float *restrict r4 = r[4], *restrict r5 = r[5];
	float *restrict s0 = s + g->pw, *restrict s1 = s0 + g->rw;
	float *restrict s2 = s1 + g->rw, *restrict s3 = s2 + g->rw;
	float *restrict s4 = s3 + g->rw, *restrict s5 = s4 + g->rw;
	int i;

	/* The rows never overlap; restrict on locals is not enough for
	 * GCC to see that. */
	#pragma GCC ivdep
	for (i = 0; i < g->w; i++) {
		float d0 = r0[i], d1 = r1[i], d2 = r2[i];
		float d3 = r3[i], d4 = r4[i], d5 = r5[i];

		s0[i] = 4.0f * d0 - 5.0f * d2 + d4;
		s1[i] = d3 + d4 - 4.0f * (d1 + d2);
		s2[i] = d4 - d3 + 4.0f * (d1 - d2);
		s3[i] = d4 - d2 + 2.0f * (d3 - d1);
		s4[i] = d4 - d2 - 2.0f * (d3 - d1);
		s5[i] = 4.0f * d1 - 5.0f * d3 + d5;
	}
}

/* F(4x4): horizontal half, tile j covering src[4j .. 4j+5]. */
static void wg4_in_horizontal(int n, const float *restrict src,
			      float *restrict const v[6])
{
	float *restrict v0 = v[0], *restrict v1 = v[1], *restrict v2 = v[2];
	float *restrict v3 = v[3], *restrict v4 = v[4], *restrict v5 = v[5];
	int j;

	/* The rows never overlap; restrict on locals is not enough for
	 * GCC to see that. */
	#pragma GCC ivdep
	for (j = 0; j < n; j++) {
		const float *d = src + 4 * j;

		v0[j] = 4.0f * d[0] - 5.0f * d[2] + d[4];
		v1[j] = d[3] + d[4] - 4.0f * (d[1] + d[2]);
		v2[j] = d[4] - d[3] + 4.0f * (d[1] - d[2]);
		v3[j] = d[4] - d[2] + 2.0f * (d[3] - d[1]);
		v4[j] = d[4] - d[2] - 2.0f * (d[3] - d[1]);
		v5[j] = 4.0f * d[1] - 5.0f * d[3] + d[5];
	}
}

/* Tile rows [i0, i1) of x (C,H,W) -> v[e][c][t], t counting the block's
 * tiles; rows is (m+2)*rw scratch, zero is w zeros. */
static void wg_input_transform(const struct wg_geom *g, const float *x,
			       int i0, int i1, float *v, float *rows,
			       const float *zero)
{
	size_t tb = (size_t)(i1 - i0) * g->tw, ct = (size_t)g->c * tb;
	size_t hw = (size_t)g->h * g->w;
	int a = g->m + 2, c, i, l, b;
	const float *r[6];
	float *ve[6];

	wg_pad_rows(g, a, rows);
	for (c = 0; c < g->c; c++) {
		const float *xc = x + c * hw;

		for (i = i0; i < i1; i++) {
			size_t off = c * tb + (size_t)(i - i0) * g->tw;

			for (l = 0; l < a; l++) {
				int y = g->m * i - g->ph + l;

				r[l] = y >= 0 && y < g->h ?
					xc + (size_t)y * g->w : zero;
			}
			if (g->m == 2)
				wg2_in_vertical(g, r, rows);
			else
				wg4_in_vertical(g, r, rows);
			for (l = 0; l < a; l++) {
				const float *src = rows + (size_t)l * g->rw;

				for (b = 0; b < a; b++)
					ve[b] = v + (size_t)(l * a + b) * ct +
						off;
				if (g->m == 2)
					wg2_in_horizontal(g->tw, src, ve[0],
							  ve[1], ve[2], ve[3]);
				else
					wg4_in_horizontal(g->tw, src, ve);
			}
		}
	}
}

/* ---- output transform: Y = A^T M A ---------------------------------------- */

/* F(2x2): one row of n tiles of one output plane. me[e] points at the tile
 * row in element e's plane; y[0..1] (each 2n long) get the output rows.
 * No clipping here, so the loop has no branch and vectorizes. */
static void wg2_out_row(const float *const me[16], float bias, int n,
			float *const y[4])
{
	const float *restrict m0 = me[0], *restrict m1 = me[1];
	const float *restrict m2 = me[2], *restrict m3 = me[3];
	const float *restrict m4 = me[4], *restrict m5 = me[5];
	const float *restrict m6 = me[6], *restrict m7 = me[7];
	const float *restrict m8 = me[8], *restrict m9 = me[9];
	const float *restrict m10 = me[10], *restrict m11 = me[11];
	const float *restrict m12 = me[12], *restrict m13 = me[13];
	const float *restrict m14 = me[14], *restrict m15 = me[15];
	float *restrict y0 = y[0], *restrict y1 = y[1];
	int j;

	/* The rows never overlap; restrict on locals is not enough for
	 * GCC to see that. */
	#pragma GCC ivdep
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

/* F(4x4): A^T applied to six values, o[0..3]. */
static inline void wg4_at(float d0, float d1, float d2, float d3, float d4,
			  float d5, float o[4])
{
	float s12 = d1 + d2, d12 = d1 - d2, s34 = d3 + d4, d34 = d3 - d4;

	o[0] = d0 + s12 + s34;
	o[1] = d12 + 2.0f * d34;
	o[2] = s12 + 4.0f * s34;
	o[3] = d12 + 8.0f * d34 + d5;
}

/* F(4x4): one row of n tiles, y[0..3] (each 4n long). Column b of A^T M
 * first (p[r][b]), then A^T along the row. */
static void wg4_out_row(const float *const me[36], float bias, int n,
			float *const y[4])
{
	float *restrict y0 = y[0], *restrict y1 = y[1];
	float *restrict y2 = y[2], *restrict y3 = y[3];
	int j, b;

	/* The rows never overlap; restrict on locals is not enough for
	 * GCC to see that. */
	#pragma GCC ivdep
	for (j = 0; j < n; j++) {
		float p[4][6], o[4];

		for (b = 0; b < 6; b++) {
			float col[4];

			wg4_at(me[b][j], me[6 + b][j], me[12 + b][j],
			       me[18 + b][j], me[24 + b][j], me[30 + b][j], col);
			p[0][b] = col[0];
			p[1][b] = col[1];
			p[2][b] = col[2];
			p[3][b] = col[3];
		}
		wg4_at(p[0][0], p[0][1], p[0][2], p[0][3], p[0][4], p[0][5], o);
		for (b = 0; b < 4; b++)
			y0[4 * j + b] = o[b] + bias;
		wg4_at(p[1][0], p[1][1], p[1][2], p[1][3], p[1][4], p[1][5], o);
		for (b = 0; b < 4; b++)
			y1[4 * j + b] = o[b] + bias;
		wg4_at(p[2][0], p[2][1], p[2][2], p[2][3], p[2][4], p[2][5], o);
		for (b = 0; b < 4; b++)
			y2[4 * j + b] = o[b] + bias;
		wg4_at(p[3][0], p[3][1], p[3][2], p[3][3], p[3][4], p[3][5], o);
		for (b = 0; b < 4; b++)
			y3[4 * j + b] = o[b] + bias;
	}
}

/* Tile rows [i0, i1): mm[e][k][t] -> y (K,OH,OW), plus b[k] when b is not
 * NULL; rows (at least m*m*tw floats) takes the tile rows that stick out
 * of the image before the part inside is copied. */
static void wg_output_transform(const struct wg_geom *g, const float *mm,
				int i0, int i1, const float *b, float *y,
				float *rows)
{
	size_t tb = (size_t)(i1 - i0) * g->tw, kt = (size_t)g->k * tb;
	size_t ohw = (size_t)g->oh * g->ow, ow = (size_t)g->ow;
	size_t sw = (size_t)g->m * g->tw;
	int full = g->ow % g->m == 0, k, i, e, r;
	const float *me[36];
	float *yr[4];

	for (k = 0; k < g->k; k++) {
		float *yk = y + k * ohw, bias = b ? b[k] : 0.0f;

		for (i = i0; i < i1; i++) {
			float *y0 = yk + (size_t)g->m * i * ow;
			int nr = g->oh - g->m * i;

			if (nr > g->m)
				nr = g->m;
			for (e = 0; e < g->n; e++)
				me[e] = mm + e * kt + k * tb +
					(size_t)(i - i0) * g->tw;
			/* Inside the image: write in place. At an edge (odd
			 * width, or the last rows): through the scratch. */
			for (r = 0; r < g->m; r++)
				yr[r] = full && nr == g->m ? y0 + r * ow :
					rows + r * sw;
			if (g->m == 2)
				wg2_out_row(me, bias, g->tw, yr);
			else
				wg4_out_row(me, bias, g->tw, yr);
			if (full && nr == g->m)
				continue;
			for (r = 0; r < nr; r++)
				memcpy(y0 + r * ow, yr[r], ow * sizeof *y0);
		}
	}
}

/* ---- the passes ------------------------------------------------------------- */

/* Shared by both directions: for each block of tile rows, transform x, n
 * products with u, transform back. back selects the rotated-transposed
 * use of u (see the top). */
static void wg_run(const struct wg_geom *g, const float *x, const float *u,
		   int back, const float *b, float *y, float *work)
{
	static const int swap03[4] = { 3, 1, 2, 0 };
	size_t kc = (size_t)g->k * g->c, tbmax = (size_t)g->brows * g->tw;
	float *v = work, *mm = v + (size_t)g->n * g->c * tbmax;
	float *rows = mm + (size_t)g->n * g->k * tbmax;
	float *zero = rows + (size_t)(g->m + 2) * g->rw;
	int i0, e;

	memset(zero, 0, (size_t)g->w * sizeof *zero);
	for (i0 = 0; i0 < g->th; i0 += g->brows) {
		int i1 = i0 + g->brows < g->th ? i0 + g->brows : g->th;
		int tb = (i1 - i0) * g->tw;
		size_t ct = (size_t)g->c * tb, kt = (size_t)g->k * tb;

		wg_input_transform(g, x, i0, i1, v, rows, zero);
		for (e = 0; e < g->n; e++) {
			const float *ue;

			if (!back) {
				/* u[e] is (K x C) */
				blas_sgemm(0, 0, g->k, tb, g->c, 1.0f,
					   u + e * kc, g->c, v + e * ct, tb,
					   0.0f, mm + e * kt, tb);
				continue;
			}
			/* u[e] is the forward (K_fwd x C_fwd) = (g->c x g->k),
			 * used transposed. F(2x2) reads the forward weights
			 * with elements 0 and 3 swapped; F(4x4) has its own
			 * rotated copy after the forward one. */
			if (g->m == 2)
				ue = u + (swap03[e / 4] * 4 + swap03[e % 4]) *
					kc;
			else
				ue = u + (36 + e) * kc;
			blas_sgemm(1, 0, g->k, tb, g->c, 1.0f, ue, g->k,
				   v + e * ct, tb, 0.0f, mm + e * kt, tb);
		}
		wg_output_transform(g, mm, i0, i1, b, y, rows);
	}
}

void winograd_forward(const struct conv_shape *s, const float *x,
		      const float *wt, const float *b, float *y, float *work)
{
	struct wg_geom g;

	wg_geom_forward(s, wg_tile_size(s), &g);
	wg_run(&g, x, wt, 0, b, y, work);
}

void winograd_backward_input(const struct conv_shape *s, const float *dy,
			     const float *wt, float *dx, float *work)
{
	struct wg_geom g;

	wg_geom_backward(s, wg_tile_size(s), &g);
	wg_run(&g, dy, wt, 1, NULL, dx, work);
}
