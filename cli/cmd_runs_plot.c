/* cmd_runs_plot.c - `advex runs plot`: the run log as a picture, drawn with
 * cairo into an image surface and written as PNG through image_write_png
 * (a temporary name renamed over --out): the success rate versus epsilon
 * of every sweep (runs_sweep, the numbers of `advex runs sweep`), the loss
 * per iteration of chosen runs, or the log10|gradient| histogram of a
 * step.
 *
 * The picture is PLOT_W x PLOT_H pixels; the data area is the rectangle
 * PLOT_X0..PLOT_X1 x PLOT_Y0..PLOT_Y1 (y grows downwards), the value x
 * maps to PLOT_X0 + (x - xlo) / (xhi - xlo) * (PLOT_X1 - PLOT_X0) and y to
 * PLOT_Y1 - (y - ylo) / (yhi - ylo) * (PLOT_Y1 - PLOT_Y0). The PNG's tEXt
 * chunks keep the area and the ranges (advex.plot_area, advex.x_range,
 * advex.y_range), so a reader can find a point of the data in the
 * pixels. Each data point is marked with a filled disc of its line's
 * colour (PLOT_MARK pixels in radius). */
#include <cairo.h>
#include <fontconfig/fontconfig.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd_runs.h"
#include "db.h"
#include "diag.h"
#include "image.h"
#include "runs.h"

#define PLOT_W 900
#define PLOT_H 500
#define PLOT_X0 80
#define PLOT_X1 560
#define PLOT_Y0 50
#define PLOT_Y1 430
#define PLOT_MARK 4.0
#define MAX_SERIES 8

enum { OPT_DB = OPT_FIRST_FREE, OPT_OUT, OPT_KIND, OPT_RUNS, OPT_STEP };

/* Colours of the lines, in legend order (Tableau 10: told apart by most
 * colour-blind readers too). */
static const double palette[MAX_SERIES][3] = {
	{ 0.122, 0.467, 0.706 }, { 1.000, 0.498, 0.055 }, { 0.173, 0.627, 0.173 },
	{ 0.839, 0.153, 0.157 }, { 0.580, 0.404, 0.741 }, { 0.549, 0.337, 0.294 },
	{ 0.890, 0.467, 0.761 }, { 0.498, 0.498, 0.498 },
};

struct series {
	char name[160];
	int n, cap;
	double *x, *y;
};

struct chart {
	char title[256];
	const char *xlabel, *ylabel;
	int bars;			/* histogram: bars, not lines */
	struct series s[MAX_SERIES];
	int n;
	int dropped;			/* sweeps beyond MAX_SERIES, not drawn */
	double xlo, xhi, ylo, yhi;
};

static void chart_free(struct chart *c)
{
	int i;

	for (i = 0; i < MAX_SERIES; i++) {
		free(c->s[i].x);
		free(c->s[i].y);
	}
}

static int series_add(struct series *s, double x, double y)
{
	if (s->n == s->cap) {
		int cap = s->cap ? 2 * s->cap : 32;
		double *nx = realloc(s->x, sizeof *nx * (size_t)cap);
		double *ny;

		if (!nx)
			return -1;
		s->x = nx;
		ny = realloc(s->y, sizeof *ny * (size_t)cap);
		if (!ny)
			return -1;
		s->y = ny;
		s->cap = cap;
	}
	s->x[s->n] = x;
	s->y[s->n] = y;
	s->n++;
	return 0;
}

/* ---- drawing --------------------------------------------------------------------- */

static double map_x(const struct chart *c, double x)
{
	return PLOT_X0 + (x - c->xlo) / (c->xhi - c->xlo) * (PLOT_X1 - PLOT_X0);
}

static double map_y(const struct chart *c, double y)
{
	return PLOT_Y1 - (y - c->ylo) / (c->yhi - c->ylo) * (PLOT_Y1 - PLOT_Y0);
}

/* A tick step of 1, 2 or 5 times a power of ten giving about 5 ticks. */
static double tick_step(double span)
{
	double p = pow(10, floor(log10(span / 5))), m = span / 5 / p;

	return p * (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10);
}

static void text_at(cairo_t *cr, double x, double y, const char *s, double ax,
		    double ay)
{
	cairo_text_extents_t e;

	cairo_text_extents(cr, s, &e);
	cairo_move_to(cr, x - ax * e.width - e.x_bearing, y - ay * e.height - e.y_bearing);
	cairo_show_text(cr, s);
}

