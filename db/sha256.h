/* sha256.h - SHA-256 (FIPS 180-4), which identifies a model file in the
 * run log (runs.h): the same weights under another path are the same
 * model. Library code: never prints or exits. */
#ifndef ADVEX_SHA256_H
#define ADVEX_SHA256_H

#include <stddef.h>

#include "status.h"

/* SHA-256 of n bytes as 64 lower case hex digits and a NUL. */
void sha256_hex(const void *data, size_t n, char hex[65]);
/* The same of a file's contents; ST_ERR_IO naming path when it cannot be
 * read. */
enum status sha256_file(const char *path, char hex[65], char *err);

#endif
