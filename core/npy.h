/* npy.h - write a float32 array as a NumPy .npy file (format 1.0), through a
 * temporary name and a rename, so readers never see half a file. */
#ifndef ADVEX_NPY_H
#define ADVEX_NPY_H

#include "status.h"

/* shape: ndim sizes; data: the product of them floats, C order. */
enum status npy_write_f32(const char *path, const int *shape, int ndim,
			  const float *data, char *err);

#endif