static void draw_axes(cairo_t *cr, const struct chart *c)
{
	double step, v;
	char buf[64];

	cairo_set_source_rgb(cr, 0, 0, 0);
	cairo_set_line_width(cr, 1);
	cairo_rectangle(cr, PLOT_X0 + 0.5, PLOT_Y0 + 0.5, PLOT_X1 - PLOT_X0, PLOT_Y1 - PLOT_Y0);
	cairo_stroke(cr);
	cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
			       CAIRO_FONT_WEIGHT_NORMAL);
	cairo_set_font_size(cr, 12);
	step = tick_step(c->xhi - c->xlo);
	for (v = ceil(c->xlo / step) * step; v <= c->xhi + 1e-9 * step; v += step) {
		double x = floor(map_x(c, v)) + 0.5;

		cairo_move_to(cr, x, PLOT_Y1);
		cairo_line_to(cr, x, PLOT_Y1 + 5);
		cairo_stroke(cr);
		snprintf(buf, sizeof buf, "%g", fabs(v) < 1e-12 * step ? 0.0 : v);
		text_at(cr, x, PLOT_Y1 + 8, buf, 0.5, 0);
	}
	step = tick_step(c->yhi - c->ylo);
	for (v = ceil(c->ylo / step) * step; v <= c->yhi + 1e-9 * step; v += step) {
		double y = floor(map_y(c, v)) + 0.5;

		cairo_move_to(cr, PLOT_X0 - 5, y);
		cairo_line_to(cr, PLOT_X0, y);
		cairo_stroke(cr);
		snprintf(buf, sizeof buf, "%g", fabs(v) < 1e-12 * step ? 0.0 : v);
		text_at(cr, PLOT_X0 - 8, y, buf, 1, 0.5);
	}
	cairo_set_font_size(cr, 14);
	text_at(cr, (PLOT_X0 + PLOT_X1) / 2.0, PLOT_Y1 + 32, c->xlabel, 0.5, 0);
	text_at(cr, (PLOT_X0 + PLOT_X1) / 2.0, PLOT_Y0 - 28, c->title, 0.5, 0);
	cairo_save(cr);
	cairo_translate(cr, 22, (PLOT_Y0 + PLOT_Y1) / 2.0);
	cairo_rotate(cr, -M_PI / 2);
	text_at(cr, 0, 0, c->ylabel, 0.5, 0.5);
	cairo_restore(cr);
}

static void draw_series(cairo_t *cr, const struct chart *c, int k)
{
	const struct series *s = &c->s[k];
	double bw = (PLOT_X1 - PLOT_X0) / (c->xhi - c->xlo) / (c->n + 1);
	int i, pen = 0;

	cairo_set_source_rgb(cr, palette[k][0], palette[k][1], palette[k][2]);
	if (c->bars) {
		/* one bar per bin and series, side by side within the bin */
		for (i = 0; i < s->n; i++) {
			double x = map_x(c, s->x[i]) + (k + 0.5) * bw;

			cairo_rectangle(cr, x, map_y(c, s->y[i]), bw,
					PLOT_Y1 - map_y(c, s->y[i]));
			cairo_fill(cr);
		}
		return;
	}
	cairo_set_line_width(cr, 2);
	for (i = 0; i < s->n; i++) {
		if (!isfinite(s->y[i])) {
			pen = 0;	/* a NaN loss breaks the line */
			continue;
		}
		if (pen)
			cairo_line_to(cr, map_x(c, s->x[i]), map_y(c, s->y[i]));
		else
			cairo_move_to(cr, map_x(c, s->x[i]), map_y(c, s->y[i]));
		pen = 1;
	}
	cairo_stroke(cr);
	/* the points themselves, unless there are too many to see apart */
	if (s->n <= 60)
		for (i = 0; i < s->n; i++) {
			if (!isfinite(s->y[i]))
				continue;
			cairo_arc(cr, map_x(c, s->x[i]), map_y(c, s->y[i]), PLOT_MARK, 0,
				  2 * M_PI);
			cairo_fill(cr);
		}
}

static void draw_legend(cairo_t *cr, const struct chart *c)
{
	int k;

	cairo_set_font_size(cr, 11);
	for (k = 0; k < c->n; k++) {
		double y = PLOT_Y0 + 10 + 22.0 * k;

		cairo_set_source_rgb(cr, palette[k][0], palette[k][1], palette[k][2]);
		cairo_rectangle(cr, PLOT_X1 + 15, y - 5, 18, 10);
		cairo_fill(cr);
		cairo_set_source_rgb(cr, 0, 0, 0);
		text_at(cr, PLOT_X1 + 40, y, c->s[k].name, 0, 0.5);
	}
}

