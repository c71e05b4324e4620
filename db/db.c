/* db.c - opening the run log: path, pragmas, migrations, the statement
 * cache, transactions, and the writers' liveness locks (see db.h).
 */
#define _GNU_SOURCE	/* F_OFD_SETLK, F_OFD_GETLK */

#include "db.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Enough for every statement runs.c prepares, with room to grow. */
#define DB_MAX_STMTS 48

struct db_cached {
	const char *sql;	/* the caller's static string: the key */
	sqlite3_stmt *st;
};

struct db {
	sqlite3 *h;
	char *path;
	int lock_fd;		/* "<path>-locks", see db.h; -1: none (a
				   reader of a log no writer ever opened) */
	int readonly;		/* opened by db_open_read */
	struct db_cached stmts[DB_MAX_STMTS];
	int n_stmts;
	int64_t *held;		/* run ids whose lock this connection holds */
	int n_held, cap_held;
};

/* ---- the schema ------------------------------------------------------------
 * migrations[v] takes a database from user_version v to v + 1. They run in
 * order, all in one transaction, and are never edited once released: a
 * change to the schema is a new entry (and DB_SCHEMA_VERSION + 1). */
static const char *const migrations[] = {
	/* 0 -> 1: the first schema */
	"CREATE TABLE models ("
	"  id INTEGER PRIMARY KEY,"
	"  path TEXT NOT NULL,"		/* absolute file path, or builtin:NAME */
	"  sha256 TEXT,"		/* of the file; NULL for a built-in */
	"  arch TEXT NOT NULL,"		/* one-line architecture summary */
	"  n_classes INTEGER NOT NULL,"
	"  classes TEXT NOT NULL,"	/* JSON array of the class names */
	"  file_size INTEGER,"		/* when hashed: an unchanged file is */
	"  file_mtime_ns INTEGER"	/* not hashed again */
	");"
	"CREATE INDEX models_path ON models(path);"
	"CREATE TABLE datasets ("
	"  id INTEGER PRIMARY KEY,"
	"  path TEXT NOT NULL,"
	"  kind TEXT NOT NULL,"		/* stl10, cifar10, imagedir */
	"  split TEXT NOT NULL,"
	"  UNIQUE (path, kind, split)"
	");"
	"CREATE TABLE runs ("
	/* AUTOINCREMENT: an id is never reused, so a deleted run's lock byte
	 * or exported files can never be mistaken for a new run's */
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  created TEXT NOT NULL,"	/* ISO 8601 UTC, milliseconds */
	"  ended TEXT,"
	"  status TEXT NOT NULL CHECK (status IN"
	"    ('running', 'done', 'interrupted', 'failed')),"
	"  writer_pid INTEGER NOT NULL,"
	"  model_id INTEGER NOT NULL REFERENCES models(id),"
	"  dataset_id INTEGER REFERENCES datasets(id),"	/* NULL: a PNG file */
	"  image_ref TEXT NOT NULL,"
	"  true_label INTEGER,"		/* NULL: unknown */
	"  height INTEGER NOT NULL,"
	"  width INTEGER NOT NULL,"
	"  target INTEGER,"		/* NULL: untargeted */
	"  attack TEXT NOT NULL,"
	"  loss TEXT NOT NULL,"
	"  norm TEXT NOT NULL,"
	"  eps REAL NOT NULL,"
	"  alpha REAL NOT NULL,"
	"  iters INTEGER NOT NULL,"
	"  momentum REAL NOT NULL,"
	"  random_start INTEGER NOT NULL,"
	"  seed INTEGER NOT NULL,"
	"  clip_eps REAL NOT NULL,"
	"  kappa REAL NOT NULL,"
	"  early_stop INTEGER NOT NULL,"
	"  success INTEGER,"		/* the outcome: NULL until finished */
	"  final_iter INTEGER,"
	"  final_pred INTEGER,"
	"  final_loss REAL,"
	"  final_target_prob REAL,"
	"  final_probs TEXT,"		/* JSON array */
	"  final_diagnosis TEXT,"
	"  pert_linf REAL,"
	"  pert_l2 REAL,"
	"  wall_s REAL"
	");"
	"CREATE INDEX runs_status ON runs(status);"
	"CREATE INDEX runs_model ON runs(model_id);"
	"CREATE INDEX runs_dataset ON runs(dataset_id);"
	"CREATE TABLE steps ("
	"  id INTEGER PRIMARY KEY,"
	"  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
	"  iter INTEGER NOT NULL,"
	"  loss REAL,"			/* NULL: NaN */
	"  pred INTEGER NOT NULL,"
	"  target_prob REAL,"
	"  probs TEXT NOT NULL,"	/* JSON array, n_classes */
	"  grad_l1 REAL,"
	"  grad_l2 REAL,"
	"  grad_linf REAL,"
	"  zero_frac REAL,"
	"  hist TEXT NOT NULL,"		/* JSON array of 14 counts of log10|g| */
	"  n_zero INTEGER NOT NULL,"
	"  n_nan INTEGER NOT NULL,"
	"  n_inf INTEGER NOT NULL,"
	"  n_tiny INTEGER NOT NULL,"
	"  n_huge INTEGER NOT NULL,"
	"  layer_norms TEXT NOT NULL,"	/* JSON array, n_layers + 1 */
	"  pert_linf REAL,"
	"  pert_l2 REAL,"
	"  diagnosis TEXT,"		/* NULL when healthy */
	"  step_ms REAL"
	");"
	"CREATE INDEX steps_run ON steps(run_id);"
	"CREATE TABLE images ("
	"  id INTEGER PRIMARY KEY,"
	"  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
	"  role TEXT NOT NULL CHECK (role IN ('clean', 'adv')),"
	"  png BLOB NOT NULL,"
	"  UNIQUE (run_id, role)"
	");",
	/* 1 -> 2: audits (advex audit) and the re-read of exported PNGs */
	"CREATE TABLE audits ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  created TEXT NOT NULL,"	/* ISO 8601 UTC, milliseconds */
	"  model_id INTEGER REFERENCES models(id),"	/* NULL: no run logged */
	"  dataset_id INTEGER REFERENCES datasets(id),"
	"  n_images INTEGER NOT NULL,"
	"  params TEXT NOT NULL,"	/* JSON (core/audit_json.h) */
	"  checks TEXT NOT NULL,"	/* JSON: one object per check */
	"  n_pass INTEGER NOT NULL,"
	"  n_warn INTEGER NOT NULL,"
	"  n_fail INTEGER NOT NULL"
	");"
	"CREATE TABLE audit_images ("
	"  audit_id INTEGER NOT NULL REFERENCES audits(id) ON DELETE CASCADE,"
	"  image_index INTEGER NOT NULL,"
	"  run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,"	/* the audited attack */
	"  record TEXT NOT NULL,"	/* JSON: what each check measured */
	"  PRIMARY KEY (audit_id, image_index)"
	");"
	"CREATE INDEX audit_images_run ON audit_images(run_id);"
	"CREATE TABLE exports ("
	"  id INTEGER PRIMARY KEY,"
	"  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
	"  created TEXT NOT NULL,"
	"  path TEXT NOT NULL,"		/* the PNG written */
	"  pred INTEGER NOT NULL,"	/* its class once read back */
	"  success INTEGER NOT NULL"	/* 1: still adversarial at 8 bits */
	");"
	"CREATE INDEX exports_run ON exports(run_id);",
	/* 2 -> 3: every run and every audit gets a UUID, so that logs
	 * written apart (the shards of a sweep, each on its own node) merge
	 * without collisions (runs merge); and what the sweep table needs
	 * from a run that schema 2 did not keep: the prediction on the clean
	 * image and epsilon as the user wrote it ("8/255"). Rows logged
	 * before get a fresh random UUID here and NULL for the other two
	 * (unknown). runs.c gives a new run its UUID; a new audit gets its
	 * own from the trigger, whoever inserts it. */
	"ALTER TABLE runs ADD COLUMN uuid TEXT;"
	"ALTER TABLE runs ADD COLUMN clean_pred INTEGER;"	/* NULL: unknown */
	"ALTER TABLE runs ADD COLUMN eps_text TEXT;"		/* NULL: unknown */
	"UPDATE runs SET uuid = " DB_UUID_SQL ";"
	"CREATE UNIQUE INDEX runs_uuid ON runs(uuid);"
	"ALTER TABLE audits ADD COLUMN uuid TEXT;"
	"UPDATE audits SET uuid = " DB_UUID_SQL ";"
	"CREATE UNIQUE INDEX audits_uuid ON audits(uuid);"
	"CREATE TRIGGER audits_uuid AFTER INSERT ON audits "
	"WHEN NEW.uuid IS NULL BEGIN "
	"  UPDATE audits SET uuid = " DB_UUID_SQL " WHERE id = NEW.id; "
	"END;",
	/* 3 -> 4: the parameters of the attacks schema 3 did not know
	 * (apgd-*: restarts; cw: binary steps; every kind: --quantize) and
	 * what a kind optimises when it is not --loss (apgd-dlr: "dlr",
	 * square: "margin", see attack_objective_name), so a run can be
	 * read and replayed as it ran. NULL: logged before (unknown). */
	"ALTER TABLE runs ADD COLUMN restarts INTEGER;"
	"ALTER TABLE runs ADD COLUMN binary_steps INTEGER;"
	"ALTER TABLE runs ADD COLUMN quantize INTEGER;"
	"ALTER TABLE runs ADD COLUMN objective TEXT;",
};

