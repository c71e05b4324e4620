/* frame.c - the explorer's frame around the screens: the tab bar with
 * the source, the status line (a notice, the live attack's progress, or a
 * prompt), and the quit confirmation. The screens draw the body. */
#include "tui.h"

#include <stdio.h>
#include <string.h>

#include "dataset.h"
#include "runs.h"

static const char *const screen_names[SCREEN_N] = { "Browse", "Attack", "Runs", "Compare",
						     "Audit" };

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
	draw_text(&a->pal, 0, x, COLS - x - 1, R_TAB, "%s", draw_width(a->source) <= COLS - x - 1 ?
		  a->source : a->source_short);
}

/* The status line says what the shown screen is doing and which keys act
 * on it now: each screen its own state, never another's. A running
 * attack is named on every screen (it goes on behind them). */

/* The live attack's state, and the keys that act on it in that state. */
static int attack_state(const struct app *a, char *buf, size_t n, struct key_hint *k)
{
	const struct session_snap *s = &a->snap;
	int total = s->p.kind == ATTACK_FGSM ? 1 : s->p.iters, nk = 0;

	if (!s->loaded) {
		snprintf(buf, n, s->busy ? "… loading" : "no image open");
		k[nk++] = (struct key_hint){ "1", "Browse", '1' };
	} else if (s->running) {
		double eta = (total - s->iter) * s->avg_step_ms / 1000.0;

		snprintf(buf, n, "▶ running %d/%d · %.1f ms/step · ETA %.1f s · run #%lld, %d step%s logged",
			 s->iter, total, s->avg_step_ms, eta < 0 ? 0.0 : eta,
			 (long long)s->run_id, s->run_steps, plural_s(s->run_steps));
		k[nk++] = (struct key_hint){ "Space", "pause", ' ' };
	} else if (s->busy) {
		snprintf(buf, n, "… computing (iteration %d/%d)", s->iter, total);
	} else if (s->finished) {
		snprintf(buf, n, "■ finished %d/%d · %s%s%lld%s", s->iter, total,
			 s->success ? "success" : "no success",
			 s->last_run_id ? " · run #" : "", (long long)s->last_run_id,
			 !s->last_run_id ? "" : s->last_run_id == a->deleted_run ? " deleted" :
			 " logged");
		k[nk++] = (struct key_hint){ "r", "reset", 'r' };
		k[nk++] = (struct key_hint){ "i", "more iterations", 'i' };
		k[nk++] = (struct key_hint){ "e", "export", 'e' };
	} else if (s->run_id) {
		snprintf(buf, n, "❚❚ paused at %d/%d · %.1f ms/step · run #%lld open, %d step%s logged",
			 s->iter, total, s->avg_step_ms, (long long)s->run_id, s->run_steps,
			 plural_s(s->run_steps));
		k[nk++] = (struct key_hint){ "n", "step", 'n' };
		k[nk++] = (struct key_hint){ "Space", "resume", ' ' };
		k[nk++] = (struct key_hint){ "r", "reset", 'r' };
	} else {
		snprintf(buf, n, "ready at %d/%d", s->iter, total);
		k[nk++] = (struct key_hint){ "n", "one step", 'n' };
		k[nk++] = (struct key_hint){ "Space", "run", ' ' };
		if (attack_uses_loss(s->p.kind))	/* the others have their own objective */
			k[nk++] = (struct key_hint){ "l", "loss", 'l' };
	}
	return nk;
}

/* The shown screen's state into buf, its keys into k; returns the keys. */
static int screen_state(const struct app *a, char *buf, size_t n, struct key_hint *k)
{
	const struct session_snap *s = &a->snap;
	size_t len;
	int nk = 0;

	buf[0] = 0;
	switch (a->screen) {
	case SCREEN_BROWSE: {
		const struct browse_ui *b = &a->browse;

		if (b->n)
			snprintf(buf, n, "image #%d · %d of %d listed · predictions %d/%d",
				 b->list[b->sel], b->sel + 1, b->n, s->preds_done,
				 dataset_count(a->data));
		else
			snprintf(buf, n, "no image listed · predictions %d/%d", s->preds_done,
				 dataset_count(a->data));
		k[nk++] = (struct key_hint){ "Enter", "attack", '\r' };
		k[nk++] = (struct key_hint){ "/", "search", '/' };
		k[nk++] = (struct key_hint){ "f", "class", 'f' };
		break;
	}
	case SCREEN_ATTACK:
		if (a->replay.active) {
			const struct replay *r = &a->replay;

			snprintf(buf, n, "replay of run #%lld (read-only) · iter %d · step %d of %d",
				 (long long)r->row_id, r->n_steps ? r->steps[r->cursor].iter : 0,
				 r->n_steps ? r->cursor + 1 : 0, r->n_steps);
			k[nk++] = (struct key_hint){ "←→", "step", K_NONE };
			k[nk++] = (struct key_hint){ "e", "export", 'e' };
			k[nk++] = (struct key_hint){ "Esc", "back to Runs", K_ESC };
			return nk;
		}
		return attack_state(a, buf, n, k);
	case SCREEN_RUNS: {
		const struct runs_ui *u = &a->runs;

		snprintf(buf, n, "%d of %d run%s shown · %d marked", u->n_view, u->n,
			 plural_s(u->n), u->n_marked);
		if (u->n_view && u->sel < u->n_view) {
			len = strlen(buf);
			snprintf(buf + len, n - len, " · run #%lld (%s) selected",
				 (long long)u->rows[u->view[u->sel]].id, u->rows[u->view[u->sel]].status);
		}
		k[nk++] = (struct key_hint){ "Enter", "replay", '\r' };
		k[nk++] = (struct key_hint){ "Space", "mark", ' ' };
		k[nk++] = (struct key_hint){ "c", "compare", 'c' };
		k[nk++] = (struct key_hint){ "/", "filter", '/' };
		break;
	}
	case SCREEN_COMPARE: {
		const struct compare_ui *c = &a->cmp;
		int i;

		if (c->n < 2)
			snprintf(buf, n, "nothing compared");
		for (i = 0; i < c->n; i++) {
			len = strlen(buf);
			snprintf(buf + len, n - len, "%s#%lld", i ? ", " : "comparing runs ",
				 (long long)c->runs[i].row->id);
		}
		k[nk++] = (struct key_hint){ "Esc", "back to Runs", K_ESC };
		break;
	}
	case SCREEN_AUDIT:
		nk = auditview_state(a, buf, n, k);
		break;
	default:
		break;
	}
	/* the attack goes on behind the other screens: say so */
	if (s->running) {
		len = strlen(buf);
		snprintf(buf + len, n - len, " · ▶ attack %d/%d", s->iter,
			 s->p.kind == ATTACK_FGSM ? 1 : s->p.iters);
	}
	return nk;
}

