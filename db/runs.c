/* runs.c - attack runs in the run log: insert, step, finish, query,
 * delete (see runs.h; the schema is in db.c).
 */
#define _XOPEN_SOURCE 700	/* realpath */

#include "runs.h"

#include <limits.h>
#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"

/* ---- JSON text, just what the log needs ------------------------------------ */

/* A growing string; oom sticks once an allocation fails. */
struct sbuf {
	char *s;
	size_t len, cap;
	int oom;
};

static void sb_add(struct sbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Room for n more bytes and a NUL. */
static int sb_reserve(struct sbuf *b, size_t n)
{
	size_t cap = b->cap ? b->cap : 256;
	char *s;

	if (b->len + n < b->cap)
		return 0;
	while (cap <= b->len + n)
		cap *= 2;
	s = realloc(b->s, cap);
	if (!s) {
		b->oom = 1;
		return -1;
	}
	b->s = s;
	b->cap = cap;
	return 0;
}

static void sb_add(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->s ? b->s + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = 1;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		if (sb_reserve(b, (size_t)n) != 0)
			return;
	}
}

/* JSON has no NaN or infinity: NaN is null, an infinity 1e999 (a valid
 * JSON number that every reader, SQLite's too, takes as infinite). */
static void sb_num(struct sbuf *b, double v, int digits)
{
	if (isnan(v))
		sb_add(b, "null");
	else if (isinf(v))
		sb_add(b, "%s1e999", v < 0 ? "-" : "");
	else
		sb_add(b, "%.*g", digits, v);
}

static void sb_floats(struct sbuf *b, const float *v, int n)
{
	int i;

	sb_add(b, "[");
	for (i = 0; i < n; i++) {
		if (i)
			sb_add(b, ",");
		sb_num(b, v[i], 9);	/* 9 digits: a float round-trips */
	}
	sb_add(b, "]");
}

static void sb_doubles(struct sbuf *b, const double *v, int n)
{
	int i;

	sb_add(b, "[");
	for (i = 0; i < n; i++) {
		if (i)
			sb_add(b, ",");
		sb_num(b, v[i], 17);
	}
	sb_add(b, "]");
}

static void sb_string(struct sbuf *b, const char *s)
{
	sb_add(b, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			sb_add(b, "\\%c", c);
		else if (c < 0x20)
			sb_add(b, "\\u%04x", c);
		else
			sb_add(b, "%c", c);
	}
	sb_add(b, "\"");
}

/* A JSON array of numbers (or null = NaN) into *v (grown as needed, *cap
 * doubles). Returns the count, or -1 when s is not such an array or memory
 * runs out. */
static int parse_numbers(const char *s, double **v, int *cap)
{
	int n = 0;

	if (!s)
		return 0;
	while (*s == ' ')
		s++;
	if (*s++ != '[')
		return -1;
	while (*s == ' ')
		s++;
	if (*s == ']')
		return 0;
	for (;;) {
		double x;
		char *end;

		if (!strncmp(s, "null", 4)) {
			x = NAN;
			end = (char *)s + 4;
		} else {
			x = strtod(s, &end);	/* 1e999 -> HUGE_VAL */
			if (end == s)
				return -1;
		}
		if (n == *cap) {
			int c = *cap ? 2 * *cap : 64;
			double *g = realloc(*v, sizeof *g * (size_t)c);

			if (!g)
				return -1;
			*v = g;
			*cap = c;
		}
		(*v)[n++] = x;
		for (s = end; *s == ' '; s++)
			;
		if (*s == ']')
			return n;
		if (*s++ != ',')
			return -1;
		while (*s == ' ')
			s++;
	}
}

/* ---- binding and reading columns ------------------------------------------ */

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

/* -1 (unknown, untargeted) is stored as NULL */
static void bind_index(sqlite3_stmt *st, int i, int v)
{
	if (v >= 0)
		sqlite3_bind_int(st, i, v);
	else
		sqlite3_bind_null(st, i);
}

