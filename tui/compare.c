/* compare.c - the Compare screen: two or more logged runs side by side -
 * their loss curves overlaid, the parameters that differ, their final
 * probabilities and whether each succeeded. */
#include "tui.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plot.h"
#include "runs.h"
#include "sweepcurve.h"

void compare_free(struct compare_ui *c)
{
	int i;

	for (i = 0; i < c->n; i++) {
		free(c->runs[i].row);
		free(c->runs[i].loss);
		free(c->runs[i].probs);
	}
	free(c->names);
	sweepcurve_free(c->sweep);
	memset(c, 0, sizeof *c);
}

static int add_loss(const struct run_step *s, void *user)
{
	struct compare_run *r = user;

	if (s->iter >= 0 && s->iter < r->n_loss)
		r->loss[s->iter] = s->loss;
	return 0;
}

int compare_load(struct app *a)
{
	struct compare_ui *c = &a->cmp;
	char err[ERR_MAX];
	int i, j;

	compare_free(c);
	for (i = 0; i < a->runs.n_marked; i++) {
		struct compare_run *r = &c->runs[c->n];
		int64_t id = a->runs.marked[i];

		r->row = malloc(sizeof *r->row);
		if (!r->row || runs_get(a->db, id, r->row, err) != ST_OK)
			goto fail;
		c->n++;
		r->n_loss = (r->row->final_iter > r->row->iters ? r->row->final_iter :
			     r->row->iters) + 2;
		if (r->n_loss < r->row->steps + 2)
			r->n_loss = r->row->steps + 2;
		r->loss = malloc(sizeof *r->loss * (size_t)r->n_loss);
		r->probs = calloc((size_t)(r->row->n_classes > 0 ? r->row->n_classes : 1),
				  sizeof *r->probs);
		if (!r->loss || !r->probs) {
			snprintf(err, sizeof err, "out of memory");
			goto fail;
		}
		for (j = 0; j < r->n_loss; j++)
			r->loss[j] = NAN;
		if (runs_steps(a->db, id, add_loss, r, err) != ST_OK ||
		    runs_final_probs(a->db, id, r->probs, r->row->n_classes, &r->n_probs,
				     err) != ST_OK)
			goto fail;
		if (r->row->final_iter >= 0 && r->row->final_iter < r->n_loss &&
		    !isnan(r->row->final_loss))
			r->loss[r->row->final_iter] = r->row->final_loss;
		/* trim trailing gaps so the x axis ends where the run did */
		while (r->n_loss > 1 && isnan(r->loss[r->n_loss - 1]))
			r->n_loss--;
	}
	c->n_names = c->runs[0].row->n_classes;
	c->names = calloc((size_t)(c->n_names > 0 ? c->n_names : 1), sizeof *c->names);
	if (!c->names || runs_classes(a->db, c->runs[0].row->id, c->names, c->n_names, err) != ST_OK)
		goto fail;
	/* the sweep curve is a bonus: without it the runs still compare */
	if (sweepcurve_new(a->db, &c->sweep, err))
		app_message(a, R_WARN, "compare: no sweep curve: %s", err);
	return 0;
fail:
	app_message(a, R_BAD, "compare: %s", err);
	compare_free(c);
	return -1;
}

/* One parameter as text, for the table. */
static void param_text(const struct app *a, const struct run_row *r, int which, char *buf,
		       size_t n)
{
	const struct compare_ui *c = &a->cmp;

	switch (which) {
	case 0: snprintf(buf, n, "%s", r->image_ref); break;
	case 1: snprintf(buf, n, "%s", r->attack); break;
	case 2: snprintf(buf, n, "%s", run_row_objective(r)); break;
	case 3: snprintf(buf, n, "%s", r->norm); break;
	case 4:
		if (!strcmp(r->norm, "linf"))
			draw_pixval(buf, n, r->eps);
		else
			snprintf(buf, n, "%.4g", r->eps);
		break;
	case 5:
		if (!strcmp(r->norm, "linf"))
			draw_pixval(buf, n, r->alpha);
		else
			snprintf(buf, n, "%.4g", r->alpha);
		break;
	case 6: snprintf(buf, n, "%d", r->iters); break;
	case 7: snprintf(buf, n, "%.3g", r->momentum); break;
	case 8:
		snprintf(buf, n, "%s", r->target < 0 ? "(untargeted)" :
			 r->target < c->n_names ? c->names[r->target] : "?");
		break;
	case 9: snprintf(buf, n, "%s", r->random_start ? "yes" : "no"); break;
	case 10: snprintf(buf, n, "%lld", (long long)r->seed); break;
	case 11: snprintf(buf, n, "%.3g", r->clip_eps); break;
	case 12: snprintf(buf, n, "%.3g", r->kappa); break;
	case 13: snprintf(buf, n, "%s", r->early_stop ? "yes" : "no"); break;
	case 14: snprintf(buf, n, "%s", r->model_path); break;
	case 15: snprintf(buf, n, "%s", r->status); break;
	default: snprintf(buf, n, "%d", r->steps); break;
	}
}

