/* classnames.h - a data set's class-names file: one name per line.
 *
 * STL-10 (class_names.txt) and CIFAR-10 (batches.meta.txt) ship the same
 * kind of file, so both loaders read it here with the same checks. Names are
 * stripped of surrounding whitespace (CR included); blank lines at the end
 * are allowed, blank lines between names are not (they would shift every
 * label after them). The file is untrusted: its size is capped and the
 * count of names is range-checked.
 */
#ifndef ADVEX_CLASSNAMES_H
#define ADVEX_CLASSNAMES_H

#include "status.h"

/* The longest name accepted, in bytes. */
#define CLASSNAMES_MAX_LEN 255

/* Read path into names[0..max_names-1] (each malloc'd, owned by the caller:
 * free them also on failure, the array is NULL-filled first) and the count
 * into *n (1..max_names). *missing is set when the file does not exist, so
 * a caller can fall back to built-in names; err then says "cannot open". */
enum status classnames_read(const char *path, int max_names, char **names,
			    int *n, int *missing, char *err);

#endif
