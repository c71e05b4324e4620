/* runsview.c - the Runs screen: the runs in the log, sortable and
 * filterable; Enter replays a run (replay.c); Space marks runs to
 * compare. Reads go through the UI thread's own
 * connection (the session writes through another), so a run being written
 * shows up here as it grows.
 */
#include "tui.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "image.h"
#include "runs.h"

#define MAX_ROWS 5000

enum sort_key { SORT_ID, SORT_STATUS, SORT_IMAGE, SORT_ATTACK, SORT_LOSS, SORT_EPS,
		SORT_STEPS, SORT_SUCCESS, SORT_PTARGET, SORT_N };

static const char *const sort_names[SORT_N] = {
	"id", "status", "image", "attack", "loss", "ε", "steps", "success", "p(target)"
};

static const char *const status_names[] = { "all", "done", "interrupted", "failed", "running" };
#define N_STATUS 5

/* ---- loading ---------------------------------------------------------------------------- */

static int add_row(const struct run_row *r, void *user)
{
	struct runs_ui *u = user;

	if (u->n == u->cap) {
		int cap = u->cap ? 2 * u->cap : 64;
		struct run_row *rows = realloc(u->rows, sizeof *rows * (size_t)cap);

		if (!rows)
			return 1;
		u->rows = rows;
		u->cap = cap;
	}
	u->rows[u->n++] = *r;
	return u->n >= MAX_ROWS;
}

/* Case-insensitive substring. */
static int contains(const char *hay, const char *needle)
{
	size_t n = strlen(needle), i;

	if (!n)
		return 1;
	for (; *hay; hay++) {
		for (i = 0; i < n && hay[i] &&
		     tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]); i++)
			;
		if (i == n)
			return 1;
	}
	return 0;
}

static int passes(const struct runs_ui *u, const struct run_row *r)
{
	enum attack_kind k;
	char err[ERR_MAX];

	if (u->status_filter && strcmp(r->status, status_names[u->status_filter]))
		return 0;
	/* another name of the attack ("ifgsm" for bim) finds it too */
	if (u->text[0] && attack_kind_parse(u->text, &k, err) == ST_OK &&
	    !strcmp(attack_kind_name(k), r->attack))
		return 1;
	return !u->text[0] || contains(r->image_ref, u->text) || contains(r->attack, u->text) ||
		contains(r->loss, u->text) || contains(run_row_objective(r), u->text) ||
		contains(r->norm, u->text) ||
		contains(r->status, u->text) || contains(r->model_path, u->text) ||
		contains(r->data_path, u->text) || contains(r->final_diagnosis, u->text);
}

static double sort_value(const struct run_row *r, int key)
{
	switch (key) {
	case SORT_EPS: return r->eps;
	case SORT_STEPS: return r->steps;
	case SORT_SUCCESS: return r->success;
	case SORT_PTARGET: return isnan(r->final_target_prob) ? -1.0 : r->final_target_prob;
	default: return (double)r->id;
	}
}

static int compare_rows(const struct run_row *x, const struct run_row *y, int key)
{
	int c = 0;
	double a, b;

	switch (key) {
	case SORT_STATUS: c = strcmp(x->status, y->status); break;
	case SORT_IMAGE: c = strcmp(x->image_ref, y->image_ref); break;
	case SORT_ATTACK: c = strcmp(x->attack, y->attack); break;
	case SORT_LOSS: c = strcmp(run_row_objective(x), run_row_objective(y)); break;
	default:
		a = sort_value(x, key);
		b = sort_value(y, key);
		c = a < b ? -1 : a > b;
	}
	return c ? c : x->id < y->id ? -1 : x->id > y->id;
}

static void build_view(struct app *a)
{
	struct runs_ui *u = &a->runs;
	int i, j, keep = u->n_view ? (int)u->rows[u->view[u->sel]].id : -1;
	int *v = realloc(u->view, sizeof *v * (size_t)(u->n ? u->n : 1));

	if (!v)
		return;
	u->view = v;
	u->n_view = 0;
	for (i = 0; i < u->n; i++)
		if (passes(u, &u->rows[i]))
			u->view[u->n_view++] = i;
	/* insertion sort: a few thousand rows at most, and mostly in order */
	for (i = 1; i < u->n_view; i++) {
		int t = u->view[i];

		for (j = i; j > 0; j--) {
			int c = compare_rows(&u->rows[u->view[j - 1]], &u->rows[t], u->sort);

			if (u->desc ? c >= 0 : c <= 0)
				break;
			u->view[j] = u->view[j - 1];
		}
		u->view[j] = t;
	}
	u->sel = 0;
	for (i = 0; i < u->n_view; i++)
		if (u->rows[u->view[i]].id == keep)
			u->sel = i;
}

