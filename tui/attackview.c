/* attackview.c - the Attack screen: the clean image, the amplified
 * perturbation and the adversarial image side by side; the probabilities
 * of every class (true, target and predicted marked); the loss per
 * iteration; the histogram of log10|gradient| with its zero and NaN counts;
 * the gradient norm at each layer boundary; the parameters; the diagnosis.
 * Keys change the parameters between steps, step, run, reset and export.
 *
 * It draws a struct session_snap: the session's live one, or a logged run being
 * replayed read-only (runsview.c fills that one).
 *
 * Layout: "full" when the panels get 20 rows under the images (160x50 and
 * up: all panels at once), "compact" when they get 7 (80x24: two panels,
 * d switches which), else a "too small" note.
 */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700	/* realpath */
#endif
#include "tui.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bars.h"
#include "dataset.h"
#include "exportmeta.h"
#include "halfblock.h"
#include "image.h"
#include "net.h"
#include "plot.h"
#include "runs.h"

#define FULL_PANEL_ROWS 20
#define COMPACT_PANEL_ROWS 7

static const char *cname(const char *const *names, int k, int c)
{
	return c >= 0 && c < k && names ? names[c] : "?";
}

static const struct session_snap *shown(const struct app *a)
{
	return a->replay.active ? &a->replay.snap : &a->snap;
}

static const char *const *shown_names(const struct app *a)
{
	return a->replay.active ? (const char *const *)a->replay.name_ptrs : a->ni->classes;
}

/* One name per attack, the one Runs, Compare and the CLI use (bim is
 * what many papers call I-FGSM; the help says so). */
static const char *kind_label(enum attack_kind k)
{
	return attack_kind_name(k);
}

/* ε and α as people write them: /255 for L∞ (pixel steps), plain for L2
 * (a length in [0,1] pixel units, where "255/255" would mislead). */
static void radius_text(char *buf, size_t n, const struct attack_params *p, double v)
{
	if (p->norm == ATTACK_LINF)
		draw_pixval(buf, n, v);
	else
		snprintf(buf, n, "%.3g", v);
}

/* The kinds with one norm or no target (attack_params_check's rules): cw
 * is L2, deepfool untargeted. The norm's eps as the 'o' key sets it. */
static void fit_kind(struct attack_params *p)
{
	if (p->kind == ATTACK_CW && p->norm != ATTACK_L2) {
		p->norm = ATTACK_L2;
		p->eps = 1.0;
		p->alpha = 0.1;
	}
	if (p->kind == ATTACK_DEEPFOOL)
		p->target = -1;
}

/* Why kind k ignores alpha (or, for deepfool and cw, eps too). */
static const char *unused_why(enum attack_kind k)
{
	switch (k) {
	case ATTACK_FGSM: return "its one step is ε";
	case ATTACK_APGD_CE: case ATTACK_APGD_DLR: return "its step size starts at 2ε and adapts";
	case ATTACK_SQUARE: return "it draws random squares, no gradient steps";
	default: return "it looks for the smallest perturbation";
	}
}

static int total_iters(const struct attack_params *p)
{
	return p->kind == ATTACK_FGSM ? 1 : p->iters;
}

/* ---- the parameter line -------------------------------------------------------------- */

/* "key value" pairs, the key in the key colour; a click on a key's
 * character is that key, on the value the first key. */
static int kv(struct app *a, int y, int x, int w, const char *key, enum role vr,
	      const char *fmt, const char *val)
{
	struct palette *p = &a->pal;
	int n = 0, i;

	if (w <= 0)
		return 0;
	if (key) {
		n += draw_text(p, y, x, w, R_KEY, "%s ", key);
		for (i = 0; key[i] && i < n; i++)
			app_zone(a, y, x + i, 1, (unsigned char)key[i]);
	}
	n += draw_text(p, y, x + n, w - n, vr, fmt, val);
	if (key)
		app_zone(a, y, x + (int)strlen(key) + 1, n - (int)strlen(key) - 1,
			 (unsigned char)key[0]);
	return n;
}

