/* ties_measure.c - how far apart advex's float32 kernels put values that
 * are equal in exact arithmetic (max-pool ties on flat image regions),
 * against how close genuinely different values come (near-ties), so that
 * pool.c's tie tolerance can be chosen from data (issue #12).
 *
 * A VGG16 feature stack (blocks 1-4, random kaiming weights, seed given)
 * runs on 96x96 images in float64 (direct convolution: every output sums
 * its terms in the same order, so exact-arithmetic ties are bitwise ties)
 * and in float32 through advex's kernels (im2col or Winograd). For every
 * 2x2 window of every max-pool input:
 *   tie:  an element whose float64 value equals the window's float64 max;
 *         d = |x32 - max32| is the rounding the float32 path put between
 *         equal values;
 *   gap:  an element below the float64 max; g = max64 - x64 is a genuine
 *         difference.
 * Both are printed in units of eps32 (2^-24) times a scale:
 *   |max32| of the window, and S = max over the window of
 *   |b| + sum |w||x| (the float32 rounding bound of each output, from the
 *   float64 activations).
 * Not part of make check: build with
 *   gcc -O2 -Icore bench/ties_measure.c libadvexcore.a -lopenblas -lm -lpthread
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv.h"
#include "winograd.h"
#include "workers.h"

#define HW 96
static const int CFG_VGG[] = { 64, 64, -1, 128, 128, -1, 256, 256, 256, -1,
			       512, 512, 512, -1 };
static const int CFG_CNN4[] = { 32, -1, 64, -1, 128, -1, 128, -1 };
static const int *CFG = CFG_VGG;
static int NCFG = 14;
#define EPS32 5.9604644775390625e-08

static unsigned long long rs = 1;
static double urand(void)
{
	rs = rs * 6364136223846793005ULL + 1442695040888963407ULL;
	return ((rs >> 11) & ((1ULL << 53) - 1)) / 9007199254740992.0;
}
static double nrand(void)
{
	double u = urand() + 1e-300, v = urand();
	return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

/* float64 direct conv 3x3 pad 1: y = b + sum w x; s = |b| + sum |w||x| */
static void conv64(int c, int k, int h, int w, const double *x,
		   const float *wt, const float *b, double *y, double *s)
{
	int ko, ci, ki, kj, oy, ox;

	for (ko = 0; ko < k; ko++) {
		double *yk = y + (size_t)ko * h * w, *sk = s + (size_t)ko * h * w;

		for (oy = 0; oy < h * w; oy++) {
			yk[oy] = 0;
			sk[oy] = 0;
		}
		for (ci = 0; ci < c; ci++)
			for (ki = 0; ki < 3; ki++)
				for (kj = 0; kj < 3; kj++) {
					double wv = wt[(((size_t)ko * c + ci) * 3 + ki) * 3 + kj];
					double aw = fabs(wv);

					for (oy = 0; oy < h; oy++) {
						int iy = oy + ki - 1;
						const double *xr;

						if (iy < 0 || iy >= h)
							continue;
						xr = x + ((size_t)ci * h + iy) * w + kj - 1;
						for (ox = (kj == 0); ox < w - (kj == 2); ox++) {
							yk[oy * w + ox] += wv * xr[ox];
							sk[oy * w + ox] += aw * fabs(xr[ox]);
						}
					}
				}
		for (oy = 0; oy < h * w; oy++) {
			yk[oy] += b[ko];
			sk[oy] += fabs(b[ko]);
		}
	}
}

static void make_image(int kind, unsigned char *img)
{
	int y, x, ch;

	for (y = 0; y < HW; y++)
		for (x = 0; x < HW; x++)
			for (ch = 0; ch < 3; ch++) {
				double v = 0;

				switch (kind) {
				case 0: v = 128; break;
				case 1: v = x < HW / 2 ? 128 : 200; break;
				case 2: v = y < HW / 2 ? 0 : 255; break;
				case 3: v = x * 255.0 / (HW - 1); break;
				case 4: v = y * 255.0 / (HW - 1); break;
				case 5: /* flat sky band over a noisy scene */
					v = y < 40 ? 150 + 40 * ch :
					    128 + 60 * sin(x * 0.2 + ch) * cos(y * 0.13) +
					    8 * nrand();
					break;
				case 7: /* saturated blocks on grey */
					v = 90;
					if (y >= 10 && y < 50 && x >= 20 && x < 70) v = 255;
					if (y >= 60 && y < 90 && x >= 5 && x < 40) v = 0;
					if (y >= 60 && y < 90 && x >= 60 && x < 90 && ch == 1) v = 255;
					break;
				default: /* photo-like: smooth field + noise */
					v = 128 + 70 * sin(x * 0.07 * (ch + 1) + kind) *
					    cos(y * 0.05 + kind * ch) + 8 * nrand();
				}
				v = v < 0 ? 0 : v > 255 ? 255 : v;
				img[(y * HW + x) * 3 + ch] = (unsigned char)lround(v);
			}
}

