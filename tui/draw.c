/* draw.c - colour modes, role pairs, the image pair cache and clipped
 * text (see draw.h). */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700	/* wcwidth, when ncursesw's flags do not ask */
#endif
#include "draw.h"
#include "printable.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <term.h>
#include <unistd.h>
#include <wchar.h>

/* ---- colour mode ------------------------------------------------------------ */

const char *draw_mode_name(enum color_mode m)
{
	switch (m) {
	case CM_DIRECT: return "direct colour";
	case CM_256: return "256 colours";
	case CM_8: return "8 colours";
	default: return "no colour";
	}
}

/* COLORTERM says 24-bit colour works whatever terminfo says (most
 * terminals set it; terminfo entries with RGB are rare). */
static int colorterm_direct(void)
{
	const char *ct = getenv("COLORTERM");

	return ct && (!strcmp(ct, "truecolor") || !strcmp(ct, "24bit"));
}

static enum color_mode detect_mode(int *emulate)
{
	const char *force = getenv("ADVEX_COLOR");
	int rgb;

	*emulate = 0;
	/* no-color.org: present means off, whatever the value */
	if (getenv("NO_COLOR") || !has_colors())
		return CM_MONO;
	if (force && !strcmp(force, "mono"))
		return CM_MONO;
	if (start_color() == ERR)
		return CM_MONO;
	use_default_colors();
	if (force && !strcmp(force, "8"))
		return CM_8;
	if (force && !strcmp(force, "256") && COLORS >= 256)
		return CM_256;
	rgb = tigetflag("RGB");
	if (COLORS >= 0x1000000 && (rgb > 0 || (force && !strcmp(force, "direct"))))
		return CM_DIRECT;
	if ((force && !strcmp(force, "direct")) || (!force && colorterm_direct())) {
		*emulate = 1;
		return CM_DIRECT;
	}
	if (COLORS >= 256)
		return CM_256;
	return COLORS >= 8 ? CM_8 : CM_MONO;
}

/* A mid grey that reads as "dim" in each mode. */
static int grey(enum color_mode m)
{
	return m == CM_DIRECT ? 0x8a8a8a : m == CM_256 ? 245 : COLOR_WHITE;
}

/* The bar colour behind the title and status lines. */
static int band(enum color_mode m)
{
	return m == CM_DIRECT ? 0x1c3a5e : m == CM_256 ? 24 : COLOR_BLUE;
}

static void set_role(struct palette *p, enum role r, int fg, int bg, attr_t a)
{
	p->role_attr[r] = a;
	p->role_fg[r] = fg;
	if (p->mode == CM_MONO) {
		p->role_pair[r] = 0;
		return;
	}
	p->role_pair[r] = (int)r;
	init_extended_pair((int)r, fg, bg);
}

static void mono_roles(struct palette *p)
{
	static const attr_t a[R_N] = {
		[R_TITLE] = A_REVERSE | A_BOLD, [R_TAB] = A_REVERSE,
		[R_TAB_ON] = A_BOLD | A_UNDERLINE, [R_STATUS] = A_REVERSE,
		[R_SELECT] = A_REVERSE, [R_HEADER] = A_BOLD | A_UNDERLINE,
		[R_DIM] = A_DIM, [R_KEY] = A_BOLD, [R_TRUE] = A_BOLD,
		[R_TARGET] = A_UNDERLINE, [R_PRED] = A_BOLD, [R_GOOD] = A_BOLD,
		[R_BAD] = A_BOLD, [R_WARN] = A_BOLD, [R_ZERO] = A_BOLD,
		[R_NAN] = A_BOLD, [R_SERIES1] = A_BOLD, [R_SERIES2] = A_DIM,
	};
	int r;

	for (r = 0; r < R_N; r++)
		set_role(p, (enum role)r, -1, -1, a[r]);
}