static void draw_params(struct app *a, const struct session_snap *s, int y)
{
	const struct attack_params *p = &s->p;
	const char *const *names = shown_names(a);
	struct palette *pal = &a->pal;
	int live = !a->replay.active, x = 1, w = COLS - 1;
	char eps[32], alpha[32], buf[128];

	radius_text(eps, sizeof eps, p, p->eps);
	radius_text(alpha, sizeof alpha, p, p->alpha);
	if (!live)
		x += draw_text(pal, y, x, w - x, R_WARN, "replay of run #%lld (read-only)  ",
			       (long long)a->replay.row_id);
	x += kv(a, y, x, w - x, live ? "a" : NULL, R_NORMAL, "%s  ", kind_label(p->kind));
	x += kv(a, y, x, w - x, live ? "o" : NULL, R_NORMAL, "%s  ",
		p->norm == ATTACK_LINF ? "L∞" : "L2");
	/* only what the kind uses: deepfool and cw ignore eps, only bim, pgd
	 * and mifgsm step by alpha */
	if (attack_uses_eps(p->kind)) {
		snprintf(buf, sizeof buf, "ε %s  ", eps);
		x += kv(a, y, x, w - x, live ? "+-" : NULL, R_NORMAL, "%s", buf);
	}
	if (attack_uses_alpha(p->kind)) {
		snprintf(buf, sizeof buf, "α %s  ", alpha);
		x += kv(a, y, x, w - x, live ? "[]" : NULL, R_NORMAL, "%s", buf);
	}
	if (p->kind != ATTACK_FGSM) {
		snprintf(buf, sizeof buf, "%d %s  ", p->iters, attack_iters_name(p->kind));
		x += kv(a, y, x, w - x, live ? "iI" : NULL, R_NORMAL, "%s", buf);
	}
	snprintf(buf, sizeof buf, "loss %s  ", attack_objective_name(p));
	if (attack_uses_loss(p->kind))
		x += kv(a, y, x, w - x, live ? "l" : NULL,
			p->loss.mode == LOSS_CE ? R_NORMAL : R_WARN, "%s", buf);
	else	/* its own objective: l changes nothing it uses */
		x += kv(a, y, x, w - x, NULL, R_NORMAL, "%s", buf);
	if (p->target >= 0)
		snprintf(buf, sizeof buf, "target %s  ", cname(names, s->k, p->target));
	else
		snprintf(buf, sizeof buf, "untargeted  ");
	x += kv(a, y, x, w - x, live ? "tT" : NULL, R_TARGET, "%s", buf);
	if (p->kind == ATTACK_MIFGSM) {
		snprintf(buf, sizeof buf, "μ %.2g  ", p->momentum);
		x += kv(a, y, x, w - x, live ? "mM" : NULL, R_NORMAL, "%s", buf);
	}
	if (p->early_stop)
		x += kv(a, y, x, w - x, live ? "x" : NULL, R_NORMAL, "%s", "early stop  ");
	if (live) {
		static const struct key_hint keys[] = {
			{ "n", "step", 'n' }, { "Space", "run", ' ' }, { "r", "reset", 'r' },
			{ "e", "export", 'e' },
		};

		x += draw_text(pal, y, x, w - x, R_DIM, "│ ");
		x += app_key_bar(a, y, x, w - x, keys, 4);
	} else
		x += draw_text(pal, y, x, w - x, R_DIM, "│ ←→ iter %d (step %d of %d)  Home End  e export  Esc back",
			       a->replay.n_steps ? a->replay.steps[a->replay.cursor].iter : 0,
			       a->replay.n_steps ? a->replay.cursor + 1 : 0, a->replay.n_steps);
}

/* ---- images ---------------------------------------------------------------------------- */

static void draw_images(struct app *a, const struct session_snap *s, int y, int scale)
{
	struct palette *p = &a->pal;
	const char *const *names = shown_names(a);
	int cw = halfblock_cols(s->w, scale), gap = 2, x0, i;
	int have_adv = !a->replay.active || a->replay.have_adv;
	double mx = 0.0, amp;
	char cap[200];

	x0 = (COLS - (3 * cw + 2 * gap)) / 2;
	if (x0 < 0)
		x0 = 0;
	for (i = 0; have_adv && i < (int)s->npix; i++) {
		double d = fabs((double)s->xadv[i] - s->x0[i]);

		if (d > mx)
			mx = d;
	}
	amp = mx > 0 ? 0.5 / mx : 0.0;
	for (i = 0; i < (int)s->npix; i++)
		a->attack.delta[i] = have_adv ? (float)(0.5 + amp * ((double)s->xadv[i] - s->x0[i])) :
			0.5f;
	/* captions */
	if (a->names_differ && !a->replay.active && s->label >= 0 &&
	    s->label < dataset_n_classes(a->data))
		snprintf(cap, sizeof cap, "clean · true %s (data: %s)", cname(names, s->k, s->label),
			 dataset_class_name(a->data, s->label));
	else
		snprintf(cap, sizeof cap, "clean · true %s", s->label >= 0 ?
			 cname(names, s->k, s->label) : "unknown");
	if (draw_width(cap) > cw && s->label >= 0)
		snprintf(cap, sizeof cap, "true %s", cname(names, s->k, s->label));
	draw_text(p, y, x0, cw, R_TRUE, "%s", cap);
	if (amp > 0)
		snprintf(cap, sizeof cap, "perturbation ×%.3g · L∞ %.3g · L2 %.3g", amp,
			 s->pert_linf, s->pert_l2);
	else
		snprintf(cap, sizeof cap, "perturbation: none%s", have_adv ? " yet" : " stored");
	if (draw_width(cap) > cw && amp > 0)
		snprintf(cap, sizeof cap, "δ×%.3g L∞ %.2g L2 %.2g", amp, s->pert_linf, s->pert_l2);
	draw_text(p, y, x0 + cw + gap, cw, R_NORMAL, "%s", cap);
	if (!have_adv)
		snprintf(cap, sizeof cap, "adversarial: not stored");
	else if (a->replay.active) {
		int fp = a->replay.row->final_pred;

		if (fp >= 0 && fp < a->replay.n_final)
			snprintf(cap, sizeof cap, "final · iter %d · %s %.1f%%", s->iter,
				 cname(names, s->k, fp), 100.0 * a->replay.final_probs[fp]);
		else
			snprintf(cap, sizeof cap, "final · iter %d", s->iter);
	} else if (s->have_eval)
		snprintf(cap, sizeof cap, "adversarial · iter %d · %s %.1f%%%s", s->iter,
			 cname(names, s->k, s->pred), 100.0 * s->probs[s->pred],
			 s->eval_iter != s->iter ? " (prev. iter)" : "");
	else
		snprintf(cap, sizeof cap, "adversarial · iter %d", s->iter);
	/* narrow: the prediction before the words, so it is never what is cut */
	if (draw_width(cap) > cw && have_adv && !a->replay.active && s->have_eval)
		snprintf(cap, sizeof cap, "iter %d · %.0f%% %s", s->iter, 100.0 * s->probs[s->pred],
			 cname(names, s->k, s->pred));
	else if (draw_width(cap) > cw && have_adv && a->replay.active &&
		 a->replay.row->final_pred >= 0 && a->replay.row->final_pred < a->replay.n_final)
		snprintf(cap, sizeof cap, "iter %d · %.0f%% %s", s->iter,
			 100.0 * a->replay.final_probs[a->replay.row->final_pred],
			 cname(names, s->k, a->replay.row->final_pred));
	draw_text(p, y, x0 + 2 * (cw + gap), cw, (a->replay.active ? a->replay.row->success > 0 :
						     s->success) ? R_GOOD : R_PRED, "%s", cap);
	halfblock_draw(p, y + 1, x0, s->x0, s->h, s->w, scale);
	halfblock_draw(p, y + 1, x0 + cw + gap, a->attack.delta, s->h, s->w, scale);
	if (have_adv)
		halfblock_draw(p, y + 1, x0 + 2 * (cw + gap), s->xadv, s->h, s->w, scale);
}

