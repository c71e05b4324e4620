/* runs_read.c - reading attack runs back from the run log: list, one
 * run, its class names, final probabilities, steps and images (see runs.h;
 * writing them is runs.c). Arrays are stored as JSON and read with
 * jansson. */
#include "runs.h"
#include "runs_impl.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- columns and JSON arrays ---------------------------------------------------- */

static double col_double(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ?
	       NAN : sqlite3_column_double(st, i);
}

static int col_int(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ?
	       -1 : sqlite3_column_int(st, i);
}

/* Logs written before advex used jansson stored an infinity as 1e999,
 * which jansson refuses as an overflow: read them with the token it
 * stands for now (same length, so the copy is the text's size). */
static json_t *load_legacy(const char *s)
{
	char *copy = strdup(s), *p;
	json_t *a;

	if (!copy)
		return NULL;
	for (p = copy; (p = strstr(p, "1e999")); p += 5)
		memcpy(p, "1e308", 5);
	a = json_loads(copy, 0, NULL);
	free(copy);
	return a;
}

/* A JSON array of numbers (null: NaN; +-RUNS_JSON_INF and beyond:
 * infinite) into *v (grown as needed, *cap doubles). Returns the count,
 * or -1 when s is not such an array or memory runs out. */
static int parse_numbers(const char *s, double **v, int *cap)
{
	json_t *a, *x;
	size_t i;
	int n = 0;

	if (!s)
		return 0;
	a = json_loads(s, 0, NULL);
	if (!a && strstr(s, "1e999"))
		a = load_legacy(s);
	if (!json_is_array(a) || json_array_size(a) > (size_t)INT32_MAX)
		goto bad;
	if ((int)json_array_size(a) > *cap) {
		int c = (int)json_array_size(a) > 64 ? (int)json_array_size(a) : 64;
		double *g = realloc(*v, sizeof *g * (size_t)c);

		if (!g)
			goto bad;
		*v = g;
		*cap = c;
	}
	json_array_foreach(a, i, x) {
		double d;

		if (json_is_null(x))
			d = NAN;
		else if (json_is_number(x))
			d = json_number_value(x);
		else
			goto bad;
		if (fabs(d) >= RUNS_JSON_INF)
			d = copysign(INFINITY, d);
		(*v)[n++] = d;
	}
	json_decref(a);
	return n;
bad:
	json_decref(a);
	return -1;
}

/* ---- reading runs ------------------------------------------------------------- */

#define RUN_SELECT                                                            \
	"SELECT r.id, r.created, r.ended, r.status, r.writer_pid, m.path, "    \
	"m.sha256, m.arch, d.path, coalesce(d.kind, 'png'), d.split, "         \
	"r.image_ref, r.true_label, r.target, m.n_classes, r.height, "         \
	"r.width, r.attack, r.loss, r.norm, r.eps, r.alpha, r.momentum, "      \
	"r.clip_eps, r.kappa, r.iters, r.random_start, r.early_stop, r.seed, " \
	"(SELECT count(*) FROM steps s WHERE s.run_id = r.id), r.success, "    \
	"r.final_iter, r.final_pred, r.final_loss, r.final_target_prob, "      \
	"r.pert_linf, r.pert_l2, r.wall_s, r.final_diagnosis, r.uuid, "        \
	"r.clean_pred, r.eps_text, r.restarts, r.binary_steps, r.quantize, "  \
	"r.objective "                                                         \
	"FROM runs r JOIN models m ON m.id = r.model_id "                      \
	"LEFT JOIN datasets d ON d.id = r.dataset_id "

static const char sql_list[] = RUN_SELECT
	"WHERE (?1 IS NULL OR instr(m.path, ?1) > 0 "
	"       OR substr(m.sha256, 1, length(?1)) = lower(?1)) "
	"AND (?2 IS NULL OR r.status = ?2) "
	"ORDER BY r.id DESC LIMIT ?3";
static const char sql_get[] = RUN_SELECT "WHERE r.id = ?1";

/* A reader (db_open_read) marks nothing, so a run whose writer died is
 * still 'running' in the file: report it as the next writer will record
 * it. */
static void dead_writer_status(struct db *db, struct run_row *r)
{
	if (db_readonly(db) && !strcmp(r->status, "running") && db_run_live(db, r->id) == 0)
		snprintf(r->status, sizeof r->status, "interrupted");
}

