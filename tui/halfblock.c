/* halfblock.c - half-block images (see halfblock.h). */
#include "halfblock.h"

#include <math.h>

int halfblock_cols(int w, int scale)
{
	return scale > 0 ? w / scale : 0;
}

int halfblock_rows(int h, int scale)
{
	return scale > 0 ? (h / scale + 1) / 2 : 0;
}

/* The average of channel c over the scale x scale block at screen pixel
 * (py, px), as a byte. */
static int sample(const float *pix, int h, int w, int c, int py, int px, int s)
{
	const float *plane = pix + (size_t)c * h * w;
	double sum = 0.0;
	int i, j;

	for (i = 0; i < s; i++)
		for (j = 0; j < s; j++) {
			float v = plane[(size_t)(py * s + i) * w + (px * s + j)];

			sum += isfinite(v) ? (v < 0 ? 0 : v > 1 ? 1 : v) : 0.0;
		}
	return (int)lrint(255.0 * sum / (s * s));
}

/* Nearest xterm cube level (0, 95, 135, 175, 215, 255) of a byte. */
static int cube_level(int v)
{
	return v < 48 ? 0 : v < 115 ? 1 : (v - 35) / 40;
}

static int cube_value(int l)
{
	return l ? 55 + 40 * l : 0;
}

/* Nearest of the 256-colour cube and grey ramp. */
static int color256(int r, int g, int b)
{
	int lr = cube_level(r), lg = cube_level(g), lb = cube_level(b);
	int cr = cube_value(lr), cg = cube_value(lg), cb = cube_value(lb);
	int avg = (r + g + b) / 3, gi = avg > 238 ? 23 : avg < 8 ? 0 : (avg - 3) / 10;
	int gv = 8 + 10 * gi;
	long dc = (long)(r - cr) * (r - cr) + (long)(g - cg) * (g - cg) +
		  (long)(b - cb) * (b - cb);
	long dg = (long)(r - gv) * (r - gv) + (long)(g - gv) * (g - gv) +
		  (long)(b - gv) * (b - gv);

	return dg < dc ? 232 + gi : 16 + 36 * lr + 6 * lg + lb;
}

static int terminal_color(enum color_mode m, int r, int g, int b)
{
	int v;

	switch (m) {
	case CM_DIRECT:
		v = r << 16 | g << 8 | b;
		/* 0..7 would select the ANSI palette, not near-black */
		return v < 8 ? 8 : v;
	case CM_256:
		return color256(r, g, b);
	default:
		/* ANSI order: bit 0 red, bit 1 green, bit 2 blue */
		return (r >= 128) | (g >= 128) << 1 | (b >= 128) << 2;
	}
}

void halfblock_draw(struct palette *p, int y, int x, const float *pix, int h,
		    int w, int scale)
{
	static const wchar_t shades[] = { L' ', L'░', L'▒', L'▓', L'█' };
	int cols = halfblock_cols(w, scale), ph = h / (scale > 0 ? scale : 1);
	int row, col;

	if (!pix || scale < 1)
		return;
	for (row = 0; 2 * row < ph; row++) {
		int top = 2 * row, bot = 2 * row + 1;

		if (y + row < 0 || y + row >= LINES)
			continue;
		for (col = 0; col < cols && x + col < COLS; col++) {
			int r1 = sample(pix, h, w, 0, top, col, scale);
			int g1 = sample(pix, h, w, 1, top, col, scale);
			int b1 = sample(pix, h, w, 2, top, col, scale);
			int r2 = r1, g2 = g1, b2 = b1, fg, bg, pair;

			if (x + col < 0)
				continue;
			if (bot < ph) {
				r2 = sample(pix, h, w, 0, bot, col, scale);
				g2 = sample(pix, h, w, 1, bot, col, scale);
				b2 = sample(pix, h, w, 2, bot, col, scale);
			}
			if (p->mode == CM_MONO) {
				/* Rec. 601 luma of the two pixels, in 5 shades */
				int l = (299 * (r1 + r2) + 587 * (g1 + g2) + 114 * (b1 + b2)) / 2000;

				draw_wch_pair(y + row, x + col, shades[(l * 5) / 256], 0, 0);
				continue;
			}
			fg = terminal_color(p->curses_mode, r1, g1, b1);
			bg = terminal_color(p->curses_mode, r2, g2, b2);
			pair = draw_pair(p, fg, bg);
			if (!pair)	/* out of pairs this frame: the upper pixel only */
				pair = draw_pair(p, fg, fg);
			if (p->mode == CM_DIRECT)
				draw_rgb_cell(p, y + row, x + col, pair,
					      (uint32_t)(r1 << 16 | g1 << 8 | b1),
					      (uint32_t)(r2 << 16 | g2 << 8 | b2));
			else
				draw_wch_pair(y + row, x + col, L'▀', pair, 0);
		}
	}
}
