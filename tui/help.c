/* help.c - the Help overlay (? or F1): every key, by screen. */
#include "tui.h"

#include <string.h>

struct key_help {
	const char *key;	/* NULL: a section title in desc */
	const char *desc;
};

static const struct key_help keys[] = {
	{ NULL, "Everywhere" },
	{ "Tab S-Tab", "next / previous screen" },
	{ "1 2 3 4 5", "the five screens" },
	{ "? F1", "this help (Esc closes)" },
	{ "q", "quit (asks if running)" },
	{ "Ctrl-L", "redraw" },
	{ "mouse", "click tabs, keys, rows; wheel" },
	{ NULL, "Browse" },
	{ "↑↓ jk", "move" },
	{ "←→ hl", "page (grid: move)" },
	{ "PgUp PgDn", "page" },
	{ "Home End G", "first / last" },
	{ "f F", "class filter" },
	{ "m", "misclassified only" },
	{ "v", "list / thumbnail grid" },
	{ "g : /", "an image index or a class name" },
	{ "Enter", "attack this image" },
	{ NULL, "Attack" },
	{ "n", "one step (pauses a run)" },
	{ "Space", "run to the end / pause" },
	{ "r", "reset to the clean image" },
	{ "e", "export adversarial PNG" },
	{ "a A", "fgsm bim (I-FGSM) pgd mifgsm" },
	{ "l L", "ce prob-ce prob-naive cw" },
	{ "o", "norm L∞ / L2" },
	{ "t T", "target class / none" },
	{ "+ -", "ε by 1/255 (L2: 0.1)" },
	{ "] [", "α by 0.5/255 (L2: 0.01)" },
	{ "i I", "more / fewer iterations" },
	{ "m M", "MI-FGSM momentum ±0.1" },
	{ "x", "early stop on success" },
	{ "b", "bars: log / linear" },
	{ "d", "switch panels (80x24)" },
	{ NULL, "Replay (Enter in Runs)" },
	{ "←→ hl", "previous / next step" },
	{ "Home End", "first / last step" },
	{ "Esc", "back to Runs" },
	{ NULL, "Runs" },
	{ "↑↓ jk", "move; PgUp PgDn Home End" },
	{ "Enter", "replay the run" },
	{ "Space", "mark; u unmarks all" },
	{ "c", "compare the marked runs" },
	{ "s S", "sort column / reverse" },
	{ "f", "status filter" },
	{ "/", "text filter (as you type)" },
	{ "←→ hl", "scroll the columns" },
	{ "R D", "reload; delete the run" },
	{ NULL, "Compare" },
	{ "Esc", "back to Runs" },
	{ NULL, "Audit" },
	{ "u", "audit the open image" },
	{ "U", "audit a range A:B" },
	{ "x", "stop the audit" },
	{ "↑↓ jk", "choose a check" },
	{ "Enter", "replay its first flagged run" },
};

#define N_KEYS (int)(sizeof keys / sizeof keys[0])

/* Is section title t one to show on screen s when space is short? */
static int wanted(const char *t, enum screen_id s)
{
	static const char *const names[SCREEN_N] = { "Browse", "Attack", "Runs", "Compare",
						     "Audit" };

	return !strcmp(t, "Everywhere") || !strcmp(t, names[s]) ||
		(s == SCREEN_ATTACK && !strncmp(t, "Replay", 6));
}

/* Lay the picked entries out in columns; draw them when draw is set.
 * Returns the rows the tallest column takes. */
static int layout(struct app *a, const int *pick, int n, int cols, int colw, int y, int x,
		  int max_rows, int draw)
{
	struct palette *p = &a->pal;
	int per_col = (n + cols - 1) / cols, i, c = 0, row = 0, tallest = 0;

	for (i = 0; i < n; i++) {
		const struct key_help *k = &keys[pick[i]];
		int cy, cx;

		/* a full column continues in the next; a title near the end
		 * of one moves there with its keys */
		if (c < cols - 1 && (row >= per_col || (row >= per_col - 2 && !k->key))) {
			c++;
			row = 0;
		}
		cy = y + row;
		cx = x + c * colw;
		row++;
		if (row > tallest)
			tallest = row;
		if (!draw || row > max_rows)
			continue;
		if (!k->key) {
			draw_text(p, cy, cx, colw - 2, R_HEADER, "%s", k->desc);
		} else {
			draw_text(p, cy, cx, 11, R_KEY, "%-11s", k->key);
			draw_text(p, cy, cx + 11, colw - 13, R_NORMAL, "%s", k->desc);
		}
	}
	return tallest;
}

void help_draw(struct app *a)
{
	struct palette *p = &a->pal;
	int cols = COLS >= 140 ? 3 : COLS >= 80 ? 2 : 1;
	int colw = 46, w, h, x, y, i, n = 0, show = 1, rows, all = 1;
	int pick[N_KEYS];

	if (cols * colw + 4 > COLS - 2)
		colw = (COLS - 4) / cols;
	for (i = 0; i < N_KEYS; i++)
		pick[n++] = i;
	rows = layout(a, pick, n, cols, colw, 0, 0, 0, 0);
	if (rows > LINES - 7) {
		/* short of rows: this screen's keys and the global ones */
		all = 0;
		for (i = 0, n = 0; i < N_KEYS; i++) {
			if (!keys[i].key)
				show = wanted(keys[i].desc, a->screen);
			if (show)
				pick[n++] = i;
		}
		rows = layout(a, pick, n, cols, colw, 0, 0, 0, 0);
	}
	h = rows + 4 < LINES - 2 ? rows + 4 : LINES - 2;
	w = COLS < 100 ? COLS : cols * colw + 4;
	x = (COLS - w) / 2;
	y = (LINES - h) / 2;
	draw_panel(p, y, x, h, w, "Help · Esc closes");
	layout(a, pick, n, cols, colw, y + 1, x + 2, h - 3, 1);
	draw_text(p, y + h - 2, x + 2, w - 4, R_DIM, "t: the guided tour · %sthe run log: %s",
		  all ? "" : "(taller terminal: every screen's keys) · ", a->db_path);
}