static void bind_json(sqlite3_stmt *st, int i, const struct sbuf *b)
{
	sqlite3_bind_text(st, i, b->s ? b->s : "[]", b->s ? (int)b->len : 2,
			  SQLITE_TRANSIENT);
}

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

static void col_text(sqlite3_stmt *st, int i, char *dst, size_t n)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	snprintf(dst, n, "%s", s ? (const char *)s : "");
}

static enum status no_such_run(struct db *db, int64_t id, char *err)
{
	return status_set(err, ST_ERR_ARG, "RUN %lld: no such run in %s",
			  (long long)id, db_path(db));
}

/* Step a statement that returns no rows; reset it either way. */
static enum status run_done(struct db *db, sqlite3_stmt *st, const char *what,
			    char *err)
{
	enum status s = ST_OK;

	if (sqlite3_step(st) != SQLITE_DONE)
		s = db_fail(db, what, err);
	sqlite3_reset(st);
	return s;
}

/* ---- beginning a run ---------------------------------------------------------- */

static const char sql_cached_sha[] =
	"SELECT sha256 FROM models WHERE path = ?1 AND file_size = ?2 "
	"AND file_mtime_ns = ?3 AND sha256 IS NOT NULL LIMIT 1";

/* The model's identity: an absolute path and its hash, reusing a hash the
 * log already has for this path, size and mtime (hashing a VGG16 file is
 * half a second, every batch run would pay it). */
static enum status model_identity(struct db *db, const struct run_begin *b,
				  char **path, char sha[65], int64_t *size,
				  int64_t *mtime, char *err)
{
	struct stat sb;
	sqlite3_stmt *st;

	*size = *mtime = -1;
	sha[0] = 0;
	*path = NULL;
	if (!strncmp(b->model_path, "builtin:", 8)) {
		*path = strdup(b->model_path);
		return *path ? ST_OK : status_set(err, ST_ERR_NOMEM, "out of memory");
	}
	*path = realpath(b->model_path, NULL);
	if (!*path)
		*path = strdup(b->model_path);
	if (!*path)
		return status_set(err, ST_ERR_NOMEM, "out of memory");
	if (b->model_sha256) {
		snprintf(sha, 65, "%s", b->model_sha256);
		return ST_OK;
	}
	if (stat(*path, &sb) != 0)
		return db_sha256_file(*path, sha, err);	/* says why */
	*size = (int64_t)sb.st_size;
	*mtime = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
	st = db_stmt(db, sql_cached_sha, err);
	if (!st)
		return ST_ERR_DB;
	bind_text(st, 1, *path);
	sqlite3_bind_int64(st, 2, *size);
	sqlite3_bind_int64(st, 3, *mtime);
	if (sqlite3_step(st) == SQLITE_ROW)
		col_text(st, 0, sha, 65);
	sqlite3_reset(st);
	return sha[0] ? ST_OK : db_sha256_file(*path, sha, err);
}

static const char sql_find_model[] =
	"SELECT id FROM models WHERE path = ?1 AND sha256 IS ?2 AND arch = ?3 "
	"AND classes = ?4";
static const char sql_insert_model[] =
	"INSERT INTO models (path, sha256, arch, n_classes, classes, file_size, "
	"file_mtime_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char sql_touch_model[] =
	"UPDATE models SET file_size = ?2, file_mtime_ns = ?3 WHERE id = ?1";