static void color_roles(struct palette *p)
{
	enum color_mode m = p->curses_mode;
	int g = grey(m), b = band(m);
	int sel = m == CM_DIRECT ? 0x2f5f87 : m == CM_256 ? 31 : COLOR_CYAN;

	set_role(p, R_NORMAL, -1, -1, 0);
	set_role(p, R_TITLE, COLOR_WHITE, b, A_BOLD);
	set_role(p, R_TAB, COLOR_WHITE, b, 0);
	set_role(p, R_TAB_ON, COLOR_BLACK, COLOR_CYAN, A_BOLD);
	set_role(p, R_STATUS, COLOR_WHITE, b, 0);
	set_role(p, R_SELECT, COLOR_WHITE, sel, A_BOLD);
	set_role(p, R_HEADER, COLOR_YELLOW, -1, A_BOLD);
	set_role(p, R_DIM, g, -1, m == CM_8 ? A_DIM : 0);
	set_role(p, R_KEY, COLOR_CYAN, -1, A_BOLD);
	set_role(p, R_TRUE, COLOR_GREEN, -1, A_BOLD);
	set_role(p, R_TARGET, COLOR_MAGENTA, -1, A_BOLD);
	set_role(p, R_PRED, COLOR_YELLOW, -1, A_BOLD);
	set_role(p, R_GOOD, COLOR_GREEN, -1, A_BOLD);
	set_role(p, R_BAD, COLOR_RED, -1, A_BOLD);
	set_role(p, R_WARN, COLOR_YELLOW, -1, A_BOLD);
	set_role(p, R_BAR, COLOR_CYAN, -1, 0);
	set_role(p, R_PLOT, COLOR_CYAN, -1, A_BOLD);
	set_role(p, R_ZERO, COLOR_RED, -1, A_BOLD);
	set_role(p, R_NAN, COLOR_MAGENTA, -1, A_BOLD);
	set_role(p, R_BOX, g, -1, 0);
	set_role(p, R_SERIES0, COLOR_CYAN, -1, A_BOLD);
	set_role(p, R_SERIES1, COLOR_YELLOW, -1, A_BOLD);
	set_role(p, R_SERIES2, COLOR_MAGENTA, -1, A_BOLD);
	set_role(p, R_SERIES3, COLOR_GREEN, -1, A_BOLD);
	set_role(p, R_SERIES4, COLOR_RED, -1, A_BOLD);
	set_role(p, R_SERIES5, COLOR_BLUE, -1, A_BOLD);
}

int draw_init(struct palette *p)
{
	size_t need;

	memset(p, 0, sizeof *p);
	p->mode = detect_mode(&p->emulate);
	p->curses_mode = !p->emulate ? p->mode : COLORS >= 256 ? CM_256 : CM_8;
	if (p->mode == CM_MONO) {
		mono_roles(p);
		return 0;
	}
	color_roles(p);
	p->first_pair = R_N;
	p->next_pair = R_N;
	p->max_pair = COLOR_PAIRS - 1;
	if (p->max_pair < p->first_pair)
		p->max_pair = p->first_pair - 1;	/* no room: images get none */
	need = 2 * (size_t)(p->max_pair - p->first_pair + 2);
	for (p->slots = 64; p->slots < need; p->slots *= 2)
		;
	p->keys = calloc(p->slots, sizeof *p->keys);
	p->pairs = calloc(p->slots, sizeof *p->pairs);
	return p->keys && p->pairs ? 0 : -1;
}

void draw_free(struct palette *p)
{
	free(p->keys);
	free(p->pairs);
	free(p->want);
	free(p->shown);
	free(p->out);
	p->keys = NULL;
	p->pairs = NULL;
	p->want = p->shown = NULL;
	p->out = NULL;
}

void draw_invalidate(struct palette *p)
{
	p->repaint = 1;
}

/* The cell arrays at the terminal's size; 0, or -1 (then nothing is
 * emulated this frame and the 256-colour stand-ins stay). */
static int size_cells(struct palette *p)
{
	size_t n = (size_t)LINES * COLS;

	if (p->want && p->cells_h == LINES && p->cells_w == COLS)
		return 0;
	free(p->want);
	free(p->shown);
	p->want = calloc(n ? n : 1, sizeof *p->want);
	p->shown = calloc(n ? n : 1, sizeof *p->shown);
	if (!p->want || !p->shown) {
		free(p->want);
		free(p->shown);
		p->want = p->shown = NULL;
		return -1;
	}
	p->cells_h = LINES;
	p->cells_w = COLS;
	p->repaint = 1;
	return 0;
}