static void read_row(sqlite3_stmt *st, struct run_row *r)
{
	int c = 0;

	memset(r, 0, sizeof *r);
	r->id = sqlite3_column_int64(st, c++);
	col_text(st, c++, r->created, sizeof r->created);
	col_text(st, c++, r->ended, sizeof r->ended);
	col_text(st, c++, r->status, sizeof r->status);
	r->writer_pid = sqlite3_column_int(st, c++);
	col_text(st, c++, r->model_path, sizeof r->model_path);
	col_text(st, c++, r->model_sha256, sizeof r->model_sha256);
	col_text(st, c++, r->model_arch, sizeof r->model_arch);
	col_text(st, c++, r->data_path, sizeof r->data_path);
	col_text(st, c++, r->data_kind, sizeof r->data_kind);
	col_text(st, c++, r->data_split, sizeof r->data_split);
	col_text(st, c++, r->image_ref, sizeof r->image_ref);
	r->true_label = col_int(st, c++);
	r->target = col_int(st, c++);
	r->n_classes = col_int(st, c++);
	r->h = col_int(st, c++);
	r->w = col_int(st, c++);
	col_text(st, c++, r->attack, sizeof r->attack);
	col_text(st, c++, r->loss, sizeof r->loss);
	col_text(st, c++, r->norm, sizeof r->norm);
	r->eps = col_double(st, c++);
	r->alpha = col_double(st, c++);
	r->momentum = col_double(st, c++);
	r->clip_eps = col_double(st, c++);
	r->kappa = col_double(st, c++);
	r->iters = col_int(st, c++);
	r->random_start = col_int(st, c++);
	r->early_stop = col_int(st, c++);
	r->seed = sqlite3_column_int64(st, c++);
	r->steps = col_int(st, c++);
	r->success = col_int(st, c++);
	r->final_iter = col_int(st, c++);
	r->final_pred = col_int(st, c++);
	r->final_loss = col_double(st, c++);
	r->final_target_prob = col_double(st, c++);
	r->pert_linf = col_double(st, c++);
	r->pert_l2 = col_double(st, c++);
	r->wall_s = col_double(st, c++);
	col_text(st, c++, r->final_diagnosis, sizeof r->final_diagnosis);
	col_text(st, c++, r->uuid, sizeof r->uuid);
	r->clean_pred = col_int(st, c++);
	col_text(st, c++, r->eps_text, sizeof r->eps_text);
	r->restarts = col_int(st, c++);
	r->binary_steps = col_int(st, c++);
	r->quantize = col_int(st, c++);
	col_text(st, c++, r->objective, sizeof r->objective);
}

const char *run_row_objective(const struct run_row *r)
{
	return r->objective[0] ? r->objective : r->loss;
}