/* Find or insert the model row; inside the caller's transaction. */
static enum status model_id(struct db *db, const struct run_begin *b,
			    const char *path, const char *sha, int64_t size,
			    int64_t mtime, const struct sbuf *classes,
			    int64_t *id, char *err)
{
	sqlite3_stmt *st = db_stmt(db, sql_find_model, err);
	const char *arch = b->model_arch ? b->model_arch : "";
	int rc;

	if (!st)
		return ST_ERR_DB;
	bind_text(st, 1, path);
	bind_text(st, 2, sha[0] ? sha : NULL);
	bind_text(st, 3, arch);
	bind_json(st, 4, classes);
	rc = sqlite3_step(st);
	*id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(db, "cannot look up the model", err);
	if (rc == SQLITE_ROW) {
		if (size < 0)
			return ST_OK;
		/* remember this size and mtime: the next run skips hashing */
		st = db_stmt(db, sql_touch_model, err);
		if (!st)
			return ST_ERR_DB;
		sqlite3_bind_int64(st, 1, *id);
		sqlite3_bind_int64(st, 2, size);
		sqlite3_bind_int64(st, 3, mtime);
		return run_done(db, st, "cannot update the model", err);
	}
	st = db_stmt(db, sql_insert_model, err);
	if (!st)
		return ST_ERR_DB;
	bind_text(st, 1, path);
	bind_text(st, 2, sha[0] ? sha : NULL);
	bind_text(st, 3, arch);
	sqlite3_bind_int(st, 4, b->n_classes);
	bind_json(st, 5, classes);
	if (size >= 0) {
		sqlite3_bind_int64(st, 6, size);
		sqlite3_bind_int64(st, 7, mtime);
	}
	if (run_done(db, st, "cannot insert the model", err) != ST_OK)
		return ST_ERR_DB;
	*id = sqlite3_last_insert_rowid(sqlite3_db_handle(st));
	return ST_OK;
}

static const char sql_insert_dataset[] =
	"INSERT OR IGNORE INTO datasets (path, kind, split) VALUES (?1, ?2, ?3)";
static const char sql_find_dataset[] =
	"SELECT id FROM datasets WHERE path = ?1 AND kind = ?2 AND split = ?3";

static enum status dataset_id(struct db *db, const struct run_begin *b,
			      int64_t *id, char *err)
{
	char *abs = realpath(b->data_path, NULL);
	const char *path = abs ? abs : b->data_path;
	const char *kind = b->data_kind ? b->data_kind : "";
	const char *split = b->data_split ? b->data_split : "";
	sqlite3_stmt *st = db_stmt(db, sql_insert_dataset, err);
	enum status s = ST_ERR_DB;

	*id = 0;
	if (st) {
		bind_text(st, 1, path);
		bind_text(st, 2, kind);
		bind_text(st, 3, split);
		s = run_done(db, st, "cannot insert the data source", err);
	}
	if (s == ST_OK) {
		st = db_stmt(db, sql_find_dataset, err);
		s = ST_ERR_DB;
		if (st) {
			bind_text(st, 1, path);
			bind_text(st, 2, kind);
			bind_text(st, 3, split);
			if (sqlite3_step(st) == SQLITE_ROW) {
				*id = sqlite3_column_int64(st, 0);
				s = ST_OK;
			} else {
				db_fail(db, "cannot find the data source", err);
			}
			sqlite3_reset(st);
		}
	}
	free(abs);
	return s;
}

static const char sql_insert_run[] =
	"INSERT INTO runs (created, status, writer_pid, model_id, dataset_id, "
	"image_ref, true_label, height, width, target, attack, loss, norm, eps, "
	"alpha, iters, momentum, random_start, seed, clip_eps, kappa, early_stop) "
	"VALUES (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 'running', ?1, ?2, ?3, "
	"?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, "
	"?19, ?20)";
static const char sql_insert_image[] =
	"INSERT OR REPLACE INTO images (run_id, role, png) VALUES (?1, ?2, ?3)";

