/* outpath.h - may advex write a file at this path? Every output (PNG,
 * .npy, model files) is written to a temporary name and renamed over the
 * path; a rename replaces whatever is there, so anything but a regular
 * file (a device such as /dev/full, a FIFO, a directory, a symlink) is
 * refused before any byte is written. */
#ifndef ADVEX_OUTPATH_H
#define ADVEX_OUTPATH_H

#include "status.h"

/* ST_OK when path does not exist or is a regular file; otherwise
 * ST_ERR_ARG with a message naming the path and what it is. */
enum status outpath_check(const char *path, char *err);

#endif