#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

_Static_assert(N_MIGRATIONS == DB_SCHEMA_VERSION,
	       "one migration per schema version");

/* ---- errors ------------------------------------------------------------------- */

/* The errno behind an I/O failure, or 0: "disk I/O error" alone does not
 * say what to fix. Only for I/O codes, where SQLite's errno is this
 * failure's and not a stale one. */
static int io_errno(sqlite3 *h)
{
	int code = sqlite3_errcode(h);

	if (code == SQLITE_IOERR || code == SQLITE_CANTOPEN ||
	    code == SQLITE_READONLY || code == SQLITE_FULL)
		return sqlite3_system_errno(h);
	return 0;
}

enum status db_fail(struct db *db, const char *what, char *err)
{
	int sys = io_errno(db->h);
	const char *msg = sqlite3_errmsg(db->h);

	if (sys)
		return status_set(err, ST_ERR_DB, "%s: %s: %s (%s)", db->path,
				  what, msg, strerror(sys));
	return status_set(err, ST_ERR_DB, "%s: %s: %s", db->path, what, msg);
}

static enum status exec(struct db *db, const char *sql, const char *what,
			char *err)
{
	if (sqlite3_exec(db->h, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(db, what, err);
	return ST_OK;
}

/* ---- statements and transactions ------------------------------------------- */

sqlite3_stmt *db_stmt(struct db *db, const char *sql, char *err)
{
	struct db_cached *c;
	int i;

	for (i = 0; i < db->n_stmts; i++) {
		c = &db->stmts[i];
		if (c->sql == sql) {
			sqlite3_reset(c->st);
			sqlite3_clear_bindings(c->st);
			return c->st;
		}
	}
	if (db->n_stmts == DB_MAX_STMTS) {
		status_set(err, ST_ERR_DB, "%s: too many statements (raise "
			   "DB_MAX_STMTS)", db->path);
		return NULL;
	}
	c = &db->stmts[db->n_stmts];
	if (sqlite3_prepare_v3(db->h, sql, -1, SQLITE_PREPARE_PERSISTENT,
			       &c->st, NULL) != SQLITE_OK) {
		db_fail(db, "cannot prepare a statement", err);
		sqlite3_finalize(c->st);
		c->st = NULL;
		return NULL;
	}
	c->sql = sql;
	db->n_stmts++;
	return c->st;
}

enum status db_begin(struct db *db, char *err)
{
	return exec(db, "BEGIN IMMEDIATE", "cannot start a transaction", err);
}

enum status db_commit(struct db *db, char *err)
{
	enum status st = exec(db, "COMMIT", "cannot commit", err);

	if (st != ST_OK)
		db_rollback(db);
	return st;
}

void db_rollback(struct db *db)
{
	if (!sqlite3_get_autocommit(db->h))
		sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
}

/* One integer from a pragma or query; -1 with err set on failure. */
static enum status query_int(struct db *db, const char *sql, int64_t *v,
			     const char *what, char *err)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK)
		return db_fail(db, what, err);
	rc = sqlite3_step(st);
	*v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(db, what, err);
	return ST_OK;
}