static enum status insert_run(struct db *db, const struct run_begin *b,
			      int64_t model, int64_t dataset, int64_t *id,
			      char *err)
{
	const struct attack_params *p = b->params;
	sqlite3_stmt *st = db_stmt(db, sql_insert_run, err);

	if (!st)
		return ST_ERR_DB;
	sqlite3_bind_int(st, 1, (int)getpid());
	sqlite3_bind_int64(st, 2, model);
	if (dataset > 0)
		sqlite3_bind_int64(st, 3, dataset);
	bind_text(st, 4, b->image_ref ? b->image_ref : "");
	bind_index(st, 5, b->true_label);
	sqlite3_bind_int(st, 6, b->h);
	sqlite3_bind_int(st, 7, b->w);
	bind_index(st, 8, p->target);
	bind_text(st, 9, attack_kind_name(p->kind));
	bind_text(st, 10, loss_mode_name(p->loss.mode));
	bind_text(st, 11, attack_norm_name(p->norm));
	sqlite3_bind_double(st, 12, p->eps);
	sqlite3_bind_double(st, 13, p->alpha);
	sqlite3_bind_int(st, 14, p->iters);
	sqlite3_bind_double(st, 15, p->momentum);
	sqlite3_bind_int(st, 16, p->random_start);
	sqlite3_bind_int64(st, 17, (int64_t)p->seed);	/* bits kept */
	sqlite3_bind_double(st, 18, p->loss.clip_eps);
	sqlite3_bind_double(st, 19, p->loss.kappa);
	sqlite3_bind_int(st, 20, p->early_stop);
	if (run_done(db, st, "cannot insert the run", err) != ST_OK)
		return ST_ERR_DB;
	*id = sqlite3_last_insert_rowid(sqlite3_db_handle(st));
	return ST_OK;
}

static enum status insert_image(struct db *db, int64_t id, const char *role,
				const unsigned char *png, size_t len, char *err)
{
	sqlite3_stmt *st = db_stmt(db, sql_insert_image, err);

	if (!st)
		return ST_ERR_DB;
	sqlite3_bind_int64(st, 1, id);
	bind_text(st, 2, role);
	sqlite3_bind_blob64(st, 3, png, len, SQLITE_STATIC);
	return run_done(db, st, "cannot store the image", err);
}

static enum status check_begin(const struct run_begin *b, char *err)
{
	int i;

	if (!b || !b->params || !b->model_path || b->n_classes < 1 ||
	    !b->classes || b->h < 1 || b->w < 1)
		return status_set(err, ST_ERR_ARG, "runs_begin: incomplete run "
				  "description");
	for (i = 0; i < b->n_classes; i++)
		if (!b->classes[i])
			return status_set(err, ST_ERR_ARG, "runs_begin: class %d "
					  "has no name", i);
	return ST_OK;
}

/* Everything slow (hashing, PNG encoding) happens before the write lock. */
enum status runs_begin(struct db *db, const struct run_begin *b, int64_t *id,
		       char *err)
{
	struct sbuf classes = { 0 };
	unsigned char *png = NULL;
	size_t png_len = 0;
	char *path = NULL, sha[65];
	int64_t size, mtime, model, dataset = 0;
	enum status s;
	int i, locked = 0;

	*id = 0;
	s = check_begin(b, err);
	if (s == ST_OK)
		s = model_identity(db, b, &path, sha, &size, &mtime, err);
	if (s == ST_OK && b->x0)
		s = image_encode_png(b->x0, b->h, b->w, NULL, NULL, 0, &png,
				     &png_len, err);
	sb_add(&classes, "[");
	for (i = 0; s == ST_OK && i < b->n_classes; i++) {
		sb_add(&classes, i ? "," : "");
		sb_string(&classes, b->classes[i]);
	}
	sb_add(&classes, "]");
	if (s == ST_OK && classes.oom)
		s = status_set(err, ST_ERR_NOMEM, "%s: out of memory", db_path(db));
	if (s == ST_OK)
		s = db_begin(db, err);
	if (s != ST_OK)
		goto out;
	s = model_id(db, b, path, sha, size, mtime, &classes, &model, err);
	if (s == ST_OK && b->data_path)
		s = dataset_id(db, b, &dataset, err);
	if (s == ST_OK)
		s = insert_run(db, b, model, dataset, id, err);
	if (s == ST_OK && png)
		s = insert_image(db, *id, "clean", png, png_len, err);
	/* locked before the row is visible: no other process can ever see
	 * this run 'running' without its lock held */
	if (s == ST_OK && (s = db_run_lock(db, *id, err)) == ST_OK)
		locked = 1;
	if (s == ST_OK)
		s = db_commit(db, err);	/* rolls back itself on failure */
	else
		db_rollback(db);
	if (s != ST_OK) {
		if (locked)
			db_run_unlock(db, *id);
		*id = 0;
	}
out:
	free(path);
	free(png);
	free(classes.s);
	return s;
}

