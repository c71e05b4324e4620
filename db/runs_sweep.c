/* runs_sweep.c - the success-rate-versus-epsilon table recomputed from the
 * run log (see runs.h): what `advex runs sweep` prints, and what `advex
 * runs plot --kind sweep` draws, for logs merged from the shards of a
 * sweep as for one written by a single run. */
#include "runs.h"
#include "runs_impl.h"

#include <stdlib.h>
#include <string.h>

/* latest: each (sweep, epsilon, image)'s last finished run; clean: per
 * sweep, its images with a known label and clean prediction. A sweep is
 * keyed by model, data, attack, loss, norm, target and iterations; the
 * loss is what the attack optimised (objective, schema 4: apgd-dlr's is
 * dlr whatever --loss said), else the loss column. */
static const char sql_sweep[] =
	"WITH latest AS ("
	"  SELECT model_id, coalesce(dataset_id, 0) AS ds, attack, loss, norm,"
	"    coalesce(target, -1) AS tg, iters, eps, image_ref, success,"
	"    clean_pred, true_label, eps_text, max(id) AS last"
	"  FROM (SELECT id, model_id, dataset_id, attack,"
	"    coalesce(objective, loss) AS loss, norm, target, iters, eps,"
	"    image_ref, success, clean_pred, true_label, eps_text, status FROM runs)"
	"  WHERE status = 'done' AND success IS NOT NULL"
	"  GROUP BY model_id, ds, attack, loss, norm, tg, iters, eps, image_ref),"
	" imgs AS ("
	"  SELECT model_id, ds, attack, loss, norm, tg, iters, image_ref,"
	"    max(true_label IS NOT NULL AND clean_pred IS NOT NULL) AS known,"
	"    max(coalesce(clean_pred = true_label, 0)) AS ok"
	"  FROM latest GROUP BY model_id, ds, attack, loss, norm, tg, iters, image_ref),"
	" clean AS ("
	"  SELECT model_id, ds, attack, loss, norm, tg, iters, count(*) AS images,"
	"    sum(known) AS labelled, sum(known AND ok) AS clean_ok"
	"  FROM imgs GROUP BY model_id, ds, attack, loss, norm, tg, iters)"
	" SELECT l.model_id, l.ds, l.attack, l.loss, l.norm, l.tg, l.iters, l.eps,"
	"  min(l.eps_text), count(*), sum(l.success), c.images, c.labelled,"
	"  c.clean_ok, m.path, coalesce(m.sha256, ''), coalesce(d.path, ''),"
	"  coalesce(d.split, '')"
	" FROM latest l JOIN clean c USING (model_id, ds, attack, loss, norm, tg, iters)"
	" JOIN models m ON m.id = l.model_id LEFT JOIN datasets d ON d.id = l.ds"
	" GROUP BY l.model_id, l.ds, l.attack, l.loss, l.norm, l.tg, l.iters, l.eps"
	" ORDER BY m.path, l.model_id, d.path, l.ds, l.attack, l.loss, l.norm,"
	"  l.tg, l.iters, l.eps";

/* What identifies a sweep in a result row: columns 0..6. */
static int same_group(sqlite3_stmt *st, const int64_t key[2], const char *text[3],
		      const int num[2])
{
	int i;

	if (sqlite3_column_int64(st, 0) != key[0] || sqlite3_column_int64(st, 1) != key[1])
		return 0;
	for (i = 0; i < 3; i++)
		if (strcmp((const char *)sqlite3_column_text(st, 2 + i), text[i]))
			return 0;
	return sqlite3_column_int(st, 5) == num[0] && sqlite3_column_int(st, 6) == num[1];
}

/* One group's state while its rows are read. */
struct acc {
	struct runs_sweep_group g;
	struct runs_sweep_row *rows;
	int cap;
	int64_t key[2];
	char text[3][32];
	const char *tp[3];
	int num[2];
	char model_path[1024], sha[65], data_path[1024], split[64];
};

static void start_group(struct acc *a, sqlite3_stmt *st)
{
	int i;

	memset(&a->g, 0, sizeof a->g);
	a->key[0] = sqlite3_column_int64(st, 0);
	a->key[1] = sqlite3_column_int64(st, 1);
	for (i = 0; i < 3; i++) {
		col_text(st, 2 + i, a->text[i], sizeof a->text[i]);
		a->tp[i] = a->text[i];
	}
	a->num[0] = sqlite3_column_int(st, 5);
	a->num[1] = sqlite3_column_int(st, 6);
	col_text(st, 14, a->model_path, sizeof a->model_path);
	col_text(st, 15, a->sha, sizeof a->sha);
	col_text(st, 16, a->data_path, sizeof a->data_path);
	col_text(st, 17, a->split, sizeof a->split);
	a->g.model_path = a->model_path;
	a->g.model_sha256 = a->sha;
	a->g.data_path = a->data_path;
	a->g.data_split = a->split;
	a->g.attack = a->text[0];
	a->g.loss = a->text[1];
	a->g.norm = a->text[2];
	a->g.target = a->num[0];
	a->g.iters = a->num[1];
	a->g.images = sqlite3_column_int(st, 11);
	a->g.labelled = sqlite3_column_int(st, 12);
	a->g.clean_ok = sqlite3_column_int(st, 13);
}

static int add_row(struct acc *a, sqlite3_stmt *st)
{
	struct runs_sweep_row *r;

	if (a->g.n_rows == a->cap) {
		int c = a->cap ? 2 * a->cap : 16;

		r = realloc(a->rows, sizeof *r * (size_t)c);
		if (!r)
			return -1;
		a->rows = r;
		a->cap = c;
	}
	r = &a->rows[a->g.n_rows++];
	r->eps = sqlite3_column_double(st, 7);
	col_text(st, 8, r->eps_text, sizeof r->eps_text);
	r->attempted = sqlite3_column_int(st, 9);
	r->succeeded = sqlite3_column_int(st, 10);
	return 0;
}

enum status runs_sweep(struct db *db,
		       int (*cb)(const struct runs_sweep_group *g, void *user),
		       void *user, char *err)
{
	sqlite3_stmt *st = db_stmt(db, sql_sweep, err);
	struct acc *a = calloc(1, sizeof *a);
	enum status s = ST_OK;
	int rc, open = 0, stop = 0;

	if (!st || !a) {
		free(a);
		return st ? status_set(err, ST_ERR_NOMEM, "out of memory") : ST_ERR_DB;
	}
	while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (open && !same_group(st, a->key, a->tp, a->num)) {
			a->g.rows = a->rows;
			stop = cb(&a->g, user);
			open = 0;
		}
		if (stop)
			break;
		if (!open) {
			start_group(a, st);
			open = 1;
		}
		if (add_row(a, st)) {
			s = status_set(err, ST_ERR_NOMEM, "out of memory");
			break;
		}
	}
	if (s == ST_OK && !stop && rc != SQLITE_DONE)
		s = db_fail(db, "cannot read the runs", err);
	if (s == ST_OK && !stop && open) {
		a->g.rows = a->rows;
		cb(&a->g, user);
	}
	sqlite3_reset(st);
	free(a->rows);
	free(a);
	return s;
}
