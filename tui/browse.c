/* browse.c - the Browse screen: the dataset's images as a list (or a grid
 * of thumbnails) with the true label, the model's prediction and its
 * confidence, filtered by class and by "misclassified", with a preview of
 * the selected image. Predictions come from the session in batches, the
 * rows on screen first; "…" stands where one is not known yet. */
#include "tui.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bars.h"
#include "clock.h"
#include "dataset.h"
#include "halfblock.h"
#include "net.h"

static const char *label_name(const struct app *a, int y)
{
	return y >= 0 && y < dataset_n_classes(a->data) ? dataset_class_name(a->data, y) : "?";
}

static const char *class_name(const struct app *a, int c)
{
	return c >= 0 && c < a->k ? a->ni->classes[c] : "?";
}

static void rebuild(struct app *a)
{
	struct browse_ui *b = &a->browse;
	int n = dataset_count(a->data), i, keep = b->n ? b->list[b->sel] : 0;

	if (b->cap < n) {
		int *l = realloc(b->list, sizeof *l * (size_t)n);

		if (!l)
			return;
		b->list = l;
		b->cap = n;
	}
	b->n = 0;
	for (i = 0; i < n; i++) {
		int y = dataset_label(a->data, i), pred;

		if (b->cls >= 0 && y != b->cls)
			continue;
		if (b->miscls && (y < 0 || !session_pred(a->session, i, NULL, &pred, NULL) || pred == y))
			continue;
		b->list[b->n++] = i;
	}
	/* stay on the same image, or the next one the filter keeps */
	for (b->sel = 0; b->sel < b->n - 1 && b->list[b->sel] < keep; b->sel++)
		;
	b->built = 1;
	b->built_preds = a->snap.preds_done;
	b->built_at = clock_ms();
}

static void maybe_rebuild(struct app *a)
{
	struct browse_ui *b = &a->browse;

	if (!b->built)
		rebuild(a);
	else if (b->miscls && a->snap.preds_done != b->built_preds &&
		 (app_elapsed(b->built_at) > 0.3 || a->snap.preds_done == dataset_count(a->data)))
		rebuild(a);
}

/* The image for a grid tile, from a small cache. */
static const float *thumb(struct app *a, int index)
{
	struct browse_ui *b = &a->browse;
	int slot = index % THUMB_SLOTS;
	float *px = b->thumbs + (size_t)slot * a->npix;
	char err[ERR_MAX];

	if (b->thumb_index[slot] != index) {
		if (dataset_image(a->data, index, px, err) != ST_OK)
			return NULL;
		b->thumb_index[slot] = index;
	}
	return px;
}

static void draw_header(struct app *a, int y)
{
	struct browse_ui *b = &a->browse;
	struct palette *p = &a->pal;
	int x = 1, n = dataset_count(a->data);
	char cls[80], mis[40], count[160];
	struct key_hint h[5];

	snprintf(cls, sizeof cls, "class: %s", b->cls < 0 ? "all" : label_name(a, b->cls));
	snprintf(mis, sizeof mis, "misclassified only: %s", b->miscls ? "on" : "off");
	h[0] = (struct key_hint){ "f", cls, 'f' };
	h[1] = (struct key_hint){ "m", mis, 'm' };
	h[2] = (struct key_hint){ "v", b->grid ? "grid" : "list", 'v' };
	h[3] = (struct key_hint){ "/", "search", '/' };
	h[4] = (struct key_hint){ "Enter", "attack", '\r' };
	snprintf(count, sizeof count, "%d of %d images%s%s%s%s", b->n, n,
		 dataset_split(a->data)[0] ? " in the " : "", dataset_split(a->data),
		 dataset_split(a->data)[0] ? " split" : "",
		 b->miscls && a->snap.preds_done < n ? " · predicting…" : "");
	/* the count is what a filter changes: it keeps its room before the
	 * keys that follow the filters (a cut key shows as "…") */
	x += app_key_bar(a, y, x, COLS - x - 1 - (COLS < 120 ? 12 : draw_width(count) + 1), h, 5);
	if (a->names_differ)
		x += draw_text(p, y, x, COLS - x, R_WARN, "⚠ class names: data ≠ model   ");
	if (COLS < 120)
		draw_text(p, y, x, COLS - x, R_DIM, "%d/%d", b->n, n);
	else
		draw_text(p, y, x, COLS - x, R_DIM, "%s", count);
}

static void keep_visible(struct browse_ui *b, int per_row)
{
	int row = b->sel / per_row;

	if (b->page < 1)
		b->page = 1;
	if (row < b->top)
		b->top = row;
	if (row >= b->top + b->page)
		b->top = row - b->page + 1;
	if (b->top < 0)
		b->top = 0;
}

