/* stl10.h - the official STL-10 binary directory (stl10_binary/).
 *
 * SPLIT_X.bin is memory-mapped read-only (never read whole: unlabeled_X.bin
 * is 2.7 GB); SPLIT_y.bin (one byte 1..10 per image) is read into memory.
 * An image is 27,648 bytes: the red, green and blue planes, each 96x96 and
 * column-major (byte c*9216 + x*96 + y is channel c at column x, row y).
 * class_names.txt gives one name per line; when it is missing the STL-10
 * names are used and a note says so. fold_indices.txt (train only) holds
 * the 10 official training folds; it is optional, and a malformed one is
 * ignored with a note rather than failing the open.
 */
#ifndef ADVEX_STL10_H
#define ADVEX_STL10_H

#include "status.h"

#define STL10_SIDE 96
#define STL10_IMAGE_BYTES (3 * STL10_SIDE * STL10_SIDE)	/* 27,648 */
#define STL10_MAX_CLASSES 10

struct stl10;

/* Open split "train", "test" or "unlabeled" of the directory dir (the one
 * holding the .bin files). note (ERR_MAX, may be NULL) gets a warning to show
 * even on success ("" when none); err gets a one-line message naming the
 * file on failure. */
enum status stl10_open(const char *dir, const char *split, struct stl10 **out,
		       char *note, char *err);
void stl10_close(struct stl10 *s);

int stl10_count(const struct stl10 *s);
int stl10_n_classes(const struct stl10 *s);
/* Owned by s. */
const char *stl10_class_name(const struct stl10 *s, int c);
/* 0-based label of image i, or -1 for the unlabeled split or i out of range. */
int stl10_label(const struct stl10 *s, int i);
/* "test_X.bin#17" into buf (n bytes). */
void stl10_image_name(const struct stl10 *s, int i, char *buf, int n);
/* Image i as float32 planar (3,96,96) RGB in [0,1], row-major, upright. */
enum status stl10_image(const struct stl10 *s, int i, float *pix, char *err);

/* Number of official folds loaded (10, or 0 when fold_indices.txt is absent,
 * malformed or the split is not "train"). */
int stl10_n_folds(const struct stl10 *s);
/* Fold k's zero-based train indices: returns their count and points *idx at
 * them (owned by s), or -1 when there is no fold k. */
int stl10_fold(const struct stl10 *s, int k, const int **idx);

#endif
