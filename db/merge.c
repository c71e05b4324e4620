/* merge.c - copying one run log into another (see merge.h). The part is
 * ATTACHed to the target's connection and copied with INSERT ... SELECT,
 * its row ids mapped to the target's through temporary tables:
 * temp.merge_runs (old run id -> status to give it, new id) and
 * temp.merge_audits (old -> new) for the runs and audits the target lacks,
 * temp.merge_allruns (every run of the part the target has once the runs
 * are in: a reference to a run from another table), and
 * temp.merge_models / temp.merge_datasets (old id -> new id).
 */
#define _XOPEN_SOURCE 700	/* realpath */

#include "merge.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The tables whose rows belong to a run or to an audit, copied with it:
 * the table, its parent ("runs" or "audits", copied only when the target
 * lacks it), the column naming the parent, and a column naming some run
 * (any run of the part, mapped to the target's; NULL when the target has
 * not got it), or NULL. A new per-run table is one more line here (its
 * "id" column, when it has one, is left for the target to number). A table
 * missing from either log is passed over. */
static const struct merge_table {
	const char *name, *parent, *parent_col, *run_col;
} MERGE_TABLES[] = {
	{ "steps", "runs", "run_id", NULL },
	{ "images", "runs", "run_id", NULL },
	{ "exports", "runs", "run_id", NULL },
	{ "audit_images", "audits", "audit_id", "run_id" },
};

#define N_MERGE_TABLES ((int)(sizeof MERGE_TABLES / sizeof MERGE_TABLES[0]))

/* The same model: the same file by its hash (the path may differ between
 * the machines that ran the shards), or the same built-in by name. */
#define MODEL_SAME                                                          \
	"m.arch = p.arch AND m.classes = p.classes AND "                     \
	"((p.sha256 IS NOT NULL AND m.sha256 = p.sha256) OR "                 \
	"(p.sha256 IS NULL AND m.sha256 IS NULL AND m.path = p.path))"

/* The models and data sources of the runs and audits to copy. */
#define USED_MODELS                                                          \
	"(SELECT model_id FROM part.runs WHERE id IN "                        \
	"(SELECT old FROM temp.merge_runs) UNION SELECT model_id FROM "        \
	"part.audits WHERE id IN (SELECT old FROM temp.merge_audits) AND "     \
	"model_id IS NOT NULL)"
#define USED_DATASETS                                                        \
	"(SELECT dataset_id FROM part.runs WHERE id IN "                      \
	"(SELECT old FROM temp.merge_runs) AND dataset_id IS NOT NULL UNION "  \
	"SELECT dataset_id FROM part.audits WHERE id IN "                     \
	"(SELECT old FROM temp.merge_audits) AND dataset_id IS NOT NULL)"

static const char sql_attach[] = "ATTACH ?1 AS part";
static const char sql_running[] = "SELECT id FROM runs WHERE status = 'running'";
static const char sql_dead_run[] =
	"INSERT INTO temp.merge_runs (old, status) SELECT id, 'interrupted' "
	"FROM part.runs WHERE id = ?1 AND status = 'running' "
	"AND uuid NOT IN (SELECT uuid FROM main.runs WHERE uuid IS NOT NULL)";
static const char sql_table_in_both[] =
	"SELECT (SELECT count(*) FROM main.sqlite_master WHERE type = 'table' "
	"AND name = ?1) + (SELECT count(*) FROM part.sqlite_master WHERE "
	"type = 'table' AND name = ?1)";
static const char sql_has_column[] =
	"SELECT count(*) FROM pragma_table_info(?1, 'part') WHERE name = ?2";
static const char sql_columns[] =
	"SELECT m.name FROM pragma_table_info(?1, 'main') m WHERE m.name IN "
	"(SELECT name FROM pragma_table_info(?1, 'part')) ORDER BY m.cid";