void draw_rgb_cell(struct palette *p, int y, int x, int pair, uint32_t fg, uint32_t bg)
{
	draw_wch_pair(y, x, L'▀', pair, 0);
	if (!p->emulate || !p->want || p->cells_h != LINES || p->cells_w != COLS ||
	    y < 0 || y >= LINES || x < 0 || x >= COLS)
		return;
	p->want[(size_t)y * COLS + x] = (struct rgb_cell){ fg, bg, pair, 1 };
}

static int out_add(struct palette *p, size_t *len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int out_add(struct palette *p, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->out_cap - *len < 64) {
		size_t cap = p->out_cap ? 2 * p->out_cap : 65536;
		char *o = realloc(p->out, cap);

		if (!o)
			return -1;
		p->out = o;
		p->out_cap = cap;
	}
	va_start(ap, fmt);
	n = vsnprintf(p->out + *len, p->out_cap - *len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= p->out_cap - *len)
		return -1;
	*len += (size_t)n;
	return 0;
}

/* Every byte to the terminal (stdout is blocking). */
static void out_write(const char *b, size_t n)
{
	while (n) {
		ssize_t w = write(STDOUT_FILENO, b, n);

		if (w <= 0)
			return;
		b += w;
		n -= (size_t)w;
	}
}

void draw_frame_end(struct palette *p)
{
	size_t len = 0, i;
	unsigned char *touched;
	int y, x, ly = -1, lx = -1, lfg = -1, lbg = -1;

	wnoutrefresh(stdscr);
	if (!p->emulate || !p->want || p->cells_h != LINES || p->cells_w != COLS) {
		doupdate();
		return;
	}
	touched = calloc((size_t)LINES, 1);
	for (y = 0; y < LINES; y++) {
		/* ncurses rewrites unchanged cells between changed ones where
		 * that is cheaper than moving the cursor: on a line it
		 * touches, every image cell may have lost its colour */
		if (touched)
			touched[y] = (unsigned char)(p->repaint || is_linetouched(newscr, y));
		for (x = 0; x < COLS; x++) {
			struct rgb_cell *c = &p->want[(size_t)y * COLS + x];
			cchar_t cc;
			wchar_t wc[CCHARW_MAX + 1];
			attr_t at;
			short sp;
			int pair = 0;

			if (!c->set)
				continue;
			/* covered since (help, a dialog): not an image cell now */
			if (mvwin_wch(newscr, y, x, &cc) == ERR ||
			    getcchar(&cc, wc, &at, &sp, &pair) == ERR || wc[0] != L'▀' ||
			    pair != c->pair)
				c->set = 0;
		}
	}
	doupdate();
	for (y = 0; y < LINES; y++)
		for (x = 0; x < COLS; x++) {
			i = (size_t)y * COLS + x;
			struct rgb_cell *w = &p->want[i], *s = &p->shown[i];

			if (w->set && (!touched || touched[y] || !s->set || s->fg != w->fg ||
				       s->bg != w->bg)) {
				if ((ly != y || lx != x) &&
				    out_add(p, &len, "\033[%d;%dH", y + 1, x + 1))
					goto done;
				if (((int)w->fg != lfg || (int)w->bg != lbg) &&
				    out_add(p, &len, "\033[38;2;%u;%u;%u;48;2;%u;%u;%um",
					    w->fg >> 16, (w->fg >> 8) & 255, w->fg & 255,
					    w->bg >> 16, (w->bg >> 8) & 255, w->bg & 255))
					goto done;
				if (out_add(p, &len, "▀"))
					goto done;
				ly = y;
				lx = x + 1;
				lfg = (int)w->fg;
				lbg = (int)w->bg;
			}
			*s = *w;
		}
	/* back where doupdate left the cursor (curscr's position), so
	 * curses' next relative moves start from where it really is */
	getyx(curscr, y, x);
	if (len && !out_add(p, &len, "\033[0m\033[%d;%dH", y + 1, x + 1))
		out_write(p->out, len);
	free(touched);
	p->repaint = 0;
	return;
done:
	/* out of memory: the stand-ins stay; try every cell next frame */
	free(touched);
	p->repaint = 1;
}

