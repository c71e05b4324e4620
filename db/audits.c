/* audits.c - audits and exports in the run log (see audits.h). */
#include "audits.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "audit_json.h"
#include "db.h"

static const char sql_run_source[] =
	"SELECT model_id, dataset_id FROM runs WHERE id = ?1";
static const char sql_insert_audit[] =
	"INSERT INTO audits (created, model_id, dataset_id, n_images, params, "
	"checks, n_pass, n_warn, n_fail) VALUES (strftime('%Y-%m-%dT%H:%M:%fZ', "
	"'now'), ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
static const char sql_insert_image[] =
	"INSERT INTO audit_images (audit_id, image_index, run_id, record) "
	"VALUES (?1, ?2, ?3, ?4)";
static const char sql_insert_export[] =
	"INSERT INTO exports (run_id, created, path, pred, success) VALUES "
	"(?1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), ?2, ?3, ?4)";

/* JSON text of j (compact, reals round-tripping), j released. */
static char *dump(json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;

	json_decref(j);
	return s;
}

static enum status step_done(struct db *db, sqlite3_stmt *st, const char *what,
			     char *err)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE ? ST_OK : db_fail(db, what, err);
}

/* The model and data of the first logged run, for the audit's row. */
static enum status source_of(struct db *db, const int64_t *run_ids, int n,
			     int64_t *model, int64_t *dataset, char *err)
{
	sqlite3_stmt *st;
	int i;

	*model = *dataset = 0;
	for (i = 0; i < n && !run_ids[i]; i++)
		;
	if (i == n)
		return ST_OK;
	if (!(st = db_stmt(db, sql_run_source, err)))
		return ST_ERR_DB;
	sqlite3_bind_int64(st, 1, run_ids[i]);
	if (sqlite3_step(st) == SQLITE_ROW) {
		*model = sqlite3_column_int64(st, 0);
		*dataset = sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	return ST_OK;
}

static void bind_id(sqlite3_stmt *st, int i, int64_t id)
{
	if (id > 0)
		sqlite3_bind_int64(st, i, id);
	else
		sqlite3_bind_null(st, i);
}

static enum status insert_audit(struct db *db, const struct audit_params *p,
				int n, const struct audit_check *checks,
				int64_t model, int64_t dataset, int64_t *id, char *err)
{
	char *params = dump(audit_json_params(p)), *chk = dump(audit_json_checks(checks));
	int cnt[4] = { 0 }, i;
	sqlite3_stmt *st;
	enum status s;

	for (i = 0; i < AUDIT_N_CHECKS; i++)
		cnt[checks[i].verdict]++;
	if (!params || !chk) {
		free(params);
		free(chk);
		return status_set(err, ST_ERR_NOMEM, "out of memory for the audit's JSON");
	}
	if (!(st = db_stmt(db, sql_insert_audit, err))) {
		free(params);
		free(chk);
		return ST_ERR_DB;
	}
	bind_id(st, 1, model);
	bind_id(st, 2, dataset);
	sqlite3_bind_int(st, 3, n);
	sqlite3_bind_text(st, 4, params, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 5, chk, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 6, cnt[AUDIT_PASS]);
	sqlite3_bind_int(st, 7, cnt[AUDIT_WARN]);
	sqlite3_bind_int(st, 8, cnt[AUDIT_FAIL]);
	s = step_done(db, st, "cannot insert the audit", err);
	free(params);
	free(chk);
	if (s == ST_OK)
		*id = sqlite3_last_insert_rowid(sqlite3_db_handle(st));
	return s;
}

static enum status insert_images(struct db *db, int64_t id, const struct audit_params *p,
				 const struct audit_image *recs, const int64_t *run_ids,
				 int n, char *err)
{
	sqlite3_stmt *st = db_stmt(db, sql_insert_image, err);
	enum status s = st ? ST_OK : ST_ERR_DB;
	int i;

	for (i = 0; s == ST_OK && i < n; i++) {
		char *rec = dump(audit_json_image(&recs[i], p->n_eps));

		if (!rec)
			return status_set(err, ST_ERR_NOMEM, "out of memory for the audit's JSON");
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int(st, 2, recs[i].index);
		bind_id(st, 3, run_ids ? run_ids[i] : 0);
		sqlite3_bind_text(st, 4, rec, -1, SQLITE_TRANSIENT);
		s = step_done(db, st, "cannot insert an audited image", err);
		free(rec);
	}
	return s;
}

enum status audits_save(struct db *db, const struct audit_params *p,
			const struct audit_image *recs, const int64_t *run_ids,
			int n, const struct audit_check *checks, int64_t *id,
			char *err)
{
	int64_t model, dataset;
	enum status s;

	*id = 0;
	if ((s = db_begin(db, err)) != ST_OK)
		return s;
	if ((s = source_of(db, run_ids, n, &model, &dataset, err)) == ST_OK &&
	    (s = insert_audit(db, p, n, checks, model, dataset, id, err)) == ST_OK &&
	    (s = insert_images(db, *id, p, recs, run_ids, n, err)) == ST_OK &&
	    (s = db_commit(db, err)) == ST_OK)
		return ST_OK;
	db_rollback(db);
	*id = 0;
	return s;
}

enum status exports_record(struct db *db, int64_t run_id, const char *path,
			   int pred, int success, char *err)
{
	sqlite3_stmt *st = db_stmt(db, sql_insert_export, err);

	if (!st)
		return ST_ERR_DB;
	sqlite3_bind_int64(st, 1, run_id);
	sqlite3_bind_text(st, 2, path, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 3, pred);
	sqlite3_bind_int(st, 4, success);
	return step_done(db, st, "cannot record the export", err);
}

/* ---- reading ------------------------------------------------------------- */

static const char sql_latest[] = "SELECT max(id) FROM audits";
static const char sql_audit[] =
	"SELECT id, created, params, checks, n_pass, n_warn, n_fail, n_images "
	"FROM audits WHERE id = ?1";
static const char sql_images[] =
	"SELECT image_index, run_id, record FROM audit_images WHERE audit_id = ?1 "
	"ORDER BY image_index";
static const char sql_list[] =
	"SELECT id, created, n_images, n_pass, n_warn, n_fail, "
	"json_extract(params, '$.attack'), json_extract(params, '$.eps') "
	"FROM audits ORDER BY id DESC";

static json_t *col_json(sqlite3_stmt *st, int i)
{
	const char *s = (const char *)sqlite3_column_text(st, i);

	return s ? json_loads(s, 0, NULL) : NULL;
}

static json_t *col_str(sqlite3_stmt *st, int i)
{
	const char *s = (const char *)sqlite3_column_text(st, i);

	return json_string(s ? s : "");
}

static enum status load_images(struct db *db, int64_t id, json_t *arr, char *err)
{
	sqlite3_stmt *st = db_stmt(db, sql_images, err);
	int rc;

	if (!st)
		return ST_ERR_DB;
	sqlite3_bind_int64(st, 1, id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *rec = col_json(st, 2);

		if (!rec)
			rec = json_object();
		json_object_set_new(rec, "run_id", sqlite3_column_type(st, 1) == SQLITE_NULL ?
				    json_null() : json_integer(sqlite3_column_int64(st, 1)));
		json_array_append_new(arr, rec);
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? ST_OK : db_fail(db, "cannot read the audited images", err);
}

enum status audits_load(struct db *db, int64_t id, json_t **out, char *err)
{
	sqlite3_stmt *st;
	json_t *o, *im;
	enum status s;

	*out = NULL;
	if (id <= 0) {
		if (!(st = db_stmt(db, sql_latest, err)))
			return ST_ERR_DB;
		id = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
		sqlite3_reset(st);
		if (id <= 0)
			return status_set(err, ST_ERR_ARG, "%s: no audit in the log", db_path(db));
	}
	if (!(st = db_stmt(db, sql_audit, err)))
		return ST_ERR_DB;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return status_set(err, ST_ERR_ARG, "AUDIT %lld: no such audit in %s",
				  (long long)id, db_path(db));
	}
	o = json_object();
	json_object_set_new(o, "id", json_integer(sqlite3_column_int64(st, 0)));
	json_object_set_new(o, "created", col_str(st, 1));
	json_object_set_new(o, "params", col_json(st, 2));
	json_object_set_new(o, "checks", col_json(st, 3));
	json_object_set_new(o, "summary", json_pack("{s:i, s:i, s:i}",
						    "pass", sqlite3_column_int(st, 4),
						    "warn", sqlite3_column_int(st, 5),
						    "fail", sqlite3_column_int(st, 6)));
	sqlite3_reset(st);
	im = json_array();
	json_object_set_new(o, "images", im);
	if ((s = load_images(db, id, im, err)) != ST_OK) {
		json_decref(o);
		return s;
	}
	*out = o;
	return ST_OK;
}

enum status audits_list(struct db *db, json_t **out, char *err)
{
	sqlite3_stmt *st = db_stmt(db, sql_list, err);
	json_t *a;
	int rc;

	*out = NULL;
	if (!st)
		return ST_ERR_DB;
	a = json_array();
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		json_array_append_new(a, json_pack("{s:I, s:o, s:i, s:i, s:i, s:i, s:o, s:f}",
			"id", (json_int_t)sqlite3_column_int64(st, 0),
			"created", col_str(st, 1),
			"n_images", sqlite3_column_int(st, 2),
			"pass", sqlite3_column_int(st, 3),
			"warn", sqlite3_column_int(st, 4),
			"fail", sqlite3_column_int(st, 5),
			"attack", col_str(st, 6),
			"eps", sqlite3_column_double(st, 7)));
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		json_decref(a);
		return db_fail(db, "cannot list the audits", err);
	}
	*out = a;
	return ST_OK;
}
