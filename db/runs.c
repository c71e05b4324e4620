/* runs.c - writing attack runs into the run log: begin, step, finish,
 * delete (see runs.h; the schema is in db.c; reading them back is
 * runs_read.c).
 */
#define _XOPEN_SOURCE 700	/* realpath */

#include "runs.h"
#include "runs_impl.h"
#include "sha256.h"

#include <limits.h>
#include <math.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"

/* ---- JSON arrays (jansson) --------------------------------------------------- */

/* JSON has no NaN or infinity: NaN is stored as null, an infinity as
 * +-1e308 (runs_impl.h reads it back as infinite; no float, and no norm
 * short of an overflow, comes near). */
static json_t *json_number(double v)
{
	if (isnan(v))
		return json_null();
	if (isinf(v))
		return json_real(v < 0 ? -RUNS_JSON_INF : RUNS_JSON_INF);
	return json_real(v);
}

/* A JSON array as text (malloc'd, caller frees), or NULL when a value
 * could not be made (bad) or memory runs out; a is released either way.
 * digits: significant digits of the reals. */
static char *json_text(json_t *a, int bad, int digits)
{
	char *s = a && !bad ? json_dumps(a, JSON_COMPACT | JSON_REAL_PRECISION(digits)) : NULL;

	json_decref(a);
	return s;
}

/* f[0..n) or d[0..n) (the other NULL) as a JSON array; 9 digits
 * round-trip a float, 17 a double. */
static char *json_reals(const float *f, const double *d, int n)
{
	json_t *a = json_array();
	int i, bad = 0;

	for (i = 0; a && !bad && i < n; i++)
		bad = json_array_append_new(a, json_number(f ? (double)f[i] : d[i]));
	return json_text(a, bad, f ? 9 : 17);
}

static char *json_counts(const size_t *v, int n)
{
	json_t *a = json_array();
	int i, bad = 0;

	for (i = 0; a && !bad && i < n; i++)
		bad = json_array_append_new(a, json_integer((json_int_t)v[i]));
	return json_text(a, bad, 0);
}

/* Class names as a JSON array of strings; NULL when a name is not UTF-8
 * (model files are JSON, so their names are) or memory runs out. */
static char *json_strings(const char *const *v, int n)
{
	json_t *a = json_array();
	int i, bad = 0;

	for (i = 0; a && !bad && i < n; i++)
		bad = json_array_append_new(a, json_string(v[i]));
	return json_text(a, bad, 0);
}

/* ---- binding columns --------------------------------------------------------- */

/* -1 (unknown, untargeted) is stored as NULL */
static void bind_index(sqlite3_stmt *st, int i, int v)
{
	if (v >= 0)
		sqlite3_bind_int(st, i, v);
	else
		sqlite3_bind_null(st, i);
}

static void bind_json(sqlite3_stmt *st, int i, const char *json)
{
	sqlite3_bind_text(st, i, json ? json : "[]", -1, SQLITE_TRANSIENT);
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
		return sha256_file(*path, sha, err);	/* says why */
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
	return sha[0] ? ST_OK : sha256_file(*path, sha, err);
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
			    int64_t mtime, const char *classes,
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
	"alpha, iters, momentum, random_start, seed, clip_eps, kappa, early_stop, "
	"uuid, clean_pred, eps_text, restarts, binary_steps, quantize, objective) "
	"VALUES (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 'running', ?1, ?2, ?3, "
	"?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, "
	"?19, ?20, " DB_UUID_SQL ", ?21, ?22, ?23, ?24, ?25, ?26)";
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
	bind_index(st, 21, b->has_clean_pred ? b->clean_pred : -1);
	bind_text(st, 22, b->eps_text);
	sqlite3_bind_int(st, 23, p->restarts);
	sqlite3_bind_int(st, 24, p->binary_steps);
	sqlite3_bind_int(st, 25, p->quantize);
	bind_text(st, 26, attack_objective_name(p));
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
	char *classes = NULL;
	unsigned char *png = NULL;
	size_t png_len = 0;
	char *path = NULL, sha[65];
	int64_t size, mtime, model, dataset = 0;
	enum status s;
	int locked = 0;

	*id = 0;
	s = check_begin(b, err);
	if (s == ST_OK)
		s = model_identity(db, b, &path, sha, &size, &mtime, err);
	if (s == ST_OK && b->x0)
		s = image_encode_png(b->x0, b->h, b->w, NULL, NULL, 0, &png,
				     &png_len, err);
	if (s == ST_OK && !(classes = json_strings(b->classes, b->n_classes)))
		s = status_set(err, ST_ERR_ARG, "%s: the class names are not UTF-8 "
			       "(or out of memory)", db_path(db));
	if (s == ST_OK)
		s = db_begin(db, err);
	if (s != ST_OK)
		goto out;
	s = model_id(db, b, path, sha, size, mtime, classes, &model, err);
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
	free(classes);
	return s;
}

/* ---- steps ---------------------------------------------------------------------- */

static const char sql_insert_step[] =
	"INSERT INTO steps (run_id, iter, loss, pred, target_prob, probs, "
	"grad_l1, grad_l2, grad_linf, zero_frac, hist, n_zero, n_nan, n_inf, "
	"n_tiny, n_huge, layer_norms, pert_linf, pert_l2, diagnosis, step_ms) "
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
	"?15, ?16, ?17, ?18, ?19, ?20, ?21)";

enum status runs_step(struct db *db, int64_t id, const struct attack_report *r,
		      int n_classes, char *err)
{
	char *json[3];
	sqlite3_stmt *st;
	enum status s;
	int i;

	json[0] = json_reals(r->probs, NULL, r->probs ? n_classes : 0);
	json[1] = json_counts(r->grad.hist, DIAG_HIST_BINS);
	json[2] = json_reals(NULL, r->layer_norms, r->layer_norms ? r->n_layers + 1 : 0);
	st = json[0] && json[1] && json[2] ? db_stmt(db, sql_insert_step, err) : NULL;
	if (!st) {
		for (i = 0; i < 3; i++)
			free(json[i]);
		return json[0] && json[1] && json[2] ? ST_ERR_DB :
		       status_set(err, ST_ERR_NOMEM, "%s: out of memory", db_path(db));
	}
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int(st, 2, r->iter);
	sqlite3_bind_double(st, 3, r->loss);	/* NaN becomes NULL */
	sqlite3_bind_int(st, 4, r->pred);
	sqlite3_bind_double(st, 5, r->target_prob);
	for (i = 0; i < 3; i++)
		sqlite3_bind_text(st, i == 0 ? 6 : i == 1 ? 11 : 17, json[i], -1,
				  SQLITE_STATIC);
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
	sqlite3_reset(st);	/* before json goes: it is bound SQLITE_STATIC */
	for (i = 0; i < 3; i++)
		free(json[i]);
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
				  const char *probs, double wall_s,
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
	char *probs = NULL;
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
		probs = json_reals(final->probs, NULL, final->probs ? k : 0);
		if (!probs)
			s = status_set(err, ST_ERR_NOMEM, "%s: out of memory",
				       db_path(db));
	}
	if (s == ST_OK)
		s = db_begin(db, err);
	if (s == ST_OK)
		s = update_outcome(db, id, status, final, probs, wall_s, err);
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
	free(probs);
	return s;
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
