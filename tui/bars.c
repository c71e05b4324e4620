/* bars.c - eighth-block bars (see bars.h). */
#include "bars.h"

#include <math.h>

static double clamp01(double v)
{
	return !(v > 0.0) ? 0.0 : v > 1.0 ? 1.0 : v;
}

void bars_h(struct palette *p, int y, int x, int w, double frac, enum role r,
	    int track)
{
	/* index = eighths filled in the cell */
	static const wchar_t part[8] = { L' ', L'▏', L'▎', L'▍', L'▌', L'▋', L'▊', L'▉' };
	long eighths = lround(clamp01(frac) * 8.0 * w);
	int i;

	for (i = 0; i < w; i++) {
		long left = eighths - 8L * i;

		if (left >= 8)
			draw_wch(p, y, x + i, L'█', r);
		else if (left > 0)
			draw_wch(p, y, x + i, part[left], r);
		else if (track)
			draw_wch(p, y, x + i, L'·', R_DIM);
	}
}

void bars_v(struct palette *p, int y, int x, int h, int cw, double frac,
	    enum role r)
{
	static const wchar_t part[8] = { L' ', L'▁', L'▂', L'▃', L'▄', L'▅', L'▆', L'▇' };
	long eighths = lround(clamp01(frac) * 8.0 * h);
	int i, j;

	if (frac > 0.0 && eighths == 0)
		eighths = 1;
	for (i = 0; i < h; i++) {
		long left = eighths - 8L * i;	/* row i counted from the bottom */
		wchar_t ch = left >= 8 ? L'█' : left > 0 ? part[left] : 0;

		if (!ch)
			break;
		for (j = 0; j < cw; j++)
			draw_wch(p, y + h - 1 - i, x + j, ch, r);
	}
}
