/* classnames.c - a data set's class-names file (see classnames.h). */
#define _POSIX_C_SOURCE 200809L

#include "classnames.h"
#include "textfile.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* class_names.txt is 55 bytes, batches.meta.txt 61: anything near this cap
 * is not a names file. */
#define MAX_FILE_BYTES (64 * 1024)

static enum status parse(const char *path, char *buf, size_t len,
			 int max_names, char **names, int *n, char *err)
{
	char *p = buf, *line;
	int lineno = 0, blank_at = 0;

	if (memchr(buf, '\0', len))
		return status_set(err, ST_ERR_FORMAT,
				  "%s: not a text file (NUL byte)", path);
	while ((line = textfile_next_line(&p, buf + len))) {
		char *name = textfile_trim(line);

		lineno++;
		if (!*name) {
			if (!blank_at)
				blank_at = lineno;
			continue;
		}
		if (blank_at)
			return status_set(err, ST_ERR_FORMAT,
					  "%s: line %d is empty", path,
					  blank_at);
		if (*n == max_names)
			return status_set(err, ST_ERR_FORMAT,
					  "%s: more than %d class names", path,
					  max_names);
		if (strlen(name) > CLASSNAMES_MAX_LEN)
			return status_set(err, ST_ERR_FORMAT,
					  "%s: line %d: name longer than %d "
					  "bytes", path, lineno,
					  CLASSNAMES_MAX_LEN);
		names[*n] = strdup(name);
		if (!names[*n])
			return status_set(err, ST_ERR_NOMEM,
					  "%s: out of memory", path);
		++*n;
	}
	if (*n == 0)
		return status_set(err, ST_ERR_FORMAT, "%s: no class names",
				  path);
	return ST_OK;
}

enum status classnames_read(const char *path, int max_names, char **names,
			    int *n, int *missing, char *err)
{
	char *buf = NULL;
	size_t len = 0;
	enum status st;
	int i;

	for (i = 0; i < max_names; i++)
		names[i] = NULL;
	*n = 0;
	*missing = 0;
	st = textfile_read(path, MAX_FILE_BYTES, &buf, &len, missing, err);
	if (st == ST_OK)
		st = parse(path, buf, len, max_names, names, n, err);
	free(buf);
	return st;
}