static void load(struct app *a)
{
	struct runs_ui *u = &a->runs;
	struct runs_filter f = { NULL, NULL, MAX_ROWS };

	u->n = 0;
	u->err[0] = 0;
	if (runs_list(a->db, &f, add_row, u, u->err) != ST_OK)
		u->n = 0;
	u->loaded = 1;
	u->seen_runs = a->snap.runs_logged;
	u->seen_steps = a->snap.run_steps;
	u->seen_run = a->snap.run_id;
	u->loaded_at = clock_ms();
	build_view(a);
}

int runsview_stale(const struct app *a)
{
	const struct runs_ui *u = &a->runs;

	return a->snap.runs_logged != u->seen_runs || a->snap.run_steps != u->seen_steps ||
		a->snap.run_id != u->seen_run;
}

/* ---- drawing ------------------------------------------------------------------------------ */

static int is_marked(const struct runs_ui *u, int64_t id)
{
	int i;

	for (i = 0; i < u->n_marked; i++)
		if (u->marked[i] == id)
			return 1;
	return 0;
}

/* The table's columns: title, width (with the gap after it), alignment. */
enum { C_MARK, C_ID, C_WHEN, C_STATUS, C_IMAGE, C_ATTACK, C_LOSS, C_NORM, C_EPS,
       C_ITERS, C_STEPS, C_SUCCESS, C_PTARGET, C_DIAG, N_COLUMNS };

static const struct column {
	const char *title;
	int w, right;
} columns[N_COLUMNS] = {
	{ "", 3, 0 }, { "run", 6, 1 }, { "created (UTC)", 16, 0 }, { "status", 12, 0 },
	{ "image", 17, 0 }, { "attack", 7, 0 }, { "loss", 11, 0 }, { "norm", 5, 0 },
	{ "ε", 9, 1 }, { "iters", 6, 1 }, { "steps", 6, 1 }, { "success", 9, 1 },
	{ "p(target)", 11, 1 }, { "diagnosis at the end", 0, 0 },
};

/* Text in column col starting at x, clipped to it; returns the next x. */
static int cell(struct palette *p, int y, int x, int col, enum role r, const char *text)
{
	const struct column *c = &columns[col];
	int w = c->w ? c->w - 1 : COLS - x, tw = draw_width(text);

	if (x >= COLS || w <= 0)
		return x + c->w;
	if (c->right && tw < w)
		draw_text(p, y, x + w - tw, tw, r, "%s", text);
	else
		draw_text(p, y, x, w, r, "%s", text);
	return x + c->w;
}

/* The first column shown after the run number: the table scrolls
 * sideways (← →) past the columns before it, like htop's. */
static int first_col(const struct runs_ui *u)
{
	return C_WHEN + u->hcol;
}

static void draw_header_row(struct app *a, int y)
{
	struct runs_ui *u = &a->runs;
	int c, x = 0, end;

	x = cell(&a->pal, y, x, C_MARK, R_HEADER, u->hcol ? "«" : "");
	x = cell(&a->pal, y, x, C_ID, R_HEADER, columns[C_ID].title);
	for (c = first_col(u), end = x; c < N_COLUMNS; c++) {
		x = cell(&a->pal, y, x, c, R_HEADER, columns[c].title);
		if (columns[c].w)
			end = x;
	}
	/* columns past the right edge: say so, and how to reach them */
	if (end > COLS) {
		draw_text(&a->pal, y, COLS - 9, 9, R_KEY, " → more »");
		app_zone(a, y, COLS - 9, 9, KEY_FN(KEY_RIGHT));
	}
	if (u->hcol)
		app_zone(a, y, 0, 3, KEY_FN(KEY_LEFT));
}

