/* sweepcurve.h - the success rate versus epsilon of every sweep in the run
 * log (db/runs.h runs_sweep, the numbers of `advex runs sweep`) as braille
 * lines, for the Compare screen. Read once when the screen opens, drawn on
 * every frame. */
#ifndef ADVEX_TUI_SWEEPCURVE_H
#define ADVEX_TUI_SWEEPCURVE_H

#include "draw.h"

struct db;
struct sweepcurve;

/* Read the log's sweeps (at most N_SERIES of them). *out is NULL with a
 * message in err when the log cannot be read; a log without finished runs
 * gives a curve that draws "no sweeps". */
int sweepcurve_new(struct db *db, struct sweepcurve **out, char *err);
void sweepcurve_free(struct sweepcurve *c);

/* A box with the curves in the h x w area at (y, x): success rate (%) on
 * the y axis, epsilon times 255 (or 2550, ... for small ones) on the x
 * axis, one line per sweep in the series colours, and its legend. */
void sweepcurve_draw(struct sweepcurve *c, struct palette *p, int y, int x,
		     int h, int w);

#endif
