/* draw.h - what every screen draws with: the terminal's colour mode,
 * colour roles (one curses pair each, or attributes under NO_COLOR), a
 * cache of extended colour pairs for image cells, and text clipped to a
 * width in display columns.
 *
 * All of it calls curses, so all of it runs on the UI thread. The palette
 * mirrors the terminal's pair table, so there is one per terminal; the app
 * owns it and hands it to every draw function.
 */
#ifndef ADVEX_TUI_DRAW_H
#define ADVEX_TUI_DRAW_H

/* the wide-character curses API, whatever the pkg-config flags say */
#ifndef NCURSES_WIDECHAR
#define NCURSES_WIDECHAR 1
#endif
#include <curses.h>
#include <stddef.h>
#include <stdint.h>

/* How images and bars get their colour, best first. */
enum color_mode {
	CM_DIRECT,	/* 24-bit RGB: the terminal says so (tigetflag("RGB")),
			   or COLORTERM / ADVEX_COLOR do where terminfo does
			   not (then the explorer writes the SGR itself) */
	CM_256,		/* the xterm 6x6x6 cube and grey ramp */
	CM_8,		/* the 8 ANSI colours */
	CM_MONO		/* no colour (NO_COLOR, or a monochrome terminal):
			   attributes and shading characters */
};

/* What a piece of text is, not what colour it has. */
enum role {
	R_NORMAL, R_TITLE, R_TAB, R_TAB_ON, R_STATUS, R_SELECT, R_HEADER,
	R_DIM, R_KEY, R_TRUE, R_TARGET, R_PRED, R_GOOD, R_BAD, R_WARN, R_BAR,
	R_PLOT, R_ZERO, R_NAN, R_BOX,
	R_SERIES0, R_SERIES1, R_SERIES2, R_SERIES3, R_SERIES4, R_SERIES5,
	R_N
};
#define N_SERIES 6

/* An image cell in 24-bit colour, 0xRRGGBB upper and lower pixel. */
struct rgb_cell {
	uint32_t fg, bg;
	int pair;			/* the 256-colour pair curses drew it with */
	int set;
};

struct palette {
	enum color_mode mode;
	/* CM_DIRECT on a terminfo entry without RGB (xterm-256color under
	 * COLORTERM=truecolor): curses draws everything in curses_mode, and
	 * after each update the image cells are written again with 38;2 /
	 * 48;2 SGR (btop does the same) */
	int emulate;
	enum color_mode curses_mode;	/* what curses itself is told */
	struct rgb_cell *want, *shown;	/* LINES x COLS: this frame, on screen */
	int cells_h, cells_w;
	int repaint;			/* the terminal is redrawn whole */
	char *out;			/* the SGR written after an update */
	size_t out_cap;
	attr_t role_attr[R_N];		/* attributes of each role */
	int role_pair[R_N];		/* its colour pair, 0 in CM_MONO */
	int role_fg[R_N];		/* its foreground colour, -1: default */
	/* image cells: (fg, bg) -> pair, open addressing */
	uint64_t *keys;			/* fg << 32 | bg, plus 1; 0: empty */
	int *pairs;
	size_t slots;			/* power of two */
	int first_pair, next_pair, max_pair;
	int reset_due;			/* the cache filled up: start over
					   at the next frame */
};

/* Decide the colour mode (NO_COLOR, then $ADVEX_COLOR = direct, 256, 8 or
 * mono to force one, then what the terminal says) and set up the role
 * pairs. After initscr. Returns 0, or -1 when out of memory. */
int draw_init(struct palette *p);
void draw_free(struct palette *p);
const char *draw_mode_name(enum color_mode m);

/* Call before drawing a frame: empties the pair cache when it filled up
 * (every cell is redrawn each frame, so no stale pair stays on screen). */
void draw_frame_begin(struct palette *p);

/* An image cell: '▀' with fg over bg (0xRRGGBB each) in CM_DIRECT; pair
 * is the one curses draws it with (the cell's own in a terminal with RGB,
 * a 256-colour stand-in while emulating). */
void draw_rgb_cell(struct palette *p, int y, int x, int pair, uint32_t fg, uint32_t bg);
/* Put the frame on the terminal (wnoutrefresh + doupdate), then, while
 * emulating direct colour, write the image cells curses may have touched
 * or that changed. */
void draw_frame_end(struct palette *p);
/* The terminal will be repainted whole (Ctrl-L, a resize). */
void draw_invalidate(struct palette *p);

/* The pair for foreground fg over background bg (terminal colour numbers,
 * or 0xRRGGBB in CM_DIRECT); 0 when the terminal has no pair left. */
int draw_pair(struct palette *p, int fg, int bg);

/* Text at (y, x), formatted, clipped to w display columns (an ellipsis
 * marks a cut). Returns the columns used. */
int draw_text(struct palette *p, int y, int x, int w, enum role r,
	      const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* The same, padded with spaces to exactly w columns. */
int draw_textpad(struct palette *p, int y, int x, int w, enum role r,
		 const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Display width of a UTF-8 string. */
int draw_width(const char *s);
/* One character with a role, or with an explicit pair (0: none). */
void draw_wch(struct palette *p, int y, int x, wchar_t ch, enum role r);
void draw_wch_pair(int y, int x, wchar_t ch, int pair, attr_t a);
/* w columns of spaces in a role. */
void draw_fill(struct palette *p, int y, int x, int w, enum role r);
/* A light box with a title in its top edge. */
void draw_box(struct palette *p, int y, int x, int h, int w, const char *title);
/* A box with everything inside cleared (for overlays). */
void draw_panel(struct palette *p, int y, int x, int h, int w, const char *title);
/* Word-wrap s into at most max_rows rows of w columns from (y, x).
 * Returns the rows used. */
int draw_wrap(struct palette *p, int y, int x, int w, int max_rows, enum role r,
	      const char *s);

/* A value in pixel units the way people write it: "8/255" when it is a
 * whole number of 255ths (and small), else %.4g. */
void draw_pixval(char *buf, size_t n, double v);

#endif