/* The steps of the merge that need no column list, in order. */
static const char *const merge_setup[] = {
	"CREATE TEMP TABLE IF NOT EXISTS merge_runs (old INTEGER PRIMARY KEY, "
	"status TEXT NOT NULL, new INTEGER)",
	"CREATE TEMP TABLE IF NOT EXISTS merge_models (old INTEGER PRIMARY KEY, "
	"new INTEGER NOT NULL)",
	"CREATE TEMP TABLE IF NOT EXISTS merge_datasets (old INTEGER PRIMARY KEY, "
	"new INTEGER NOT NULL)",
	"CREATE TEMP TABLE IF NOT EXISTS merge_audits (old INTEGER PRIMARY KEY, "
	"new INTEGER)",
	"CREATE TEMP TABLE IF NOT EXISTS merge_allruns (old INTEGER PRIMARY KEY, "
	"new INTEGER NOT NULL)",
	"DELETE FROM temp.merge_runs",
	"DELETE FROM temp.merge_models",
	"DELETE FROM temp.merge_datasets",
	"DELETE FROM temp.merge_audits",
	"DELETE FROM temp.merge_allruns",
	/* finished runs the target does not have */
	"INSERT INTO temp.merge_runs (old, status) SELECT id, status FROM "
	"part.runs WHERE status <> 'running' AND uuid NOT IN "
	"(SELECT uuid FROM main.runs WHERE uuid IS NOT NULL)",
	/* audits the target does not have */
	"INSERT INTO temp.merge_audits (old) SELECT id FROM part.audits WHERE "
	"uuid NOT IN (SELECT uuid FROM main.audits WHERE uuid IS NOT NULL)",
};

static enum status exec_all(struct db *db, const char *const *sql, int n,
			    char *err)
{
	enum status s = ST_OK;
	int i;

	for (i = 0; s == ST_OK && i < n; i++)
		s = db_exec(db, sql[i], NULL, "cannot merge", err);
	return s;
}

/* The part's runs left 'running': dead[] those whose writer has died,
 * *n_live the others (or those whose state cannot be told). Read on a
 * connection of the part's own, which sees its writers' locks. */
static enum status running_runs(struct db *part, int64_t **dead, int *n_dead,
				int64_t *n_live, char *err)
{
	sqlite3_stmt *st = db_stmt(part, sql_running, err);
	int cap = 0, rc;

	*dead = NULL;
	*n_dead = 0;
	*n_live = 0;
	if (!st)
		return ST_ERR_DB;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);

		if (db_run_live(part, id) != 0) {
			(*n_live)++;
			continue;
		}
		if (*n_dead == cap) {
			int64_t *g;

			cap = cap ? 2 * cap : 16;
			g = realloc(*dead, sizeof *g * (size_t)cap);
			if (!g) {
				sqlite3_reset(st);
				return status_set(err, ST_ERR_NOMEM, "out of memory");
			}
			*dead = g;
		}
		(*dead)[(*n_dead)++] = id;
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? ST_OK : db_fail(part, "cannot read the runs", err);
}

/* The columns table has in both logs, except skip (a NULL-terminated
 * list), as "a", "b" into plain and p."a", p."b" into pref. *n: how many. */
static enum status shared_columns(struct db *db, const char *table,
				  const char *const *skip, char *plain,
				  char *pref, size_t cap, int *n, char *err)
{
	sqlite3_stmt *st = db_stmt(db, sql_columns, err);
	size_t up = 0, ur = 0;
	int rc;

	*n = 0;
	plain[0] = pref[0] = 0;
	if (!st)
		return ST_ERR_DB;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		const char *const *k;
		int skipped = 0, wp, wr;

		for (k = skip; *k; k++)
			skipped |= !strcmp(*k, name);
		if (skipped)
			continue;
		/* schema names are ours: no quote inside, but quoted all the same */
		if (strchr(name, '"')) {
			sqlite3_reset(st);
			return status_set(err, ST_ERR_FORMAT, "%s: column %s: bad name",
					  table, name);
		}
		wp = snprintf(plain + up, cap - up, "%s\"%s\"", *n ? ", " : "", name);
		wr = snprintf(pref + ur, cap - ur, "%sp.\"%s\"", *n ? ", " : "", name);
		if (wp < 0 || wr < 0 || (size_t)wp >= cap - up || (size_t)wr >= cap - ur) {
			sqlite3_reset(st);
			return status_set(err, ST_ERR_FORMAT, "%s: too many columns", table);
		}
		up += (size_t)wp;
		ur += (size_t)wr;
		(*n)++;
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? ST_OK : db_fail(db, "cannot read the schema", err);
}

