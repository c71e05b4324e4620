/* plot.h - line plots in braille dots: each cell holds 2 x 4 dots, so a
 * w x h panel plots 2w x 4h points - the loss per iteration, one series or
 * several overlaid (Compare). */
#ifndef ADVEX_TUI_PLOT_H
#define ADVEX_TUI_PLOT_H

#include "draw.h"

struct plot_series {
	const double *y;	/* y[i] at x = i; a non-finite value leaves a gap */
	int n;
	enum role role;		/* its colour; where series cross, the later wins */
};

/* Plot ns series in the h x w area at (y, x): y-axis labels in the left
 * columns, x-axis labels (0 .. xmax) on the bottom row. The y range covers
 * every finite value. cursor >= 0 draws a dim vertical marker at that x.
 * Writes "no finite values" when there is nothing to plot. */
void plot_draw(struct palette *p, int y, int x, int h, int w,
	       const struct plot_series *s, int ns, int xmax, int cursor);

#endif
