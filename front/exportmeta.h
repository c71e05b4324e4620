/* exportmeta.h - the tEXt chunks of an exported adversarial image, the
 * same from `advex attack --out` and from the explorer's e: the attack's
 * parameters, how far it went, what it aimed at, and where image, model and
 * run came from. The key names are stable: scripts read them. */
#ifndef ADVEX_EXPORTMETA_H
#define ADVEX_EXPORTMETA_H

#include <stdint.h>

#include "attack.h"
#include "net.h"
#include "status.h"

#define EXPORTMETA_N 11

/* Keys and values ready for image_write_png; the values point into the
 * struct and into the strings given to exportmeta_fill. */
struct exportmeta {
	const char *keys[EXPORTMETA_N];
	const char *vals[EXPORTMETA_N];
	int n;				/* EXPORTMETA_N */
	char eps[64], alpha[32], iters[32], run[32];
};

/* Fill m: p the attack's parameters, iters the updates made, target and
 * true_label the class names (NULL: untargeted, unknown), source the image
 * ("test_X.bin#17" or a PNG path), model the model file or "builtin:NAME",
 * run the run log's id (0: not logged). The strings must outlive m. eps is
 * written "%.9g", followed by " (N/255)" when it is a whole number of
 * 8-bit levels, the way people give it. */
void exportmeta_fill(struct exportmeta *m, const struct attack_params *p,
		     int iters, const char *target, const char *true_label,
		     const char *source, const char *model, int64_t run);

/* An exported image read back from path as the model sees it (8 bits per
 * channel, resized to nothing: it must be the net's size) and classified
 * again: *pred, and *success whether it is still adversarial for p
 * (targeted: pred == target; untargeted: pred != label). Rounding to the
 * PNG's 256 levels can undo an attack whose margin was smaller than that. */
enum status exportmeta_recheck(struct net *n, const char *path,
			       const struct attack_params *p, int label, int *pred,
			       int *success, char *err);

#endif
