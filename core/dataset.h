/* dataset.h - labelled images from disk, read on demand.
 *
 * Three kinds sit behind one handle:
 *  - the official STL-10 binary directory (stl10_binary/: train_X.bin,
 *    train_y.bin, test_X.bin, test_y.bin, class_names.txt, optionally
 *    unlabeled_X.bin and fold_indices.txt). Files are memory-mapped, never
 *    read whole (unlabeled_X.bin is 2.7 GB). Each image is 27,648 bytes: the
 *    red plane, then green, then blue, each 96x96 stored column-major
 *    (byte c*9216 + x*96 + y is channel c at column x, row y).
 *  - the official CIFAR-10 binary directory (cifar-10-batches-bin/:
 *    data_batch_1.bin .. data_batch_5.bin, test_batch.bin, batches.meta.txt);
 *    see cifar10.h. Records of a label byte and a 3x32x32 image stored
 *    row-major; split train is the five data batches in order, test the
 *    test batch.
 *  - a folder of class sub-folders, DIR/<class>/NAME.png (classes sorted by
 *    name, files sorted by name within a class).
 * Images come out as float32 planar (3,H,W) RGB in [0,1], row-major, upright.
 *
 * Which kind: DIR is STL-10 when it holds train_X.bin, test_X.bin or
 * unlabeled_X.bin, or when its stl10_binary/ sub-folder does (so both the
 * unpacked folder and its parent work); else CIFAR-10 when DIR, or its
 * cifar-10-batches-bin/ sub-folder, holds test_batch.bin or
 * data_batch_1.bin; else an image folder when DIR, or DIR/<split>/, has a
 * sub-folder with PNG files; else dataset_open fails with "DIR: neither an
 * STL-10 binary directory (no test_X.bin), a CIFAR-10 binary directory (no
 * test_batch.bin) nor a folder of class sub-folders with PNG files".
 */
#ifndef ADVEX_DATASET_H
#define ADVEX_DATASET_H

#include "status.h"

struct dataset;

enum dataset_kind { DATASET_STL10, DATASET_CIFAR10, DATASET_IMAGEDIR };

/* The kind's name in the run log and in messages: "stl10", "cifar10",
 * "imagedir". Static. */
const char *dataset_kind_name(enum dataset_kind kind);

/* Open DIR. split is "train", "test" or "unlabeled" (STL-10; CIFAR-10 has
 * train and test; NULL = "test").
 * For an image folder the split names a sub-folder DIR/<split>/ when one
 * exists (and itself holds class folders with PNGs), else DIR itself is
 * used. note (ERR_MAX, may be NULL) receives a warning the user should see
 * even on success, e.g. "DIR/class_names.txt missing: using the STL-10 class
 * names"; it is "" when there is none. */
enum status dataset_open(const char *dir, const char *split,
			 struct dataset **out, char *note, char *err);
void dataset_close(struct dataset *d);

enum dataset_kind dataset_kind(const struct dataset *d);
const char *dataset_path(const struct dataset *d);	/* the directory given */
/* The split used: for an image folder the sub-folder name, or "" when the
 * folder given holds the classes itself. */
const char *dataset_split(const struct dataset *d);
int dataset_count(const struct dataset *d);
/* The size dataset_image gives: the images' own, or dataset_resize's. */
int dataset_height(const struct dataset *d);
int dataset_width(const struct dataset *d);
/* The size the files hold. */
int dataset_native_height(const struct dataset *d);
int dataset_native_width(const struct dataset *d);
/* From now on give every image resampled to h x w, bilinear with half-pixel
 * centres (see resize.h); the own size turns resampling off. Fails for a
 * side outside 1..IMAGE_MAX_SIDE. */
enum status dataset_resize(struct dataset *d, int h, int w, char *err);
int dataset_n_classes(const struct dataset *d);
const char *dataset_class_name(const struct dataset *d, int c);
/* 0-based label of image i, or -1 when the split is unlabeled. */
int dataset_label(const struct dataset *d, int i);
/* Where image i comes from, for messages and PNG text ("test_X.bin#17",
 * "data_batch_2.bin#17" - the record within that file -, "DIR/cat/0003.png"); written into buf (n bytes). */
void dataset_image_name(const struct dataset *d, int i, char *buf, int n);

/* Image i into pix (3*H*W floats). Fails (with the file named) for an index
 * out of range or an unreadable/wrongly sized PNG. */
enum status dataset_image(const struct dataset *d, int i, float *pix,
			  char *err);

#endif