/* ---- steps ---------------------------------------------------------------------- */

static const char sql_insert_step[] =
	"INSERT INTO steps (run_id, iter, loss, pred, target_prob, probs, "
	"grad_l1, grad_l2, grad_linf, zero_frac, hist, n_zero, n_nan, n_inf, "
	"n_tiny, n_huge, layer_norms, pert_linf, pert_l2, diagnosis, step_ms) "
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
	"?15, ?16, ?17, ?18, ?19, ?20, ?21)";

/* probs, hist and layer norms as three JSON arrays in one buffer (offsets
 * in at[]), so a step costs one allocation. */
static void step_json(struct sbuf *b, const struct attack_report *r,
		      int n_classes, size_t at[3], size_t len[3])
{
	int i;

	at[0] = b->len;
	sb_floats(b, r->probs, r->probs ? n_classes : 0);
	len[0] = b->len - at[0];
	at[1] = b->len;
	sb_add(b, "[");
	for (i = 0; i < DIAG_HIST_BINS; i++)
		sb_add(b, "%s%zu", i ? "," : "", r->grad.hist[i]);
	sb_add(b, "]");
	len[1] = b->len - at[1];
	at[2] = b->len;
	sb_doubles(b, r->layer_norms, r->layer_norms ? r->n_layers + 1 : 0);
	len[2] = b->len - at[2];
}

enum status runs_step(struct db *db, int64_t id, const struct attack_report *r,
		      int n_classes, char *err)
{
	struct sbuf b = { 0 };
	size_t at[3], len[3];
	sqlite3_stmt *st;
	enum status s;
	int i;

	step_json(&b, r, n_classes, at, len);
	if (b.oom) {
		free(b.s);
		return status_set(err, ST_ERR_NOMEM, "%s: out of memory",
				  db_path(db));
	}
	st = db_stmt(db, sql_insert_step, err);
	if (!st) {
		free(b.s);
		return ST_ERR_DB;
	}
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int(st, 2, r->iter);
	sqlite3_bind_double(st, 3, r->loss);	/* NaN becomes NULL */
	sqlite3_bind_int(st, 4, r->pred);
	sqlite3_bind_double(st, 5, r->target_prob);
	for (i = 0; i < 3; i++)
		sqlite3_bind_text(st, i == 0 ? 6 : i == 1 ? 11 : 17, b.s + at[i],
				  (int)len[i], SQLITE_STATIC);
	sqlite3_bind_double(st, 7, r->grad.l1);
	sqlite3_bind_double(st, 8, r->grad.l2);
	sqlite3_bind_double(st, 9, r->grad.linf);
	sqlite3_bind_double(st, 10, r->grad.zero_frac);
	sqlite3_bind_int64(st, 12, (int64_t)r->grad.n_zero);
	sqlite3_bind_int64(st, 13, (int64_t)r->grad.n_nan);
	sqlite3_bind_int64(st, 14, (int64_t)r->grad.n_inf);
	sqlite3_bind_int64(st, 15, (int64_t)r->grad.n_tiny);
	sqlite3_bind_int64(st, 16, (int64_t)r->grad.n_huge);
	sqlite3_bind_double(st, 18, r->pert_linf);
	sqlite3_bind_double(st, 19, r->pert_l2);
	bind_text(st, 20, r->diagnosis && r->diagnosis[0] ? r->diagnosis : NULL);
	sqlite3_bind_double(st, 21, r->step_ms);
	s = sqlite3_step(st) == SQLITE_DONE ? ST_OK :
	    db_fail(db, "cannot log the step", err);
	sqlite3_reset(st);	/* before b goes: it is bound SQLITE_STATIC */
	free(b.s);
	if (s != ST_OK && sqlite3_extended_errcode(sqlite3_db_handle(st)) ==
	    SQLITE_CONSTRAINT_FOREIGNKEY)
		return no_such_run(db, id, err);
	return s;
}