enum status db_query_int(struct db *db, const char *sql, int64_t *v,
			 const char *what, char *err)
{
	return query_int(db, sql, v, what, err);
}

enum status db_exec(struct db *db, const char *sql, int64_t *changes,
		    const char *what, char *err)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK)
		return db_fail(db, what, err);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, what, err);
	if (changes)
		*changes = sqlite3_changes64(db->h);
	return ST_OK;
}

/* ---- liveness locks ------------------------------------------------------- */

/* Open file description locks belong to the open file, not the process: two
 * connections in one process see each other's, and closing some other
 * descriptor of the file does not drop them (both false for F_SETLK). */
#ifndef F_OFD_SETLK
#error "advex needs open file description locks (Linux 3.15 or later)"
#endif

static int lock_byte(int fd, int cmd, short type, int64_t id, struct flock *fl)
{
	memset(fl, 0, sizeof *fl);
	fl->l_type = type;
	fl->l_whence = SEEK_SET;
	fl->l_start = (off_t)id;
	fl->l_len = 1;
	return fcntl(fd, cmd, fl);
}

static int held_index(const struct db *db, int64_t id)
{
	int i;

	for (i = 0; i < db->n_held; i++)
		if (db->held[i] == id)
			return i;
	return -1;
}

enum status db_run_lock(struct db *db, int64_t id, char *err)
{
	struct flock fl;