static const char *KIND[] = { "constant", "two-tone", "saturated",
			      "hgrad", "vgrad", "sky-band", "photo", "blocks" };

#define NK 7
static const double KS[NK] = { 0, 2, 16, 32, 64, 96, 128 };
static double lbound[512], pmax[512];
static float *xin;	/* the last conv's float32 input */
static const float *lastw;
static int lastc;

/* D = sum |w| |x_p - x_q| over the 3x3 patches of conv output positions p
 * and q (plane h x h) of channel k: how far apart the conv's inputs put
 * the two outputs. */
static double patch_dist(int k, int h, int p, int q)
{
	int ci, ki, kj, py = p / h, px = p % h, qy = q / h, qx = q % h;
	double d = 0;

	for (ci = 0; ci < lastc; ci++)
		for (ki = 0; ki < 3; ki++)
			for (kj = 0; kj < 3; kj++) {
				int ay = py + ki - 1, ax = px + kj - 1;
				int by = qy + ki - 1, bx = qx + kj - 1;
				double a = (ay < 0 || ay >= h || ax < 0 || ax >= h) ? 0 :
					xin[((size_t)ci * h + ay) * h + ax];
				double b = (by < 0 || by >= h || bx < 0 || bx >= h) ? 0 :
					xin[((size_t)ci * h + by) * h + bx];
				d += fabs(lastw[(((size_t)k * lastc + ci) * 3 + ki) * 3 + kj]) *
				     fabs(a - b);
			}
	return d;
}
static int lasttile;
#define NB 9
static const double BIN[NB] = { 1, 2, 4, 8, 16, 32, 64, 128, 256 };

struct hist {
	long n, le[NB];	/* count, count with value <= BIN[i] eps */
	double max, min;
};

static void hadd(struct hist *h, double v)
{
	int i;

	if (!h->n || v > h->max)
		h->max = v;
	if (!h->n || v < h->min)
		h->min = v;
	h->n++;
	for (i = 0; i < NB; i++)
		if (v <= BIN[i])
			h->le[i]++;
}

static void hprint(const char *name, const struct hist *h)
{
	int i;

	printf("  %-28s n=%-8ld min %.3g max %.3g |", name, h->n, h->min, h->max);
	for (i = 0; i < NB; i++)
		printf(" <=%g:%ld", BIN[i], h->le[i]);
	printf("\n");
}

