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
 */
#ifndef ADVEX_DB_H
#define ADVEX_DB_H

#include <stddef.h>

#include "status.h"

/* Schema version this advex writes. */
#define DB_SCHEMA_VERSION 1

struct db;

/* $XDG_DATA_HOME/advex/runs.db, else ~/.local/share/advex/runs.db, into
 * buf (n bytes). Returns buf. */
const char *db_default_path(char *buf, size_t n);

/* Open (creating if needed) and migrate. A read-only or unwritable path,
 * or a file that is not an advex database, fails with a message naming
 * the path before any work starts. */
enum status db_open(const char *path, struct db **out, char *err);
void db_close(struct db *db);

const char *db_path(const struct db *db);

#endif