void draw_frame_begin(struct palette *p)
{
	/* start over before the cache is full, so a frame rarely runs out */
	/* sized before drawing, so a frame after a resize records its cells */
	if (p->emulate)
		size_cells(p);
	if (p->want)
		memset(p->want, 0, sizeof *p->want * (size_t)p->cells_h * p->cells_w);
	if (p->keys && (p->reset_due ||
			p->next_pair - p->first_pair > (p->max_pair - p->first_pair) * 3 / 4)) {
		memset(p->keys, 0, p->slots * sizeof *p->keys);
		p->next_pair = p->first_pair;
		p->reset_due = 0;
	}
}

int draw_pair(struct palette *p, int fg, int bg)
{
	uint64_t key = ((uint64_t)(uint32_t)fg << 32 | (uint32_t)bg) + 1;
	size_t mask, i;

	if (!p->keys)
		return 0;
	mask = p->slots - 1;
	i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & mask;
	while (p->keys[i]) {
		if (p->keys[i] == key)
			return p->pairs[i];
		i = (i + 1) & mask;
	}
	if (p->next_pair > p->max_pair) {
		p->reset_due = 1;
		return 0;
	}
	if (init_extended_pair(p->next_pair, fg, bg) == ERR)
		return 0;
	p->keys[i] = key;
	p->pairs[i] = p->next_pair;
	return p->next_pair++;
}

/* ---- text ------------------------------------------------------------------- */

/* UTF-8 to wide characters (invalid bytes become '?'). */
static size_t to_wide(const char *s, wchar_t *out, size_t max)
{
	mbstate_t st;
	size_t n = 0, len = strlen(s);

	memset(&st, 0, sizeof st);
	while (len && n + 1 < max) {
		wchar_t wc;
		size_t k = mbrtowc(&wc, s, len, &st);

		if (k == (size_t)-1 || k == (size_t)-2) {
			memset(&st, 0, sizeof st);
			wc = L'?';
			k = 1;
		} else if (k == 0) {
			break;
		}
		out[n++] = wc == L'\t' || wc == L'\n' ? L' ' : wc;
		s += k;
		len -= k;
	}
	out[n] = 0;
	return n;
}

static int wc_cols(wchar_t c)
{
	int w = wcwidth(c);

	return w < 0 ? 1 : w;
}

int draw_width(const char *s)
{
	wchar_t wb[2048];
	char shown[2048];
	size_t n, i;
	int w = 0;

	/* the width of what draw_text shows: a control character in a name
	 * from a file is drawn as \xNN, four columns, not one */
	printable_escape(s, shown, sizeof shown);
	n = to_wide(shown, wb, sizeof wb / sizeof wb[0]);

	for (i = 0; i < n; i++)
		w += wc_cols(wb[i]);
	return w;
}

static void role_on(struct palette *p, enum role r)
{
	int pair = p->role_pair[r];

	attr_set(p->role_attr[r], (short)pair, &pair);
}

/* Draw wide text clipped to w columns; pad with spaces to w when pad. */
static int put_wide(struct palette *p, int y, int x, int w, enum role r,
		    const wchar_t *s, size_t n, int pad)
{
	int used = 0, total = 0;
	size_t i, cut = n;

	if (y < 0 || y >= LINES || x >= COLS || w <= 0)
		return 0;
	if (x + w > COLS)
		w = COLS - x;
	for (i = 0; i < n; i++)
		total += wc_cols(s[i]);
	if (total > w) {
		/* keep what fits in w - 1 columns, then an ellipsis */
		for (i = 0, used = 0; i < n && used + wc_cols(s[i]) <= w - 1; i++)
			used += wc_cols(s[i]);
		cut = i;
	} else {
		used = total;
	}
	role_on(p, r);
	if (cut)
		mvaddnwstr(y, x, s, (int)cut);
	else
		move(y, x);
	if (total > w) {
		addnwstr(L"…", 1);
		used++;
	}
	for (; pad && used < w; used++)
		addch(' ');
	attr_set(A_NORMAL, 0, NULL);
	return used;
}

