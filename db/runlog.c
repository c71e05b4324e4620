/* runlog.c - one run being written (see runlog.h). */
#include "runlog.h"

#include <stdio.h>
#include <stdlib.h>

#include "clock.h"

struct runlog {
	struct db *db;		/* borrowed; NULL: record nothing */
	int64_t id;		/* the open run; 0: none */
	int n_classes;		/* of the open run */
	double t0_ms;		/* clock_ms when it began */
	int failed;		/* a step could not be written: err says why */
	char err[ERR_MAX];
};

enum status runlog_new(struct db *db, struct runlog **out, char *err)
{
	*out = calloc(1, sizeof **out);
	if (!*out)
		return status_set(err, ST_ERR_NOMEM, "out of memory");
	(*out)->db = db;
	return ST_OK;
}

void runlog_free(struct runlog *l)
{
	free(l);
}

static double wall_s(const struct runlog *l)
{
	return (clock_ms() - l->t0_ms) / 1000.0;
}

enum status runlog_begin(struct runlog *l, const struct run_begin *b, char *err)
{
	enum status st;

	l->id = 0;
	l->failed = 0;
	if (!l->db)
		return ST_OK;
	if ((st = runs_begin(l->db, b, &l->id, err)) != ST_OK) {
		l->id = 0;
		return st;
	}
	l->n_classes = b->n_classes;
	l->t0_ms = clock_ms();
	return ST_OK;
}

enum status runlog_step(struct runlog *l, const struct attack_report *r, char *err)
{
	enum status st;

	if (!l->id || l->failed)
		return l->failed ? status_set(err, ST_ERR_DB, "%s", l->err) : ST_OK;
	st = runs_step(l->db, l->id, r, l->n_classes, err);
	if (st != ST_OK) {
		l->failed = 1;
		snprintf(l->err, sizeof l->err, "%s", err);
	}
	return st;
}

enum status runlog_finish(struct runlog *l, const char *status,
			  const struct attack_report *final, const float *x_adv,
			  char *err)
{
	enum status st;

	if (!l->id)
		return ST_OK;
	st = runs_finish(l->db, l->id, status, final, x_adv, wall_s(l), err);
	if (st == ST_OK)
		l->id = 0;
	return st;
}

int runlog_fail(struct runlog *l, const struct attack_report *final,
		const float *x_adv)
{
	char ignored[ERR_MAX];
	int marked;

	if (!l->id)
		return 0;
	marked = runs_finish(l->db, l->id, "failed", final, x_adv, wall_s(l),
			     ignored) == ST_OK;
	if (!marked && (final || x_adv))
		marked = runs_finish(l->db, l->id, "failed", NULL, NULL, wall_s(l),
				     ignored) == ST_OK;
	l->id = 0;
	return marked;
}

int64_t runlog_id(const struct runlog *l)
{
	return l->id;
}

const char *runlog_error(const struct runlog *l)
{
	return l->failed ? l->err : NULL;
}