static enum status table_in_both(struct db *db, const char *table, int *both,
				 char *err)
{
	sqlite3_stmt *st = db_stmt(db, sql_table_in_both, err);
	int rc;

	if (!st)
		return ST_ERR_DB;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	*both = rc == SQLITE_ROW && sqlite3_column_int(st, 0) == 2;
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? ST_OK : db_fail(db, "cannot read the schema", err);
}

/* A per-run table must name its run: say so, rather than fail in SQL. */
static enum status has_column(struct db *db, const char *table, const char *col,
			      char *err)
{
	sqlite3_stmt *st = db_stmt(db, sql_has_column, err);
	int rc, n = 0;

	if (!st)
		return ST_ERR_DB;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, col, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return db_fail(db, "cannot read the schema", err);
	if (!n)
		return status_set(err, ST_ERR_FORMAT, "table %s has no column %s: "
				  "MERGE_TABLES (db/merge.c) does not know how to "
				  "copy it; nothing merged", table, col);
	return ST_OK;
}

/* Models and data sources the chosen runs use: shared or added. */
static enum status merge_sources(struct db *db, struct merge_report *r, char *err)
{
	int64_t used_m = 0, used_d = 0;
	enum status s;

	s = db_query_int(db, "SELECT count(*) FROM " USED_MODELS, &used_m,
			 "cannot merge the models", err);
	if (s == ST_OK)
		s = db_exec(db, "INSERT INTO main.models (path, sha256, arch, n_classes, "
			    "classes) SELECT p.path, p.sha256, p.arch, p.n_classes, "
			    "p.classes FROM part.models p WHERE p.id IN " USED_MODELS
			    " AND NOT EXISTS (SELECT 1 FROM main.models m WHERE "
			    MODEL_SAME ") ORDER BY p.id", &r->models_added,
			    "cannot merge the models", err);
	if (s == ST_OK)
		s = db_exec(db, "INSERT INTO temp.merge_models (old, new) SELECT p.id, "
			    "(SELECT min(m.id) FROM main.models m WHERE " MODEL_SAME
			    ") FROM part.models p WHERE p.id IN " USED_MODELS, NULL,
			    "cannot merge the models", err);
	if (s == ST_OK)
		s = db_query_int(db, "SELECT count(*) FROM " USED_DATASETS, &used_d,
				 "cannot merge the data sources", err);
	if (s == ST_OK)
		s = db_exec(db, "INSERT OR IGNORE INTO main.datasets (path, kind, split) "
			    "SELECT path, kind, split FROM part.datasets WHERE id IN "
			    USED_DATASETS " ORDER BY id", &r->datasets_added,
			    "cannot merge the data sources", err);
	if (s == ST_OK)
		s = db_exec(db, "INSERT INTO temp.merge_datasets (old, new) SELECT p.id, "
			    "m.id FROM part.datasets p JOIN main.datasets m ON "
			    "m.path = p.path AND m.kind = p.kind AND m.split = p.split "
			    "WHERE p.id IN " USED_DATASETS, NULL,
			    "cannot merge the data sources", err);
	r->models_shared = used_m - r->models_added;
	r->datasets_shared = used_d - r->datasets_added;
	return s;
}

/* The runs themselves, in the part's order, then their new ids. */
static enum status merge_runs(struct db *db, struct merge_report *r, char *err)
{
	static const char *const skip[] = { "id", "model_id", "dataset_id", "status",
					    NULL };
	char plain[4096], pref[4096], sql[10000];
	enum status s;
	int n;