/* ---- probabilities ---------------------------------------------------------------------- */

static void draw_probs(struct app *a, const struct session_snap *s, int y, int x, int h, int w)
{
	struct palette *p = &a->pal;
	const char *const *names = shown_names(a);
	int rows = h - 2, legend = 0, n = 0, i, j, show[512];
	char title[96];

	if (rows > s->k) {
		legend = 1;
		rows--;
	}
	/* a panel too short for every class says how many it leaves out */
	if (s->k > rows && rows >= 1)
		snprintf(title, sizeof title, "probabilities at iter %d · +%d more (%s)", s->eval_iter,
			 s->k - rows, a->attack.linear ? "linear" : "log");
	else
		snprintf(title, sizeof title, "probabilities at iter %d (%s)", s->eval_iter,
			 a->attack.linear ? "linear" : "log scale");
	if (draw_width(title) > w - 6)
		snprintf(title, sizeof title, "p · iter %d%s%.0d%s", s->eval_iter,
			 s->k > rows ? " · +" : "", s->k > rows ? s->k - rows : 0,
			 s->k > rows ? " more" : "");
	draw_box(p, y, x, h, w, title);
	if (rows < 1 || !s->have_eval)
		return;
	/* every class when they fit; else the marked ones, then the likeliest */
	if (s->k <= rows) {
		for (i = 0; i < s->k; i++)
			show[n++] = i;
	} else {
		int marked[3] = { s->label, s->p.target, s->pred };

		for (i = 0; i < 3; i++) {
			int dup = marked[i] < 0;

			for (j = 0; j < n; j++)
				dup |= show[j] == marked[i];
			if (!dup && n < rows)
				show[n++] = marked[i];
		}
		while (n < rows && n < 512) {
			int best = -1;

			for (i = 0; i < s->k; i++) {
				int dup = 0;

				for (j = 0; j < n; j++)
					dup |= show[j] == i;
				if (!dup && (best < 0 || s->probs[i] > s->probs[best]))
					best = i;
			}
			if (best < 0)
				break;
			show[n++] = best;
		}
		for (i = 1; i < n; i++)		/* back into class order */
			for (j = i; j > 0 && show[j - 1] > show[j]; j--) {
				int t = show[j];

				show[j] = show[j - 1];
				show[j - 1] = t;
			}
	}
	for (i = 0; i < n; i++) {
		int c = show[i], row = y + 1 + i, bx, bw;
		double pr = s->probs[c], frac;
		enum role r = c == s->p.target ? R_TARGET : c == s->pred ? R_PRED :
			c == s->label ? R_TRUE : R_NORMAL;

		/* a mark only where there is one: a blank in the mark's role
		 * is an underlined blank without colour */
		if (c == s->label)
			draw_text(p, row, x + 1, 1, R_TRUE, "T");
		if (c == s->p.target)
			draw_text(p, row, x + 2, 1, R_TARGET, "◎");
		if (c == s->pred)
			draw_text(p, row, x + 3, 1, R_PRED, "▶");
		draw_text(p, row, x + 5, 12, r, "%.12s", cname(names, s->k, c));
		bx = x + 18;
		bw = w - 18 - 11;
		if (a->attack.linear)
			frac = pr;
		else
			frac = pr > 0 ? (log10(pr) + 12.0) / 12.0 : 0.0;
		if (bw > 2)
			bars_h(p, row, bx, bw, frac, c == s->p.target ? R_TARGET : c == s->pred ?
			       R_PRED : c == s->label ? R_TRUE : R_BAR, 1);
		{
			/* right-aligned by position, not by padding: padding in
			 * the row's role is underlined blanks without colour */
			char v[32];

			snprintf(v, sizeof v, "%.3g", pr);
			draw_text(p, row, x + w - 1 - (int)strlen(v), (int)strlen(v), r, "%s", v);
		}
	}
	if (legend)
		draw_text(p, y + h - 2, x + 2, w - 4, R_DIM, "T true ◎ target ▶ predicted · b %s",
			  a->attack.linear ? "log" : "linear");
}