static void draw_row(struct app *a, int y, int w, const struct run_row *r, int sel)
{
	struct palette *p = &a->pal;
	struct runs_ui *u = &a->runs;
	enum role base = sel ? R_SELECT : R_NORMAL;
	char eps[32], pt[32], when[32], id[24], iters[16], steps[16];
	int x = 0, c;

	if (!strcmp(r->norm, "linf"))
		draw_pixval(eps, sizeof eps, r->eps);
	else
		snprintf(eps, sizeof eps, "%.4g", r->eps);
	if (isnan(r->final_target_prob))
		snprintf(pt, sizeof pt, "…");
	else
		snprintf(pt, sizeof pt, "%.3g", r->final_target_prob);
	/* "2026-11-25T14:03:07.123Z" -> "11-25 14:03:07" */
	if (strlen(r->created) >= 19)
		snprintf(when, sizeof when, "%.5s %.8s", r->created + 5, r->created + 11);
	else
		snprintf(when, sizeof when, "%s", r->created);
	snprintf(id, sizeof id, "%lld", (long long)r->id);
	snprintf(iters, sizeof iters, "%d", r->iters);
	snprintf(steps, sizeof steps, "%d", r->steps);
	if (sel)
		draw_fill(p, y, 0, w, R_SELECT);
	x = cell(p, y, x, C_MARK, sel ? R_SELECT : R_KEY, is_marked(u, r->id) ? " ●" : "");
	x = cell(p, y, x, C_ID, base, id);
	for (c = first_col(u); c < N_COLUMNS; c++) {
		switch (c) {
		case C_WHEN: x = cell(p, y, x, c, base, when); break;
		case C_STATUS:
			x = cell(p, y, x, c, sel ? R_SELECT : !strcmp(r->status, "done") ? R_NORMAL :
				 !strcmp(r->status, "running") ? R_PRED : R_WARN, r->status);
			break;
		case C_IMAGE: x = cell(p, y, x, c, base, r->image_ref); break;
		case C_ATTACK: x = cell(p, y, x, c, base, r->attack); break;
		case C_LOSS: x = cell(p, y, x, c, base, run_row_objective(r)); break;
		case C_NORM: x = cell(p, y, x, c, base, !strcmp(r->norm, "linf") ? "L∞" : "L2"); break;
		case C_EPS: x = cell(p, y, x, c, base, eps); break;
		case C_ITERS: x = cell(p, y, x, c, base, iters); break;
		case C_STEPS: x = cell(p, y, x, c, base, steps); break;
		case C_SUCCESS:
			x = cell(p, y, x, c, sel ? R_SELECT : r->success > 0 ? R_GOOD :
				 r->success == 0 ? R_BAD : R_DIM,
				 r->success < 0 ? "…" : r->success ? "yes" : "no");
			break;
		case C_PTARGET: x = cell(p, y, x, c, base, pt); break;
		case C_DIAG:
			if (r->final_diagnosis[0]) {
				char d[DIAG_EXPLAIN_MAX + 8];

				snprintf(d, sizeof d, " ⚠ %s", r->final_diagnosis);
				cell(p, y, x, c, sel ? R_SELECT : R_WARN, d);
			}
			break;
		default: break;
		}
	}
}

static void draw_details(struct app *a, int y, int h, const struct run_row *r)
{
	struct palette *p = &a->pal;
	char buf[2600];

	draw_box(p, y, 0, h, COLS, "run");
	if (!r)
		return;
	draw_text(p, y + 1, 2, COLS - 4, R_NORMAL, "run #%lld · %s · created %s%s%s · %d step%s · wall %.3g s",
		  (long long)r->id, r->status, r->created, r->ended[0] ? " · ended " : "", r->ended,
		  r->steps, plural_s(r->steps), isnan(r->wall_s) ? 0.0 : r->wall_s);
	snprintf(buf, sizeof buf, "model %s · %s", r->model_path, r->model_arch);
	draw_text(p, y + 2, 2, COLS - 4, R_DIM, "%s", buf);
	{
		char names[64][64], err[ERR_MAX];
		int n = r->n_classes < 64 ? r->n_classes : 64, ok;

		ok = n > 0 && runs_classes(a->db, r->id, names, n, err) == ST_OK;
		snprintf(buf, sizeof buf, "data %s (%s %s) · image %s · true label %s · target %s",
			 r->data_path[0] ? r->data_path : "(PNG file)", r->data_kind,
			 r->data_split, r->image_ref,
			 ok && r->true_label >= 0 && r->true_label < n ? names[r->true_label] :
			 r->true_label < 0 ? "unknown" : "?",
			 r->target < 0 ? "none (untargeted)" :
			 ok && r->target < n ? names[r->target] : "?");
	}
	draw_text(p, y + 3, 2, COLS - 4, R_DIM, "%s", buf);
	if (h > 5)
		draw_wrap(p, y + 4, 2, COLS - 4, h - 5, r->final_diagnosis[0] ? R_WARN : R_DIM,
			  r->final_diagnosis[0] ? r->final_diagnosis : "no diagnosis at the end point");
}

