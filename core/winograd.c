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
 * Large images are processed in blocks of whole tile rows (see
 * wg_block_rows), which bounds the workspace and keeps V and M of a block
 * in cache between the transforms and the products. Small images go the
 * other way: a batch puts several whole images in one block, their tiles
 * side by side as the columns of V and M (see wg_block_images), so that
 * each U[e] is packed once for all of them.
 *
 * Backward to the input is the same algorithm applied to dy with the
 * transposed, 180-degree-rotated kernel and padding 2 - p. For F(2x2,3x3),
 * rotating g reverses the columns of G, which equals swapping rows 0 and 3
 * of G: the rotated kernel's U is U with elements 0 and 3 swapped along
 * both axes, and the k/c transpose is the transpose flag of the product,
 * so the forward weights serve both ways. F(4x4,3x3)'s interpolation
 * points are not symmetric that way, so it keeps a second, rotated copy.
 *
 * Which one: F(4x4,3x3) needs 2.25 multiplies per output and channel pair
 * against 4, but has 36 elements per tile against 16, so with few tiles
 * its products get thin and its weights (4x the kernel's size, 8x with the
 * rotated copy) dominate. Measured on a 2-core AVX-512 machine with
 * OpenBLAS: F(4x4) is 1.4x faster at 32x32 outputs and above and still
 * ahead at 24x24 (36 tiles: the 256-channel VGG layers' products took
 * 1.2 ms against 1.46 with F(2x2), once thin products run tile-major, see
 * WG_TM_MAX_COLS), and slower at 12x12; F(2x2) beats im2col from 8x8
 * outputs up at batch 1, and from 6x6 up in blocks of 2 images or more.
 */
#include "winograd.h"

#include <math.h>
#include <string.h>

#include "blas.h"
#include "simd.h"
#include "workers.h"

/* The transforms are plain C loops over tiles, compiled for the widest
 * vectors the CPU has (simd.h). */

/* The transform loops read and write separate rows through pointers GCC
 * cannot prove distinct (restrict on locals is not enough for it), and
 * the run-time overlap checks it would need are too many: tell it. */
#if defined(__GNUC__) && !defined(__clang__)
#define WG_IVDEP _Pragma("GCC ivdep")
#else
#define WG_IVDEP
#endif

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
	int brows;	/* tile rows per block */
	int bimgs;	/* images per block: 1 unless brows == th */
};

/* Floats of V and M of one block, at most (unless that is below the
 * minimum below): a few MB, so that they stay in L2/L3 on large images. */
#define WG_BLOCK_FLOATS (1536 * 1024)
/* Fewest tiles in a block. Each block costs n BLAS calls, each with its
 * thread hand-off, and thin products run slower: on 2 cores, with one or
 * a few blocks per image, fewer and larger blocks always measured faster
 * than cache-sized ones, more so when other processes compete for the
 * cores. So blocks only split large images (VGG at 96x96 never is). */
#define WG_BLOCK_MIN_TILES 1024

/* Small images make thin products (VGG16 at 96x96: 36 tiles at 12x12, 9
 * at 6x6), in which OpenBLAS spends much of its time packing U[e], the
 * same for every image. A block of several whole images packs it once for
 * all of them: images are added until the block has WG_BATCH_TILES tiles,
 * as long as V and M stay within WG_BATCH_FLOATS. Measured on 2 cores:
 * 12x12 layers gain 1.2x from 2 to 4 images, 6x6 layers 1.5x at 2 images
 * and 1.8-2x from 8 to 16; 144 tiles (24x24 at batch 1) gain nothing
 * more, and cache-sized blocks of larger images lose a little. */
#define WG_BATCH_TILES 144
#define WG_BATCH_FLOATS (4096 * 1024)

static int wg_block_rows(const struct wg_geom *g)
{
	long per_row = (long)g->n * (g->c + g->k) * g->tw;
	long rows = WG_BLOCK_FLOATS / per_row, blocks;

	if (rows * g->tw < WG_BLOCK_MIN_TILES)
		rows = (WG_BLOCK_MIN_TILES + g->tw - 1) / g->tw;
	if (rows >= g->th)
		return g->th;
	/* Even blocks rather than a short last one. */
	blocks = (g->th + rows - 1) / rows;
	return (int)((g->th + blocks - 1) / blocks);
}

/* Images per block for batches of up to max_batch (see WG_BATCH_TILES);
 * 1 when an image needs several blocks. */
static int wg_block_images(const struct wg_geom *g, int max_batch)
{
	long tiles = (long)g->th * g->tw;
	long imgs = (WG_BATCH_TILES + tiles - 1) / tiles;
	long fit = WG_BATCH_FLOATS / ((long)g->n * (g->c + g->k) * tiles);

	if (imgs > fit)
		imgs = fit;
	if (g->brows < g->th || imgs <= 1 || max_batch <= 1)
		return 1;
	return imgs < max_batch ? (int)imgs : max_batch;
}