static void draw_list(struct app *a, int y, int x, int h, int w)
{
	struct browse_ui *b = &a->browse;
	struct palette *p = &a->pal;
	int i, bar = w - 55 > 30 ? 30 : w - 55;

	if (bar < 6)
		bar = 0;

	b->page = h - 1;
	b->per_row = 1;
	keep_visible(b, 1);
	int nw = w < 60 ? 12 : 14;	/* class name columns */

	draw_text(p, y, x, w, R_HEADER, " %6s  %-*s %-*s %7s%*s", "image", nw, "true label",
		  nw, "prediction", "conf", bar ? bar + 2 : 0, "");
	for (i = 0; i < b->page && b->top + i < b->n; i++) {
		int pos = b->top + i, idx = b->list[pos], lab = dataset_label(a->data, idx);
		int pred, known, row = y + 1 + i, cx;
		float conf;
		enum role r = pos == b->sel ? R_SELECT : R_NORMAL;
		char pc[16];

		known = session_pred(a->session, idx, NULL, &pred, &conf);
		if (known)
			snprintf(pc, sizeof pc, "%6.1f%%", 100.0 * conf);
		else
			snprintf(pc, sizeof pc, "%7s", "…");
		if (pos == b->sel)
			draw_fill(p, row, x, w, R_SELECT);
		app_zone(a, row, x, w, K_ROW(pos));
		cx = x + draw_text(p, row, x, w, r, " %6d  %-*.*s %-*.*s %s ", idx, nw, nw,
				   label_name(a, lab), nw, nw, known ? class_name(a, pred) : "…", pc);
		if (known && lab >= 0)
			cx += draw_text(p, row, cx, x + w - cx, pos == b->sel ? R_SELECT :
					pred == lab ? R_GOOD : R_BAD, "%s", pred == lab ? "✓" : "✗");
		if (bar && known)
			bars_h(p, row, cx + 2, bar, conf, pos == b->sel ? R_SELECT :
			       lab >= 0 && pred != lab ? R_BAD : R_DIM, 0);
	}
	if (!b->n)
		draw_text(p, y + 2, x + 2, w - 4, R_DIM, "%s", b->miscls ?
			  "no misclassified image found (yet)" : "no image passes the filter");
}

static void draw_grid(struct app *a, int y, int x, int h, int w)
{
	struct browse_ui *b = &a->browse;
	struct palette *p = &a->pal;
	int s = a->w / 24 > 0 ? a->w / 24 : 1;
	int tw = halfblock_cols(a->w, s) + 2, th = halfblock_rows(a->h, s) + 2;
	int per_row = w / tw > 0 ? w / tw : 1, i;

	b->page = h / th > 0 ? h / th : 1;
	b->per_row = per_row;
	keep_visible(b, per_row);
	for (i = 0; i < per_row * b->page; i++) {
		int pos = b->top * per_row + i, idx, lab, pred, known;
		int ty = y + (i / per_row) * th, tx = x + (i % per_row) * tw;
		const float *px;

		if (pos >= b->n)
			break;
		idx = b->list[pos];
		lab = dataset_label(a->data, idx);
		known = session_pred(a->session, idx, NULL, &pred, NULL);
		px = thumb(a, idx);
		for (int zr = 0; zr < th - 1; zr++)
			app_zone(a, ty + zr, tx, tw - 1, K_ROW(pos));
		if (px)
			halfblock_draw(p, ty, tx + 1, px, a->h, a->w, s);
		draw_textpad(p, ty + th - 2, tx, tw - 1, pos == b->sel ? R_SELECT :
			     known && lab >= 0 && pred != lab ? R_BAD : R_NORMAL, " %d %s%s%s", idx,
			     label_name(a, lab), known && lab >= 0 ? (pred == lab ? " ✓" : " ✗ ") : "",
			     known && lab >= 0 && pred != lab ? class_name(a, pred) : "");
	}
	if (!b->n)
		draw_text(p, y + 2, x + 2, w - 4, R_DIM, "no image passes the filter");
}

/* The preview: the image at the largest size that fits, and what the model
 * thinks of it. */