void runsview_draw(struct app *a, int y, int h)
{
	struct runs_ui *u = &a->runs;
	struct palette *p = &a->pal;
	int x = 1, i, list_h, det_h = h >= 30 ? 7 : 5;

	/* at most 4 loads a second while a run grows */
	if (!u->loaded || (runsview_stale(a) && app_elapsed(u->loaded_at) > 0.25))
		load(a);
	{
		char sort[48], st[40], filt[160], mark[24], count[64];
		struct key_hint kh[6];

		snprintf(sort, sizeof sort, "sort: %s %s", sort_names[u->sort], u->desc ? "↓" : "↑");
		snprintf(st, sizeof st, "status: %s", status_names[u->status_filter]);
		snprintf(filt, sizeof filt, "filter: %.120s", u->text[0] ? u->text : "none");
		snprintf(mark, sizeof mark, "mark (%d)", u->n_marked);
		snprintf(count, sizeof count, "%d of %d runs", u->n_view, u->n);
		kh[0] = (struct key_hint){ "s", sort, 's' };
		kh[1] = (struct key_hint){ "f", st, 'f' };
		kh[2] = (struct key_hint){ "/", filt, '/' };
		kh[3] = (struct key_hint){ "Space", mark, ' ' };
		kh[4] = (struct key_hint){ "c", "compare", 'c' };
		kh[5] = (struct key_hint){ "Enter", "replay", '\r' };
		x += app_key_bar(a, y, x, COLS - x - draw_width(count) - 2, kh, 6);
		draw_text(p, y, x, COLS - x, R_DIM, "%s · %s", count, a->db_path);
	}
	draw_header_row(a, y + 1);
	list_h = h - 2 - det_h;
	u->page = list_h;
	if (u->sel >= u->n_view)
		u->sel = u->n_view - 1;
	if (u->sel < 0)
		u->sel = 0;
	if (u->sel < u->top)
		u->top = u->sel;
	if (u->sel >= u->top + list_h)
		u->top = u->sel - list_h + 1;
	for (i = 0; i < list_h && u->top + i < u->n_view; i++) {
		draw_row(a, y + 2 + i, COLS, &u->rows[u->view[u->top + i]], u->top + i == u->sel);
		app_zone(a, y + 2 + i, 0, COLS, K_ROW(u->top + i));
	}
	if (u->err[0])
		draw_wrap(p, y + 3, 2, COLS - 4, 3, R_BAD, u->err);
	else if (!u->n_view)
		draw_text(p, y + 3, 2, COLS - 4, R_DIM, "%s", u->n ? "no run passes the filter" :
			  "no runs yet: attack an image (2, then n or Space) and it is logged here");
	draw_details(a, y + h - det_h, det_h, u->n_view ? &u->rows[u->view[u->sel]] : NULL);
}

/* ---- keys ----------------------------------------------------------------------------------- */

static const struct run_row *selected(const struct app *a)
{
	const struct runs_ui *u = &a->runs;

	return u->n_view && u->sel < u->n_view ? &u->rows[u->view[u->sel]] : NULL;
}

static void toggle_mark(struct app *a, int64_t id)
{
	struct runs_ui *u = &a->runs;
	int i;

	for (i = 0; i < u->n_marked; i++)
		if (u->marked[i] == id) {
			memmove(u->marked + i, u->marked + i + 1,
				sizeof *u->marked * (size_t)(u->n_marked - i - 1));
			u->n_marked--;
			return;
		}
	if (u->n_marked == MAX_COMPARE) {
		app_message(a, R_WARN, "at most %d runs can be compared", MAX_COMPARE);
		return;
	}
	u->marked[u->n_marked++] = id;
}

