/* arch.h - built-in architectures with seeded random weights.
 *
 * `advex bench --arch vgg16` and the tests need real-sized networks without
 * a file on disk. arch_build produces them as in-memory model files, so they
 * pass through exactly the same loader and checks as a file would.
 */
#ifndef ADVEX_ARCH_H
#define ADVEX_ARCH_H

#include <stdint.h>

#include "modelfile.h"
#include "status.h"

/* NULL-terminated list of names arch_build accepts. */
const char *const *arch_names(void);
/* One-line description of a built-in, or NULL for an unknown name. */
const char *arch_describe(const char *name);

/* The input size a built-in is made for: 32 for the CIFAR ResNet-20,
 * 96 (STL-10) for the others. */
int arch_default_size(const char *name);

/* Build `name` for 3 x size x size inputs with n_classes outputs named
 * classes (NULL: the STL-10 names for 10 classes, else class0..) and
 * weights drawn from seed (He-uniform for convolutions and dense layers,
 * zero biases). *out is opened from memory; close it with modelfile_close. */
enum status arch_build(const char *name, int size, int n_classes,
		       const char *const *classes, uint64_t seed,
		       struct modelfile **out, char *err);

#endif
