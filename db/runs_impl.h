/* runs_impl.h - what runs.c (writing runs) and runs_read.c (reading them
 * back) share: the stored form of an infinity, and three small helpers of
 * the SQLite statements both use. Private to db/. */
#ifndef ADVEX_RUNS_IMPL_H
#define ADVEX_RUNS_IMPL_H

#include <sqlite3.h>
#include <stdio.h>

#include "runs.h"

/* JSON has no infinity: runs.c stores one as +-RUNS_JSON_INF, runs_read.c
 * reads anything that large back as infinite. No float comes near it, nor
 * any norm short of an overflow. */
#define RUNS_JSON_INF 1e308

static inline void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

static inline void col_text(sqlite3_stmt *st, int i, char *dst, size_t n)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	snprintf(dst, n, "%s", s ? (const char *)s : "");
}

static inline enum status no_such_run(struct db *db, int64_t id, char *err)
{
	return status_set(err, ST_ERR_ARG, "RUN %lld: no such run in %s",
			  (long long)id, db_path(db));
}

#endif
