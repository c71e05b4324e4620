/* bars.h - bars drawn with the eighth-block characters: horizontal bars
 * (probabilities) with ▏▎▍▌▋▊▉█ and vertical bars (histograms, layer
 * norms) with ▁▂▃▄▅▆▇█, so a bar's length resolves to 1/8 of a cell. */
#ifndef ADVEX_TUI_BARS_H
#define ADVEX_TUI_BARS_H

#include "draw.h"

/* A bar w columns wide from (y, x), filled to frac in [0, 1]; a faint
 * track marks the empty part when track is set. */
void bars_h(struct palette *p, int y, int x, int w, double frac, enum role r,
	    int track);

/* A bar cw columns wide and h rows tall whose bottom row is y + h - 1,
 * filled to frac in [0, 1]. A non-zero frac shows at least 1/8 row. */
void bars_v(struct palette *p, int y, int x, int h, int cw, double frac,
	    enum role r);

#endif