int runsview_key(struct app *a, int key)
{
	struct runs_ui *u = &a->runs;
	const struct run_row *r;

	/* keys typed right after switching here act on the list, not on
	 * the empty one before the first frame loaded it */
	if (!u->loaded)
		load(a);
	r = selected(a);

	if (IS_K_ROW(key)) {
		/* a click selects; a click on the selected run replays it */
		int pos = key - K_ROW(0);

		if (pos == u->sel && r)
			replay_open(a, r->id);
		else if (pos < u->n_view)
			u->sel = pos;
		return 1;
	}
	switch (key) {
	case 'j': case KEY_FN(KEY_DOWN):
		u->sel++;
		break;
	case 'k': case KEY_FN(KEY_UP):
		u->sel--;
		break;
	case 'l': case KEY_FN(KEY_RIGHT):
		if (first_col(u) < C_DIAG)
			u->hcol++;
		break;
	case 'h': case KEY_FN(KEY_LEFT):
		if (u->hcol > 0)
			u->hcol--;
		break;
	case KEY_FN(KEY_NPAGE):
		u->sel += u->page;
		break;
	case KEY_FN(KEY_PPAGE):
		u->sel -= u->page;
		break;
	case KEY_FN(KEY_HOME): case 'g':
		u->sel = 0;
		break;
	case KEY_FN(KEY_END): case 'G':
		u->sel = u->n_view - 1;
		break;
	case 's':
		u->sort = (u->sort + 1) % SORT_N;
		build_view(a);
		break;
	case 'S':
		u->desc = !u->desc;
		build_view(a);
		break;
	case 'f':
		u->status_filter = (u->status_filter + 1) % N_STATUS;
		build_view(a);
		break;
	case '/':
		app_prompt(a, PROMPT_FILTER, u->text);
		break;
	case 'R':
		load(a);
		app_message(a, R_NORMAL, "%d runs in %s", u->n, a->db_path);
		break;
	case ' ':
		if (r) {
			toggle_mark(a, r->id);
			u->sel++;
		}
		break;
	case 'u':
		u->n_marked = 0;
		break;
	case 'c':
		if (u->n_marked < 2 && r && !is_marked(u, r->id) && u->n_marked == 1)
			toggle_mark(a, r->id);	/* the marked one against the selected one */
		if (u->n_marked < 2) {
			app_message(a, R_WARN, "mark two or more runs with Space, then press c");
			break;
		}
		if (!compare_load(a))
			a->screen = SCREEN_COMPARE;
		break;
	case 'D':
		if (r) {
			app_prompt(a, PROMPT_DELETE, "");
			snprintf(a->prompt_what, sizeof a->prompt_what,
				 "delete run #%lld (%s %s on %.60s, %s)? type y and Enter",
				 (long long)r->id, r->attack, r->loss, r->image_ref, r->status);
		}
		break;
	case '\r': case '\n': case KEY_FN(KEY_ENTER):
		if (r)
			replay_open(a, r->id);
		break;
	default:
		return 0;
	}
	if (u->sel >= u->n_view)
		u->sel = u->n_view - 1;
	if (u->sel < 0)
		u->sel = 0;
	return 1;
}

void runsview_prompt_done(struct app *a, enum prompt_kind k, const char *text)
{
	struct runs_ui *u = &a->runs;
	const struct run_row *r = selected(a);
	char err[ERR_MAX];

	if (k == PROMPT_FILTER) {
		snprintf(u->text, sizeof u->text, "%s", text);
		build_view(a);
	} else if (k == PROMPT_DELETE && r && (!strcmp(text, "y") || !strcmp(text, "yes"))) {
		int64_t id = r->id;

		if (runs_delete(a->db, id, err) != ST_OK) {
			app_message(a, R_BAD, "%s", err);
		} else {
			int i;

			app_message(a, R_NORMAL, "run %lld deleted", (long long)id);
			/* nothing goes on naming it: marks, Compare, a replay,
			 * the live attack's "run #N logged" */
			for (i = 0; i < u->n_marked; i++)
				if (u->marked[i] == id)
					toggle_mark(a, id);
			for (i = 0; i < a->cmp.n; i++)
				if (a->cmp.runs[i].row->id == id) {
					compare_free(&a->cmp);
					break;
				}
			if (a->replay.active && a->replay.row_id == id)
				replay_close(a);
			if (a->snap.last_run_id == id)
				a->deleted_run = id;
		}
		load(a);
	}
}

void runsview_free(struct app *a)
{
	free(a->runs.rows);
	free(a->runs.view);
	a->runs.rows = NULL;
	a->runs.view = NULL;
}