static void draw_preview(struct app *a, int y, int x, int h, int w, int s)
{
	struct browse_ui *b = &a->browse;
	struct palette *p = &a->pal;
	int idx, lab, pred, known, row, i, shown[64];
	float conf;
	char err[ERR_MAX], name[256];

	if (!b->n) {
		draw_box(p, y, x, h, w, "preview");
		return;
	}
	idx = b->list[b->sel];
	if (b->preview_index != idx) {
		if (dataset_image(a->data, idx, b->preview, err) != ST_OK) {
			draw_box(p, y, x, h, w, "preview");
			draw_wrap(p, y + 1, x + 2, w - 4, h - 2, R_BAD, err);
			return;
		}
		b->preview_index = idx;
	}
	dataset_image_name(a->data, idx, name, sizeof name);
	{
		char title[300];

		snprintf(title, sizeof title, "image %d", idx);
		draw_box(p, y, x, h, w, title);
	}
	halfblock_draw(p, y + 1, x + 1 + (w - 2 - halfblock_cols(a->w, s)) / 2, b->preview,
		       a->h, a->w, s);
	row = y + 1 + halfblock_rows(a->h, s);
	lab = dataset_label(a->data, idx);
	known = session_pred(a->session, idx, b->probs, &pred, &conf);
	draw_text(p, row++, x + 2, w - 4, R_DIM, "%s", name);
	draw_text(p, row, x + 2, w - 4, R_NORMAL, "true ");
	if (a->names_differ && lab >= 0)
		draw_text(p, row++, x + 8, w - 10, R_TRUE, "%s (model: %s)", label_name(a, lab),
			  class_name(a, lab));
	else
		draw_text(p, row++, x + 8, w - 10, R_TRUE, "%s", label_name(a, lab));
	draw_text(p, row, x + 2, w - 4, R_NORMAL, "pred ");
	if (!known) {
		draw_text(p, row++, x + 8, w - 10, R_DIM, "…");
		return;
	}
	draw_text(p, row++, x + 8, w - 10, lab >= 0 && pred != lab ? R_BAD : R_PRED,
		  "%s %.1f%%%s", class_name(a, pred), 100.0 * conf,
		  lab >= 0 ? (pred == lab ? " ✓" : " ✗ misclassified") : "");
	/* the likeliest classes, as many as fit; the last row says how many
	 * more there are when they do not all fit */
	for (i = 0; i < a->k && i < 64 && row < y + h - 1; i++, row++) {
		if (i < a->k - 1 && row == y + h - 2 && a->k - i > 1) {
			draw_text(p, row, x + 2, w - 4, R_DIM, "+%d more", a->k - i);
			break;
		}
		int c = -1, j, t, bw = w - 4 - 14 - 10;

		for (j = 0; j < a->k; j++) {
			int seen = 0;

			for (t = 0; t < i; t++)
				seen |= shown[t] == j;
			if (!seen && (c < 0 || b->probs[j] > b->probs[c]))
				c = j;
		}
		shown[i] = c;
		draw_text(p, row, x + 2, 13, c == lab ? R_TRUE : R_NORMAL, "%-13.13s",
			  class_name(a, c));
		if (bw > 3)
			bars_h(p, row, x + 16, bw, b->probs[c], c == pred ? R_PRED : R_BAR, 1);
		draw_text(p, row, x + w - 11, 10, R_DIM, "%9.3g", (double)b->probs[c]);
	}
}

void browse_draw(struct app *a, int y, int h)
{
	struct browse_ui *b = &a->browse;
	int s, pw, lw, lo, hi;

	maybe_rebuild(a);
	draw_header(a, y);
	/* the preview at the largest scale that leaves the list room */
	for (s = 1; s < 16; s++)
		if (halfblock_cols(a->w, s) + 4 <= COLS / 2 &&
		    halfblock_rows(a->h, s) + 7 <= h - 1)
			break;
	pw = halfblock_cols(a->w, s) + 4;
	if (pw < 34 && COLS >= 100)
		pw = 34;
	if (pw < 30)
		pw = 30;
	lw = COLS - pw - 1;
	if (b->grid)
		draw_grid(a, y + 1, 0, h - 1, lw);
	else
		draw_list(a, y + 1, 0, h - 1, lw);
	draw_preview(a, y + 1, COLS - pw, h - 1, pw, s);
	/* predictions for what is on screen, then (misclassified) for all */
	if (b->n) {
		int first = b->top * b->per_row;
		int last = first + 2 * b->page * b->per_row;

		if (first >= b->n)
			first = b->n - 1;
		if (last >= b->n)
			last = b->n - 1;
		lo = b->list[first];
		hi = b->list[last] + 1;
		session_want(a->session, lo, hi, b->miscls);
	}
}

