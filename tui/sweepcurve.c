/* sweepcurve.c - the sweep curve of the Compare screen (see sweepcurve.h).
 * plot_draw puts y[i] at x = i; a curve is therefore resampled on a grid
 * of epsilon steps (1/255 unless the sweep's epsilons are smaller), each
 * step interpolated linearly between the logged epsilons, and x's label is
 * epsilon in those steps. */
#include "sweepcurve.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plot.h"
#include "runs.h"
#include "status.h"

#define MAX_STEPS 2000	/* grid points of one curve, at most */

struct sweepcurve {
	int n;			/* sweeps read, at most N_SERIES */
	int dropped;		/* sweeps beyond those */
	double scale;		/* grid points per unit of epsilon */
	char name[N_SERIES][96];
	double *eps[N_SERIES], *rate[N_SERIES];	/* the logged points */
	int n_pts[N_SERIES];
	double *grid[N_SERIES];	/* resampled, grid_n each */
	int grid_n;
	int failed;
};

static int add_sweep(const struct runs_sweep_group *g, void *user)
{
	struct sweepcurve *c = user;
	const char *base = strrchr(g->model_path, '/');
	int k = c->n, i;

	if (k == N_SERIES) {
		c->dropped++;
		return 0;
	}
	c->eps[k] = malloc(sizeof *c->eps[k] * (size_t)(g->n_rows ? g->n_rows : 1));
	c->rate[k] = malloc(sizeof *c->rate[k] * (size_t)(g->n_rows ? g->n_rows : 1));
	if (!c->eps[k] || !c->rate[k]) {
		c->failed = 1;
		return 1;
	}
	for (i = 0; i < g->n_rows; i++) {
		c->eps[k][i] = g->rows[i].eps;
		c->rate[k][i] = g->rows[i].attempted ?
				100.0 * g->rows[i].succeeded / g->rows[i].attempted : NAN;
	}
	c->n_pts[k] = g->n_rows;
	snprintf(c->name[k], sizeof c->name[k], "%s %s %s %s%s", base ? base + 1 : g->model_path,
		 g->attack, g->loss, g->norm, g->target >= 0 ? " targeted" : "");
	c->n++;
	return 0;
}

/* The curve k at epsilon e: linear between logged points, NaN outside. */
static double at(const struct sweepcurve *c, int k, double e)
{
	int i, n = c->n_pts[k];

	for (i = 0; i + 1 < n; i++)
		if (e >= c->eps[k][i] && e <= c->eps[k][i + 1]) {
			double t = c->eps[k][i + 1] > c->eps[k][i] ?
				   (e - c->eps[k][i]) / (c->eps[k][i + 1] - c->eps[k][i]) : 0;

			return c->rate[k][i] + t * (c->rate[k][i + 1] - c->rate[k][i]);
		}
	return n == 1 && fabs(e - c->eps[k][0]) * c->scale < 0.5 ? c->rate[k][0] : NAN;
}

static int resample(struct sweepcurve *c)
{
	double emax = 0;
	int k, i;

	for (k = 0; k < c->n; k++)
		for (i = 0; i < c->n_pts[k]; i++)
			emax = fmax(emax, c->eps[k][i]);
	/* steps of 1/255, or a tenth of that until the largest epsilon spans
	 * a few, and never more than MAX_STEPS of them */
	for (c->scale = 255; emax * c->scale < 4 && c->scale < 255e6; c->scale *= 10)
		;
	while (emax * c->scale > MAX_STEPS)
		c->scale /= 10;
	c->grid_n = (int)lround(emax * c->scale) + 1;
	for (k = 0; k < c->n; k++) {
		c->grid[k] = malloc(sizeof *c->grid[k] * (size_t)c->grid_n);
		if (!c->grid[k])
			return -1;
		for (i = 0; i < c->grid_n; i++)
			c->grid[k][i] = at(c, k, i / c->scale);
	}
	return 0;
}

int sweepcurve_new(struct db *db, struct sweepcurve **out, char *err)
{
	struct sweepcurve *c = calloc(1, sizeof *c);

	*out = NULL;
	if (!c)
		return status_set(err, ST_ERR_NOMEM, "out of memory"), -1;
	if (runs_sweep(db, add_sweep, c, err) != ST_OK || c->failed ||
	    resample(c)) {
		if (c->failed)
			status_set(err, ST_ERR_NOMEM, "out of memory");
		sweepcurve_free(c);
		return -1;
	}
	*out = c;
	return 0;
}

void sweepcurve_free(struct sweepcurve *c)
{
	int k;

	if (!c)
		return;
	for (k = 0; k < N_SERIES; k++) {
		free(c->eps[k]);
		free(c->rate[k]);
		free(c->grid[k]);
	}
	free(c);
}

void sweepcurve_draw(struct sweepcurve *c, struct palette *p, int y, int x, int h,
		     int w)
{
	struct plot_series s[N_SERIES];
	char title[96];
	int k, legend;

	if (h < 4 || w < 20)
		return;
	snprintf(title, sizeof title, "success rate (%%) vs ε×%.10g, every sweep", c->scale);
	draw_box(p, y, x, h, w, title);
	if (!c->n) {
		draw_text(p, y + 1, x + 2, w - 4, R_DIM, "no sweeps in the log "
			  "(advex attack --images A:B --eps ...)");
		return;
	}
	legend = c->n + (c->dropped > 0);
	if (legend > h - 6)
		legend = 0;	/* too short: the curves only */
	for (k = 0; legend && k < c->n; k++) {
		draw_text(p, y + 1 + k, x + 1, 3, (enum role)(R_SERIES0 + k), "━━");
		draw_text(p, y + 1 + k, x + 4, w - 5, R_NORMAL, "%s", c->name[k]);
	}
	if (legend && c->dropped)
		draw_text(p, y + 1 + c->n, x + 4, w - 5, R_DIM, "(%d more not drawn)", c->dropped);
	for (k = 0; k < c->n; k++) {
		s[k].y = c->grid[k];
		s[k].n = c->grid_n;
		s[k].role = (enum role)(R_SERIES0 + k);
	}
	plot_draw(p, y + 1 + legend, x + 1, h - 2 - legend, w - 2, s, c->n, c->grid_n - 1, -1);
}