/* ---- the loss plot ---------------------------------------------------------------------- */

static void draw_loss(struct app *a, const struct session_snap *s, int y, int x, int h, int w)
{
	struct palette *p = &a->pal;
	struct plot_series ser = { s->loss_hist, s->n_hist, R_PLOT };
	char title[160], val[32];
	int total = total_iters(&s->p);

	if (isnan(s->loss))
		snprintf(val, sizeof val, "NaN");
	else if (isinf(s->loss))
		snprintf(val, sizeof val, "inf");
	else
		snprintf(val, sizeof val, "%.6g", s->loss);
	snprintf(title, sizeof title, "loss %s at iter %d: %s · p(%s) %.3g",
		 attack_objective_name(&s->p), s->eval_iter, val,
		 cname(shown_names(a), s->k, s->cls), s->target_prob);
	if (draw_width(title) > w - 6)
		snprintf(title, sizeof title, "%s @%d: %.4g · p %.2g", attack_objective_name(&s->p),
			 s->eval_iter, s->loss, s->target_prob);
	draw_box(p, y, x, h, w, title);
	if (h < 5 || !s->have_eval)
		return;
	plot_draw(p, y + 1, x + 1, h - 2, w - 2, &ser, 1,
		  total > s->n_hist - 1 ? total : s->n_hist - 1,
		  a->replay.active ? s->eval_iter : -1);
}

/* ---- the gradient histogram ---------------------------------------------------------------- */

#define HIST_COLS (DIAG_HIST_BINS + 5)	/* zero, tiny, the decades, huge, NaN, inf */

static void draw_hist(struct app *a, const struct session_snap *s, int y, int x, int h, int w)
{
	struct palette *p = &a->pal;
	const struct diag_grad *g = &s->grad;
	size_t count[HIST_COLS], mx = 0;
	enum role role[HIST_COLS];
	int i, cw, bh, bx, inner = w - 2, last_label = -10;
	char title[96];

	snprintf(title, sizeof title, "log₁₀|∂loss/∂pixel| · %zu components", g->n);
	if (draw_width(title) > w - 6)
		snprintf(title, sizeof title, "log₁₀|∂loss/∂px| · %zu", g->n);
	draw_box(p, y, x, h, w, title);
	if (h < 6 || !s->have_eval)
		return;
	count[0] = g->n_zero;
	role[0] = R_ZERO;
	count[1] = g->n_tiny;
	role[1] = R_DIM;
	for (i = 0; i < DIAG_HIST_BINS; i++) {
		count[2 + i] = g->hist[i];
		role[2 + i] = R_BAR;
	}
	count[2 + DIAG_HIST_BINS] = g->n_huge;
	role[2 + DIAG_HIST_BINS] = R_WARN;
	count[3 + DIAG_HIST_BINS] = g->n_nan;
	role[3 + DIAG_HIST_BINS] = R_NAN;
	count[4 + DIAG_HIST_BINS] = g->n_inf;
	role[4 + DIAG_HIST_BINS] = R_NAN;
	for (i = 0; i < HIST_COLS; i++)
		if (count[i] > mx)
			mx = count[i];
	cw = inner / HIST_COLS;
	if (cw > 3)
		cw = 3;
	if (cw < 1)
		cw = 1;
	bh = h - 4;
	bx = x + 1 + (inner - cw * HIST_COLS) / 2;
	for (i = 0; i < HIST_COLS; i++) {
		int cx = bx + i * cw;
		char lab[8];

		snprintf(lab, sizeof lab, "%d", DIAG_HIST_LO_EXP + i - 2);
		if (count[i] && mx)
			bars_v(p, y + 1, cx, bh, cw > 1 ? cw - 1 : 1, (double)count[i] / mx, role[i]);
		if (i < 2 || i >= 2 + DIAG_HIST_BINS) {
			/* the special columns: one character each, always */
			static const char *const special[] = { "∅", "<", ">", "N", "∞" };

			draw_text(p, y + 1 + bh, cx, 1, role[i],
				  "%s", special[i < 2 ? i : i - DIAG_HIST_BINS]);
			last_label = cx + 1;
		} else if ((i - 2) % (cw >= 3 ? 2 : 3) == 0 && cx >= last_label + 1 &&
			   cx + (int)strlen(lab) <= bx + (2 + DIAG_HIST_BINS) * cw) {
			last_label = cx + draw_text(p, y + 1 + bh, cx, 4, R_DIM, "%s", lab);
		}
	}
	{
		char line[200];

		snprintf(line, sizeof line, "∅ zero %zu (%.1f%%) · N NaN %zu · ∞ %zu · L2 %.3g · L∞ %.3g",
			 g->n_zero, 100.0 * g->zero_frac, g->n_nan, g->n_inf, g->l2, g->linf);
		if (draw_width(line) > w - 4)	/* the counts, then the norms */
			snprintf(line, sizeof line, "∅ zero %zu (%.1f%%) · NaN %zu · ∞ %zu · L2 %.2g",
				 g->n_zero, 100.0 * g->zero_frac, g->n_nan, g->n_inf, g->l2);
		draw_text(p, y + h - 2, x + 2, w - 4, g->n_zero == g->n && g->n ? R_ZERO : R_NORMAL,
			  "%s", line);
	}
}