/* Draw c and write it to path as 8-bit RGB PNG. */
static int chart_write(const struct chart *c, const char *path, const char *kind)
{
	cairo_surface_t *sf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, PLOT_W, PLOT_H);
	cairo_t *cr = cairo_create(sf);
	float *pix = NULL;
	char area[64], xr[64], yr[64], err[ERR_MAX];
	const char *keys[] = { "advex.plot", "advex.plot_area", "advex.x_range",
			       "advex.y_range" };
	const char *vals[4];
	int k, x, y, stride, rc = EXIT_OK;
	unsigned char *data;

	if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) {
		rc = cli_fail("%s: cannot draw: %s", path,
			      cairo_status_to_string(cairo_status(cr)));
		goto out;
	}
	cairo_set_source_rgb(cr, 1, 1, 1);
	cairo_paint(cr);
	cairo_save(cr);
	cairo_rectangle(cr, PLOT_X0, PLOT_Y0, PLOT_X1 - PLOT_X0, PLOT_Y1 - PLOT_Y0);
	cairo_clip(cr);
	for (k = 0; k < c->n; k++)
		draw_series(cr, c, k);
	cairo_restore(cr);
	draw_axes(cr, c);
	draw_legend(cr, c);
	cairo_surface_flush(sf);
	if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) {
		rc = cli_fail("%s: cannot draw: %s", path,
			      cairo_status_to_string(cairo_status(cr)));
		goto out;
	}
	/* cairo's RGB24 pixel is a native-endian 32-bit 0x00RRGGBB */
	pix = malloc(sizeof *pix * 3 * PLOT_W * PLOT_H);
	if (!pix) {
		rc = cli_fail("out of memory");
		goto out;
	}
	data = cairo_image_surface_get_data(sf);
	stride = cairo_image_surface_get_stride(sf);
	for (y = 0; y < PLOT_H; y++)
		for (x = 0; x < PLOT_W; x++) {
			uint32_t p;

			memcpy(&p, data + (size_t)y * stride + 4 * (size_t)x, 4);
			pix[0 * PLOT_W * PLOT_H + y * PLOT_W + x] = (float)((p >> 16) & 255) / 255.0f;
			pix[1 * PLOT_W * PLOT_H + y * PLOT_W + x] = (float)((p >> 8) & 255) / 255.0f;
			pix[2 * PLOT_W * PLOT_H + y * PLOT_W + x] = (float)(p & 255) / 255.0f;
		}
	snprintf(area, sizeof area, "%d %d %d %d", PLOT_X0, PLOT_Y0, PLOT_X1, PLOT_Y1);
	snprintf(xr, sizeof xr, "%.17g %.17g", c->xlo, c->xhi);
	snprintf(yr, sizeof yr, "%.17g %.17g", c->ylo, c->yhi);
	vals[0] = kind;
	vals[1] = area;
	vals[2] = xr;
	vals[3] = yr;
	if (image_write_png(path, pix, PLOT_H, PLOT_W, keys, vals, 4, err) != ST_OK)
		rc = cli_fail("%s", err);
out:
	free(pix);
	cairo_destroy(cr);
	cairo_surface_destroy(sf);
	/* cairo keeps its font caches (and fontconfig's) for the process's
	 * life; one picture per process: give them back, so that a leak
	 * checker (./configure --enable-sanitizers) sees none */
	cairo_debug_reset_static_data();
	FcFini();
	return rc;
}

/* ---- what to draw ------------------------------------------------------------------- */

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');

	return s ? s + 1 : p;
}

static int sweep_series(const struct runs_sweep_group *g, void *user)
{
	struct chart *c = user;
	struct series *s;
	char shown[128];
	int i;

	if (c->n == MAX_SERIES) {
		c->dropped++;
		return 0;
	}
	s = &c->s[c->n++];
	snprintf(s->name, sizeof s->name, "%s %s %s %s%s",
		 cli_printable(base_name(g->model_path), shown, 40), g->attack, g->loss,
		 g->norm, g->target >= 0 ? " targeted" : "");
	for (i = 0; i < g->n_rows; i++)
		if (series_add(s, 255 * g->rows[i].eps, g->rows[i].attempted ?
			       100.0 * g->rows[i].succeeded / g->rows[i].attempted : 0.0))
			return -1;
	return 0;
}

