/* outpath.c - refuse to replace what is not a regular file (outpath.h). */
#include "outpath.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

static const char *kind(mode_t m)
{
	return S_ISDIR(m) ? "a directory" : S_ISCHR(m) ? "a character device" :
	       S_ISBLK(m) ? "a block device" : S_ISFIFO(m) ? "a FIFO" :
	       S_ISLNK(m) ? "a symbolic link" : S_ISSOCK(m) ? "a socket" :
	       "not a regular file";
}

enum status outpath_check(const char *path, char *err)
{
	struct stat st;

	/* lstat: a rename replaces a symbolic link itself, not its target */
	if (lstat(path, &st) != 0)
		return errno == ENOENT ? ST_OK :
		       status_set(err, ST_ERR_IO, "%s: %s", path, strerror(errno));
	if (S_ISREG(st.st_mode))
		return ST_OK;
	return status_set(err, ST_ERR_ARG,
			  "%s: is %s; advex writes only regular files (through a temporary name and a rename), so it will not replace it",
			  path, kind(st.st_mode));
}