/* ---- the layer norms ------------------------------------------------------------------------ */

/* Where the gradient dies, or shrinks most, as one line. */
static void layer_summary(struct app *a, const struct session_snap *s, char *buf, size_t n)
{
	int nl = s->n_norms - 1, i, worst = -1, named = nl == a->n_layers;
	double worst_ratio = 1.0;

	/* node i's output norm: norms[out] (i + 1 in a chain; a replayed
	 * run of another model is read as a chain) */
	for (i = nl - 1; i >= 0; i--) {
		int o = named ? a->layer_out[i] : i + 1;

		if (o < 0)
			continue;
		if (s->norms[i] == 0.0 && s->norms[o] > 0.0) {
			snprintf(buf, n, "the gradient dies at layer %d%s%s%s: %.3g after it, 0 before",
				 i, named ? " (" : "", named ? a->layer_kind[i] : "", named ? ")" : "",
				 s->norms[o]);
			return;
		}
		if (s->norms[o] > 0.0 && s->norms[i] / s->norms[o] < worst_ratio) {
			worst_ratio = s->norms[i] / s->norms[o];
			worst = i;
		}
	}
	if (nl >= 0 && s->norms[nl] == 0.0)
		snprintf(buf, n, "the gradient is already 0 at the model output: the loss is flat there");
	else if (worst >= 0)
		snprintf(buf, n, "largest drop: ×%.3g through layer %d%s%s%s · output %.3g → pixels %.3g",
			 worst_ratio, worst, named ? " (" : "", named ? a->layer_kind[worst] : "",
			 named ? ")" : "", nl >= 0 ? s->norms[nl] : 0.0, s->grad.l2);
	else
		snprintf(buf, n, "no layer shrinks the gradient · output %.3g → pixels %.3g",
			 nl >= 0 ? s->norms[nl] : 0.0, s->grad.l2);
}

/* "conv2d 3x3/1 p1 features.0" -> "conv", "global avgpool" -> "gap". */
static const char *short_kind(const char *kind)
{
	static const char *const map[][2] = {
		{ "conv", "conv" }, { "relu", "relu" }, { "maxpool", "pool" },
		{ "avgpool", "pool" }, { "global", "gap" }, { "flatten", "flat" },
		{ "dense", "fc" }, { "dropout", "drop" }, { "softmax", "smax" },
		{ "add", "+add" }, { "concat", "+cat" }, { "batchnorm", "bn" },
		{ "slice", "slc" }, { "leaky", "lrelu" }, { "sigmoid", "sigm" },
		{ "identity", "id" },
	};
	size_t i;

	for (i = 0; i < sizeof map / sizeof map[0]; i++)
		if (!strncmp(kind, map[i][0], strlen(map[i][0])))
			return map[i][1];
	return kind;
}