struct run_pick {
	int64_t id;
	int step;		/* hist: the iteration; -1: the last */
	struct series *s;
	int found, failed;
};

static int loss_point(const struct run_step *st, void *user)
{
	struct run_pick *p = user;

	p->found++;
	if (series_add(p->s, st->iter, st->loss))
		p->failed = 1;
	return p->failed;
}

static int hist_point(const struct run_step *st, void *user)
{
	struct run_pick *p = user;
	int i;

	if (p->step >= 0 && st->iter != p->step)
		return 0;
	p->found = 1;
	p->s->n = 0;	/* the last one asked for wins */
	for (i = 0; i < DIAG_HIST_BINS && !p->failed; i++)
		if (series_add(p->s, log10(diag_hist_edge(i)), (double)st->hist[i]))
			p->failed = 1;
	return p->failed || p->step >= 0;
}

static int newest(const struct run_row *r, void *user)
{
	*(int64_t *)user = r->id;
	return 1;
}

/* The runs of --runs (or the newest), one series each. */
static int run_series(struct db *db, struct chart *c, const char *runs, int hist,
		      int step)
{
	char list[1024], err[ERR_MAX], *tok, *save = NULL;
	struct runs_filter f = { .limit = 1 };
	int64_t ids[MAX_SERIES];
	int n = 0, k;

	if (!runs) {
		ids[0] = 0;
		if (runs_list(db, &f, newest, &ids[0], err) != ST_OK)
			return cli_fail("%s", err);
		if (!ids[0])
			return cli_fail("%s: no runs to plot", db_path(db));
		n = 1;
	} else {
		snprintf(list, sizeof list, "%s", runs);
		for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			long v = source_parse_long(tok, 1, LONG_MAX);

			if (v < 0)
				return cli_usage_error("runs", "--runs: '%s' is not a run id", tok);
			if (n == MAX_SERIES)
				return cli_usage_error("runs", "--runs: at most %d runs", MAX_SERIES);
			ids[n++] = v;
		}
		if (!n)
			return cli_usage_error("runs", "--runs is empty");
	}
	for (k = 0; k < n; k++) {
		struct run_pick p = { .id = ids[k], .step = step, .s = &c->s[k] };
		struct run_row r;

		if (runs_get(db, ids[k], &r, err) != ST_OK)
			return cli_fail("%s", err);
		c->n = k + 1;
		snprintf(c->s[k].name, sizeof c->s[k].name, "run %lld %s %s eps %s",
			 (long long)ids[k], r.attack, r.loss, r.eps_text[0] ? r.eps_text : "?");
		if (runs_steps(db, ids[k], hist ? hist_point : loss_point, &p, err) != ST_OK)
			return cli_fail("%s", err);
		if (p.failed)
			return cli_fail("out of memory");
		if (!p.found && step >= 0 && hist)
			return cli_fail("run %lld has no step %d", (long long)ids[k], step);
		if (!p.found)
			return cli_fail("run %lld has no steps logged", (long long)ids[k]);
	}
	return EXIT_OK;
}

/* Ranges that hold every point, with a little room above. */
static void fit_ranges(struct chart *c, int kind_sweep)
{
	double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
	int k, i;

	for (k = 0; k < c->n; k++)
		for (i = 0; i < c->s[k].n; i++) {
			if (!isfinite(c->s[k].y[i]))
				continue;
			xlo = fmin(xlo, c->s[k].x[i]);
			xhi = fmax(xhi, c->s[k].x[i]);
			ylo = fmin(ylo, c->s[k].y[i]);
			yhi = fmax(yhi, c->s[k].y[i]);
		}
	if (!isfinite(xlo)) {
		xlo = 0;
		xhi = ylo = yhi = 1;
	}
	if (kind_sweep) {
		/* success rates: 0..100% always, with room so that a point
		 * at 0 or 100% is not hidden by the frame; epsilon from 0 */
		c->xlo = 0;
		c->xhi = xhi > 0 ? xhi * 1.1 : 1;
		c->ylo = -5;
		c->yhi = 105;
		return;
	}
	if (c->bars) {
		c->xlo = DIAG_HIST_LO_EXP;
		c->xhi = DIAG_HIST_HI_EXP;
		c->ylo = 0;
		c->yhi = yhi > 0 ? yhi * 1.1 : 1;
		return;
	}
	/* loss: 5% of room on every side, so a line at the extremes shows */
	c->xlo = xhi > xlo ? xlo - 0.05 * (xhi - xlo) : xlo - 1;
	c->xhi = xhi > xlo ? xhi + 0.05 * (xhi - xlo) : xlo + 1;
	c->ylo = yhi > ylo ? ylo - 0.05 * (yhi - ylo) : ylo - 1;
	c->yhi = yhi > ylo ? yhi + 0.05 * (yhi - ylo) : ylo + 1;
}

