/* cli.h - what the subcommands share: loading a model from --model or
 * --arch, reading an image, naming classes, threads, and error reporting.
 * Only cli/ (and tui/) print and choose exit codes. */
#ifndef ADVEX_CLI_H
#define ADVEX_CLI_H

#include "modelfile.h"
#include "net.h"

/* Exit statuses of every subcommand. */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

/* Options every model-using command accepts. */
struct cli_model_opts {
	const char *model;	/* --model FILE */
	const char *arch;	/* --arch NAME (built-in, random weights) */
	unsigned long seed;	/* --seed for --arch */
	int threads;		/* --threads, 0 = all cores */
	int conv;		/* --conv: enum net_conv_mode */
	char used[4096];	/* filled by cli_load_net: the model file it
				   opened, or "builtin:NAME" */
};

/* getopt_long codes of the shared model options. */
enum {
	OPT_MODEL = 1000, OPT_ARCH, OPT_SEED, OPT_THREADS, OPT_CONV, OPT_JSON,
	OPT_RESIZE,
	OPT_FIRST_FREE	/* subcommands number their own options from here */
};

/* struct option entries for the shared model options. */
#define CLI_MODEL_OPTIONS                                    \
	{ "model", required_argument, NULL, OPT_MODEL },     \
	{ "arch", required_argument, NULL, OPT_ARCH },       \
	{ "seed", required_argument, NULL, OPT_SEED },       \
	{ "threads", required_argument, NULL, OPT_THREADS },  \
	{ "conv", required_argument, NULL, OPT_CONV }

/* Help text for them, to print in each command's --help. */
extern const char cli_model_help[];

/* Handle one shared option; returns 1 if it was one, 0 if not, -1 on a bad
 * value (message printed). */
int cli_model_opt(struct cli_model_opts *o, const char *cmd, int code,
		  const char *arg);

/* The subcommands: argv[0] is the subcommand name. */
int cmd_info(int argc, char **argv);
int cmd_diagnose(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_attack(int argc, char **argv);
int cmd_runs(int argc, char **argv);
/* The interactive explorer (tui/app.c): advex with no command, or
 * advex explore [--model FILE] [--data DIR] [--split S] [--db FILE]. */
int tui_explore(int argc, char **argv);

/* Print "advex: msg" to stderr; returns EXIT_FAIL. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Before any work: each non-NULL output path must be missing or a regular
 * file (outpath.h). 0, or cli_fail's status after its one-line message. */
int cli_check_outputs(const char *a, const char *b, const char *c);
/* Print "advex CMD: msg" and "try 'advex CMD --help'"; returns EXIT_USAGE. */
/* s through printable_escape (core/printable.h): control characters
 * (C0, DEL, C1) and invalid UTF-8 written as \xNN, so that a name from a
 * file cannot send escape sequences to the terminal; cut to fit n. */
const char *cli_printable(const char *s, char *buf, size_t n);
int cli_usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Buffer size for one printable class name or source. */
#define CLI_NAME_MAX 256
/* The model's class c through cli_printable into buf (n bytes). */
const char *cli_class_name(const struct net_info *in, int c, char *buf,
			   size_t n);

/* Apply --threads (0 = every online core). */
void cli_set_threads(int threads);
/* Parse a positive integer option value; -1 when invalid. */
long cli_parse_long(const char *s, long min, long max);

/* Open the model named by the options (--model or --arch; neither: the
 * default source, see cli_default_source) and build a net for max_batch
 * images. Prints the error itself. */
/* Most images per forward/backward for attack and bench --batch: the
 * net's buffers grow with it. */
#define CLI_MAX_BATCH 256

/* FLOPs of one forward pass of one image (conv and dense layers, as
 * direct convolution): advex bench's GFLOP/s, attack's default --batch. */
double cli_forward_flop(const struct net *n);
int cli_load_net(struct cli_model_opts *o, const char *cmd,
		 int max_batch, int want_param_grads, struct net **out);

/* A pixel-unit value such as epsilon: a decimal ("0.03") or a fraction
 * ("8/255"). Returns 0; -1 when s is not a number or fraction; -2 when it
 * is one but not representable (1e-400 would be 0, 1e400 infinite). *out
 * is set only on success. */
int cli_parse_eps(const char *s, double *out);

struct dataset;

/* Where data and model come from when the user names neither: STL-10 and
 * model.safetensors under $XDG_DATA_HOME/advex (or ~/.local/share/advex)
 * when both exist, else the bundled demo. Fills data and model (n bytes
 * each); *is_demo tells which. Returns -1 when there is neither. */
int cli_default_source(char *data, char *model, size_t n, int *is_demo);

/* Open --data DIR (split NULL = test; dir NULL = the default source), printing a note the loader gives
 * (e.g. missing class_names.txt) and the error itself. */
int cli_open_data(const char *dir, const char *split, struct dataset **out);

/* --resize, for every command that reads --data with a model. */
#define CLI_RESIZE_OPTION { "resize", no_argument, NULL, OPT_RESIZE }
extern const char cli_resize_help[];

/* The one check that a data set's images have the model's input size,
 * made wherever a command uses both (eval, attack, diagnose, train, the
 * explorer). With resize, d is set to give images resampled to the model's
 * size (bilinear, see resize.h) and the check passes; without, a mismatch
 * prints "DIR: images are 32x32 but the model expects 96x96 (use a model
 * trained at 32x32, or --resize)" and returns EXIT_FAIL. */
int cli_fit_data(struct dataset *d, const struct net_info *in, int resize);

/* At option parsing: an --image REF that is a number but no index (-1, +2,
 * 99999999999) is a usage error (printed; EXIT_USAGE), not a file name.
 * EXIT_OK otherwise. */
int cli_check_image_ref(const char *cmd, const char *ref);

/* 1 when an --image REF is a dataset index (digits only): without --data
 * it then names an image of the default data (cli_default_source). */
int cli_is_index(const char *ref);

/* The image an --image REF names: a dataset index when d is given and REF
 * is a number, else a PNG file. Fills x (the net's input size), *label
 * (-1 when unknown) and name (a description for output, n bytes). Prints
 * the error itself; returns EXIT_USAGE for an index past the data's end,
 * EXIT_FAIL when the file cannot be used. */
int cli_load_image(const char *ref, struct dataset *d,
		   const struct net_info *in, float *x, int *label, char *name,
		   size_t n);

/* Class index from a name or a number, or -1 (message printed; the caller
 * exits EXIT_USAGE: the command line names what the model lacks). */
int cli_class_index(const struct net_info *in, const char *s);

#endif
