/* plot.c - braille line plots (see plot.h). */
#include "plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LABEL_COLS 9

/* Bit of dot (dx, dy) in a braille cell: U+2800 + the OR of these. */
static unsigned char dot_bit(int dx, int dy)
{
	static const unsigned char bits[4][2] = {
		{ 0x01, 0x08 }, { 0x02, 0x10 }, { 0x04, 0x20 }, { 0x40, 0x80 }
	};

	return bits[dy][dx];
}

struct canvas {
	int cw, ch;		/* cells */
	unsigned char *bits;	/* cw * ch */
	unsigned char *role;	/* cw * ch */
};

static void set_dot(struct canvas *c, int dx, int dy, enum role r)
{
	int cx = dx / 2, cy = dy / 4;

	if (dx < 0 || dy < 0 || cx >= c->cw || cy >= c->ch)
		return;
	c->bits[cy * c->cw + cx] |= dot_bit(dx % 2, dy % 4);
	c->role[cy * c->cw + cx] = (unsigned char)r;
}

static void line(struct canvas *c, int x0, int y0, int x1, int y1, enum role r)
{
	int dx = abs(x1 - x0), dy = -abs(y1 - y0);
	int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, e = dx + dy;

	for (;;) {
		int e2 = 2 * e;

		set_dot(c, x0, y0, r);
		if (x0 == x1 && y0 == y1)
			break;
		if (e2 >= dy) {
			e += dy;
			x0 += sx;
		}
		if (e2 <= dx) {
			e += dx;
			y0 += sy;
		}
	}
}

static void range(const struct plot_series *s, int ns, double *lo, double *hi)
{
	int i, j;

	*lo = INFINITY;
	*hi = -INFINITY;
	for (i = 0; i < ns; i++)
		for (j = 0; j < s[i].n; j++)
			if (isfinite(s[i].y[j])) {
				if (s[i].y[j] < *lo)
					*lo = s[i].y[j];
				if (s[i].y[j] > *hi)
					*hi = s[i].y[j];
			}
	if (*lo > *hi)
		return;
	if (*hi - *lo < 1e-9 * (fabs(*hi) + 1e-12) || *hi - *lo < 1e-12) {
		double pad = fabs(*hi) * 0.05 + 1e-6;

		*lo -= pad;
		*hi += pad;
	}
}

/* v in at most LABEL_COLS - 1 columns: fewer digits until it fits (an
 * axis label cut to "1.2864e-…" says nothing). */
static void axis_label(char *buf, size_t n, double v)
{
	int prec;

	for (prec = 5; prec >= 1; prec--) {
		snprintf(buf, n, "%.*g", prec, v);
		if ((int)strlen(buf) <= LABEL_COLS - 1)
			return;
	}
	snprintf(buf, n, "%.0e", v);
}

void plot_draw(struct palette *p, int y, int x, int h, int w,
	       const struct plot_series *s, int ns, int xmax, int cursor)
{
	struct canvas c;
	double lo, hi;
	int i, j, dw, dh, px = x + LABEL_COLS + 1;
	char lab[32];

	if (h < 3 || w < LABEL_COLS + 6)
		return;
	c.cw = w - LABEL_COLS - 1;
	c.ch = h - 1;
	dw = 2 * c.cw;
	dh = 4 * c.ch;
	for (i = 0; i < ns; i++)
		if (s[i].n - 1 > xmax)
			xmax = s[i].n - 1;
	range(s, ns, &lo, &hi);
	for (i = 0; i < c.ch; i++)
		draw_wch(p, y + i, x + LABEL_COLS, i == 0 || i == c.ch - 1 ? L'┤' : L'│', R_BOX);
	draw_wch(p, y + c.ch, x + LABEL_COLS, L'└', R_BOX);
	for (i = 0; i < c.cw; i++)
		draw_wch(p, y + c.ch, px + i, L'─', R_BOX);
	if (lo > hi) {
		draw_text(p, y + c.ch / 2, px + 2, c.cw - 2, R_DIM, "no finite values");
		return;
	}
	c.bits = calloc((size_t)c.cw * c.ch, 1);
	c.role = calloc((size_t)c.cw * c.ch, 1);
	if (!c.bits || !c.role) {
		free(c.bits);
		free(c.role);
		return;
	}
	for (i = 0; i < ns; i++) {
		int have = 0, lx = 0, ly = 0;

		for (j = 0; j < s[i].n; j++) {
			int dx, dy;
			double t;

			if (!isfinite(s[i].y[j])) {
				have = 0;
				continue;
			}
			/* A range that overflows (hi - lo = inf) makes t NaN; an
			 * unclamped coordinate would send line() on a walk of
			 * billions of dots. Keep every point on the canvas. */
			t = (hi - s[i].y[j]) / (hi - lo);
			if (!isfinite(t)) {
				have = 0;
				continue;
			}
			t = t < 0.0 ? 0.0 : t > 1.0 ? 1.0 : t;
			dx = xmax > 0 ? (int)lround((double)j * (dw - 1) / xmax) : 0;
			dy = (int)lround(t * (dh - 1));
			if (have)
				line(&c, lx, ly, dx, dy, s[i].role);
			else
				set_dot(&c, dx, dy, s[i].role);
			have = 1;
			lx = dx;
			ly = dy;
		}
	}
	for (i = 0; i < c.ch; i++)
		for (j = 0; j < c.cw; j++) {
			unsigned char b = c.bits[i * c.cw + j];

			if (b)
				draw_wch(p, y + i, px + j, (wchar_t)(0x2800 + b),
					 (enum role)c.role[i * c.cw + j]);
		}
	if (cursor >= 0 && xmax >= 0) {
		int cx = (xmax > 0 ? (int)lround((double)cursor * (dw - 1) / xmax) : 0) / 2;

		for (i = 0; i < c.ch; i++)
			if (!c.bits[i * c.cw + cx])
				draw_wch(p, y + i, px + cx, L'┊', R_DIM);
	}
	free(c.bits);
	free(c.role);
	axis_label(lab, sizeof lab, hi);
	draw_text(p, y, x, LABEL_COLS, R_DIM, "%*s", LABEL_COLS - 1, lab);
	axis_label(lab, sizeof lab, lo);
	draw_text(p, y + c.ch - 1, x, LABEL_COLS, R_DIM, "%*s", LABEL_COLS - 1, lab);
	if (c.ch >= 5) {
		axis_label(lab, sizeof lab, (hi + lo) / 2);
		draw_text(p, y + (c.ch - 1) / 2, x, LABEL_COLS, R_DIM, "%*s", LABEL_COLS - 1, lab);
	}
	draw_text(p, y + c.ch, x, LABEL_COLS, R_DIM, "%*s", LABEL_COLS, "0");
	snprintf(lab, sizeof lab, "%d", xmax);
	draw_text(p, y + c.ch, px + c.cw - (int)strlen(lab), (int)strlen(lab), R_DIM, "%s", lab);
}