int cmd_runs_plot(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "db", required_argument, NULL, OPT_DB },
		{ "out", required_argument, NULL, OPT_OUT },
		{ "kind", required_argument, NULL, OPT_KIND },
		{ "runs", required_argument, NULL, OPT_RUNS },
		{ "step", required_argument, NULL, OPT_STEP },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *path = NULL, *out = NULL, *kind = "sweep", *runs = NULL;
	struct chart *c = calloc(1, sizeof *c);
	struct db *db = NULL;
	char err[ERR_MAX];
	long step = -1;
	int o, rc = EXIT_OK;

	if (!c)
		return cli_fail("out of memory");
	while ((o = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (o) {
		case OPT_DB: path = optarg; break;
		case OPT_OUT: out = optarg; break;
		case OPT_RUNS: runs = optarg; break;
		case OPT_KIND:
			if (strcmp(optarg, "sweep") && strcmp(optarg, "loss") &&
			    strcmp(optarg, "hist")) {
				free(c);
				return cli_usage_error("runs", "--kind: sweep, loss or hist, "
						       "not '%s'", optarg);
			}
			kind = optarg;
			break;
		case OPT_STEP:
			if ((step = source_parse_long(optarg, 0, INT_MAX)) < 0) {
				free(c);
				return cli_usage_error("runs", "--step: '%s' is not an "
						       "iteration", optarg);
			}
			break;
		case 'h':
			free(c);
			printf("usage: advex runs plot [--db FILE] --out FILE.png "
			       "[--kind sweep|loss|hist] [--runs ID,...] [--step K]\n"
			       "(see advex runs --help)\n");
			return EXIT_OK;
		default:
			free(c);
			return cli_usage_error("runs", "unknown option");
		}
	}
	if (optind < argc || !out) {
		free(c);
		return optind < argc ?
		       cli_usage_error("runs", "plot: unexpected argument '%s'", argv[optind]) :
		       cli_usage_error("runs", "plot needs --out FILE.png");
	}
	if (!strcmp(kind, "sweep") && (runs || step >= 0)) {
		free(c);
		return cli_usage_error("runs", "plot: --runs and --step are for --kind "
				       "loss and hist");
	}
	if ((rc = cli_check_outputs(out, NULL, NULL)) ||
	    (rc = cmd_runs_open_log(path, 0, &db))) {
		free(c);
		return rc;
	}
	if (!strcmp(kind, "sweep")) {
		snprintf(c->title, sizeof c->title, "success rate versus epsilon");
		c->xlabel = "epsilon (x 1/255)";
		c->ylabel = "success rate (%)";
		if (runs_sweep(db, sweep_series, c, err) != ST_OK)
			rc = cli_fail("%s", err);
		else if (!c->n)
			rc = cli_fail("%s: no finished runs to plot", db_path(db));
		else if (c->dropped)
			fprintf(stderr, "advex: note: %d sweeps, the first %d drawn\n",
				c->n + c->dropped, MAX_SERIES);
	} else if (!strcmp(kind, "loss")) {
		snprintf(c->title, sizeof c->title, "loss per iteration");
		c->xlabel = "iteration";
		c->ylabel = "loss";
		rc = run_series(db, c, runs, 0, -1);
	} else {
		c->bars = 1;
		snprintf(c->title, sizeof c->title, "gradient magnitudes, %s",
			 step >= 0 ? "one step" : "last step");
		c->xlabel = "log10 |gradient| (decade)";
		c->ylabel = "pixels";
		rc = run_series(db, c, runs, 1, (int)step);
	}
	if (!rc) {
		fit_ranges(c, !strcmp(kind, "sweep"));
		rc = chart_write(c, out, kind);
	}
	if (!rc)
		printf("wrote %s (%s, %dx%d)\n", out, kind, PLOT_W, PLOT_H);
	db_close(db);
	chart_free(c);
	free(c);
	return rc;
}
