/* status.c - status strings and the error-message helper. */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>

static const char *const status_msgs[] = {
#define STATUS_MSG(id, msg) msg,
	STATUS_TABLE(STATUS_MSG)
#undef STATUS_MSG
};

const char *status_str(enum status st)
{
	if ((unsigned)st >= sizeof status_msgs / sizeof status_msgs[0])
		return "unknown status";
	return status_msgs[st];
}

enum status status_set(char *err, enum status st, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return st;
	va_start(ap, fmt);
	vsnprintf(err, ERR_MAX, fmt, ap);
	va_end(ap);
	return st;
}