int browse_key(struct app *a, int key)
{
	struct browse_ui *b = &a->browse;
	int step = b->grid && b->per_row > 0 ? b->per_row : 1;

	if (IS_K_ROW(key)) {
		/* a click selects; a click on the selected image attacks it */
		int pos = key - K_ROW(0);

		if (pos < b->n && pos == b->sel)
			app_open_image(a, b->list[b->sel]);
		else if (pos < b->n)
			b->sel = pos;
		return 1;
	}
	switch (key) {
	case 'j': case KEY_FN(KEY_DOWN):
		b->sel += step;
		break;
	case 'k': case KEY_FN(KEY_UP):
		b->sel -= step;
		break;
	case 'l': case KEY_FN(KEY_RIGHT):
		b->sel += b->grid ? 1 : b->page;
		break;
	case 'h': case KEY_FN(KEY_LEFT):
		b->sel -= b->grid ? 1 : b->page;
		break;
	case KEY_FN(KEY_NPAGE): case ' ':
		b->sel += b->page * step;
		break;
	case KEY_FN(KEY_PPAGE):
		b->sel -= b->page * step;
		break;
	case KEY_FN(KEY_HOME):
		b->sel = 0;
		break;
	case KEY_FN(KEY_END): case 'G':
		b->sel = b->n - 1;
		break;
	case 'f':
		b->cls = b->cls + 1 >= dataset_n_classes(a->data) ? -1 : b->cls + 1;
		b->built = 0;
		break;
	case 'F':
		b->cls = b->cls < 0 ? dataset_n_classes(a->data) - 1 : b->cls - 1;
		b->built = 0;
		break;
	case 'm':
		b->miscls = !b->miscls;
		b->built = 0;
		if (b->miscls && a->snap.preds_done < dataset_count(a->data))
			app_message(a, R_NORMAL, "predicting every image for the filter: the list "
				    "fills in as predictions arrive");
		break;
	case 'v':
		b->grid = !b->grid;
		b->top = 0;
		break;
	case 'g': case ':': case '/':
		app_prompt(a, PROMPT_GOTO, "");
		return 1;
	case '\r': case '\n': case KEY_FN(KEY_ENTER):
		if (b->n)
			app_open_image(a, b->list[b->sel]);
		return 1;
	default:
		return 0;
	}
	if (b->sel >= b->n)
		b->sel = b->n - 1;
	if (b->sel < 0)
		b->sel = 0;
	return 1;
}

/* Case-insensitive: does name contain part? */
static int has_part(const char *name, const char *part)
{
	size_t n = strlen(part), i;

	for (; *name; name++) {
		for (i = 0; i < n && name[i] &&
		     tolower((unsigned char)name[i]) == tolower((unsigned char)part[i]); i++)
			;
		if (i == n)
			return 1;
	}
	return 0;
}

/* The class text names: an exact name first, then one containing it;
 * the data's names, then the model's. -1: none. */
static int find_class(const struct app *a, const char *text)
{
	int nd = dataset_n_classes(a->data), pass, c;

	if (!text[0])
		return -1;
	for (pass = 0; pass < 2; pass++)
		for (c = 0; c < nd; c++) {
			const char *dn = dataset_class_name(a->data, c);
			const char *mn = c < a->k ? a->ni->classes[c] : "";

			if (pass == 0 ? !strcasecmp(dn, text) || !strcasecmp(mn, text) :
			    has_part(dn, text) || has_part(mn, text))
				return c;
		}
	return -1;
}

void browse_prompt_done(struct app *a, const char *text)
{
	struct browse_ui *b = &a->browse;
	char *end;
	long v = strtol(text, &end, 10);
	int i;

	if (end == text || *end) {
		/* a class name (the data's or the model's, any case, a part of
		 * it will do): filter on that class */
		int c = find_class(a, text);

		if (c < 0) {
			app_message(a, R_BAD, "no image index or class name '%s'", text);
			return;
		}
		b->cls = c;
		b->built = 0;
		app_message(a, R_NORMAL, "class filter: %s (f changes it)", label_name(a, c));
		a->screen = SCREEN_BROWSE;
		return;
	}
	if (v < 0 || v >= dataset_count(a->data)) {
		app_message(a, R_BAD, "no image '%s': the split has images 0..%d", text,
			    dataset_count(a->data) - 1);
		return;
	}
	for (i = 0; i < b->n && b->list[i] != v; i++)
		;
	if (i == b->n) {
		/* filtered out: show everything */
		b->cls = -1;
		b->miscls = 0;
		rebuild(a);
		for (i = 0; i < b->n && b->list[i] != v; i++)
			;
	}
	if (i < b->n)
		b->sel = i;
	a->screen = SCREEN_BROWSE;
}

void browse_free(struct browse_ui *b)
{
	free(b->list);
	free(b->preview);
	free(b->probs);
	free(b->thumbs);
	b->list = NULL;
	b->preview = NULL;
	b->probs = NULL;
	b->thumbs = NULL;
}
