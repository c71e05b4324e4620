/* frame.c - the explorer's frame around the screens: the tab bar with
 * the source, the status line (a notice, the live attack's progress, or a
 * prompt), and the quit confirmation. The screens draw the body. */
#include "tui.h"

#include <stdio.h>

#include "dataset.h"

static const char *const screen_names[SCREEN_N] = { "Browse", "Attack", "Runs", "Compare" };

static void draw_tabs(struct app *a)
{
	int x = 0, i;

	draw_fill(&a->pal, 0, 0, COLS, R_TAB);
	x += draw_text(&a->pal, 0, x, COLS - x, R_TITLE, " advex ");
	for (i = 0; i < SCREEN_N; i++) {
		int on = a->screen == (enum screen_id)i && !a->help, w;

		w = draw_text(&a->pal, 0, x, COLS - x, on ? R_TAB_ON : R_TAB, " %d %s%s ",
			      i + 1, screen_names[i],
			      i == SCREEN_ATTACK && a->replay.active ? " (replay)" : "");
		app_zone(a, 0, x, w, '1' + i);
		x += w;
	}
	app_zone(a, 0, x, 8, '?');
	x += draw_text(&a->pal, 0, x, COLS - x, a->help ? R_TAB_ON : R_TAB, " ? Help ");
	x += draw_text(&a->pal, 0, x, COLS - x, R_TAB, "│ ");
	draw_text(&a->pal, 0, x, COLS - x - 1, R_TAB, "%s", a->source);
}

/* The live attack's progress, for the status line. */
static void progress_text(const struct app *a, char *buf, size_t n)
{
	const struct session_snap *s = &a->snap;
	int total = s->p.kind == ATTACK_FGSM ? 1 : s->p.iters;

	if (!s->loaded) {
		snprintf(buf, n, s->busy ? "… loading" : "no image open");
	} else if (s->running) {
		double eta = (total - s->iter) * s->avg_step_ms / 1000.0;

		snprintf(buf, n, "▶ running %d/%d · %.1f ms/step · ETA %.1f s · run #%lld, %d steps logged",
			 s->iter, total, s->avg_step_ms, eta < 0 ? 0.0 : eta,
			 (long long)s->run_id, s->run_steps);
	} else if (s->busy) {
		snprintf(buf, n, "… computing (iteration %d/%d)", s->iter, total);
	} else if (s->finished) {
		snprintf(buf, n, "■ finished %d/%d · %s%s%lld", s->iter, total,
			 s->success ? "success" : "no success",
			 s->last_run_id ? " · last run #" : "", (long long)s->last_run_id);
	} else if (s->run_id) {
		snprintf(buf, n, "❚❚ paused at %d/%d · %.1f ms/step · run #%lld open, %d steps logged",
			 s->iter, total, s->avg_step_ms, (long long)s->run_id, s->run_steps);
	} else {
		snprintf(buf, n, "ready at %d/%d · n: one step · Space: run", s->iter, total);
	}
}

static void draw_status(struct app *a)
{
	int y = LINES - 1, x = 0, rw;
	char right[160], left[1024];

	draw_fill(&a->pal, y, 0, COLS, R_STATUS);
	if (a->prompt) {
		static const char *const label[] = {
			[PROMPT_GOTO] = "go to image index", [PROMPT_FILTER] = "filter runs (text)",
			[PROMPT_DELETE] = "delete the selected run? type y and Enter",
		};

		x = draw_text(&a->pal, y, 0, COLS, R_STATUS, " %s: ", label[a->prompt]);
		x += draw_text(&a->pal, y, x, COLS - x, R_TAB_ON, "%s", a->prompt_buf);
		draw_text(&a->pal, y, x, COLS - x, R_TAB_ON, "█");
		draw_text(&a->pal, y, COLS - 26, 26, R_STATUS, "  Enter: ok  Esc: cancel");
		return;
	}
	if (a->screen == SCREEN_BROWSE)
		snprintf(right, sizeof right, " predictions %d/%d │ ? help  q quit ",
			 a->snap.preds_done, dataset_count(a->data));
	else
		snprintf(right, sizeof right, " ? help  q quit ");
	rw = draw_width(right);
	if (a->msg[0] && app_elapsed(a->msg_at) < MSG_SECONDS)
		snprintf(left, sizeof left, " %s%s", a->msg_role == R_BAD ? "✗ " :
			 a->msg_role == R_WARN ? "⚠ " : a->msg_role == R_GOOD ? "✓ " : "", a->msg);
	else {
		left[0] = ' ';
		progress_text(a, left + 1, sizeof left - 1);
	}
	draw_text(&a->pal, y, 0, COLS - rw, R_STATUS, "%s", left);
	draw_text(&a->pal, y, COLS - rw, rw, R_STATUS, "%s", right);
}

static void draw_confirm(struct app *a)
{
	int w = 64, h = 6, y = (LINES - h) / 2, x = (COLS - w) / 2;
	int total = a->snap.p.kind == ATTACK_FGSM ? 1 : a->snap.p.iters;

	draw_panel(&a->pal, y, x, h, w, "Quit?");
	draw_text(&a->pal, y + 2, x + 3, w - 6, R_NORMAL,
		  "An attack is running (iteration %d/%d).", a->snap.iter, total);
	draw_text(&a->pal, y + 3, x + 3, w - 6, R_NORMAL,
		  "Quit and record run #%lld as interrupted?  ", (long long)a->snap.run_id);
	draw_text(&a->pal, y + 4, x + 3, w - 6, R_KEY, "y: quit   any other key: stay");
}

void frame_draw(struct app *a)
{
	int body = LINES - 2;

	draw_frame_begin(&a->pal);
	a->n_zones = 0;
	erase();
	if (COLS < MIN_COLS || LINES < MIN_ROWS) {
		draw_text(&a->pal, LINES / 2 - 1, 0, COLS, R_WARN, "terminal too small: %dx%d",
			  COLS, LINES);
		draw_text(&a->pal, LINES / 2, 0, COLS, R_NORMAL, "advex needs at least %dx%d",
			  MIN_COLS, MIN_ROWS);
		draw_text(&a->pal, LINES / 2 + 1, 0, COLS, R_DIM, "(q quits)");
		draw_frame_end(&a->pal);
		return;
	}
	draw_tabs(a);
	switch (a->screen) {
	case SCREEN_BROWSE: browse_draw(a, 1, body); break;
	case SCREEN_ATTACK: attackview_draw(a, 1, body); break;
	case SCREEN_RUNS: runsview_draw(a, 1, body); break;
	case SCREEN_COMPARE: compare_draw(a, 1, body); break;
	default: break;
	}
	if (a->help)
		help_draw(a);
	if (a->confirm_quit)
		draw_confirm(a);
	draw_status(a);
	draw_frame_end(&a->pal);
}