/* ---- finishing --------------------------------------------------------------- */

static const char sql_run_shape[] =
	"SELECT r.height, r.width, m.n_classes FROM runs r "
	"JOIN models m ON m.id = r.model_id WHERE r.id = ?1";
static const char sql_finish[] =
	"UPDATE runs SET status = ?2, "
	"ended = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), wall_s = ?3, "
	"success = ?4, final_iter = ?5, final_pred = ?6, final_loss = ?7, "
	"final_target_prob = ?8, final_probs = ?9, final_diagnosis = ?10, "
	"pert_linf = ?11, pert_l2 = ?12 WHERE id = ?1";

static enum status run_shape(struct db *db, int64_t id, int *h, int *w,
			     int *n_classes, char *err)
{
	sqlite3_stmt *st = db_stmt(db, sql_run_shape, err);
	int rc;

	if (!st)
		return ST_ERR_DB;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*h = sqlite3_column_int(st, 0);
		*w = sqlite3_column_int(st, 1);
		*n_classes = sqlite3_column_int(st, 2);
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return no_such_run(db, id, err);
	return rc == SQLITE_ROW ? ST_OK : db_fail(db, "cannot read the run", err);
}

static enum status update_outcome(struct db *db, int64_t id, const char *status,
				  const struct attack_report *f,
				  const struct sbuf *probs, double wall_s,
				  char *err)
{
	sqlite3_stmt *st = db_stmt(db, sql_finish, err);

	if (!st)
		return ST_ERR_DB;
	sqlite3_bind_int64(st, 1, id);
	bind_text(st, 2, status);
	sqlite3_bind_double(st, 3, wall_s);
	if (f) {
		sqlite3_bind_int(st, 4, f->success);
		sqlite3_bind_int(st, 5, f->iter);
		sqlite3_bind_int(st, 6, f->pred);
		sqlite3_bind_double(st, 7, f->loss);
		sqlite3_bind_double(st, 8, f->target_prob);
		bind_json(st, 9, probs);
		bind_text(st, 10, f->diagnosis && f->diagnosis[0] ?
			  f->diagnosis : NULL);
		sqlite3_bind_double(st, 11, f->pert_linf);
		sqlite3_bind_double(st, 12, f->pert_l2);
	}
	return run_done(db, st, "cannot finish the run", err);
}

enum status runs_finish(struct db *db, int64_t id, const char *status,
			const struct attack_report *final, const float *x_adv,
			double wall_s, char *err)
{
	struct sbuf probs = { 0 };
	unsigned char *png = NULL;
	size_t png_len = 0;
	enum status s;
	int h = 0, w = 0, k = 0;

	if (!status || (strcmp(status, "done") && strcmp(status, "interrupted") &&
			strcmp(status, "failed")))
		return status_set(err, ST_ERR_ARG, "RUN %lld: a run ends 'done', "
				  "'interrupted' or 'failed', not '%s'",
				  (long long)id, status ? status : "(null)");
	s = run_shape(db, id, &h, &w, &k, err);
	if (s == ST_OK && x_adv)
		s = image_encode_png(x_adv, h, w, NULL, NULL, 0, &png, &png_len,
				     err);
	if (s == ST_OK && final) {
		sb_floats(&probs, final->probs, final->probs ? k : 0);
		if (probs.oom)
			s = status_set(err, ST_ERR_NOMEM, "%s: out of memory",
				       db_path(db));
	}
	if (s == ST_OK)
		s = db_begin(db, err);
	if (s == ST_OK)
		s = update_outcome(db, id, status, final, &probs, wall_s, err);
	if (s == ST_OK && png)
		s = insert_image(db, id, "adv", png, png_len, err);
	if (s == ST_OK)
		s = db_commit(db, err);
	else
		db_rollback(db);
	/* Committed, the outcome speaks for the run. If not, the run stays
	 * 'running' with nobody holding its lock, so the next open marks it
	 * interrupted - which it is. */
	db_run_unlock(db, id);
	free(png);
	free(probs.s);
	return s;
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
	"r.pert_linf, r.pert_l2, r.wall_s, r.final_diagnosis "                 \
	"FROM runs r JOIN models m ON m.id = r.model_id "                      \
	"LEFT JOIN datasets d ON d.id = r.dataset_id "

static const char sql_list[] = RUN_SELECT
	"WHERE (?1 IS NULL OR instr(m.path, ?1) > 0 "
	"       OR substr(m.sha256, 1, length(?1)) = lower(?1)) "
	"AND (?2 IS NULL OR r.status = ?2) "
	"ORDER BY r.id DESC LIMIT ?3";
static const char sql_get[] = RUN_SELECT "WHERE r.id = ?1";

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
}