int main(int argc, char **argv)
{
	int mode = argc > 1 ? atoi(argv[1]) : 0;	/* 0 im2col, 1 winograd */
	int kind, nkinds = argc > 2 ? atoi(argv[2]) : 9;
	unsigned seed = argc > 3 ? (unsigned)atoi(argv[3]) : 1;
	static const float mean[3] = { 0.485f, 0.456f, 0.406f };
	static const float sd[3] = { 0.229f, 0.224f, 0.225f };
	float *W[14], *B[14];
	struct workers *wk = workers_new(1);
	size_t big = (size_t)64 * HW * HW;
	float *x32 = malloc(big * 4), *y32 = malloc(big * 4), *col, *wt, *work;
	double *x64 = malloc(big * 8), *y64 = malloc(big * 8), *s64 = malloc(big * 8);
	unsigned char img[HW * HW * 3];
	int i, c;

	if (argc > 4 && !strcmp(argv[4], "cnn4")) {
		CFG = CFG_CNN4;
		NCFG = 8;
	}
	xin = malloc(big * 4);
	col = malloc((size_t)64 * 9 * HW * HW * 4 * 2);
	wt = malloc((size_t)72 * 512 * 512 * 4);
	work = malloc((size_t)1 << 28);
	rs = seed;
	c = 3;
	for (i = 0; i < NCFG; i++) {
		int k = CFG[i], j;
		double std = sqrt(2.0 / (k * 9));

		if (k < 0)
			continue;
		W[i] = malloc((size_t)k * c * 9 * 4);
		B[i] = malloc((size_t)k * 4);
		for (j = 0; j < k * c * 9; j++)
			W[i][j] = (float)(nrand() * std);
		for (j = 0; j < k; j++)
			B[i][j] = (float)(nrand() * 0.05);
		c = k;
	}
	for (kind = 0; kind < nkinds; kind++) {
		int h = HW, ci, p, pool = 0;

		rs = seed * 1000 + kind;
		make_image(kind, img);
		for (ci = 0; ci < 3; ci++)
			for (p = 0; p < HW * HW; p++) {
				float v = img[p * 3 + ci] * (1.0f / 255) * (1.0f / sd[ci]) -
					  mean[ci] / sd[ci];
				x32[ci * HW * HW + p] = v;
				x64[ci * HW * HW + p] = v;
			}
		printf("%s (mode %s, seed %u)\n", KIND[kind == 7 ? 7 : kind < 6 ? kind : 6],
		       mode ? "winograd" : "im2col", seed);
		/* NOTE: tiles per layer: winograd_tile */
		c = 3;
		for (i = 0; i < NCFG; i++) {
			int k = CFG[i], oh = h / 2, ko, oy, ox;
			struct hist tm = { 0 }, ts = { 0 }, gm = { 0 }, gs = { 0 };
			long windows = 0, tiewin = 0, relu_near = 0, relu_flip = 0;
			long mis[4][NK] = { { 0 } };
			struct hist dt = { 0 }, dn = { 0 };

			if (k > 0) {
				struct conv_shape s = { .c = c, .h = h, .w = h, .k = k,
					.kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1 };
				size_t n = (size_t)k * h * h, q;

				conv_shape_init(&s);
				lasttile = mode ? winograd_tile(&s) : 0;
				memcpy(xin, x32, sizeof(float) * c * h * h);
				lastw = W[i];
				lastc = c;
				if (mode) {
					winograd_prepare(&s, W[i], wt);
					winograd_forward(wk, &s, 1, x32, wt, B[i],
							 CONV_ACT_NONE, y32, work);
				} else {
					conv_forward(NULL, &s, x32, W[i], B[i],
						     CONV_ACT_NONE, y32, col);
				}
				conv64(c, k, h, h, x64, W[i], B[i], y64, s64);
				{	/* per-channel bound L = |b| + |w|_1 max|x| */
					double xm = 0;
					for (q = 0; q < (size_t)c * h * h; q++)
						if (fabs(x32[q]) > xm)
							xm = fabs(x32[q]);
					for (ko = 0; ko < k; ko++) {
						double a = 0;
						for (q = 0; q < (size_t)c * 9; q++)
							a += fabs(W[i][(size_t)ko * c * 9 + q]);
						lbound[ko] = fabs(B[i][ko]) + a * xm;
					}
				}
				for (q = 0; q < n; q++) {
					/* ReLU decisions near 0 */
					if (y64[q] != 0 && fabs(y64[q]) <= 64 * EPS32 * s64[q]) {
						relu_near++;
						if ((y64[q] > 0) != (y32[q] > 0))
							relu_flip++;
					}
					x32[q] = y32[q] < 0 ? 0 : y32[q];
					x64[q] = y64[q] < 0 ? 0 : y64[q];
				}
				if (relu_near)
					printf("  conv %d: %ld units within 64 eps*S of 0 (not 0 in float64), %ld decided otherwise in float32\n",
					       i, relu_near, relu_flip);
				c = k;
				continue;
			}
			/* pool: x32/x64 (c,h,h), s64 the last conv's bound */
			pool++;
			for (ko = 0; ko < c; ko++) {
				size_t q;
				pmax[ko] = 0;
				for (q = 0; q < (size_t)h * h; q++)
					if (x32[(size_t)ko * h * h + q] > pmax[ko])
						pmax[ko] = x32[(size_t)ko * h * h + q];
			}
			for (ko = 0; ko < c; ko++)
				for (oy = 0; oy < oh; oy++)
					for (ox = 0; ox < oh; ox++) {
						size_t base = (size_t)ko * h * h;
						int idx[4] = { 2 * oy * h + 2 * ox, 2 * oy * h + 2 * ox + 1,
							       (2 * oy + 1) * h + 2 * ox, (2 * oy + 1) * h + 2 * ox + 1 };
						double m64 = -1, m32 = -1, smax = 0;
						int e, ties = 0;

						for (e = 0; e < 4; e++) {
							double v = x64[base + idx[e]];
							if (v > m64)
								m64 = v;
							if (x32[base + idx[e]] > m32)
								m32 = x32[base + idx[e]];
							if (s64[base + idx[e]] > smax)
								smax = s64[base + idx[e]];
						}
						windows++;
						if (m64 == 0)	/* ReLU-dead: exact zeros */
							continue;
						for (e = 0; e < 4; e++) {
							double v = x64[base + idx[e]];
							double d = fabs(x32[base + idx[e]] - m32);

							if (v == m64) {
								ties++;
								hadd(&tm, d / (EPS32 * fabs(m32)));
								hadd(&ts, d / (EPS32 * smax));
							} else {
								hadd(&gm, (m64 - v) / (EPS32 * m64));
								hadd(&gs, (m64 - v) / (EPS32 * smax));
							}
						}
						if (ties > 1)
							tiewin++;
						{
							int am = 0, e2;
							for (e2 = 3; e2 >= 0; e2--)
								if (x64[base + idx[e2]] == m64)
									am = e2;
							am = idx[am];
							for (e2 = 0; e2 < 4; e2++) {
								double v = x64[base + idx[e2]];
								double ds;
								if (idx[e2] == am)
									continue;
								ds = patch_dist(ko, h, am, idx[e2]) / smax;
								if (v == m64)
									hadd(&dt, ds / EPS32);
								else if ((m64 - v) / (EPS32 * smax) < 32)
									hadd(&dn, ds / EPS32);
							}
						}
						{
							int a64 = 0, r, t;
							double sc[4];
							sc[0] = smax; sc[1] = fabs(m32);
							sc[2] = pmax[ko]; sc[3] = lbound[ko];
							for (e = 3; e >= 0; e--)
								if (x64[base + idx[e]] == m64)
									a64 = e;
							for (r = 0; r < 4; r++)
								for (t = 0; t < NK; t++) {
									double tol = KS[t] * EPS32 * sc[r];
									int ch = 0;
									for (e = 3; e >= 0; e--)
										if (x32[base + idx[e]] >= m32 - tol)
											ch = e;
									mis[r][t] += ch != a64;
								}
						}
					}
			{
				static const char *RN[4] = { "S=|b|+sum|w||x| (window)", "|max| (window)", "plane max|y|", "|b|+|w|_1 max|x| (layer)" };
				int r, t;
				for (r = 0; r < 4; r++) {
					printf("  misroutes, scale %-26s", RN[r]);
					for (t = 0; t < NK; t++)
						printf(" k=%g:%ld", KS[t], mis[r][t]);
					printf("\n");
				}
			}
			printf(" pool %d (%dx%dx%d, F(%d)): %ld windows, %ld with a float64 tie (max > 0)\n",
			       pool, c, h, h, lasttile, windows, tiewin);
			hprint("D/(eps S), exact ties", &dt);
			hprint("D/(eps S), gaps < 32 eps S", &dn);
			hprint("tie |a-max|/(eps|max|)", &tm);
			hprint("tie |a-max|/(eps S)", &ts);
			hprint("gap (max-a)/(eps|max|)", &gm);
			hprint("gap (max-a)/(eps S)", &gs);
			for (ko = 0; ko < c * oh * oh; ko++) {
				int cc = ko / (oh * oh), r = ko % (oh * oh);
				int py = r / oh, px = r % oh;
				size_t b0 = (size_t)cc * h * h;
				float mm = -1; double md = -1, ms = 0;
				int e;

				for (e = 0; e < 4; e++) {
					size_t at = b0 + (2 * py + e / 2) * h + 2 * px + e % 2;
					if (x32[at] > mm) mm = x32[at];
					if (x64[at] > md) md = x64[at];
					if (s64[at] > ms) ms = s64[at];
				}
				x32[ko] = mm;
				x64[ko] = md;
				s64[ko] = ms;
			}
			h = oh;
		}
	}
	workers_free(wk);
	return 0;
}