	if (held_index(db, id) >= 0)
		return ST_OK;
	if (db->n_held == db->cap_held) {
		int cap = db->cap_held ? 2 * db->cap_held : 4;
		int64_t *h = realloc(db->held, sizeof *h * (size_t)cap);

		if (!h)
			return status_set(err, ST_ERR_NOMEM, "%s: out of memory",
					  db->path);
		db->held = h;
		db->cap_held = cap;
	}
	if (lock_byte(db->lock_fd, F_OFD_SETLK, F_WRLCK, id, &fl) != 0)
		return status_set(err, ST_ERR_DB, "%s-locks: cannot lock run %lld: "
				  "%s", db->path, (long long)id, strerror(errno));
	db->held[db->n_held++] = id;
	return ST_OK;
}

void db_run_unlock(struct db *db, int64_t id)
{
	struct flock fl;
	int i = held_index(db, id);

	if (i < 0)
		return;
	lock_byte(db->lock_fd, F_OFD_SETLK, F_UNLCK, id, &fl);
	db->held[i] = db->held[--db->n_held];
}

int db_run_live(struct db *db, int64_t id)
{
	struct flock fl;

	if (held_index(db, id) >= 0)
		return 1;
	if (db->lock_fd < 0 && db->readonly)
		return 0;	/* no writer ever made the lock file */
	if (lock_byte(db->lock_fd, F_OFD_GETLK, F_WRLCK, id, &fl) != 0)
		return -1;
	return fl.l_type != F_UNLCK;
}

