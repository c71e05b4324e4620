/* modelfile.h - read and write advex model files (safetensors, F32 only).
 *
 * Reading is strict because the file is untrusted: the header length is
 * bounded, every tensor's offsets lie inside the data region, tensors do not
 * overlap, dtypes are F32 and element counts match the byte lengths. The file
 * is mapped read-only; tensor data is reached through modelfile_read_f32,
 * which copies (the data region need not be 4-byte aligned).
 * See docs/model-format.md for the metadata keys.
 */
#ifndef ADVEX_MODELFILE_H
#define ADVEX_MODELFILE_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define MODELFILE_MAX_DIMS 8
/* Headers larger than this are refused before anything is allocated. */
#define MODELFILE_MAX_HEADER (64u << 20)

struct modelfile;

struct mf_tensor {
	const char *name;	/* owned by the modelfile */
	int ndim;
	int64_t shape[MODELFILE_MAX_DIMS];
	size_t count;		/* product of shape */
	const void *data;	/* points into the mapping, little-endian F32 */
};

/* Open and validate a file. On failure *out is NULL and err names the file
 * and the problem (and the tensor, when one is at fault). */
enum status modelfile_open(const char *path, struct modelfile **out, char *err);
void modelfile_close(struct modelfile *mf);

const char *modelfile_path(const struct modelfile *mf);
/* Metadata value for key, or NULL. Owned by mf. */
const char *modelfile_meta(const struct modelfile *mf, const char *key);
int modelfile_count(const struct modelfile *mf);
/* Tensor i, 0 <= i < modelfile_count, in order of data offset (ties: header
 * order), so a file from modelfile_encode reads back in writing order. NULL
 * when i is out of range. */
const struct mf_tensor *modelfile_tensor(const struct modelfile *mf, int i);
/* Tensor by name, or NULL. */
const struct mf_tensor *modelfile_find(const struct modelfile *mf,
				       const char *name);
/* Copy t's count floats into dst. */
/* Index of a tensor this file returned (modelfile_find), -1 otherwise. */
int modelfile_index(const struct modelfile *mf, const struct mf_tensor *t);
void modelfile_read_f32(const struct mf_tensor *t, float *dst);

/* A tensor to write: name, shape and host floats. */
struct mf_out_tensor {
	const char *name;
	int ndim;
	int64_t shape[MODELFILE_MAX_DIMS];
	const float *data;
};

/* Encode tensors and metadata as safetensors bytes in a malloc'd buffer
 * (*buf, *len; the caller frees). Header padded to a multiple of 8 bytes. */
enum status modelfile_encode(const struct mf_out_tensor *t, int n,
			     const char *const *keys, const char *const *values,
			     int n_meta, void **buf, size_t *len, char *err);

/* Validate and open an in-memory file; takes ownership of buf (malloc'd,
 * released with free by modelfile_close, or at once on failure). label
 * stands for the path in messages and modelfile_path. */
enum status modelfile_open_buffer(void *buf, size_t len, const char *label,
				  struct modelfile **out, char *err);

/* Write a safetensors file: to "PATH.tmp.PID", fsync, then rename over PATH,
 * so a crash never leaves a partial file. meta is n_meta key/value pairs
 * (keys[i], values[i]). */
enum status modelfile_write(const char *path, const struct mf_out_tensor *t,
			    int n, const char *const *keys,
			    const char *const *values, int n_meta, char *err);

#endif