static void draw_layers(struct app *a, const struct session_snap *s, int y, int x, int h, int w)
{
	struct palette *p = &a->pal;
	int inner = w - 2, nl = s->n_norms - 1, named = nl == a->n_layers;
	int idx[1024], nb = 0, i, cw, bh, lo_set = 0, last_label = -10;
	double v[1024], lmin = 0, lmax = 0;
	char buf[400];

	draw_box(p, y, x, h, w, "gradient L2 norm at each node's input, pixels → output (log scale; +: branches meet)");
	if (h < 5 || !s->have_eval || nl < 0)
		return;
	/* bars: the pixels (-1), then the input of each layer, then the output */
	idx[nb] = -1;
	v[nb++] = s->grad.l2;
	for (i = 0; i <= nl && nb < 1024; i++)
		if (nl + 2 <= inner || !named || i == nl || a->layer_params[i]) {
			idx[nb] = i;
			v[nb++] = s->norms[i];
		}
	for (i = 0; i < nb; i++)
		if (isfinite(v[i]) && v[i] > 0) {
			double l = log10(v[i]);

			if (!lo_set || l < lmin)
				lmin = l;
			if (!lo_set || l > lmax)
				lmax = l;
			lo_set = 1;
		}
	cw = inner / nb;
	if (cw > 8)
		cw = 8;
	if (cw < 1)
		cw = 1;
	bh = h - 4;
	for (i = 0; i < nb && (i + 1) * cw <= inner; i++) {
		int cx = x + 1 + i * cw, bw = cw > 1 ? cw - 1 : 1;
		enum role r = idx[i] < 0 ? R_TRUE : idx[i] == nl ? R_PRED :
			      named && a->layer_params[idx[i]] == 2 ? R_TARGET : R_BAR;
		char lab[16];

		if (!isfinite(v[i])) {
			draw_text(p, y + bh, cx, bw, R_NAN, "?");
		} else if (v[i] == 0.0) {
			draw_text(p, y + bh, cx, bw, R_ZERO, "×");
		} else {
			double f = lmax > lmin ? 0.12 + 0.88 * (log10(v[i]) - lmin) / (lmax - lmin) : 1.0;

			bars_v(p, y + 1, cx, bh, bw, f, r);
		}
		if (idx[i] < 0)
			snprintf(lab, sizeof lab, "px");
		else if (idx[i] == nl)
			snprintf(lab, sizeof lab, "out");
		else if (named && cw >= 6)
			snprintf(lab, sizeof lab, "%d %.*s", idx[i], cw - 3, short_kind(a->layer_kind[idx[i]]));
		else
			snprintf(lab, sizeof lab, "%d", idx[i]);
		if (cx > last_label)
			last_label = cx + draw_text(p, y + 1 + bh, cx, cw > 4 ? cw - 1 : 4, R_DIM, "%s", lab);
	}
	layer_summary(a, s, buf, sizeof buf);
	draw_text(p, y + h - 2, x + 2, w - 4, strstr(buf, "dies") || strstr(buf, "already 0") ?
		  R_ZERO : R_NORMAL, "%s%s", buf,
		  lo_set ? "" : " · every norm is 0");
	if (lo_set && w >= 100)
		draw_text(p, y, x + w - 24, 22, R_DIM, " 10^%.0f … 10^%.0f ", floor(lmin), ceil(lmax));
}

/* ---- the diagnosis ---------------------------------------------------------------------------- */

static void draw_diag(struct app *a, const struct session_snap *s, int y, int rows)
{
	struct palette *p = &a->pal;
	char buf[DIAG_EXPLAIN_MAX + 64];

	if (!s->have_eval || rows < 1)
		return;
	if (s->diagnosis[0]) {
		/* the key that gets there from here: l cycles ce → prob-ce →
		 * prob-naive → cw, so from prob-ce ce is one L back */
		snprintf(buf, sizeof buf, "⚠ diagnosis: %s%s", s->diagnosis,
			 !strstr(s->diagnosis, "--loss") || a->replay.active ? "" :
			 s->p.loss.mode == LOSS_PROB_CE ? " (here: L goes back to ce)" :
			 " (here: l and L change the loss)");
		draw_wrap(p, y, 1, COLS - 2, rows, R_WARN, buf);
	} else {
		int n = draw_text(p, y, 1, COLS - 2, R_GOOD,
				  "✓ gradient healthy: L2 %.3g, %.2f%% of components exactly 0, no NaN",
				  s->grad.l2, 100.0 * s->grad.zero_frac);

		/* healthy is the start of the story, not its end: say where
		 * it goes on */
		if (s->p.loss.mode == LOSS_CE && !a->replay.active && s->iter == 0)
			draw_text(p, y, 1 + n, COLS - 2 - n, R_DIM, " · try l (prob-ce): the same "
				  "loss on clipped probabilities · ? then t: the tour");
	}
}

/* ---- the screen --------------------------------------------------------------------------------- */

