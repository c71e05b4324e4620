/* textfile.c - small text files read whole (textfile.h). */
#define _POSIX_C_SOURCE 200809L

#include "textfile.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Read a whole small file (at most max bytes) into a malloc'd,
 * NUL-terminated buffer. *missing is set when the file does not exist. */
enum status textfile_read(const char *path, size_t max, char **buf,
			  size_t *len, int *missing, char *err)
{
	struct stat sb;
	ssize_t got;
	size_t n;
	int fd;

	*buf = NULL;
	*missing = 0;
	/* O_NONBLOCK: a FIFO would block the open until a writer comes;
	 * it is refused below like any non-regular file */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		*missing = errno == ENOENT;
		return status_set(err, ST_ERR_IO, "%s: cannot open: %s", path,
				  strerror(errno));
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return status_set(err, ST_ERR_FORMAT, "%s: not a regular file",
				  path);
	}
	if ((uintmax_t)sb.st_size > max) {
		close(fd);
		return status_set(err, ST_ERR_FORMAT,
				  "%s: %jd bytes, more than the %zu a text file "
				  "may have here", path, (intmax_t)sb.st_size, max);
	}
	n = (size_t)sb.st_size;
	*buf = malloc(n + 1);
	if (!*buf) {
		close(fd);
		return status_set(err, ST_ERR_NOMEM, "%s: out of memory", path);
	}
	got = read(fd, *buf, n);
	close(fd);
	if (got < 0 || (size_t)got != n) {
		free(*buf);
		*buf = NULL;
		return status_set(err, ST_ERR_IO, "%s: short read", path);
	}
	(*buf)[n] = '\0';
	*len = n;
	return ST_OK;
}

/* Cut the next line out of *p (in place); NULL at the end of the text. */
char *textfile_next_line(char **p, char *end)
{
	char *line = *p, *nl;

	if (line >= end)
		return NULL;
	nl = memchr(line, '\n', (size_t)(end - line));
	if (nl) {
		*nl = '\0';
		*p = nl + 1;
	} else {
		*p = end;
	}
	return line;
}

/* Strip leading and trailing whitespace (CR included), in place. */
char *textfile_trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}