static void draw_status(struct app *a)
{
	int y = LINES - 1, x = 0, i, nk, kw = 0, room, sw, mw = 0;
	char state[1024], note[ERR_MAX + 160];
	struct key_hint k[8];

	draw_fill(&a->pal, y, 0, COLS, R_STATUS);
	if (a->prompt) {
		static const char *const label[] = {
			[PROMPT_GOTO] = "go to image index or class name", [PROMPT_FILTER] = "filter runs (text)",
			[PROMPT_DELETE] = "delete the selected run? type y and Enter",
			[PROMPT_AUDIT] = "audit images A:B (or one index)",
		};

		x = draw_text(&a->pal, y, 0, COLS, R_STATUS, " %s: ", a->prompt == PROMPT_DELETE &&
			      a->prompt_what[0] ? a->prompt_what : label[a->prompt]);
		x += draw_text(&a->pal, y, x, COLS - x, R_TAB_ON, "%s", a->prompt_buf);
		draw_text(&a->pal, y, x, COLS - x, R_TAB_ON, "█");
		draw_text(&a->pal, y, COLS - 26, 26, R_STATUS, "  Enter: ok  Esc: cancel");
		return;
	}
	nk = screen_state(a, state, sizeof state, k);
	k[nk++] = (struct key_hint){ "?", "help", '?' };
	k[nk++] = (struct key_hint){ "q", "quit", 'q' };
	note[0] = 0;
	if (a->msg[0] && app_elapsed(a->msg_at) < MSG_SECONDS)
		snprintf(note, sizeof note, " │ %s%s", a->msg_role == R_BAD ? "✗ " :
			 a->msg_role == R_WARN ? "⚠ " : a->msg_role == R_GOOD ? "✓ " : "", a->msg);
	/* the state first, whole when it can be; then the notice; the keys
	 * in what is left, the screen's own before help and quit */
	sw = draw_width(state) + 1;
	if (note[0])
		mw = draw_width(note);
	for (i = 0; i < nk; i++)
		kw += draw_width(k[i].key) + draw_width(k[i].desc) + 3;
	room = COLS - sw - mw - 1;
	x = draw_text(&a->pal, y, 0, COLS - 16, R_STATUS, " %s", state);
	/* help and quit always keep their place; a long notice is cut */
	if (note[0])
		x += draw_text(&a->pal, y, x, COLS - x - 16, a->msg_role == R_BAD ? R_TAB_ON :
			       R_STATUS, "%s", note);
	if (room < 16)
		room = 16;
	/* drop the screen's keys from the last until the rest fits; help and
	 * quit go last */
	while (nk > 0 && kw > room) {
		int drop = nk > 2 ? nk - 3 : nk - 1;

		kw -= draw_width(k[drop].key) + draw_width(k[drop].desc) + 3;
		memmove(k + drop, k + drop + 1, sizeof *k * (size_t)(nk - drop - 1));
		nk--;
	}
	for (i = 0, x = COLS - kw; i < nk; i++) {
		int w = draw_width(k[i].key) + draw_width(k[i].desc) + 1;

		draw_text(&a->pal, y, x + 1, w, R_STATUS, "%s %s", k[i].key, k[i].desc);
		if (k[i].code != K_NONE)
			app_zone(a, y, x + 1, w, k[i].code);
		x += w + 2;
	}
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
	case SCREEN_AUDIT: auditview_draw(a, 1, body); break;
	default: break;
	}
	tour_draw(a);
	if (a->help)
		help_draw(a);
	if (a->confirm_quit)
		draw_confirm(a);
	draw_status(a);
	draw_frame_end(&a->pal);
}

