/* tour.c - the guided tour: the story of the demo in five keys, told in a
 * panel over the bottom of the screen while the screens work as always.
 *
 * Open a confident image, switch the loss to prob-ce and see it stuck at
 * -log(1e-7) = 16.118 with every gradient component exactly 0, switch back
 * to ce and watch the same attack succeed. Each step waits for one key
 * (the tour does what the key says, or watches the explorer do it); Esc
 * ends the tour at any step. It opens by itself on the first start on the
 * bundled demo, and from the help (t) whenever asked; once ended it leaves
 * a marker beside the run log so it does not open by itself again.
 */
#include "tui.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataset.h"
#include "db.h"

enum { T_OPEN, T_PROB_CE, T_BACK_TO_CE, T_RUN, T_DONE, T_N };

/* The marker's path: "tour-seen" beside the default run log. */
static void marker_path(char *buf, size_t n)
{
	char db[4096], *slash;

	db_default_path(db, sizeof db);
	slash = strrchr(db, '/');
	if (slash)
		slash[1] = 0;
	else
		db[0] = 0;
	snprintf(buf, n, "%stour-seen", db);
}

int tour_seen(void)
{
	char path[4200];

	marker_path(path, sizeof path);
	return access(path, F_OK) == 0;
}

/* Best effort: a tour that shows again because the marker could not be
 * written costs a key press, not a failure. */
static void mark_seen(void)
{
	char path[4200], *slash;
	int fd;

	marker_path(path, sizeof path);
	slash = strrchr(path, '/');
	if (slash) {
		*slash = 0;
		if (mkdir(path, 0700) && errno != EEXIST) {
			*slash = '/';
			return;
		}
		*slash = '/';
	}
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
}

void tour_start(struct app *a)
{
	a->tour = 1;
	a->tour_step = T_OPEN;
	a->help = 0;
}

static void tour_end(struct app *a)
{
	a->tour = 0;
	mark_seen();
}

/* The image the model is surest of among those with a prediction (the
 * story needs a confident one), else the selected one. */
static int confident_image(struct app *a)
{
	int i, best = -1, pred, n = dataset_count(a->data);
	float conf, best_conf = -1.0f;

	for (i = 0; i < n && i < 256; i++)
		if (session_pred(a->session, i, NULL, &pred, &conf) &&
		    pred == dataset_label(a->data, i) && conf > best_conf) {
			best = i;
			best_conf = conf;
		}
	if (best < 0 && a->browse.n)
		best = a->browse.list[a->browse.sel];
	return best < 0 ? 0 : best;
}

int tour_key(struct app *a, int key)
{
	if (!a->tour)
		return 0;
	if (key == K_ESC) {
		tour_end(a);
		app_message(a, R_NORMAL, "tour closed: ? then t shows it again");
		return 1;
	}
	/* Enter is the tour's only where the tour put the user: elsewhere
	 * (Runs: replay) it does what it always does */
	if (a->tour_step == T_OPEN && a->screen == SCREEN_BROWSE &&
	    (key == '\r' || key == '\n' || key == KEY_FN(KEY_ENTER))) {
		app_open_image(a, confident_image(a));
		a->tour_step = T_PROB_CE;
		return 1;
	}
	if (a->tour_step == T_DONE && a->screen == SCREEN_ATTACK &&
	    (key == '\r' || key == '\n' || key == KEY_FN(KEY_ENTER))) {
		tour_end(a);
		return 1;
	}
	return 0;		/* the screens act on it; tour_watch sees the result */
}

void tour_watch(struct app *a)
{
	const struct session_snap *s = &a->snap;

	if (!a->tour || a->replay.active)
		return;
	switch (a->tour_step) {
	case T_PROB_CE:
		if (a->screen == SCREEN_ATTACK && s->loaded && s->p.loss.mode == LOSS_PROB_CE &&
		    s->have_eval)
			a->tour_step = T_BACK_TO_CE;
		break;
	case T_BACK_TO_CE:
		if (s->p.loss.mode == LOSS_CE)
			a->tour_step = T_RUN;
		break;
	case T_RUN:
		if (s->finished && s->p.loss.mode == LOSS_CE)
			a->tour_step = T_DONE;
		break;
	default:
		break;
	}
}

void tour_draw(struct app *a)
{
	const struct session_snap *s = &a->snap;
	struct palette *p = &a->pal;
	int h = 5, y = LINES - 1 - h, w = COLS, x = 0;
	char title[64], text[600], keys[160];
	const char *cls = s->p.target >= 0 && s->p.target < a->k ? a->ni->classes[s->p.target] :
		"the true class";

	if (!a->tour)
		return;
	snprintf(title, sizeof title, "Tour %d/%d · Esc ends it", a->tour_step + 1, T_N);
	switch (a->tour_step) {
	case T_OPEN:
		snprintf(text, sizeof text, "advex attacks an image: it nudges every pixel a little "
			 "to make the model see another class. First, an image the model is sure of.");
		snprintf(keys, sizeof keys, "Enter: open it in Attack");
		break;
	case T_PROB_CE:
		snprintf(text, sizeof text, "The attack pushes the image toward '%s' by following the "
			 "gradient of a loss. The loss now is ce (cross-entropy on the logits). "
			 "Switch it to prob-ce: the same formula on probabilities clipped at 1e-7, as "
			 "many frameworks compute it.", cls);
		snprintf(keys, sizeof keys, "l: loss prob-ce");
		break;
	case T_BACK_TO_CE:
		snprintf(text, sizeof text, "Stuck: loss %.5g = -log(1e-7), because p(%s) is below "
			 "the clip; and the histogram puts %.1f%% of the gradient in its ∅ column: "
			 "exactly 0. Steps would not move the image. Go back to ce.",
			 s->loss, cls, 100.0 * s->grad.zero_frac);
		snprintf(keys, sizeof keys, "L: loss ce");
		break;
	case T_RUN:
		snprintf(text, sizeof text, "ce keeps a gradient however unlikely '%s' is (loss %.5g, "
			 "%.1f%% of the gradient 0). Run the attack and watch the probability of '%s' "
			 "climb.", cls, s->loss, 100.0 * s->grad.zero_frac, cls);
		snprintf(keys, sizeof keys, "Space: run to the end");
		break;
	default:
		snprintf(text, sizeof text, "%s after %d iteration%s: the model now sees '%s'. "
			 "Under prob-ce the same attack stalls at its first step: the clip hides the "
			 "gradient, not the model. Runs (3) holds every run; ? lists every key.",
			 s->success ? "Success" : "No success yet", s->iter, plural_s(s->iter),
			 s->have_eval && s->pred >= 0 && s->pred < a->k ? a->ni->classes[s->pred] : "?");
		snprintf(keys, sizeof keys, "Enter: end the tour");
		break;
	}
	if (y < 1)
		y = 1;
	draw_panel(p, y, x, h, w, title);
	draw_wrap(p, y + 1, x + 2, w - 4, h - 3, R_NORMAL, text);
	draw_text(p, y + h - 2, x + 2, w - 4, R_KEY, "%s", keys);
}