void attackview_draw(struct app *a, int y, int h)
{
	const struct session_snap *s = shown(a);
	int scale = 1, sc, ir = 0, full = -1, py, ph, cols;

	if (!s->loaded) {
		draw_text(&a->pal, y + 2, 2, COLS - 4, R_DIM, "%s", s->busy ? "loading…" :
			  "No image open: pick one in Browse (1) and press Enter.");
		return;
	}
	/* the largest images that leave the panels their rows */
	for (sc = 1; sc <= 16 && full < 0; sc++) {
		cols = 3 * halfblock_cols(s->w, sc) + 4;
		ir = halfblock_rows(s->h, sc);
		if (cols <= COLS && 2 + ir + FULL_PANEL_ROWS <= h) {
			full = 1;
			scale = sc;
		}
	}
	for (sc = 1; sc <= 16 && full < 0; sc++) {
		cols = 3 * halfblock_cols(s->w, sc) + 4;
		ir = halfblock_rows(s->h, sc);
		if (cols <= COLS && 2 + ir + COMPACT_PANEL_ROWS <= h) {
			full = 0;
			scale = sc;
		}
	}
	if (full < 0) {
		draw_text(&a->pal, y + 2, 2, COLS - 4, R_WARN, "terminal too small for the Attack "
			  "screen: enlarge it");
		return;
	}
	draw_params(a, s, y);
	draw_images(a, s, y + 1, scale);
	py = y + 2 + ir;
	ph = y + h - py;
	if (full) {
		int diag = 2, top = s->k + 3, lay, w1, w2;

		if (top > ph - diag - 8)
			top = ph - diag - 8;
		if (top < 8)
			top = 8;
		lay = ph - diag - top;
		w1 = COLS * 3 / 10;
		w1 = w1 < 36 ? 36 : w1 > 60 ? 60 : w1;
		w2 = (COLS - w1) / 2;
		draw_probs(a, s, py, 0, top, w1);
		draw_loss(a, s, py, w1, top, w2);
		draw_hist(a, s, py, w1 + w2, top, COLS - w1 - w2);
		draw_layers(a, s, py + top, 0, lay, COLS);
		draw_diag(a, s, py + top + lay, diag);
	} else {
		int half = COLS / 2;

		if (a->attack.lower == 0) {
			draw_probs(a, s, py, 0, ph - 1, half);
			draw_loss(a, s, py, half, ph - 1, COLS - half);
		} else {
			draw_hist(a, s, py, 0, ph - 1, half);
			draw_layers(a, s, py, half, ph - 1, COLS - half);
		}
		app_zone(a, py + ph - 2, COLS - 22, draw_text(&a->pal, py + ph - 2, COLS - 22, 20,
							       R_DIM, " d: %s ", a->attack.lower ?
							       "probs, loss" : "gradient"), 'd');
		draw_diag(a, s, py + ph - 1, 1);
	}
}

/* ---- keys --------------------------------------------------------------------------------------- */

static double eps_step(const struct attack_params *p)
{
	return p->norm == ATTACK_LINF ? 1.0 / 255 : 0.1;
}

static double alpha_step(const struct attack_params *p)
{
	return p->norm == ATTACK_LINF ? 0.5 / 255 : 0.01;
}

static int iters_step(int iters, int up)
{
	int base = up ? iters : iters - 1;

	return base < 10 ? 1 : base < 50 ? 5 : base < 200 ? 10 : base < 1000 ? 50 : 500;
}

/* Next target in t order: untargeted, then every class but the true label. */
static int next_target(int t, int k, int label, int dir)
{
	int i;

	for (i = 0; i < k + 1; i++) {
		t += dir;
		if (t >= k)
			t = -1;
		if (t < -1)
			t = k - 1;
		if (t != label)
			return t;
	}
	return t;
}

/* Is the shown image the open model's to classify? A replayed run may
 * come from another model file. */
static int model_is_open_one(const struct app *a)
{
	const char *logged = a->replay.row->model_path;
	char abs[PATH_MAX];

	if (!a->replay.active)
		return 1;
	if (!strncmp(a->model_label, "builtin:", 8) || !strncmp(logged, "builtin:", 8))
		return !strcmp(a->model_label, logged);
	return realpath(a->model_label, abs) && !strcmp(abs, logged);
}

void attackview_export(struct app *a)
{
	const struct session_snap *s = shown(a);
	const struct attack_params *p = &s->p;
	const char *const *names = shown_names(a);
	char path[4400], name[256], err[ERR_MAX];
	struct exportmeta m;
	int64_t run;

	if (!s->loaded || (a->replay.active && !a->replay.have_adv)) {
		app_message(a, R_BAD, "nothing to export: %s", a->replay.active ?
			    "this run stored no adversarial image" : "no image open");
		return;
	}
	if (a->replay.active)
		snprintf(name, sizeof name, "advex-run%lld-%s-%s-iter%d.png",
			 (long long)a->replay.row_id, attack_kind_name(p->kind),
			 attack_objective_name(p), s->iter);
	else
		snprintf(name, sizeof name, "advex-img%d-%s-%s-%s-iter%d.png", s->index,
			 attack_kind_name(p->kind), attack_objective_name(p),
			 attack_norm_name(p->norm), s->iter);
	snprintf(path, sizeof path, "%s/%s", a->out_dir, name);
	{
		/* never over an earlier export: name-2.png, name-3.png, ... */
		char stem[256];
		int i;

		snprintf(stem, sizeof stem, "%.*s", (int)strlen(name) - 4, name);
		for (i = 2; access(path, F_OK) == 0 && i < 10000; i++)
			snprintf(path, sizeof path, "%s/%s-%d.png", a->out_dir, stem, i);
	}
	run = a->replay.active ? a->replay.row_id : s->run_id ? s->run_id : s->last_run_id;
	exportmeta_fill(&m, p, s->iter, p->target >= 0 ? cname(names, s->k, p->target) : NULL,
			s->label >= 0 ? cname(names, s->k, s->label) : NULL, s->image_name,
			a->model_label, run);
	if (image_write_png(path, s->xadv, s->h, s->w, m.keys, m.vals, m.n, err) != ST_OK) {
		app_message(a, R_BAD, "export failed: %s", err);
		return;
	}
	if (!model_is_open_one(a)) {
		app_message(a, R_GOOD, "exported %s (run #%lld is another model's: not read back)",
			    path, (long long)run);
		return;
	}
	app_message(a, R_GOOD, "exported %s; reading it back", path);
	/* the session owns the net: it classifies the 8-bit image */
	session_recheck(a->session, path, run, p, s->label, s->have_eval && s->success);
}

