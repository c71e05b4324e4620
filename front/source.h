/* source.h - what both front ends (cli/ and tui/) open the same way: the
 * model named by --model or --arch, the data set named by --data, one image,
 * and the default source when the user names neither.
 *
 * This sits below the front ends and above db/ and core/ (README, "Layout"),
 * so the explorer and the subcommands share it without knowing each other.
 * Like core/ and db/ it never prints and never exits: a function returns a
 * status with a one-line message in err (ERR_MAX bytes), and a note - what
 * the user should be told but is not an error, such as which default it
 * used - in note (SOURCE_NOTE_MAX bytes, "" when there is none). The
 * front end prints both its own way.
 */
#ifndef ADVEX_SOURCE_H
#define ADVEX_SOURCE_H

#include <stddef.h>

#include "net.h"
#include "status.h"

struct dataset;

/* Size of a note: room for two paths and a loader's message. */
#define SOURCE_NOTE_MAX (2 * 4096 + ERR_MAX)

/* Options every model-using command (and the explorer) accepts. */
struct source_opts {
	const char *model;	/* --model FILE */
	const char *arch;	/* --arch NAME (built-in, random weights) */
	unsigned long seed;	/* --seed for --arch */
	int threads;		/* --threads, 0 = all cores */
	int conv;		/* --conv: enum net_conv_mode */
	char used[4096];	/* filled by source_open_net: the model file
				   it opened, or "builtin:NAME" */
};

/* getopt_long codes of the shared options. */
enum {
	OPT_MODEL = 1000, OPT_ARCH, OPT_SEED, OPT_THREADS, OPT_CONV, OPT_JSON,
	OPT_RESIZE,
	OPT_FIRST_FREE	/* commands number their own options from here */
};

/* struct option entries for the shared model options (getopt.h). */
#define SOURCE_MODEL_OPTIONS                                 \
	{ "model", required_argument, NULL, OPT_MODEL },     \
	{ "arch", required_argument, NULL, OPT_ARCH },       \
	{ "seed", required_argument, NULL, OPT_SEED },       \
	{ "threads", required_argument, NULL, OPT_THREADS },  \
	{ "conv", required_argument, NULL, OPT_CONV }

/* --resize, for every command that reads --data with a model. */
#define SOURCE_RESIZE_OPTION { "resize", no_argument, NULL, OPT_RESIZE }

/* Help text of the shared options, for each command's --help. */
extern const char source_model_help[];
extern const char source_resize_help[];

/* A decimal integer option value in [min, max], or -1: the one
 * parser of counts, indices and seeds in both front ends. */
long source_parse_long(const char *s, long min, long max);

/* Take one shared model option: 1 when code was one, 0 when it was not,
 * -1 on a bad value with the usage message in msg (ERR_MAX bytes). */
int source_model_opt(struct source_opts *o, int code, const char *arg, char *msg);

/* Where data and model come from when the user names neither: STL-10 and
 * model.safetensors under $XDG_DATA_HOME/advex (or ~/.local/share/advex)
 * when both exist, else the bundled demo ($ADVEX_DEMO_DIR, the build tree,
 * or the installed data directory). Fills data and model (n bytes each);
 * *is_demo tells which. Returns -1 when there is neither. */
int source_default(char *data, char *model, size_t n, int *is_demo);

/* A range of images "A:B" (0 <= A < B <= count), or with single set one
 * index "K" (as K:K+1), into [*lo, *hi); -1 when it is neither. */
int source_parse_range(const char *s, int count, int single, int *lo, int *hi);

/* Apply --threads (0 = every online core) to OpenBLAS's own threads, which
 * run the products of a one-thread net and of anything outside a net. The
 * net itself gets the count from source_load_net (net_create). */
void source_set_threads(int threads);

/* Open the model the options name (--model or --arch; neither: the default
 * source, said in note) and build a net for max_batch images; fills
 * o->used. The caller has refused --model together with --arch. */
enum status source_open_net(struct source_opts *o, int max_batch,
			    int want_param_grads, struct net **out, char *note,
			    char *err);

/* The one-line architecture summary the run log keeps for a model:
 * "[ARCH, weights seed S: ]CxHxW -> K classes, L layers, P parameters[;
 * SOURCE]" (SOURCE: the file's advex.source, not for --arch). */
void source_model_summary(const struct source_opts *o,
			  const struct net_info *in, char *buf, size_t n);

/* Open --data DIR (split NULL = test; dir NULL = the default source).
 * note: what the user should hear, one line each ('\n' between): the
 * default used, and a note the loader gives (e.g. missing
 * class_names.txt). */
enum status source_open_data(const char *dir, const char *split,
			     struct dataset **out, char *note, char *err);

/* The one check that a data set's images have the model's input size,
 * made wherever a front end uses both (eval, attack, diagnose, train, the
 * explorer). With resize, d is set to give images resampled to the model's
 * size (bilinear, see resize.h) and the check passes; without, a mismatch
 * fails with "DIR: images are 32x32 but the model expects 96x96 (use a
 * model trained at 32x32, or --resize)". */
enum status source_fit_data(struct dataset *d, const struct net_info *in,
			    int resize, char *err);

/* 1 when an --image REF is a dataset index (digits only): without --data
 * it then names an image of the default data (source_default). */
int source_is_index(const char *ref);

/* The image an --image REF names: a dataset index when d is given and REF
 * is a number, else a PNG file. Fills x (the net's input size), *label
 * (-1 when unknown) and name (a description for output, n bytes). */
enum status source_load_image(const char *ref, struct dataset *d,
			      const struct net_info *in, float *x, int *label,
			      char *name, size_t n, char *err);

#endif