/* Next to the database's real path (as SQLite puts its -wal): a log
 * reached through a symbolic link must share its writers' locks. */
static enum status open_lock_file(struct db *db, char *err)
{
	char *real = realpath(db->path, NULL);
	const char *base = real ? real : db->path;
	size_t n = strlen(base) + sizeof "-locks";
	char *p = malloc(n);

	if (!p) {
		free(real);
		return status_set(err, ST_ERR_NOMEM, "%s: out of memory", db->path);
	}
	snprintf(p, n, "%s-locks", base);
	free(real);
	/* a reader only asks who holds a lock: it needs no write access,
	 * and a log no writer opened has no lock file and no live writer */
	db->lock_fd = db->readonly ? open(p, O_RDONLY | O_CLOEXEC) :
		      open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	free(p);
	if (db->lock_fd < 0 && db->readonly)
		return ST_OK;
	if (db->lock_fd < 0)
		return status_set(err, ST_ERR_IO, "%s: cannot create its lock file "
				  "%s-locks: %s", db->path, db->path,
				  strerror(errno));
	return ST_OK;
}

/* ---- opening ------------------------------------------------------------------ */

const char *db_default_path(char *buf, size_t n)
{
	const char *x = getenv("XDG_DATA_HOME"), *h = getenv("HOME");

	/* the XDG spec: a relative $XDG_DATA_HOME is invalid, ignore it */
	if (x && x[0] == '/')
		snprintf(buf, n, "%s/advex/runs.db", x);
	else
		snprintf(buf, n, "%s/.local/share/advex/runs.db", h && *h ? h : ".");
	return buf;
}

/* mkdir -p of the directory holding path (0700, as XDG asks), which must
 * be writable: SQLite keeps -wal and -shm files next to the database, and
 * we the -locks file. Said here, SQLite's own message would be a puzzling
 * "No such file or directory". */
static enum status make_parent_dirs(const char *path, char *err)
{
	char *dir = strdup(path), *p;
	enum status st = ST_OK;
	struct stat sb;

	if (!dir)
		return status_set(err, ST_ERR_NOMEM, "%s: out of memory", path);
	p = strrchr(dir, '/');
	if (!p) {
		free(dir);
		return access(".", W_OK | X_OK) == 0 ? ST_OK :
		       status_set(err, ST_ERR_IO, "%s: cannot write in the current "
				  "directory: %s", path, strerror(errno));
	}
	if (p == dir)
		p[1] = 0;	/* "/runs.db": the root */
	else
		*p = 0;
	for (p = dir + 1; st == ST_OK; p++) {
		char c = *p;

		if (c != '/' && c != 0)
			continue;
		*p = 0;
		if (stat(dir, &sb) == 0) {
			if (!S_ISDIR(sb.st_mode))
				st = status_set(err, ST_ERR_IO, "%s: %s is not a "
						"directory", path, dir);
		} else if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
			st = status_set(err, ST_ERR_IO, "%s: cannot create directory "
					"%s: %s", path, dir, strerror(errno));
		}
		*p = c;
		if (!c)
			break;
	}
	if (st == ST_OK && access(dir, W_OK | X_OK) != 0)
		st = status_set(err, ST_ERR_IO, "%s: cannot write in %s: %s", path,
				dir, strerror(errno));
	free(dir);
	return st;
}

/* Before anything is written: is this our file, and not from the future?
 * One statement, so one snapshot: read separately, the version could
 * predate another process's migration and the table count follow it. */