	s = shared_columns(db, "runs", skip, plain, pref, sizeof plain, &n, err);
	if (s != ST_OK)
		return s;
	snprintf(sql, sizeof sql, "INSERT INTO main.runs (model_id, dataset_id, status, "
		 "%s) SELECT mm.new, md.new, mr.status, %s FROM part.runs p "
		 "JOIN temp.merge_runs mr ON mr.old = p.id "
		 "JOIN temp.merge_models mm ON mm.old = p.model_id "
		 "LEFT JOIN temp.merge_datasets md ON md.old = p.dataset_id "
		 "ORDER BY p.id", plain, pref);
	s = db_exec(db, sql, &r->runs, "cannot merge the runs", err);
	if (s == ST_OK)
		s = db_exec(db, "UPDATE temp.merge_runs SET new = (SELECT m.id FROM "
			    "main.runs m WHERE m.uuid = (SELECT p.uuid FROM part.runs p "
			    "WHERE p.id = merge_runs.old))", NULL,
			    "cannot merge the runs", err);
	if (s == ST_OK)
		s = db_query_int(db, "SELECT count(*) FROM temp.merge_runs WHERE "
				 "status = 'interrupted' AND old IN (SELECT id FROM "
				 "part.runs WHERE status = 'running')", &r->interrupted,
				 "cannot merge the runs", err);
	if (s == ST_OK)
		s = db_exec(db, "INSERT INTO temp.merge_allruns (old, new) SELECT p.id, "
			    "m.id FROM part.runs p JOIN main.runs m ON m.uuid = p.uuid",
			    NULL, "cannot merge the runs", err);
	return s;
}

/* The audits, in the part's order, then their new ids. */
static enum status merge_audits(struct db *db, struct merge_report *r, char *err)
{
	static const char *const skip[] = { "id", "model_id", "dataset_id", NULL };
	char plain[4096], pref[4096], sql[10000];
	enum status s;
	int n;

	s = db_query_int(db, "SELECT count(*) FROM part.audits WHERE uuid IN "
			 "(SELECT uuid FROM main.audits)", &r->audits_present,
			 "cannot merge the audits", err);
	if (s == ST_OK)
		s = shared_columns(db, "audits", skip, plain, pref, sizeof plain, &n, err);
	if (s != ST_OK)
		return s;
	snprintf(sql, sizeof sql, "INSERT INTO main.audits (model_id, dataset_id, %s) "
		 "SELECT mm.new, md.new, %s FROM part.audits p "
		 "JOIN temp.merge_audits ma ON ma.old = p.id "
		 "LEFT JOIN temp.merge_models mm ON mm.old = p.model_id "
		 "LEFT JOIN temp.merge_datasets md ON md.old = p.dataset_id "
		 "ORDER BY p.id", plain, pref);
	s = db_exec(db, sql, &r->audits, "cannot merge the audits", err);
	if (s == ST_OK)
		s = db_exec(db, "UPDATE temp.merge_audits SET new = (SELECT m.id FROM "
			    "main.audits m WHERE m.uuid = (SELECT p.uuid FROM part.audits p "
			    "WHERE p.id = merge_audits.old))", NULL,
			    "cannot merge the audits", err);
	return s;
}

/* Every per-run and per-audit table both logs have (MERGE_TABLES). */
static enum status merge_children(struct db *db, struct merge_report *r, char *err)
{
	char plain[4096], pref[4096], sql[10000], run_map[256];
	enum status s = ST_OK;
	int i, both, n;

