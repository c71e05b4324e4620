/* cifar10.h - the official CIFAR-10 binary directory (cifar-10-batches-bin/).
 *
 * The split "train" is data_batch_1.bin .. data_batch_5.bin, in that order
 * (50,000 images in the release); "test" is test_batch.bin (10,000). Each
 * file is a run of 3,073-byte records: one label byte 0..9, then the red,
 * green and blue planes of a 32x32 image, each ROW-major (byte
 * 1 + c*1024 + y*32 + x is channel c at row y, column x) - unlike STL-10,
 * whose planes run down the columns. The batch files are memory-mapped,
 * never read whole; opening reads the label byte of every record (to check
 * it and keep it: 50 KB for the train split). batches.meta.txt names the
 * classes one per line; when it is missing the CIFAR-10 names are used and
 * a note says so.
 */
#ifndef ADVEX_CIFAR10_H
#define ADVEX_CIFAR10_H

#include "status.h"

#define CIFAR10_SIDE 32
#define CIFAR10_IMAGE_BYTES (3 * CIFAR10_SIDE * CIFAR10_SIDE)	/* 3,072 */
#define CIFAR10_RECORD_BYTES (1 + CIFAR10_IMAGE_BYTES)		/* 3,073 */
#define CIFAR10_MAX_CLASSES 10
#define CIFAR10_TRAIN_FILES 5

struct cifar10;

/* 1 when dir holds test_batch.bin or data_batch_1.bin (a regular file). */
int cifar10_looks_like(const char *dir);

/* Open split "train" or "test" (NULL = "test") of dir, the folder holding
 * the .bin files. note (ERR_MAX, may be NULL) gets a warning to show even
 * on success ("" when none); err gets a one-line message naming the file
 * and the problem on failure (missing, not a whole number of records,
 * empty, a label outside 0..9, a bad batches.meta.txt). */
enum status cifar10_open(const char *dir, const char *split,
			 struct cifar10 **out, char *note, char *err);
void cifar10_close(struct cifar10 *s);

int cifar10_count(const struct cifar10 *s);
int cifar10_n_classes(const struct cifar10 *s);
/* Owned by s; NULL for c out of range. */
const char *cifar10_class_name(const struct cifar10 *s, int c);
/* Label 0..9 of image i, or -1 for i out of range. */
int cifar10_label(const struct cifar10 *s, int i);
/* The file and the record within it, "data_batch_2.bin#17", into buf (n
 * bytes). */
void cifar10_image_name(const struct cifar10 *s, int i, char *buf, int n);
/* Image i as float32 planar (3,32,32) RGB in [0,1], row-major, upright. */
enum status cifar10_image(const struct cifar10 *s, int i, float *pix,
			  char *err);

#endif