static enum status check_header(struct db *db, int64_t *user_version, char *err)
{
	static const char sql[] =
		"SELECT (SELECT user_version FROM pragma_user_version), "
		"(SELECT application_id FROM pragma_application_id), "
		"(SELECT count(*) FROM sqlite_master)";
	int64_t version = 0, app = 0, tables = 0;
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK)
		return db_fail(db, "not an advex run database", err);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		version = sqlite3_column_int64(st, 0);
		app = sqlite3_column_int64(st, 1);
		tables = sqlite3_column_int64(st, 2);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return db_fail(db, "not an advex run database", err);
	if (app != 0 && app != DB_APPLICATION_ID)
		return status_set(err, ST_ERR_FORMAT, "%s: not an advex run database "
				  "(an SQLite file of another program, "
				  "application_id %lld); not modified", db->path,
				  (long long)app);
	if (version > DB_SCHEMA_VERSION)
		return status_set(err, ST_ERR_UNSUPPORTED, "%s: written by a newer "
				  "advex (schema %lld; this advex knows %d); not "
				  "modified", db->path, (long long)version,
				  DB_SCHEMA_VERSION);
	if (version == 0 && tables > 0)
		return status_set(err, ST_ERR_FORMAT, "%s: not an advex run database "
				  "(an SQLite file with tables of its own); not "
				  "modified", db->path);
	*user_version = version;
	return ST_OK;
}

/* WAL: readers never block the writer, nor it them. The mode is stored in
 * the file, so only the first open changes it - and that change takes an
 * exclusive lock without consulting the busy handler: processes creating
 * the file together retry here instead. */
static enum status set_wal(struct db *db, char *err)
{
	struct timespec pause = { 0, 10 * 1000000 };
	int waited_ms = 0, rc;

	for (;;) {
		rc = sqlite3_exec(db->h, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
		if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED)
			break;
		if (waited_ms >= DB_BUSY_TIMEOUT_MS)
			break;
		nanosleep(&pause, NULL);
		waited_ms += 10;
	}
	return rc == SQLITE_OK ? ST_OK : db_fail(db, "cannot switch to WAL", err);
}

static enum status set_pragmas(struct db *db, char *err)
{
	enum status st;

	st = set_wal(db, err);
	if (st == ST_OK)
		st = exec(db, "PRAGMA synchronous=NORMAL", "cannot set synchronous",
			  err);
	if (st == ST_OK)
		st = exec(db, "PRAGMA foreign_keys=ON",
			  "cannot turn on foreign keys", err);
	return st;
}

/* Every migration from the file's version up, in one transaction. The
 * version is read again under the write lock: another process may have
 * migrated the file since check_header. */
static enum status migrate(struct db *db, char *err)
{
	char sql[96];
	int64_t v;
	enum status st;

	st = db_begin(db, err);
	if (st != ST_OK)
		return st;
	st = query_int(db, "PRAGMA user_version", &v, "cannot read the version",
		       err);
	if (st == ST_OK && v > DB_SCHEMA_VERSION)
		st = status_set(err, ST_ERR_UNSUPPORTED, "%s: written by a newer "
				"advex (schema %lld; this advex knows %d); not "
				"modified", db->path, (long long)v,
				DB_SCHEMA_VERSION);
	for (; st == ST_OK && v < DB_SCHEMA_VERSION; v++) {
		char what[64];

		snprintf(what, sizeof what, "migration %lld -> %lld",
			 (long long)v, (long long)v + 1);
		st = exec(db, migrations[v], what, err);
		if (st == ST_OK) {
			snprintf(sql, sizeof sql, "PRAGMA user_version=%lld; "
				 "PRAGMA application_id=%d", (long long)v + 1,
				 DB_APPLICATION_ID);
			st = exec(db, sql, what, err);
		}
	}
	if (st != ST_OK) {
		db_rollback(db);
		return st;
	}
	return db_commit(db, err);
}

/* Runs still 'running' whose writer's lock nobody holds: that process died
 * (crash, kill -9, power cut) without finishing them. */
static enum status mark_interrupted(struct db *db, char *err)
{
	static const char sql_running[] =
		"SELECT id FROM runs WHERE status = 'running'";
	static const char sql_mark[] =
		"UPDATE runs SET status = 'interrupted' "
		"WHERE id = ?1 AND status = 'running'";
	int64_t *dead = NULL, *grown;
	int n = 0, cap = 0, rc, i;
	sqlite3_stmt *st = db_stmt(db, sql_running, err);
	enum status s = ST_OK;