static void wg_geom_init(struct wg_geom *g, int m, int c, int h, int w, int k,
			 int ph, int pw, int max_batch)
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
	g->brows = wg_block_rows(g);
	g->bimgs = wg_block_images(g, max_batch);
}

/* 4 (F(4x4,3x3)) from 6x6 = 36 tiles of 4x4, i.e. 24x24 outputs; else 2. */
static int wg_tile_size(const struct conv_shape *s)
{
	long t4 = (long)((s->oh + 3) / 4) * ((s->ow + 3) / 4);

	return t4 >= 36 ? 4 : 2;
}

static void wg_geom_forward(const struct conv_shape *s, int max_batch,
			    struct wg_geom *g)
{
	wg_geom_init(g, wg_tile_size(s), s->c, s->h, s->w, s->k, s->ph, s->pw,
		     max_batch);
}

static void wg_geom_backward(const struct conv_shape *s, int max_batch,
			     struct wg_geom *g)
{
	wg_geom_init(g, wg_tile_size(s), s->k, s->oh, s->ow, s->c, 2 - s->ph,
		     2 - s->pw, max_batch);
}

/* ---- weights: U = G g G^T ----------------------------------------------- */

static const double wg_g2[4 * 3] = {
	1.0, 0.0, 0.0,
	0.5, 0.5, 0.5,
	0.5, -0.5, 0.5,
	0.0, 0.0, 1.0,
};

/* F(4x4,3x3) interpolates at 0, 1, -1, 2, -1/2 and infinity rather than
 * the usual 0, +-1, +-2: the same cost, and in float about 1.5x smaller
 * relative error on average and 3x smaller at worst (measured on random
 * 128-channel sums). Rows of G are scaled so that B^T has small integer
 * entries. */
