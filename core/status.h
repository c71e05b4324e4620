/* status.h - the one error vocabulary of core/ and db/.
 *
 * Library code never prints or exits: a function returns a status and, when it
 * fails, writes a one-line human message into a caller-supplied buffer of
 * ERR_MAX bytes ("FILE: tensor 'x': offset past end of file").
 */
#ifndef ADVEX_STATUS_H
#define ADVEX_STATUS_H

#include <stddef.h>

#define ERR_MAX 512

#define STATUS_TABLE(X)                              \
	X(ST_OK, "ok")                               \
	X(ST_ERR_IO, "input/output error")           \
	X(ST_ERR_NOMEM, "out of memory")             \
	X(ST_ERR_FORMAT, "malformed file")           \
	X(ST_ERR_SHAPE, "shape mismatch")            \
	X(ST_ERR_ARG, "invalid argument")            \
	X(ST_ERR_UNSUPPORTED, "unsupported")         \
	X(ST_ERR_DB, "database error")

enum status {
#define STATUS_ENUM(id, msg) id,
	STATUS_TABLE(STATUS_ENUM)
#undef STATUS_ENUM
};

/* Static string for a status; never NULL. */
const char *status_str(enum status st);

/* Format a message into err (ERR_MAX bytes, may be NULL) and return st. */
enum status status_set(char *err, enum status st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