	if (!st)
		return ST_ERR_DB;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);

		if (db_run_live(db, id) != 0)	/* live, or cannot tell */
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 8;
			grown = realloc(dead, sizeof *dead * (size_t)cap);
			if (!grown) {
				free(dead);
				sqlite3_reset(st);
				return status_set(err, ST_ERR_NOMEM, "%s: out of "
						  "memory", db->path);
			}
			dead = grown;
		}
		dead[n++] = id;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		s = db_fail(db, "cannot read the runs", err);
	if (s == ST_OK && n > 0) {
		s = db_begin(db, err);
		/* the update re-checks 'running': a writer that finished
		 * between our look and now has already said how it ended */
		for (i = 0; s == ST_OK && i < n; i++) {
			st = db_stmt(db, sql_mark, err);
			if (!st) {
				s = ST_ERR_DB;
				break;
			}
			sqlite3_bind_int64(st, 1, dead[i]);
			if (sqlite3_step(st) != SQLITE_DONE)
				s = db_fail(db, "cannot mark a run interrupted", err);
			sqlite3_reset(st);
		}
		if (s == ST_OK)
			s = db_commit(db, err);
		else
			db_rollback(db);
	}
	free(dead);
	return s;
}

static enum status open_fail(struct db *db, const char *what, char *err)
{
	int sys = db->h ? io_errno(db->h) : 0;

	if (sys)
		return status_set(err, ST_ERR_IO, "%s: %s: %s", db->path, what,
				  strerror(sys));
	if (!db->h)
		return status_set(err, ST_ERR_NOMEM, "%s: %s: out of memory",
				  db->path, what);
	return status_set(err, ST_ERR_IO, "%s: %s: %s", db->path, what,
			  sqlite3_errmsg(db->h));
}

/* A database path that exists must be a regular file: SQLite would open
 * /dev/null (or a FIFO) and put -journal and -locks files beside it. */
static enum status check_regular(const char *path, char *err)
{
	struct stat sb;

	if (!path || !*path)
		return status_set(err, ST_ERR_ARG, "run database: empty path");
	if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode))
		return status_set(err, ST_ERR_IO, "%s: not a regular file (the run "
				  "log is an SQLite file)", path);
	return ST_OK;
}

/* A struct db for path, not yet connected. */
static enum status db_new(const char *path, struct db **out, char *err)
{
	struct db *db = calloc(1, sizeof *db);

	*out = NULL;
	if (db)
		db->path = strdup(path);
	if (!db || !db->path) {
		free(db);
		return status_set(err, ST_ERR_NOMEM, "%s: out of memory", path);
	}
	db->lock_fd = -1;
	*out = db;
	return ST_OK;
}

enum status db_open(const char *path, struct db **out, char *err)
{
	struct db *db;
	enum status st;
	int64_t version;

