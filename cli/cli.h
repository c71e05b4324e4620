/* cli.h - what the subcommands share: loading a model from --model or
 * --arch, reading an image, naming classes, threads, and error reporting.
 * Only cli/ (and tui/) print and choose exit codes. */
#ifndef ADVEX_CLI_H
#define ADVEX_CLI_H

#include "exitcode.h"
#include "modelfile.h"
#include "net.h"
#include "source.h"

/* Handle one shared option (source_model_opt); returns 1 if it was one, 0
 * if not, -1 on a bad value (usage message printed). */
int cli_model_opt(struct source_opts *o, const char *cmd, int code,
		  const char *arg);

/* The subcommands: argv[0] is the subcommand name. */
int cmd_info(int argc, char **argv);
int cmd_diagnose(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_attack(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_runs(int argc, char **argv);

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


/* Most images per forward/backward for attack and bench --batch: the
 * net's buffers grow with it. */
#define CLI_MAX_BATCH 256

/* FLOPs of one forward pass of one image (conv and dense layers, as
 * direct convolution): advex bench's GFLOP/s, attack's default --batch. */
double cli_forward_flop(const struct net *n);
/* Open the model named by the options (--model or --arch; neither: the
 * default source, see source.h) and build a net for max_batch images.
 * Prints the note and the error itself. */
int cli_load_net(struct source_opts *o, const char *cmd,
		 int max_batch, int want_param_grads, struct net **out);

/* A pixel-unit value such as epsilon: a decimal ("0.03") or a fraction
 * ("8/255"). Returns 0; -1 when s is not a number or fraction; -2 when it
 * is one but not representable (1e-400 would be 0, 1e400 infinite). *out
 * is set only on success. */
int cli_parse_eps(const char *s, double *out);

struct dataset;

/* source_open_data, printing its notes ("advex: note: ...") and its
 * error. */
int cli_open_data(const char *dir, const char *split, struct dataset **out);

/* source_fit_data, printing its error; EXIT_OK or EXIT_FAIL. */
int cli_fit_data(struct dataset *d, const struct net_info *in, int resize);

/* At option parsing: an --image REF that is a number but no index (-1, +2,
 * 99999999999) is a usage error (printed; EXIT_USAGE), not a file name.
 * EXIT_OK otherwise. */
int cli_check_image_ref(const char *cmd, const char *ref);

/* source_load_image, printing its error: EXIT_USAGE for an index past the
 * data's end (the command line asks for what is not there), EXIT_FAIL when
 * the file cannot be used. */
int cli_load_image(const char *ref, struct dataset *d,
		   const struct net_info *in, float *x, int *label, char *name,
		   size_t n);

/* Class index from a name or a number, or -1 (message printed; the caller
 * exits EXIT_USAGE: the command line names what the model lacks). */
int cli_class_index(const struct net_info *in, const char *s);

#endif
