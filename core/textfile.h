/* textfile.h - small text files read whole: labels, fold indices, class
 * names. One reader, so every such file gets the same checks (a regular
 * file, a size cap) and the same messages. */
#ifndef ADVEX_TEXTFILE_H
#define ADVEX_TEXTFILE_H

#include <stddef.h>

#include "status.h"

/* The whole file (at most max bytes, a regular file) into a malloc'd,
 * NUL-terminated *buf of *len bytes; the caller frees it. *missing is
 * set when the file does not exist. */
enum status textfile_read(const char *path, size_t max, char **buf,
			  size_t *len, int *missing, char *err);

/* Cut the next line out of *p (in place); NULL at the end of the text. */
char *textfile_next_line(char **p, char *end);

/* Strip leading and trailing whitespace (CR included), in place. */
char *textfile_trim(char *s);

#endif