enum status runs_list(struct db *db, const struct runs_filter *f,
		      int (*cb)(const struct run_row *r, void *user), void *user,
		      char *err)
{
	sqlite3_stmt *st = db_stmt(db, sql_list, err);
	struct run_row *row = malloc(sizeof *row);
	enum status s = ST_OK;
	/* a reader's dead-writer runs change status as they are read, so
	 * a filter on those two statuses (and its limit) is applied here */
	int post = db_readonly(db) && f && f->status &&
		   (!strcmp(f->status, "running") || !strcmp(f->status, "interrupted"));
	int rc, n = 0;

	if (!st || !row) {
		free(row);
		return st ? status_set(err, ST_ERR_NOMEM, "out of memory") :
		       ST_ERR_DB;
	}
	bind_text(st, 1, f && f->model && f->model[0] ? f->model : NULL);
	bind_text(st, 2, !post && f && f->status && f->status[0] ? f->status : NULL);
	sqlite3_bind_int(st, 3, !post && f && f->limit > 0 ? f->limit : -1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		read_row(st, row);
		dead_writer_status(db, row);
		if (post && strcmp(row->status, f->status))
			continue;
		if ((post && f->limit > 0 && n++ >= f->limit) || cb(row, user))
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		s = db_fail(db, "cannot list the runs", err);
	sqlite3_reset(st);
	free(row);
	return s;
}

enum status runs_get(struct db *db, int64_t id, struct run_row *r, char *err)
{
	sqlite3_stmt *st = db_stmt(db, sql_get, err);
	int rc;

	if (!st)
		return ST_ERR_DB;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		read_row(st, r);
		dead_writer_status(db, r);
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return no_such_run(db, id, err);
	return rc == SQLITE_ROW ? ST_OK : db_fail(db, "cannot read the run", err);
}

static const char sql_exists[] = "SELECT 1 FROM runs WHERE id = ?1";

/* ST_OK when run id exists, its "no such run" message otherwise. */
static enum status run_exists(struct db *db, int64_t id, char *err)
{
	sqlite3_stmt *st = db_stmt(db, sql_exists, err);
	int rc;

	if (!st)
		return ST_ERR_DB;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return ST_OK;
	return rc == SQLITE_DONE ? no_such_run(db, id, err) :
	       db_fail(db, "cannot read the run", err);
}

/* json_each: SQLite parses the names for us, escapes and all */
static const char sql_classes[] =
	"SELECT j.value FROM runs r JOIN models m ON m.id = r.model_id, "
	"json_each(m.classes) j WHERE r.id = ?1 ORDER BY j.key";

enum status runs_classes(struct db *db, int64_t id, char (*names)[64], int max,
			 char *err)
{
	sqlite3_stmt *st = db_stmt(db, sql_classes, err);
	int rc, n = 0;

	if (!st)
		return ST_ERR_DB;
	sqlite3_bind_int64(st, 1, id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < max) {
		col_text(st, 0, names[n], 64);
		n++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(db, "cannot read the class names", err);
	return n ? ST_OK : run_exists(db, id, err);
}

static const char sql_final_probs[] =
	"SELECT final_probs FROM runs WHERE id = ?1";

enum status runs_final_probs(struct db *db, int64_t id, float *probs, int max,
			     int *n, char *err)
{
	sqlite3_stmt *st = db_stmt(db, sql_final_probs, err);
	double *v = NULL;
	int cap = 0, k = 0, rc, i;
	enum status s = ST_OK;

	*n = 0;
	if (!st)
		return ST_ERR_DB;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		k = parse_numbers((const char *)sqlite3_column_text(st, 0), &v,
				  &cap);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		s = no_such_run(db, id, err);
	else if (rc != SQLITE_ROW)
		s = db_fail(db, "cannot read the run", err);
	else if (k < 0)
		s = status_set(err, ST_ERR_FORMAT, "RUN %lld in %s: malformed "
			       "final_probs", (long long)id, db_path(db));
	for (i = 0; s == ST_OK && i < k && i < max; i++)
		probs[i] = (float)v[i];
	if (s == ST_OK)
		*n = i;
	free(v);
	return s;
}

/* ---- steps, read back ------------------------------------------------------- */

static const char sql_steps[] =
	"SELECT iter, loss, pred, target_prob, probs, grad_l1, grad_l2, "
	"grad_linf, zero_frac, hist, n_zero, n_nan, n_inf, n_tiny, n_huge, "
	"layer_norms, pert_linf, pert_l2, diagnosis, step_ms "
	"FROM steps WHERE run_id = ?1 ORDER BY id";

/* Buffers the arrays of one step are parsed into, grown as needed. */
struct step_bufs {
	double *v;
	int cap;
	float *probs;
	int cap_probs;
	double *norms;
	int cap_norms;
	int64_t hist[DIAG_HIST_BINS];
};

/* The JSON array in column c into a float or double buffer; -1 when it is
 * malformed or memory runs out. */
static int parse_column(sqlite3_stmt *st, int c, struct step_bufs *b)
{
	return parse_numbers((const char *)sqlite3_column_text(st, c), &b->v,
			     &b->cap);
}

static int read_step_arrays(sqlite3_stmt *st, struct step_bufs *b,
			    struct run_step *s)
{
	int n, i;

	if ((n = parse_column(st, 4, b)) < 0)
		return -1;
	if (n > b->cap_probs) {
		float *p = realloc(b->probs, sizeof *p * (size_t)n);

		if (!p)
			return -1;
		b->probs = p;
		b->cap_probs = n;
	}
	for (i = 0; i < n; i++)
		b->probs[i] = (float)b->v[i];
	s->probs = b->probs;
	s->n_classes = n;
	if ((n = parse_column(st, 9, b)) < 0)
		return -1;
	for (i = 0; i < DIAG_HIST_BINS; i++)
		b->hist[i] = i < n ? (int64_t)b->v[i] : 0;
	s->hist = b->hist;
	if ((n = parse_column(st, 15, b)) < 0)
		return -1;
	if (n > b->cap_norms) {
		double *p = realloc(b->norms, sizeof *p * (size_t)n);

		if (!p)
			return -1;
		b->norms = p;
		b->cap_norms = n;
	}
	memcpy(b->norms, b->v, sizeof *b->v * (size_t)n);
	s->layer_norms = b->norms;
	s->n_layer_norms = n;
	return 0;
}

static int read_step(sqlite3_stmt *st, struct step_bufs *b, struct run_step *s)
{
	const unsigned char *diag;

	memset(s, 0, sizeof *s);
	s->iter = sqlite3_column_int(st, 0);
	s->loss = col_double(st, 1);
	s->pred = sqlite3_column_int(st, 2);
	s->target_prob = col_double(st, 3);
	s->grad_l1 = col_double(st, 5);
	s->grad_l2 = col_double(st, 6);
	s->grad_linf = col_double(st, 7);
	s->zero_frac = col_double(st, 8);
	s->n_zero = sqlite3_column_int64(st, 10);
	s->n_nan = sqlite3_column_int64(st, 11);
	s->n_inf = sqlite3_column_int64(st, 12);
	s->n_tiny = sqlite3_column_int64(st, 13);
	s->n_huge = sqlite3_column_int64(st, 14);
	s->pert_linf = col_double(st, 16);
	s->pert_l2 = col_double(st, 17);
	diag = sqlite3_column_text(st, 18);
	s->diagnosis = diag ? (const char *)diag : "";
	s->step_ms = col_double(st, 19);
	return read_step_arrays(st, b, s);
}

enum status runs_steps(struct db *db, int64_t id,
		       int (*cb)(const struct run_step *s, void *user), void *user,
		       char *err)
{
	sqlite3_stmt *st = db_stmt(db, sql_steps, err);
	struct step_bufs b = { 0 };
	struct run_step s;
	enum status res = ST_OK;
	int rc, n = 0;

	if (!st)
		return ST_ERR_DB;
	sqlite3_bind_int64(st, 1, id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		n++;
		if (read_step(st, &b, &s) != 0) {
			res = status_set(err, ST_ERR_FORMAT, "RUN %lld in %s: "
					 "step %d: malformed array (or out of "
					 "memory)", (long long)id, db_path(db),
					 sqlite3_column_int(st, 0));
			break;
		}
		if (cb(&s, user))
			break;
	}
	if (res == ST_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
		res = db_fail(db, "cannot read the steps", err);
	sqlite3_reset(st);
	free(b.v);
	free(b.probs);
	free(b.norms);
	if (res == ST_OK && n == 0)
		res = run_exists(db, id, err);
	return res;
}

/* ---- images ---------------------------------------------------------------- */

static const char sql_image[] =
	"SELECT png FROM images WHERE run_id = ?1 AND role = ?2";

static enum status run_png(struct db *db, int64_t id, const char *role,
			   unsigned char **png, size_t *len, char *err)
{
	sqlite3_stmt *st = db_stmt(db, sql_image, err);
	enum status s = ST_OK;
	int rc;

	*png = NULL;
	*len = 0;
	if (!st)
		return ST_ERR_DB;
	sqlite3_bind_int64(st, 1, id);
	bind_text(st, 2, role);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const void *p = sqlite3_column_blob(st, 0);
		size_t n = (size_t)sqlite3_column_bytes(st, 0);

		*png = malloc(n ? n : 1);
		if (!*png)
			s = status_set(err, ST_ERR_NOMEM, "out of memory");
		else if (n)
			memcpy(*png, p, n);
		*len = n;
	} else if (rc != SQLITE_DONE) {
		s = db_fail(db, "cannot read the image", err);
	}
	sqlite3_reset(st);
	if (s == ST_OK && rc == SQLITE_DONE) {
		s = run_exists(db, id, err);
		if (s == ST_OK)
			s = status_set(err, ST_ERR_ARG, "RUN %lld: no %s image "
				       "stored in %s (the run did not finish)",
				       (long long)id, !strcmp(role, "adv") ?
				       "adversarial" : "clean", db_path(db));
	}
	return s;
}

enum status runs_adv_png(struct db *db, int64_t id, unsigned char **png,
			 size_t *len, char *err)
{
	return run_png(db, id, "adv", png, len, err);
}

enum status runs_clean_png(struct db *db, int64_t id, unsigned char **png,
			   size_t *len, char *err)
{
	return run_png(db, id, "clean", png, len, err);
}