int attackview_key(struct app *a, int key)
{
	struct attack_params *p = &a->want;
	int label = a->snap.label;

	if (key == 'b') {
		a->attack.linear = !a->attack.linear;
		return 1;
	}
	if (key == 'd') {
		a->attack.lower = !a->attack.lower;
		return 1;
	}
	if (key == 'e') {
		attackview_export(a);
		return 1;
	}
	if (a->replay.active) {
		if (replay_key(a, key))
			return 1;
		if (strchr("aAoltT+-=_[]iImMnrx ", key) && key < 128) {
			app_message(a, R_WARN, "read-only replay of run #%lld: Esc closes it",
				    (long long)a->replay.row_id);
			return 1;
		}
		return 0;
	}
	/* a parameter the kind ignores: say so rather than change it unseen
	 * (a change would also start a finished run again for nothing) */
	if (key > 0 && key < 128 &&
	    ((strchr("+-=_", key) && !attack_uses_eps(p->kind)) ||
	     (strchr("[]", key) && !attack_uses_alpha(p->kind)))) {
		app_message(a, R_NORMAL, "%s takes no %s: %s", kind_label(p->kind),
			    strchr("[]", key) ? "α" : "ε", unused_why(p->kind));
		return 1;
	}
	if ((key == 'l' || key == 'L') && !attack_uses_loss(p->kind)) {
		app_message(a, R_NORMAL, "%s optimises its own objective (%s): l does not apply",
			    kind_label(p->kind), attack_objective_name(p));
		return 1;
	}
	switch (key) {
	case 'n':
		session_step(a->session);
		return 1;
	case ' ':
		session_toggle_run(a->session);
		return 1;
	case 'r':
		session_reset(a->session);
		return 1;
	case 'a':
		p->kind = (enum attack_kind)((p->kind + 1) % ATTACK_N_KINDS);
		fit_kind(p);
		break;
	case 'A':
		p->kind = (enum attack_kind)((p->kind + ATTACK_N_KINDS - 1) % ATTACK_N_KINDS);
		fit_kind(p);
		break;
	case 'l':
		p->loss.mode = (enum loss_mode)((p->loss.mode + 1) % LOSS_N_MODES);
		break;
	case 'L':
		p->loss.mode = (enum loss_mode)((p->loss.mode + LOSS_N_MODES - 1) % LOSS_N_MODES);
		break;
	case 'o':
		if (p->norm == ATTACK_LINF) {
			p->norm = ATTACK_L2;
			p->eps = 1.0;
			p->alpha = 0.1;
		} else {
			p->norm = ATTACK_LINF;
			p->eps = 8.0 / 255;
			p->alpha = 1.0 / 255;
		}
		break;
	case 't':
		p->target = next_target(p->target, a->k, label, 1);
		break;
	case 'T':
		p->target = next_target(p->target, a->k, label, -1);
		break;
	case '+': case '=':
		p->eps += eps_step(p);
		if (p->norm == ATTACK_LINF && p->eps > 1.0)
			p->eps = 1.0;
		break;
	case '-': case '_':
		if (p->eps - eps_step(p) >= eps_step(p) * 0.999)
			p->eps -= eps_step(p);
		if (p->alpha > p->eps)
			p->alpha = p->eps;
		break;
	case ']':
		p->alpha += alpha_step(p);
		if (p->alpha > p->eps) {
			p->alpha = p->eps;
			app_message(a, R_NORMAL, "α stops at ε: a larger step would leave the ball");
		}
		break;
	case '[':
		if (p->alpha - alpha_step(p) >= alpha_step(p) * 0.999)
			p->alpha -= alpha_step(p);
		break;
	case 'i':
		p->iters += iters_step(p->iters, 1);
		if (p->iters > SESSION_MAX_ITERS)
			p->iters = SESSION_MAX_ITERS;
		break;
	case 'I':
		if (p->iters > 1)
			p->iters -= iters_step(p->iters, 0);
		if (p->iters < 1)
			p->iters = 1;
		break;
	/* on the tenths exactly: repeated ±0.1 in floating point drifts
	 * (1.4e-16 where 0 was meant) */
	case 'm':
		p->momentum = round(p->momentum * 10.0 + 1.0) / 10.0;
		break;
	case 'M':
		p->momentum = p->momentum > 0.1 ? round(p->momentum * 10.0 - 1.0) / 10.0 : 0.0;
		break;
	case 'x':
		p->early_stop = !p->early_stop;
		break;
	default:
		return 0;
	}
	app_send_params(a);
	return 1;
}
