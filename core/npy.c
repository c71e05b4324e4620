/* npy.c - NumPy .npy writer (see npy.h). */
#include "npy.h"
#include "outpath.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The header is padded with spaces so that the data starts on a 64-byte
 * boundary, as NumPy itself does; it ends with a newline. */
static int npy_header(char *h, size_t cap, const int *shape, int ndim)
{
	char dims[256] = "";
	size_t len, total;
	int i;

	for (i = 0; i < ndim; i++) {
		size_t l = strlen(dims);
		snprintf(dims + l, sizeof dims - l, "%d%s", shape[i],
			 ndim == 1 ? "," : (i + 1 < ndim ? ", " : ""));
	}
	len = (size_t)snprintf(h + 10, cap - 10,
			       "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }",
			       dims);
	total = (10 + len + 1 + 63) / 64 * 64;
	if (total > cap)
		return -1;
	memset(h + 10 + len, ' ', total - 10 - len - 1);
	h[total - 1] = '\n';
	memcpy(h, "\x93NUMPY\x01\x00", 8);
	h[8] = (char)((total - 10) & 0xff);
	h[9] = (char)((total - 10) >> 8);
	return (int)total;
}

enum status npy_write_f32(const char *path, const int *shape, int ndim,
			  const float *data, char *err)
{
	char h[512], tmp[4096];
	size_t count = 1;
	int hl, i, ok;
	FILE *f;

	for (i = 0; i < ndim; i++)
		count *= (size_t)shape[i];
	hl = npy_header(h, sizeof h, shape, ndim);
	if (hl < 0)
		return status_set(err, ST_ERR_ARG, "%s: too many dimensions", path);
	if (outpath_check(path, err) != ST_OK)
		return ST_ERR_ARG;
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	f = fopen(tmp, "wb");
	if (!f)
		return status_set(err, ST_ERR_IO, "%s: cannot create: %s", path,
				  strerror(errno));
	ok = fwrite(h, 1, (size_t)hl, f) == (size_t)hl &&
	     fwrite(data, sizeof(float), count, f) == count;
	ok = (fclose(f) == 0) && ok;
	if (!ok || rename(tmp, path) != 0) {
		int e = errno;
		unlink(tmp);
		return status_set(err, ST_ERR_IO, "%s: cannot write: %s", path,
				  strerror(e));
	}
	return ST_OK;
}
