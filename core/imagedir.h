/* imagedir.h - a folder of class sub-folders of PNGs, DIR/<class>/NAME.png.
 *
 * Classes are the sub-folders sorted by name (bytewise, as Python's sorted()
 * and so torchvision's ImageFolder order them); files are the *.png (any
 * case) within each, sorted the same way. Names starting with '.' are
 * skipped. A sub-folder without PNGs still counts as a class, so the labels
 * of the others do not shift. Images are read on demand; all must have the
 * size of the first one, which is checked when each is read.
 */
#ifndef ADVEX_IMAGEDIR_H
#define ADVEX_IMAGEDIR_H

#include "status.h"

struct imagedir;

/* 1 when dir has a sub-folder holding at least one *.png file. */
int imagedir_looks_like(const char *dir);

/* Scan dir (the folder holding the class sub-folders) and read the size of
 * its first image. Fails when there are no class folders or no PNGs. */
enum status imagedir_open(const char *dir, struct imagedir **out, char *err);
void imagedir_close(struct imagedir *d);

int imagedir_count(const struct imagedir *d);
int imagedir_height(const struct imagedir *d);
int imagedir_width(const struct imagedir *d);
int imagedir_n_classes(const struct imagedir *d);
/* Owned by d; NULL for c out of range. */
const char *imagedir_class_name(const struct imagedir *d, int c);
/* 0-based class of image i, or -1 for i out of range. */
int imagedir_label(const struct imagedir *d, int i);
/* The path of image i, "DIR/cat/0003.png", into buf (n bytes). */
void imagedir_image_name(const struct imagedir *d, int i, char *buf, int n);
/* Image i as float32 planar (3,H,W) in [0,1]; pix holds 3*H*W floats. */
enum status imagedir_image(const struct imagedir *d, int i, float *pix,
			   char *err);

#endif