#define N_PARAMS 17
static const char *const param_names[N_PARAMS] = {
	"image", "attack", "loss", "norm", "ε", "α", "iterations", "momentum", "target",
	"random start", "seed", "clip ε", "κ", "early stop", "model", "status", "steps"
};

static void draw_params_table(struct app *a, int y, int x, int h, int w)
{
	struct compare_ui *c = &a->cmp;
	struct palette *p = &a->pal;
	int i, j, row = y + 2, colw = (w - 16) / c->n;
	char same[600] = "", va[1100], vb[1100];
	size_t sl = 0;

	draw_box(p, y, x, h, w, "parameters that differ");
	if (colw > 24)
		colw = 24;
	draw_text(p, y + 1, x + 2, 13, R_HEADER, "%-13s", "");
	for (j = 0; j < c->n; j++)
		draw_text(p, y + 1, x + 15 + j * colw, colw - 1, (enum role)(R_SERIES0 + j % N_SERIES),
			  "run #%lld", (long long)c->runs[j].row->id);
	for (i = 0; i < N_PARAMS; i++) {
		int differs = 0;

		param_text(a, c->runs[0].row, i, va, sizeof va);
		for (j = 1; j < c->n; j++) {
			param_text(a, c->runs[j].row, i, vb, sizeof vb);
			differs |= strcmp(va, vb) != 0;
		}
		if (!differs) {
			if (i < 14 && sl < sizeof same - 64) {
				int m = snprintf(same + sl, sizeof same - sl, "%s%s %s", sl ? ", " : "",
						 param_names[i], va);

				if (m > 0)
					sl += (size_t)m;
			}
			continue;
		}
		if (row >= y + h - 3)
			continue;
		draw_text(p, row, x + 2, 13, R_NORMAL, "%-13s", param_names[i]);
		for (j = 0; j < c->n; j++) {
			param_text(a, c->runs[j].row, i, vb, sizeof vb);
			draw_text(p, row, x + 15 + j * colw, colw - 1, R_WARN, "%s", vb);
		}
		row++;
	}
	if (row == y + 2)
		draw_text(p, row++, x + 2, w - 4, R_DIM, "none: the runs were made alike");
	if (same[0] && row < y + h - 1) {
		row += draw_text(p, row, x + 2, 11, R_HEADER, "%s", "same in all") ? 1 : 0;
		draw_wrap(p, row, x + 2, w - 4, y + h - 1 - row, R_DIM, same);
	}
}

static void draw_probs_table(struct app *a, int y, int x, int h, int w)
{
	struct compare_ui *c = &a->cmp;
	struct palette *p = &a->pal;
	int i, j, colw = (w - 16) / c->n, row;

	draw_box(p, y, x, h, w, "final probabilities, outcome");
	if (colw > 14)
		colw = 14;
	for (j = 0; j < c->n; j++)
		draw_text(p, y + 1, x + 15 + j * colw, colw - 1, (enum role)(R_SERIES0 + j % N_SERIES),
			  "#%lld", (long long)c->runs[j].row->id);
	row = y + 2;
	draw_text(p, row, x + 2, 13, R_NORMAL, "result");
	for (j = 0; j < c->n; j++) {
		const struct run_row *r = c->runs[j].row;

		draw_text(p, row, x + 15 + j * colw, colw - 1, r->success > 0 ? R_GOOD :
			  r->success == 0 ? R_BAD : R_DIM, "%s", r->success > 0 ? "success" :
			  r->success == 0 ? "no success" : "…");
	}
	row++;
	draw_text(p, row, x + 2, 13, R_NORMAL, "final loss");
	for (j = 0; j < c->n; j++)
		draw_text(p, row, x + 15 + j * colw, colw - 1, R_NORMAL, isnan(c->runs[j].row->final_loss) ?
			  "…" : "%.5g", c->runs[j].row->final_loss);
	row++;
	for (i = 0; i < c->n_names && row < y + h - 1; i++, row++) {
		if (row == y + h - 2 && i < c->n_names - 1) {
			/* the last row says what does not fit */
			draw_text(p, row, x + 2, w - 4, R_DIM, "+%d more classes", c->n_names - i);
			break;
		}
		draw_text(p, row, x + 2, 13, R_NORMAL, "%-13.13s", c->names[i]);
		for (j = 0; j < c->n; j++) {
			const struct compare_run *r = &c->runs[j];
			enum role role = R_DIM;

			if (i >= r->n_probs) {
				draw_text(p, row, x + 15 + j * colw, colw - 1, R_DIM, "…");
				continue;
			}
			if (i == r->row->final_pred)
				role = R_PRED;
			else if (i == r->row->target)
				role = R_TARGET;
			else if (i == r->row->true_label)
				role = R_TRUE;
			draw_text(p, row, x + 15 + j * colw, colw - 1, role, "%.3g%s",
				  (double)r->probs[i], i == r->row->final_pred ? " ▶" :
				  i == r->row->target ? " ◎" : i == r->row->true_label ? " T" : "");
		}
	}
}