	for (i = 0; s == ST_OK && i < N_MERGE_TABLES; i++) {
		const struct merge_table *t = &MERGE_TABLES[i];
		const char *skip[] = { "id", t->parent_col, t->run_col, NULL };
		int64_t added = 0;

		s = table_in_both(db, t->name, &both, err);
		if (s != ST_OK || !both)
			continue;
		s = has_column(db, t->name, t->parent_col, err);
		if (s == ST_OK && t->run_col)
			s = has_column(db, t->name, t->run_col, err);
		if (s == ST_OK)
			s = shared_columns(db, t->name, skip, plain, pref, sizeof plain,
					   &n, err);
		if (s != ST_OK)
			break;
		if (t->run_col)
			snprintf(run_map, sizeof run_map, "LEFT JOIN temp.merge_allruns ar "
				 "ON ar.old = p.\"%s\" ", t->run_col);
		snprintf(sql, sizeof sql, "INSERT INTO main.\"%s\" (\"%s\"%s%s%s%s%s) "
			 "SELECT mp.new%s%s%s FROM part.\"%s\" p JOIN temp.merge_%s mp ON "
			 "mp.old = p.\"%s\" %sORDER BY p.rowid", t->name, t->parent_col,
			 t->run_col ? ", \"" : "", t->run_col ? t->run_col : "",
			 t->run_col ? "\"" : "", n ? ", " : "", plain,
			 t->run_col ? ", ar.new" : "", n ? ", " : "", pref, t->name,
			 t->parent, t->parent_col, t->run_col ? run_map : "");
		s = db_exec(db, sql, &added, "cannot merge the per-run rows", err);
		if (!strcmp(t->name, "steps"))
			r->steps += added;
		else if (!strcmp(t->name, "images"))
			r->images += added;
		else
			r->other_rows += added;
	}
	return s;
}

static int same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

enum status merge_part(struct db *into, const char *part_path,
		       struct merge_report *r, char *err)
{
	struct db *part = NULL;
	int64_t *dead = NULL, version = 0;
	int n_dead = 0, i, attached = 0;
	sqlite3_stmt *st;
	enum status s;

	memset(r, 0, sizeof *r);
	if (same_file(db_path(into), part_path))
		return status_set(err, ST_ERR_ARG, "%s: is the log merged into",
				  part_path);
	/* refuses a newer schema untouched; migrates an older one */
	s = db_open_read(part_path, &part, err);
	if (s == ST_OK)
		s = running_runs(part, &dead, &n_dead, &r->live, err);
	db_close(part);
	if (s != ST_OK)
		goto out;
	st = db_stmt(into, sql_attach, err);
	if (!st) {
		s = ST_ERR_DB;
		goto out;
	}
	sqlite3_bind_text(st, 1, part_path, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_DONE) {
		s = db_fail(into, "cannot read the part", err);
		sqlite3_reset(st);
		goto out;
	}
	sqlite3_reset(st);
	attached = 1;
	s = db_begin(into, err);
	if (s != ST_OK)
		goto out;
	/* the part, read again under the transaction: still not newer? */
	s = db_query_int(into, "PRAGMA part.user_version", &version,
			 "cannot read the part's version", err);
	if (s == ST_OK && version != DB_SCHEMA_VERSION)
		s = status_set(err, ST_ERR_UNSUPPORTED, "%s: schema %lld changed while "
			       "merging (this advex knows %d); not merged", part_path,
			       (long long)version, DB_SCHEMA_VERSION);
	if (s == ST_OK)
		s = exec_all(into, merge_setup, (int)(sizeof merge_setup /
						      sizeof merge_setup[0]), err);
	for (i = 0; s == ST_OK && i < n_dead; i++) {
		st = db_stmt(into, sql_dead_run, err);
		if (!st) {
			s = ST_ERR_DB;
			break;
		}
		sqlite3_bind_int64(st, 1, dead[i]);
		if (sqlite3_step(st) != SQLITE_DONE)
			s = db_fail(into, "cannot merge the runs", err);
		sqlite3_reset(st);
	}
	if (s == ST_OK)
		s = db_query_int(into, "SELECT count(*) FROM part.runs WHERE uuid IN "
				 "(SELECT uuid FROM main.runs)", &r->present,
				 "cannot merge the runs", err);
	if (s == ST_OK)
		s = merge_sources(into, r, err);
	if (s == ST_OK)
		s = merge_runs(into, r, err);
	if (s == ST_OK)
		s = merge_audits(into, r, err);
	if (s == ST_OK)
		s = merge_children(into, r, err);
	if (s == ST_OK)
		s = db_commit(into, err);	/* rolls back itself on failure */
	else
		db_rollback(into);
out:
	if (attached)
		db_exec(into, "DETACH part", NULL, "cannot detach", NULL);
	free(dead);
	if (s != ST_OK)
		memset(r, 0, sizeof *r);
	return s;
}
