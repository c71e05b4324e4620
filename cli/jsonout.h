/* jsonout.h - JSON text for the commands' --json output with every real
 * in the shortest form that reads back as the same double: 0.986, not
 * jansson's 17-digit 0.98599999999999999. */
#ifndef ADVEX_CLI_JSONOUT_H
#define ADVEX_CLI_JSONOUT_H

#include <jansson.h>

/* json_dumps(j, flags) with the reals shortened; malloc'd (the caller
 * frees), NULL when out of memory. flags: no JSON_REAL_PRECISION. */
char *jsonout_dumps(const json_t *j, size_t flags);

#endif