void compare_draw(struct app *a, int y, int h)
{
	struct compare_ui *c = &a->cmp;
	struct palette *p = &a->pal;
	struct plot_series s[MAX_COMPARE];
	int i, plot_h, plot_w, table_h, xmax = 0;

	if (c->n < 2) {
		draw_text(p, y + 2, 2, COLS - 4, R_DIM, "Nothing to compare: in Runs (3), mark two or "
			  "more runs with Space and press c.");
		return;
	}
	for (i = 0; i < c->n; i++) {
		const struct run_row *r = c->runs[i].row;
		char eps[32];

		if (!strcmp(r->norm, "linf"))
			draw_pixval(eps, sizeof eps, r->eps);
		else
			snprintf(eps, sizeof eps, "%.4g", r->eps);
		draw_text(p, y + i, 1, 3, (enum role)(R_SERIES0 + i % N_SERIES), "━━");
		char outcome[64];

		if (isnan(r->final_target_prob))
			snprintf(outcome, sizeof outcome, "no outcome (%s)", r->status);
		else
			snprintf(outcome, sizeof outcome, "%s, final p(%s) %.3g",
				 r->success > 0 ? "success" : "no success",
				 r->target >= 0 ? "target" : "true label", r->final_target_prob);
		draw_text(p, y + i, 4, COLS - 5, R_NORMAL,
			  "run #%lld  %s %s ε %s, %d iters, loss %s, target %s · %s · %s",
			  (long long)r->id, r->attack, r->norm, eps, r->iters, run_row_objective(r),
			  r->target < 0 ? "none" : r->target < c->n_names ? c->names[r->target] : "?",
			  r->image_ref, outcome);
		s[i].y = c->runs[i].loss;
		s[i].n = c->runs[i].n_loss;
		s[i].role = (enum role)(R_SERIES0 + i % N_SERIES);
		if (s[i].n - 1 > xmax)
			xmax = s[i].n - 1;
	}
	/* the tables as tall as their content, the plot gets the rest */
	table_h = (c->n_names > 17 ? c->n_names : 17) + 5;
	if (table_h > (h - c->n) / 2)
		table_h = (h - c->n) / 2;
	plot_h = h - c->n - table_h;
	/* on a wide screen, the log's sweep curve beside the losses */
	plot_w = c->sweep && COLS >= 110 ? COLS * 3 / 5 : COLS;
	draw_box(p, y + c->n, 0, plot_h, plot_w, "loss per iteration (each run in its colour; "
		 "losses of different modes differ in scale)");
	plot_draw(p, y + c->n + 1, 1, plot_h - 2, plot_w - 2, s, c->n, xmax, -1);
	if (plot_w < COLS)
		sweepcurve_draw(c->sweep, p, y + c->n, plot_w, plot_h, COLS - plot_w);
	if (table_h >= 5) {
		draw_params_table(a, y + c->n + plot_h, 0, table_h, COLS / 2);
		draw_probs_table(a, y + c->n + plot_h, COLS / 2, table_h, COLS - COLS / 2);
	}
}

int compare_key(struct app *a, int key)
{
	if (key == K_ESC || key == 127 || key == KEY_FN(KEY_BACKSPACE)) {
		a->screen = SCREEN_RUNS;
		return 1;
	}
	return 0;
}