static const double wg_g4[6 * 3] = {
	1.0 / 2, 0.0, 0.0,
	-1.0 / 6, -1.0 / 6, -1.0 / 6,
	1.0 / 6, -1.0 / 6, 1.0 / 6,
	1.0 / 30, 1.0 / 15, 2.0 / 15,
	-16.0 / 15, 8.0 / 15, -4.0 / 15,
	0.0, 0.0, 1.0 / 2,
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

/* ---- input transform: V = B^T d B ---------------------------------------- *
 *
 * Per channel and block, in two passes. The vertical pass combines the m+2
 * input rows of each tile row into m+2 rows of the scratch S; row a of
 * tile row ii sits at S_a + ii*L with L = m*tw, so that tile (ii, j) of the
 * block, flat index f = ii*tw + j, starts at S_a + m*f. The horizontal pass
 * is then one long unit-step loop over f for the whole block, rather than
 * tw-long loops (3..48 tiles) that spend their time in loop epilogues.
 * Each tile reads m+2 columns but S rows are only m*tw apart: the last
 * tile of a row would read the first two columns of the next row. Those two
 * columns of each row are saved in E before the next row overwrites them,
 * and the row-end tiles are redone from E afterwards. */

/* F(2x2): vertical half of B^T d B: input rows r[0..3] (a zero row for
 * padding) -> rows s, s + stride, ... (w values each). */
SIMD_CLONES static void wg2_in_vertical(int w, const float *const r[4], float *s,
				    size_t stride)
{
	const float *restrict r0 = r[0], *restrict r1 = r[1];
	const float *restrict r2 = r[2], *restrict r3 = r[3];
	float *restrict s0 = s, *restrict s1 = s0 + stride;
	float *restrict s2 = s1 + stride, *restrict s3 = s2 + stride;
	int i;

	WG_IVDEP
	for (i = 0; i < w; i++) {
		s0[i] = r0[i] - r2[i];
		s1[i] = r1[i] + r2[i];
		s2[i] = r2[i] - r1[i];
		s3[i] = r1[i] - r3[i];
	}
}

/* F(2x2): horizontal half: n tiles, tile f covering src[2f .. 2f+3];
 * v[b][f] gets element b. */
SIMD_CLONES static void wg2_in_horizontal(int n, const float *restrict src,
				      float *const v[4])
{
	float *restrict v0 = v[0], *restrict v1 = v[1];
	float *restrict v2 = v[2], *restrict v3 = v[3];
	int j;

	WG_IVDEP
	for (j = 0; j < n; j++) {
		float d0 = src[2 * j], d1 = src[2 * j + 1];
		float d2 = src[2 * j + 2], d3 = src[2 * j + 3];

		v0[j] = d0 - d2;
		v1[j] = d1 + d2;
		v2[j] = d2 - d1;
		v3[j] = d1 - d3;
	}
}

/* F(4x4): B^T applied to six values:
 *   B^T = [2 3 -4 -3 2 0; 0 -2 -5 -1 2 0; 0 2 1 -5 2 0;
 *          0 -1 -2 1 2 0; 0 2 -1 -2 1 0; 0 2 3 -4 -3 2] */
struct wg6 {
	float v[6];
};

static inline struct wg6 wg4_bt(float d0, float d1, float d2, float d3,
				float d4, float d5)
{
	struct wg6 o;

	o.v[0] = 2.0f * (d0 + d4) - 4.0f * d2 + 3.0f * (d1 - d3);
	o.v[1] = 2.0f * (d4 - d1) - 5.0f * d2 - d3;
	o.v[2] = 2.0f * (d1 + d4) + d2 - 5.0f * d3;
	o.v[3] = 2.0f * (d4 - d2) + d3 - d1;
	o.v[4] = 2.0f * (d1 - d3) + d4 - d2;
	o.v[5] = 2.0f * (d1 + d5) + 3.0f * (d2 - d4) - 4.0f * d3;
	return o;
}

/* F(4x4): vertical half, input rows r[0..5] -> rows s, s + stride, ... */
SIMD_CLONES static void wg4_in_vertical(int w, const float *const r[6], float *s,
				    size_t stride)
{
	const float *restrict r0 = r[0], *restrict r1 = r[1];
	const float *restrict r2 = r[2], *restrict r3 = r[3];
	const float *restrict r4 = r[4], *restrict r5 = r[5];
	float *restrict s0 = s, *restrict s1 = s0 + stride;
	float *restrict s2 = s1 + stride, *restrict s3 = s2 + stride;
	float *restrict s4 = s3 + stride, *restrict s5 = s4 + stride;
	int i;

	WG_IVDEP
	for (i = 0; i < w; i++) {
		struct wg6 o = wg4_bt(r0[i], r1[i], r2[i], r3[i], r4[i], r5[i]);

		s0[i] = o.v[0];
		s1[i] = o.v[1];
		s2[i] = o.v[2];
		s3[i] = o.v[3];
		s4[i] = o.v[4];
		s5[i] = o.v[5];
	}
}

/* F(4x4): horizontal half, tile f covering src[4f .. 4f+5]. */
SIMD_CLONES static void wg4_in_horizontal(int n, const float *restrict src,
				      float *const v[6])
{
	float *restrict v0 = v[0], *restrict v1 = v[1], *restrict v2 = v[2];
	float *restrict v3 = v[3], *restrict v4 = v[4], *restrict v5 = v[5];
	int j;

	WG_IVDEP
	for (j = 0; j < n; j++) {
		const float *d = src + 4 * j;
		struct wg6 o = wg4_bt(d[0], d[1], d[2], d[3], d[4], d[5]);

		v0[j] = o.v[0];
		v1[j] = o.v[1];
		v2[j] = o.v[2];
		v3[j] = o.v[3];
		v4[j] = o.v[4];
		v5[j] = o.v[5];
	}
}

static void wg_in_vertical(const struct wg_geom *g, const float *const r[6],
			   float *s, size_t stride)
{
	if (g->m == 2)
		wg2_in_vertical(g->w, r, s, stride);
	else
		wg4_in_vertical(g->w, r, s, stride);
}

static void wg_in_horizontal(const struct wg_geom *g, int n, const float *src,
			     float *const v[6])
{
	if (g->m == 2)
		wg2_in_horizontal(n, src, v);
	else
		wg4_in_horizontal(n, src, v);
}

/* Floats of S, E and the zero row (see above) for nr tile rows. */
static size_t wg_in_scratch(const struct wg_geom *g, int nr)
{
	size_t a = (size_t)g->m + 2, l = (size_t)g->m * g->tw;

	return a * ((size_t)nr * l + 2) + a * 2 * nr + (size_t)g->w;
}

/* Vertical pass of one channel xc (H,W), tile rows [i0, i1): fills S (a
 * planes of plane floats) and E (a planes of 2*nr). */
static void wg_in_channel_rows(const struct wg_geom *g, const float *xc,
			       int i0, int i1, float *sbuf, size_t plane,
			       float *e, const float *zero)
{
	int a = g->m + 2, nr = i1 - i0, l = g->m * g->tw, ii, k, i;
	const float *r[6];

	for (ii = 0; ii < nr; ii++) {
		float *row = sbuf + (size_t)ii * l;

		for (k = 0; k < a; k++) {
			int y = g->m * (i0 + ii) - g->ph + k;

			r[k] = y >= 0 && y < g->h ? xc + (size_t)y * g->w :
				zero;
		}
		/* Row layout: pw zeros, w values, zeros up to l + 2. */
		for (k = 0; k < a; k++) {
			float *sk = row + k * plane;

			for (i = 0; i < g->pw; i++)
				sk[i] = 0.0f;
			for (i = g->pw + g->w; i < l + 2; i++)
				sk[i] = 0.0f;
		}
		wg_in_vertical(g, r, row + g->pw, plane);
		for (k = 0; k < a; k++) {
			e[k * 2 * nr + 2 * ii] = row[k * plane + l];
			e[k * 2 * nr + 2 * ii + 1] = row[k * plane + l + 1];
		}
	}
}

/* Tile rows [i0, i1) of channels [c0, c1) of one image x (C,H,W) ->
 * v[e][c][f], f the flat tile index in the image's part of the block; a
 * row v[e][c] is ld floats apart from the next (the block's columns, which
 * may hold other images too); scratch has wg_in_scratch floats. */
static void wg_input_transform(const struct wg_geom *g, const float *x,
			       int i0, int i1, int c0, int c1, float *v,
			       size_t ld, float *scratch)
{
	int a = g->m + 2, nr = i1 - i0, tw = g->tw, l = g->m * tw;
	size_t tb = (size_t)nr * tw, ct = (size_t)g->c * ld;
	size_t hw = (size_t)g->h * g->w, plane = (size_t)nr * l + 2;
	float *sbuf = scratch, *e = sbuf + a * plane, *zero = e + a * 2 * nr;
	float *ve[6], tile[6];
	int c, k, b, ii;

	memset(zero, 0, (size_t)g->w * sizeof *zero);
	for (c = c0; c < c1; c++) {
		wg_in_channel_rows(g, x + c * hw, i0, i1, sbuf, plane, e, zero);
		for (k = 0; k < a; k++) {
			const float *sk = sbuf + k * plane;
			const float *ek = e + k * 2 * nr;

			for (b = 0; b < a; b++)
				ve[b] = v + (size_t)(k * a + b) * ct + c * ld;
			wg_in_horizontal(g, (int)tb, sk, ve);
			/* Redo the row-end tiles with their own two last
			 * columns; the last row's are still in place. */
			for (ii = 0; ii + 1 < nr; ii++) {
				size_t f = (size_t)ii * tw + tw - 1;
				float *vf[6];

				memcpy(tile, sk + g->m * f,
				       g->m * sizeof *tile);
				tile[g->m] = ek[2 * ii];
				tile[g->m + 1] = ek[2 * ii + 1];
				for (b = 0; b < a; b++)
					vf[b] = ve[b] + f;
				wg_in_horizontal(g, 1, tile, vf);
			}
		}
	}
}

/* ---- output transform: Y = A^T M A --------------------------------------- *
 *
 * Per output plane and block, one long loop over the flat tile index f
 * writes the m output rows of every tile row into m scratch rows Z_r, laid
 * out like S above (tile f at Z_r + m*f), which are then copied into the
 * image, clipped to its size.
 *
 * The epilogue (bias, then a fused ReLU) is applied as the values are
 * written, while they are still in registers: a ReLU costs no pass of its
 * own over y. */

/* v, or lo where v < lo. lo = 0 is the ReLU, with act_relu_forward's
 * comparison so that the bits are its own (a NaN passes on, -0 stays -0);
 * lo = -INFINITY leaves every value as it is (nothing is below it, NaN
 * included). One loop then serves both, and it compiles to one max. */
static inline float wg_floor(float v, float lo)
{
	return v < lo ? lo : v;
}

/* The floor of act (see wg_floor). */
static float wg_act_floor(enum conv_act act)
{
	return act == CONV_ACT_RELU ? 0.0f : -INFINITY;
}

/* F(2x2): n tiles; me[e][f] is element e of tile f; z[r][2f .. 2f+1] gets
 * row r of the tile, + bias, floored at lo (wg_floor). */
SIMD_CLONES static void wg2_out_row(const float *const me[16], float bias,
				float lo, int n, float *const z[4])
{
	const float *restrict m0 = me[0], *restrict m1 = me[1];
	const float *restrict m2 = me[2], *restrict m3 = me[3];
	const float *restrict m4 = me[4], *restrict m5 = me[5];
	const float *restrict m6 = me[6], *restrict m7 = me[7];
	const float *restrict m8 = me[8], *restrict m9 = me[9];
	const float *restrict m10 = me[10], *restrict m11 = me[11];
	const float *restrict m12 = me[12], *restrict m13 = me[13];
	const float *restrict m14 = me[14], *restrict m15 = me[15];
	float *restrict y0 = z[0], *restrict y1 = z[1];
	int j;

	WG_IVDEP
	for (j = 0; j < n; j++) {
		/* Vertical: rows 0 and 1 of A^T M, column by column. */
		float p0 = m0[j] + m4[j] + m8[j], q0 = m4[j] - m8[j] - m12[j];
		float p1 = m1[j] + m5[j] + m9[j], q1 = m5[j] - m9[j] - m13[j];
		float p2 = m2[j] + m6[j] + m10[j], q2 = m6[j] - m10[j] - m14[j];
		float p3 = m3[j] + m7[j] + m11[j], q3 = m7[j] - m11[j] - m15[j];

		y0[2 * j] = wg_floor(p0 + p1 + p2 + bias, lo);
		y0[2 * j + 1] = wg_floor(p1 - p2 - p3 + bias, lo);
		y1[2 * j] = wg_floor(q0 + q1 + q2 + bias, lo);
		y1[2 * j + 1] = wg_floor(q1 - q2 - q3 + bias, lo);
	}
}

/* F(4x4): A^T applied to six values, o[0..3]:
 *   A^T = [1 1 1 1 1 0; 0 1 -1 2 -1/2 0; 0 1 1 4 1/4 0;
 *          0 1 -1 8 -1/8 1] */
static inline void wg4_at(float d0, float d1, float d2, float d3, float d4,
			  float d5, float o[4])
{
	float s12 = d1 + d2, d12 = d1 - d2;

	o[0] = d0 + s12 + d3 + d4;
	o[1] = d12 + 2.0f * d3 - 0.5f * d4;
	o[2] = s12 + 4.0f * d3 + 0.25f * d4;
	o[3] = d12 + 8.0f * d3 - 0.125f * d4 + d5;
}

/* F(4x4): n tiles, z[r][4f .. 4f+3] gets row r of tile f, + bias, floored
 * at lo. Column b of A^T M first (p[r][b]), then A^T along the row. */
SIMD_CLONES static void wg4_out_row(const float *const me[36], float bias,
				float lo, int n, float *const z[4])
{
	float *restrict y0 = z[0], *restrict y1 = z[1];
	float *restrict y2 = z[2], *restrict y3 = z[3];
	int j, b;

	WG_IVDEP
	for (j = 0; j < n; j++) {
		float p[4][6], o[4];

		for (b = 0; b < 6; b++) {
			float col[4];

			wg4_at(me[b][j], me[6 + b][j], me[12 + b][j],
			       me[18 + b][j], me[24 + b][j], me[30 + b][j],
			       col);
			p[0][b] = col[0];
			p[1][b] = col[1];
			p[2][b] = col[2];
			p[3][b] = col[3];
		}
		wg4_at(p[0][0], p[0][1], p[0][2], p[0][3], p[0][4], p[0][5], o);
		for (b = 0; b < 4; b++)
			y0[4 * j + b] = wg_floor(o[b] + bias, lo);
		wg4_at(p[1][0], p[1][1], p[1][2], p[1][3], p[1][4], p[1][5], o);
		for (b = 0; b < 4; b++)
			y1[4 * j + b] = wg_floor(o[b] + bias, lo);
		wg4_at(p[2][0], p[2][1], p[2][2], p[2][3], p[2][4], p[2][5], o);
		for (b = 0; b < 4; b++)
			y2[4 * j + b] = wg_floor(o[b] + bias, lo);
		wg4_at(p[3][0], p[3][1], p[3][2], p[3][3], p[3][4], p[3][5], o);
		for (b = 0; b < 4; b++)
			y3[4 * j + b] = wg_floor(o[b] + bias, lo);
	}
}

/* Floats of the Z rows for nr tile rows. */
static size_t wg_out_scratch(const struct wg_geom *g, int nr)
{
	return (size_t)g->m * nr * g->m * g->tw;
}

/* Tile rows [i0, i1) of planes [k0, k1): mm[e][k][f] -> one image y
 * (K,OH,OW), plus b[k] when b is not NULL, floored at lo (wg_floor); rows
 * mm[e][k] are ld floats apart (as v in wg_input_transform), elements
 * mm[e] kt apart; scratch has wg_out_scratch floats. */
static void wg_output_transform(const struct wg_geom *g, const float *mm,
				size_t ld, size_t kt, int i0, int i1, int k0,
				int k1, const float *b, float lo, float *y,
				float *scratch)
{
	int nr = i1 - i0, l = g->m * g->tw, k, e, r, ii;
	size_t tb = (size_t)nr * g->tw;
	size_t ohw = (size_t)g->oh * g->ow, ow = (size_t)g->ow;
	const float *me[36];
	float *z[4];

	for (r = 0; r < g->m; r++)
		z[r] = scratch + (size_t)r * nr * l;
	for (k = k0; k < k1; k++) {
		float *yk = y + k * ohw;

		for (e = 0; e < g->n; e++)
			me[e] = mm + e * kt + k * ld;
		if (g->m == 2)
			wg2_out_row(me, b ? b[k] : 0.0f, lo, (int)tb, z);
		else
			wg4_out_row(me, b ? b[k] : 0.0f, lo, (int)tb, z);
		for (ii = 0; ii < nr; ii++)
			for (r = 0; r < g->m; r++) {
				int oy = g->m * (i0 + ii) + r;

				if (oy < g->oh)
					memcpy(yk + oy * ow,
					       z[r] + (size_t)ii * l,
					       ow * sizeof *yk);
			}
	}
}

/* ---- the passes --------------------------------------------------------- *
 *
 * A block is either tile rows [i0, i1) of one image or every tile of
 * several images side by side (image b's tiles in columns b*T .. b*T+T-1
 * of V and M). Each block is three runs on the thread pool: the input
 * transform by (image, channel) pairs, the n products (one task each: the
 * same calls, the same results as one after the other), the output
 * transform by (image, plane) pairs. The transforms write disjoint parts
 * of V, M and y, and each thread has its own slot of transform scratch. */

/* Thin products (few tile columns) run 10-25% faster in OpenBLAS when
 * computed transposed, M^T = V^T U^T, with M stored tile-major, than as
 * M = U V (measured with cold weights: 512x512 weights and 36 columns,
 * 4.07 -> 3.72 ms for 16 products; 256x256 and 36 columns, 2.33 -> 1.85
 * ms for 36). From a few hundred columns on the two are equal, and the
 * tile-major M's output transform (WG_TM_PLANES planes of one tile at a
 * time) stores its values one by one. */
#define WG_TM_MAX_COLS 256
#define WG_TM_PLANES 16

/* Transform tasks per thread: a few, so that a preempted thread's share
 * goes to the others; channels are cheap enough to be cut finely. */
#define WG_PIECES_PER_THREAD 4

struct wg_job {
	const struct wg_geom *g;
	const float *x, *u, *b;	/* x and y: the whole batch */
	float lo;		/* the outputs' floor (wg_floor) */
	float *y, *v, *mm, *scratch;
	size_t slot;		/* floats of scratch per thread */
	int back;
	int b0, nb;		/* the block's images [b0, b0 + nb) */
	int i0, i1;		/* the block's tile rows */
	int step;		/* (image, plane) pairs per transform task */
	int tmajor;		/* M tile-major (see WG_TM_MAX_COLS) */
};

/* Tiles of one image in the block; V and M have nb times as many
 * columns. */
static size_t wg_job_tiles(const struct wg_job *j)
{
	return (size_t)(j->i1 - j->i0) * j->g->tw;
}

/* A task's (image, plane) pairs [*a, end), planes per image, may span
 * images: the next run within one image is image *img (of the block),
 * planes [*p0, *p1); *a moves past it. 0 when none is left. */
static int wg_next_run(int *a, int end, int planes, int *img, int *p0,
		       int *p1)
{
	if (*a >= end)
		return 0;
	*img = *a / planes;
	*p0 = *a % planes;
	*p1 = *p0 + (end - *a) < planes ? *p0 + (end - *a) : planes;
	*a += *p1 - *p0;
	return 1;
}

static void wg_in_task(void *ctx, int task, int thread)
{
	const struct wg_job *j = ctx;
	const struct wg_geom *g = j->g;
	size_t tb = wg_job_tiles(j), chw = (size_t)g->c * g->h * g->w;
	int a, end, img, c0, c1;

	workers_range(task, j->step, j->nb * g->c, &a, &end);
	while (wg_next_run(&a, end, g->c, &img, &c0, &c1))
		wg_input_transform(g, j->x + (size_t)(j->b0 + img) * chw,
				   j->i0, j->i1, c0, c1, j->v + img * tb,
				   j->nb * tb,
				   j->scratch + (size_t)thread * j->slot);
}

/* Product e of the block: M[e] = U[e] V[e]. back selects the
 * rotated-transposed use of u (see the top). */
static void wg_gemm_task(void *ctx, int e, int thread)
{
	static const int swap03[4] = { 3, 1, 2, 0 };
	const struct wg_job *j = ctx;
	const struct wg_geom *g = j->g;
	size_t kc = (size_t)g->k * g->c;
	int cols = j->nb * (int)wg_job_tiles(j);
	size_t ct = (size_t)g->c * cols, kt = (size_t)g->k * cols;
	const float *ue;

	(void)thread;
	if (!j->back && j->tmajor) {
		/* M[e]^T (cols x K) = V[e]^T U[e]^T */
		blas_sgemm(1, 1, cols, g->k, g->c, 1.0f, j->v + e * ct, cols,
			   j->u + e * kc, g->c, 0.0f, j->mm + e * kt, g->k);
		return;
	}
	if (!j->back) {
		/* u[e] is (K x C) */
		blas_sgemm(0, 0, g->k, cols, g->c, 1.0f, j->u + e * kc, g->c,
			   j->v + e * ct, cols, 0.0f, j->mm + e * kt, cols);
		return;
	}
	/* u[e] is the forward (K_fwd x C_fwd) = (g->c x g->k), used
	 * transposed. F(2x2) reads the forward weights with elements 0 and 3
	 * swapped; F(4x4) has its own rotated copy after the forward one. */
	if (g->m == 2)
		ue = j->u + (swap03[e / 4] * 4 + swap03[e % 4]) * kc;
	else
		ue = j->u + (36 + e) * kc;
	if (j->tmajor)
		blas_sgemm(1, 0, cols, g->k, g->c, 1.0f, j->v + e * ct, cols,
			   ue, g->k, 0.0f, j->mm + e * kt, g->k);
	else
		blas_sgemm(1, 0, g->k, cols, g->c, 1.0f, ue, g->k,
			   j->v + e * ct, cols, 0.0f, j->mm + e * kt, cols);
}

/* Planes [k0, k1) of image img from a tile-major M (mm[e][f][k], f over
 * the block's columns). For each tile, runs of up to WG_TM_PLANES planes
 * are contiguous in every element, so the same row kernels transform them
 * with the plane as their vector index: z[r][m*p + c] is output (r, c) of
 * the tile in plane k0 + p. Those are then stored into the planes (with
 * the bias, then the floor), one value each. No copy of M back to
 * plane-major rows. */
static void wg_out_tmajor(const struct wg_job *j, int img, int k0, int k1,
			  float *y, float *scratch)
{
	const struct wg_geom *g = j->g;
	size_t tb = wg_job_tiles(j), kt = (size_t)g->k * j->nb * tb, f;
	size_t ohw = (size_t)g->oh * g->ow;
	const float *me[36];
	float *z[4];
	int m = g->m, e, c0, p, r, c;

	for (r = 0; r < m; r++)
		z[r] = scratch + (size_t)r * m * WG_TM_PLANES;
	for (f = 0; f < tb; f++) {
		int ty = (j->i0 + (int)(f / g->tw)) * m, tx = (int)(f % g->tw) * m;
		int rows = g->oh - ty < m ? g->oh - ty : m;
		int cols = g->ow - tx < m ? g->ow - tx : m;
		size_t base = ((size_t)img * tb + f) * g->k;

		for (c0 = k0; c0 < k1; c0 += WG_TM_PLANES) {
			int np = k1 - c0 < WG_TM_PLANES ? k1 - c0 :
				 WG_TM_PLANES;

			for (e = 0; e < g->n; e++)
				me[e] = j->mm + e * kt + base + c0;
			if (m == 2)
				wg2_out_row(me, 0.0f, -INFINITY, np, z);
			else
				wg4_out_row(me, 0.0f, -INFINITY, np, z);
			for (p = 0; p < np; p++) {
				float *yk = y + (size_t)(c0 + p) * ohw +
					    (size_t)ty * g->ow + tx;
				float bk = j->b ? j->b[c0 + p] : 0.0f;

				for (r = 0; r < rows; r++) {
					const float *zr = z[r] + m * p;
					float *yr = yk + (size_t)r * g->ow;

					for (c = 0; c < cols; c++)
						yr[c] = wg_floor(zr[c] + bk,
								 j->lo);
				}
			}
		}
	}
}

static void wg_out_task(void *ctx, int task, int thread)
{
	const struct wg_job *j = ctx;
	const struct wg_geom *g = j->g;
	size_t tb = wg_job_tiles(j), khw = (size_t)g->k * g->oh * g->ow;
	int a, end, img, k0, k1;

	workers_range(task, j->step, j->nb * g->k, &a, &end);
	while (wg_next_run(&a, end, g->k, &img, &k0, &k1)) {
		float *y = j->y + (size_t)(j->b0 + img) * khw;
		float *scratch = j->scratch + (size_t)thread * j->slot;

		if (j->tmajor)
			wg_out_tmajor(j, img, k0, k1, y, scratch);
		else
			wg_output_transform(g, j->mm + img * tb, j->nb * tb,
					    (size_t)g->k * j->nb * tb, j->i0,
					    j->i1, k0, k1, j->b, j->lo, y,
					    scratch);
	}
}

/* Floats of one thread's transform scratch, rounded up to a multiple of
 * 64 bytes so that the slots of neighbouring threads share at most the
 * cache line at their boundary. */
static size_t wg_slot(const struct wg_geom *g)
{
	size_t si = wg_in_scratch(g, g->brows), so = wg_out_scratch(g, g->brows);

	/* a tile-major M's rows (wg_out_tmajor) */
	if ((size_t)g->m * g->m * WG_TM_PLANES > so)
		so = (size_t)g->m * g->m * WG_TM_PLANES;

	return ((si > so ? si : so) + 15) / 16 * 16;
}

/* Shared by both directions: for each block of images and tile rows,
 * transform x, n products with u, transform back (+ b, floored at lo).
 * g was set up for this batch, so that g->bimgs fits the workspace sized
 * for a larger one. */
static void wg_run(struct workers *wk, const struct wg_geom *g, int batch,
		   const float *x, const float *u, int back, const float *b,
		   float lo, float *y, float *work)
{
	size_t cmax = (size_t)g->bimgs * g->brows * g->tw;
	struct wg_job j = {
		.g = g, .x = x, .u = u, .b = b, .lo = lo, .y = y, .back = back,
		.v = work, .slot = wg_slot(g),
	};
	int saved, ntasks, blocks, per;

	if (batch < 1)
		return;
	/* Even blocks of images rather than a short last one. */
	blocks = (batch + g->bimgs - 1) / g->bimgs;
	per = (batch + blocks - 1) / blocks;
	j.mm = j.v + (size_t)g->n * g->c * cmax;
	j.scratch = j.mm + (size_t)g->n * g->k * cmax;
	/* Threads of OpenBLAS off while ours run the products. */
	saved = blas_serial_begin(wk);
	for (j.b0 = 0; j.b0 < batch; j.b0 += j.nb) {
		j.nb = j.b0 + per < batch ? per : batch - j.b0;
		for (j.i0 = 0; j.i0 < g->th; j.i0 += g->brows) {
			j.i1 = j.i0 + g->brows < g->th ? j.i0 + g->brows :
				g->th;
			j.tmajor = (long)j.nb * (long)wg_job_tiles(&j) <=
				   WG_TM_MAX_COLS;
			ntasks = workers_split(wk, j.nb * g->c, WG_PIECES_PER_THREAD, &j.step);
			workers_run(wk, wg_in_task, &j, ntasks);
			workers_run(wk, wg_gemm_task, &j, g->n);
			ntasks = workers_split(wk, j.nb * g->k, WG_PIECES_PER_THREAD, &j.step);
			workers_run(wk, wg_out_task, &j, ntasks);
		}
	}
	blas_serial_end(saved);
}

/* ---- the public calls --------------------------------------------------- */

/* Workspace of one pass: V (n x C x Tb) and M (n x K x Tb) of one block
 * (Tb: its tiles, of all its images), then one slot of transform scratch
 * per thread. */
static size_t wg_geom_work(const struct wg_geom *g, int threads)
{
	size_t tb = (size_t)g->bimgs * g->brows * g->tw;

	return (size_t)g->n * tb * ((size_t)g->c + g->k) +
	       (size_t)threads * wg_slot(g);
}

int winograd_supported(const struct conv_shape *s)
{
	return s->kh == 3 && s->kw == 3 && s->sh == 1 && s->sw == 1 &&
	       s->ph >= 0 && s->ph <= 1 && s->pw >= 0 && s->pw <= 1 &&
	       s->c > 0 && s->k > 0 && s->h > 0 && s->w > 0 &&
	       s->oh == s->h + 2 * s->ph - 2 && s->ow == s->w + 2 * s->pw - 2 &&
	       s->oh > 0 && s->ow > 0;
}

int winograd_preferred(const struct conv_shape *s, int batch)
{
	long t2 = (long)((s->oh + 1) / 2) * ((s->ow + 1) / 2);
	struct wg_geom g;

	/* Few channels make products with an inner size of 3 (the image
	 * layer) that BLAS runs slowly; few tiles make thin products that
	 * spend their time packing the 16/9 larger weights. The tiles that
	 * count are those of a block: a 6x6 layer's 9 at batch 1 lose to
	 * im2col, 18 at batch 2 win by 1.5x, more from 4 images up. */
	if (!winograd_supported(s) || s->c < 8 || s->k < 8)
		return 0;
	wg_geom_forward(s, batch, &g);
	return t2 * g.bimgs >= 16;
}

int winograd_tile(const struct conv_shape *s)
{
	return wg_tile_size(s);
}

int winograd_block_images(const struct conv_shape *s, int batch)
{
	struct wg_geom g;

	wg_geom_forward(s, batch, &g);
	return g.bimgs;
}

size_t winograd_weight_size(const struct conv_shape *s)
{
	size_t kc = (size_t)s->k * s->c;

	return wg_tile_size(s) == 4 ? 2 * 36 * kc : 16 * kc;
}

size_t winograd_work_size(const struct conv_shape *s,
			  const struct workers *wk, int max_batch)
{
	struct wg_geom f, b;
	size_t nf, nb;

	wg_geom_forward(s, max_batch, &f);
	wg_geom_backward(s, max_batch, &b);
	nf = wg_geom_work(&f, workers_count(wk));
	nb = wg_geom_work(&b, workers_count(wk));
	return nf > nb ? nf : nb;
}

void winograd_forward(struct workers *wk, const struct conv_shape *s,
		      int batch, const float *x, const float *wt,
		      const float *b, enum conv_act act, float *y, float *work)
{
	struct wg_geom g;

	wg_geom_forward(s, batch, &g);
	wg_run(wk, &g, batch, x, wt, 0, b, wg_act_floor(act), y, work);
}

void winograd_backward_input(struct workers *wk, const struct conv_shape *s,
			     int batch, const float *dy, const float *wt,
			     float *dx, float *work)
{
	struct wg_geom g;

	wg_geom_backward(s, batch, &g);
	wg_run(wk, &g, batch, dy, wt, 1, NULL, -INFINITY, dx, work);
}