	*out = NULL;
	st = check_regular(path, err);
	if (st == ST_OK)
		st = make_parent_dirs(path, err);
	if (st == ST_OK)
		st = db_new(path, &db, err);
	if (st != ST_OK)
		return st;
	if (sqlite3_open_v2(path, &db->h, SQLITE_OPEN_READWRITE |
			    SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
		st = open_fail(db, "cannot open the run database", err);
		goto fail;
	}
	sqlite3_extended_result_codes(db->h, 1);
	sqlite3_busy_timeout(db->h, DB_BUSY_TIMEOUT_MS);
	/* SQLite quietly falls back to read-only; we must be able to log */
	if (sqlite3_db_readonly(db->h, "main") == 1) {
		st = status_set(err, ST_ERR_IO, "%s: read-only: runs cannot be "
				"logged there", path);
		goto fail;
	}
	st = check_header(db, &version, err);
	if (st == ST_OK)
		st = open_lock_file(db, err);
	if (st == ST_OK)
		st = set_pragmas(db, err);
	if (st == ST_OK)
		st = migrate(db, err);
	if (st == ST_OK)
		st = mark_interrupted(db, err);
	if (st != ST_OK)
		goto fail;
	*out = db;
	return ST_OK;
fail:
	db_close(db);
	return st;
}

/* "file:PATH?immutable=1": SQLite reads the file without the -shm it
 * would otherwise need to create, which a read-only file system refuses. */
static char *immutable_uri(const char *path)
{
	size_t n = strlen(path);
	char *uri = malloc(3 * n + sizeof "file:?immutable=1"), *p = uri;

	if (!uri)
		return NULL;
	p += sprintf(p, "file:");
	for (; *path; path++)
		p += strchr("?#%", *path) ? sprintf(p, "%%%02X", (unsigned char)*path) :
		     sprintf(p, "%c", *path);
	sprintf(p, "?immutable=1");
	return uri;
}

/* Connect read-only, immutable when the file system does not let even a
 * reader make the -shm file. */
static enum status open_reader(struct db *db, int immutable, char *err)
{
	char *uri = immutable ? immutable_uri(db->path) : NULL;
	int rc;

	if (immutable && !uri)
		return status_set(err, ST_ERR_NOMEM, "%s: out of memory", db->path);
	rc = sqlite3_open_v2(uri ? uri : db->path, &db->h, SQLITE_OPEN_READONLY |
			     (uri ? SQLITE_OPEN_URI : 0), NULL);
	free(uri);
	if (rc != SQLITE_OK)
		return open_fail(db, "cannot open the run database", err);
	sqlite3_extended_result_codes(db->h, 1);
	sqlite3_busy_timeout(db->h, DB_BUSY_TIMEOUT_MS);
	return ST_OK;
}

enum status db_open_read(const char *path, struct db **out, char *err)
{
	struct db *db = NULL;
	struct stat sb;
	enum status st;
	int64_t version = 0;
	int immutable;

	*out = NULL;
	st = check_regular(path, err);
	if (st != ST_OK)
		return st;
	if (stat(path, &sb) != 0)
		return status_set(err, ST_ERR_IO, "%s: cannot open: %s", path,
				  strerror(errno));
	for (immutable = 0; immutable < 2; immutable++) {
		db_close(db);
		if ((st = db_new(path, &db, err)) != ST_OK)
			return st;
		db->readonly = 1;
		st = open_reader(db, immutable, err);
		if (st == ST_OK)
			st = check_header(db, &version, err);
		/* no -shm and no right to make one: CANTOPEN, or READONLY
		 * (CANTINIT) depending on the SQLite version */
		if (st == ST_OK || !db->h ||
		    ((sqlite3_extended_errcode(db->h) & 0xff) != SQLITE_CANTOPEN &&
		     (sqlite3_extended_errcode(db->h) & 0xff) != SQLITE_READONLY))
			break;
	}
	if (st == ST_OK && version < DB_SCHEMA_VERSION) {
		/* a log no writer has set up yet: only a writer can */
		db_close(db);
		return db_open(path, out, err);
	}
	if (st == ST_OK)
		st = open_lock_file(db, err);
	if (st != ST_OK) {
		db_close(db);
		return st;
	}
	*out = db;
	return ST_OK;
}

int db_readonly(const struct db *db)
{
	return db->readonly;
}

void db_close(struct db *db)
{
	int i;

	if (!db)
		return;
	for (i = 0; i < db->n_stmts; i++)
		sqlite3_finalize(db->stmts[i].st);
	sqlite3_close(db->h);
	/* closing the descriptor drops every run lock still held */
	if (db->lock_fd >= 0)
		close(db->lock_fd);
	free(db->held);
	free(db->path);
	free(db);
}

const char *db_path(const struct db *db)
{
	return db->path;
}
