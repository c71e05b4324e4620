/* db.h - the run log: one SQLite file that records every attack, step by
 * step, so runs can be browsed, compared and re-exported (see runs.h for
 * what is stored and queried).
 *
 * Opening creates the file (and its directory) on first use, applies the
 * schema migrations in one transaction (PRAGMA user_version numbers them),
 * refuses a database written by a newer advex without touching it, turns
 * on WAL, foreign keys and a busy timeout, and marks runs left 'running'
 * by a process that has died as 'interrupted'. Library code: never prints
 * or exits; errors come back as a status and a one-line message.
 *
 * Live or dead writer: a process that writes a run holds an exclusive
 * open-file-description lock (fcntl F_OFD_SETLK) on byte <run id> of the
 * side file "<db>-locks" from runs_begin until runs_finish. The kernel
 * drops it when the process dies, however it dies, and a reused pid cannot
 * inherit it; so a 'running' run whose byte nobody holds has no writer
 * left. The pid is stored as well, for people, not for this decision.
 *
 * Durability: WAL with synchronous=NORMAL. Each commit reaches the WAL
 * file before it returns, so a crashed or killed process loses nothing it
 * committed; only a power failure can lose the last commits (never corrupt
 * the file).
 */
#ifndef ADVEX_DB_H
#define ADVEX_DB_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* Schema version this advex writes. */
#define DB_SCHEMA_VERSION 4

/* PRAGMA application_id of an advex run log ("ADVX"), so that another
 * program's SQLite file is refused rather than migrated. */
#define DB_APPLICATION_ID 0x41445658

/* An SQL expression for a random (version 4, RFC 4122) UUID in lower-case
 * hex with dashes: a new run's, and each old run's at migration 1 -> 2.
 * SQLite's randomblob is its own CSPRNG, seeded from /dev/urandom. */
#define DB_UUID_SQL \
	"(lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || " \
	"'-4' || substr(lower(hex(randomblob(2))), 2) || '-' || " \
	"substr('89ab', 1 + (abs(random()) % 4), 1) || " \
	"substr(lower(hex(randomblob(2))), 2) || '-' || " \
	"lower(hex(randomblob(6))))"

/* How long a statement waits for another process's write lock. */
#define DB_BUSY_TIMEOUT_MS 15000

struct db;
struct sqlite3_stmt;

/* $XDG_DATA_HOME/advex/runs.db, else ~/.local/share/advex/runs.db, into
 * buf (n bytes). Returns buf. */
const char *db_default_path(char *buf, size_t n);

/* Open (creating if needed) and migrate. A read-only or unwritable path,
 * or a file that is not an advex database, fails with a message naming
 * the path before any work starts. A database of a newer schema is refused
 * and left byte for byte as it was. */
enum status db_open(const char *path, struct db **out, char *err);
/* Open an existing log only to read it (runs list, show, export): no
 * write access is needed, to the file or its directory, so a read-only
 * file or file system serves. Nothing is migrated or marked: a run whose
 * writer died is reported 'interrupted' when read (runs.h) and recorded
 * so by the next db_open. A log that predates its schema falls back to
 * db_open, since only a writer can set it up. Both opens refuse a path
 * that is not a regular file before creating anything beside it. */
enum status db_open_read(const char *path, struct db **out, char *err);
void db_close(struct db *db);
/* 1 when opened by db_open_read. */
int db_readonly(const struct db *db);

const char *db_path(const struct db *db);

/* ---- for the modules that store into the log (runs.c) ------------------ */

/* The statement for sql on this connection: prepared the first time it is
 * asked for and kept until db_close (sql must have static storage: its
 * address is the cache key). Handed out reset and without bindings. NULL
 * with err set ("PATH: ...") when it cannot be prepared. */
struct sqlite3_stmt *db_stmt(struct db *db, const char *sql, char *err);

/* BEGIN IMMEDIATE: the write lock is taken (waiting up to the busy
 * timeout) before anything is read, so a transaction never fails half-way
 * because another process wrote in between. */
enum status db_begin(struct db *db, char *err);
enum status db_commit(struct db *db, char *err);
/* Undo the open transaction, if any. */
void db_rollback(struct db *db);

/* One statement built at run time (not cached, unlike db_stmt), stepped
 * to the end; *changes (if not NULL): the rows it inserted, updated or
 * deleted. */
enum status db_exec(struct db *db, const char *sql, int64_t *changes,
		    const char *what, char *err);
/* The first column of the first row of sql (0 when there is none). */
enum status db_query_int(struct db *db, const char *sql, int64_t *v,
			 const char *what, char *err);

/* "PATH: what: SQLite's message" into err; returns ST_ERR_DB. */
enum status db_fail(struct db *db, const char *what, char *err);

/* Take the writer's lock of run id (see the top of this file); fails when
 * another open file holds it. */
enum status db_run_lock(struct db *db, int64_t id, char *err);
void db_run_unlock(struct db *db, int64_t id);
/* 1: some open file (this connection's included) holds run id's lock, so
 * its writer is alive; 0: nobody does; -1: cannot tell. */
int db_run_live(struct db *db, int64_t id);

#endif
