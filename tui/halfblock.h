/* halfblock.h - images in the terminal with half blocks: each cell is
 * '▀' with the upper pixel as foreground and the lower as background, so a
 * 96x96 image takes 96 columns x 48 rows at full size (cells are about
 * twice as tall as wide, so the picture keeps its shape). Colour as the
 * palette's mode allows: 24-bit, the 256-colour cube, 8 colours, or
 * shading characters (░▒▓█) without colour.
 */
#ifndef ADVEX_TUI_HALFBLOCK_H
#define ADVEX_TUI_HALFBLOCK_H

#include "draw.h"

/* Columns and rows an h x w image takes when shrunk by scale (1 = full,
 * 2 = half, ...: each screen pixel averages scale x scale pixels). */
int halfblock_cols(int w, int scale);
int halfblock_rows(int h, int scale);

/* Draw pix (3, h, w planar, values in [0,1]; NaN shown as black) with its
 * top-left cell at (y, x), clipped to the screen. */
void halfblock_draw(struct palette *p, int y, int x, const float *pix, int h,
		    int w, int scale);

#endif
