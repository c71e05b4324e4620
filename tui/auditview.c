/* auditview.c - the Audit screen: `advex audit` on the open image or a
 * range, run by the session image by image. Each of the nine checks lights
 * up as the images come in, with its verdict and figure; the chosen one
 * shows its sentence (the cause and the fix), and Enter replays the run of
 * the first image it flagged. */
#include "tui.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "source.h"

static const struct {
	const char *mark;
	enum role role;
} looks[] = {
	[AUDIT_PASS] = { "✓", R_GOOD },
	[AUDIT_WARN] = { "!", R_WARN },
	[AUDIT_FAIL] = { "✗", R_BAD },
	[AUDIT_SKIPPED] = { "·", R_DIM },
};

int auditview_state(const struct app *a, char *buf, size_t n, struct key_hint *k)
{
	const struct session_audit *u = &a->snap.aud;
	int nk = 0, i, fail = 0, warn = 0;

	for (i = 0; i < AUDIT_N_CHECKS; i++) {
		fail += u->checks[i].verdict == AUDIT_FAIL;
		warn += u->checks[i].verdict == AUDIT_WARN;
	}
	switch (u->state) {
	case SAUDIT_IDLE:
		snprintf(buf, n, "no audit yet");
		break;
	case SAUDIT_RUNNING:
		snprintf(buf, n, "▶ auditing image %d · %d of %d done · %d fail, %d warn so far",
			 u->next, u->n_done, u->hi - u->lo, fail, warn);
		k[nk++] = (struct key_hint){ "x", "stop", 'x' };
		break;
	case SAUDIT_DONE:
		snprintf(buf, n, "■ audit of %d image%s: %d fail, %d warn%s%lld", u->n_done,
			 plural_s(u->n_done), fail, warn, u->audit_id ? " · stored as audit #" : "",
			 (long long)u->audit_id);
		break;
	case SAUDIT_STOPPED:
		snprintf(buf, n, "■ stopped after %d image%s (not stored)", u->n_done,
			 plural_s(u->n_done));
		break;
	}
	if (u->state != SAUDIT_RUNNING) {
		k[nk++] = (struct key_hint){ "u", "audit this image", 'u' };
		k[nk++] = (struct key_hint){ "U", "a range", 'U' };
	}
	if (u->state != SAUDIT_IDLE && u->first_run[a->audit.sel])
		k[nk++] = (struct key_hint){ "Enter", "replay", '\r' };
	return nk;
}

static void draw_header(struct app *a, int y)
{
	const struct session_audit *u = &a->snap.aud;
	const struct attack_params *p = u->state == SAUDIT_IDLE ? &a->want : &u->p;
	char eps[32], range[64], target[96] = "";

	draw_pixval(eps, sizeof eps, p->eps);
	if (u->state == SAUDIT_IDLE)
		snprintf(range, sizeof range, "no images yet");
	else if (u->hi - u->lo == 1)
		snprintf(range, sizeof range, "image %d", u->lo);
	else
		snprintf(range, sizeof range, "images %d..%d", u->lo, u->hi - 1);
	if (p->target >= 0 && p->target < a->k)
		snprintf(target, sizeof target, " · target %s", a->ni->classes[p->target]);
	draw_text(&a->pal, y, 1, COLS - 2, R_TITLE, "Audit · %s %s · loss %s · ε %s · %d iteration%s%s · %s",
		  attack_kind_name(p->kind), attack_norm_name(p->norm), loss_mode_name(p->loss.mode),
		  eps, p->iters, plural_s(p->iters), target, range);
	if (u->state == SAUDIT_IDLE)
		draw_text(&a->pal, y + 1, 1, COLS - 2, R_DIM,
			  "u audits the open image with the Attack screen's parameters, U a range "
			  "of images; the checks are advex audit's (man advex)");
	else
		draw_text(&a->pal, y + 1, 1, COLS - 2, R_DIM, "%d image%s audited, %d skipped "
			  "(label is the target)%s", u->n_done, plural_s(u->n_done), u->n_skipped,
			  u->state == SAUDIT_RUNNING ? " · the checks light up as images come in" : "");
}