static int vdraw(struct palette *p, int y, int x, int w, enum role r, int pad,
		 const char *fmt, va_list ap)
{
	char buf[2048], shown[2048];
	wchar_t wb[2048];
	size_t n;

	vsnprintf(buf, sizeof buf, fmt, ap);
	/* class names, sources and paths come from files: a control
	 * character would move the cursor or start an escape sequence */
	printable_escape(buf, shown, sizeof shown);
	n = to_wide(shown, wb, sizeof wb / sizeof wb[0]);
	return put_wide(p, y, x, w, r, wb, n, pad);
}

int draw_text(struct palette *p, int y, int x, int w, enum role r,
	      const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vdraw(p, y, x, w, r, 0, fmt, ap);
	va_end(ap);
	return n;
}

int draw_textpad(struct palette *p, int y, int x, int w, enum role r,
		 const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vdraw(p, y, x, w, r, 1, fmt, ap);
	va_end(ap);
	return n;
}

void draw_wch_pair(int y, int x, wchar_t ch, int pair, attr_t a)
{
	wchar_t s[2] = { ch, 0 };
	cchar_t cc;

	if (y < 0 || y >= LINES || x < 0 || x >= COLS)
		return;
	setcchar(&cc, s, a, (short)(pair < 0x7fff ? pair : 0), &pair);
	mvadd_wch(y, x, &cc);
}

void draw_wch(struct palette *p, int y, int x, wchar_t ch, enum role r)
{
	draw_wch_pair(y, x, ch, p->role_pair[r], p->role_attr[r]);
}

void draw_fill(struct palette *p, int y, int x, int w, enum role r)
{
	draw_textpad(p, y, x, w, r, "%s", "");
}

void draw_box(struct palette *p, int y, int x, int h, int w, const char *title)
{
	int i;

	if (h < 2 || w < 2)
		return;
	draw_wch(p, y, x, L'╭', R_BOX);
	draw_wch(p, y, x + w - 1, L'╮', R_BOX);
	draw_wch(p, y + h - 1, x, L'╰', R_BOX);
	draw_wch(p, y + h - 1, x + w - 1, L'╯', R_BOX);
	for (i = 1; i < w - 1; i++) {
		draw_wch(p, y, x + i, L'─', R_BOX);
		draw_wch(p, y + h - 1, x + i, L'─', R_BOX);
	}
	for (i = 1; i < h - 1; i++) {
		draw_wch(p, y + i, x, L'│', R_BOX);
		draw_wch(p, y + i, x + w - 1, L'│', R_BOX);
	}
	if (title && *title && w > 6)
		draw_text(p, y, x + 2, w - 4, R_HEADER, " %s ", title);
}

void draw_panel(struct palette *p, int y, int x, int h, int w, const char *title)
{
	int i;

	for (i = 0; i < h; i++)
		draw_fill(p, y + i, x, w, R_NORMAL);
	draw_box(p, y, x, h, w, title);
}

int draw_wrap(struct palette *p, int y, int x, int w, int max_rows, enum role r,
	      const char *s)
{
	wchar_t wb[2048];
	size_t n = to_wide(s, wb, sizeof wb / sizeof wb[0]), i = 0;
	int rows = 0;

	while (i < n && rows < max_rows) {
		size_t start = i, brk = 0;
		int cols = 0;

		while (i < n && cols + wc_cols(wb[i]) <= w) {
			if (wb[i] == L' ')
				brk = i;
			cols += wc_cols(wb[i]);
			i++;
		}
		if (i < n && brk > start && rows + 1 < max_rows)
			i = brk + 1;	/* break at the last space */
		if (rows + 1 == max_rows && i < n) {
			put_wide(p, y + rows, x, w, r, wb + start, n - start, 0);
			return rows + 1;
		}
		put_wide(p, y + rows, x, w, r, wb + start,
			 (i < n && wb[i - 1] == L' ') ? i - start - 1 : i - start, 0);
		rows++;
	}
	return rows;
}

void draw_pixval(char *buf, size_t n, double v)
{
	double k = v * 255.0;

	if (fabs(k - floor(k + 0.5)) < 1e-6 && k >= 0.5 && k <= 255.5)
		snprintf(buf, n, "%.0f/255", k);
	else if (fabs(2 * k - floor(2 * k + 0.5)) < 1e-6 && k > 0 && k < 255)
		snprintf(buf, n, "%.1f/255", k);
	else
		snprintf(buf, n, "%.4g", v);
}