enum status runs_list(struct db *db, const struct runs_filter *f,
		      int (*cb)(const struct run_row *r, void *user), void *user,
		      char *err)
{
	sqlite3_stmt *st = db_stmt(db, sql_list, err);
	struct run_row *row = malloc(sizeof *row);
	enum status s = ST_OK;
	int rc;

	if (!st || !row) {
		free(row);
		return st ? status_set(err, ST_ERR_NOMEM, "out of memory") :
		       ST_ERR_DB;
	}
	bind_text(st, 1, f && f->model && f->model[0] ? f->model : NULL);
	bind_text(st, 2, f && f->status && f->status[0] ? f->status : NULL);
	sqlite3_bind_int(st, 3, f && f->limit > 0 ? f->limit : -1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		read_row(st, row);
		if (cb(row, user))
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
	if (rc == SQLITE_ROW)
		read_row(st, r);
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

/* ---- deleting --------------------------------------------------------------- */

static const char sql_status[] =
	"SELECT status, writer_pid FROM runs WHERE id = ?1";
static const char sql_delete[] = "DELETE FROM runs WHERE id = ?1";
/* the steps and images go by ON DELETE CASCADE */
static const char sql_orphan_models[] =
	"DELETE FROM models WHERE NOT EXISTS "
	"(SELECT 1 FROM runs r WHERE r.model_id = models.id)";
static const char sql_orphan_datasets[] =
	"DELETE FROM datasets WHERE NOT EXISTS "
	"(SELECT 1 FROM runs r WHERE r.dataset_id = datasets.id)";

/* A run its writer is still writing is not ours to delete. */
static enum status check_deletable(struct db *db, int64_t id, char *err)
{
	sqlite3_stmt *st = db_stmt(db, sql_status, err);
	char status[16] = "";
	int rc, pid = 0;

	if (!st)
		return ST_ERR_DB;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		col_text(st, 0, status, sizeof status);
		pid = sqlite3_column_int(st, 1);
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return no_such_run(db, id, err);
	if (rc != SQLITE_ROW)
		return db_fail(db, "cannot read the run", err);
	if (!strcmp(status, "running") && db_run_live(db, id) != 0)
		return status_set(err, ST_ERR_ARG, "RUN %lld: still running "
				  "(pid %d); not deleted", (long long)id, pid);
	return ST_OK;
}

enum status runs_delete(struct db *db, int64_t id, char *err)
{
	const char *const sqls[] = { sql_delete, sql_orphan_models,
				     sql_orphan_datasets };
	enum status s;
	size_t i;

	s = db_begin(db, err);
	if (s != ST_OK)
		return s;
	s = check_deletable(db, id, err);
	for (i = 0; s == ST_OK && i < sizeof sqls / sizeof sqls[0]; i++) {
		sqlite3_stmt *st = db_stmt(db, sqls[i], err);

		if (!st) {
			s = ST_ERR_DB;
			break;
		}
		if (i == 0)
			sqlite3_bind_int64(st, 1, id);
		s = run_done(db, st, "cannot delete the run", err);
	}
	if (s == ST_OK)
		return db_commit(db, err);
	db_rollback(db);
	return s;
}