static void draw_checks(struct app *a, int y, int rows)
{
	const struct session_audit *u = &a->snap.aud;
	int i;

	for (i = 0; i < AUDIT_N_CHECKS && i < rows; i++) {
		const struct audit_check *c = &u->checks[i];
		int on = i == a->audit.sel, x = 1, live = u->state != SAUDIT_IDLE &&
			(u->n_done > 0 || u->state != SAUDIT_RUNNING);
		enum role r = on ? R_SELECT : R_NORMAL;

		draw_fill(&a->pal, y + i, 0, COLS, r);
		x += draw_text(&a->pal, y + i, x, 2, live ? looks[c->verdict].role : R_DIM, "%s ",
			       live ? looks[c->verdict].mark : " ");
		x += draw_textpad(&a->pal, y + i, x, 38, r, "%d. %s", i + 1,
				  audit_check_title((enum audit_check_id)i));
		x += draw_textpad(&a->pal, y + i, x, 9, live ? looks[c->verdict].role : R_DIM, "%s",
				  live ? audit_verdict_name(c->verdict) : "-");
		if (live)
			draw_text(&a->pal, y + i, x, COLS - x - 1, r, "%s", c->figure_text);
		app_zone(a, y + i, 0, COLS, K_ROW(i));
	}
}

static void draw_detail(struct app *a, int y, int h)
{
	const struct session_audit *u = &a->snap.aud;
	const struct audit_check *c = &u->checks[a->audit.sel];
	int used;

	if (u->state == SAUDIT_IDLE || h < 2)
		return;
	draw_text(&a->pal, y, 1, COLS - 2, R_TITLE, "%d. %s", a->audit.sel + 1,
		  audit_check_title((enum audit_check_id)a->audit.sel));
	used = draw_wrap(&a->pal, y + 1, 1, COLS - 2, h - 2, R_NORMAL, c->sentence);
	if (used + 1 < h && u->first_run[a->audit.sel])
		draw_text(&a->pal, y + 1 + used, 1, COLS - 2, R_DIM,
			  "first flagged: image %d, run #%lld - Enter replays it", c->first_image,
			  (long long)u->first_run[a->audit.sel]);
}

void auditview_draw(struct app *a, int y, int h)
{
	int rows = h - 4 < AUDIT_N_CHECKS ? h - 4 : AUDIT_N_CHECKS;

	draw_header(a, y);
	draw_checks(a, y + 3, rows);
	draw_detail(a, y + 4 + rows, h - 4 - rows);
}

void auditview_prompt_done(struct app *a, const char *text)
{
	int lo, hi, count = dataset_count(a->data);

	if (source_parse_range(text, count, 1, &lo, &hi)) {
		app_message(a, R_BAD, "'%s': give A:B with 0 <= A < B <= %d, or one index", text,
			    count);
		return;
	}
	session_audit(a->session, lo, hi, &a->want);
}

int auditview_key(struct app *a, int key)
{
	const struct session_audit *u = &a->snap.aud;

	if (IS_K_ROW(key)) {
		if (key - K_ROW(0) < AUDIT_N_CHECKS)
			a->audit.sel = key - K_ROW(0);
		return 1;
	}
	switch (key) {
	case KEY_FN(KEY_UP):
	case 'k':
		if (a->audit.sel > 0)
			a->audit.sel--;
		return 1;
	case KEY_FN(KEY_DOWN):
	case 'j':
		if (a->audit.sel < AUDIT_N_CHECKS - 1)
			a->audit.sel++;
		return 1;
	case 'u':
		if (u->state == SAUDIT_RUNNING)
			app_message(a, R_BAD, "an audit is running: x stops it");
		else if (!a->snap.loaded)
			app_message(a, R_BAD, "no image open: pick one in Browse (Enter), or U for a range");
		else
			session_audit(a->session, a->snap.index, a->snap.index + 1, &a->want);
		return 1;
	case 'U':
		if (u->state == SAUDIT_RUNNING)
			app_message(a, R_BAD, "an audit is running: x stops it");
		else
			app_prompt(a, PROMPT_AUDIT, "0:10");
		return 1;
	case 'x':
		if (u->state == SAUDIT_RUNNING)
			session_audit_stop(a->session);
		return 1;
	case '\r':
	case '\n':
	case KEY_FN(KEY_ENTER):
		if (u->first_run[a->audit.sel])
			replay_open(a, u->first_run[a->audit.sel]);
		else
			app_message(a, R_NORMAL, "this check flagged no image");
		return 1;
	default:
		return 0;
	}
}
