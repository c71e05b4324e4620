/* cmd_attack.h - what the files of `advex attack` share: the parsed
 * options (cmd_attack.c), the run-log glue (cmd_attack_log.c), and the two
 * modes, one image (cmd_attack_one.c) and the batch sweep
 * (cmd_attack_sweep.c). */
#ifndef ADVEX_CMD_ATTACK_H
#define ADVEX_CMD_ATTACK_H

#include "attack.h"
#include "cli.h"
#include "runs.h"
#include "shard.h"

struct dataset;
struct db;
struct runlog;

#define MAX_EPS 64

struct attack_args {
	struct source_opts mo;
	const char *data, *split, *image, *images, *target, *out, *npy_out;
	const char *db;			/* --db FILE (after %i/%n: db_path) */
	struct shard shard;		/* --shard I/N; 0 of 1 without */
	int sharded;			/* --shard given */
	char db_path[4096];		/* --db with %i, %n, %% expanded */
	int no_log;
	int resize;			/* --resize */
	const char *eps_text[MAX_EPS];	/* as given, for tables */
	double eps[MAX_EPS];
	int n_eps, alpha_set, json, csv, quiet;
	int batch;			/* --batch: attacks per forward/backward */
	struct attack_params p;
};

/* Set eps, and alpha from it unless --alpha was given: 2.5*eps/iters
 * (Madry et al.'s choice), at most eps. */
void cmd_attack_set_eps(struct attack_args *a, double eps);

/* ---- the run log (cmd_attack_log.c) ---------------------------------------- */

/* One run being recorded (db/runlog.h), and what the log needs besides the
 * attack: the model's fields, filled once by cmd_attack_log_model. */
struct run_log {
	struct db *db;			/* NULL: --no-log */
	struct runlog *w;		/* the writer */
	struct run_begin b;		/* the model's fields */
	char model_path[4096], arch[256], ref[4096];
};

/* Ctrl-C and SIGTERM cancel the attack after the step in flight; a second
 * Ctrl-C kills at once. */
void cmd_attack_log_catch_signals(void);
/* A writer for l (into l->db); EXIT_OK, or EXIT_FAIL with the message
 * printed. */
int cmd_attack_log_open(struct run_log *l);
void cmd_attack_log_close(struct run_log *l);
/* Where the model came from, and a one-line summary of it. */
void cmd_attack_log_model(struct run_log *l, const struct attack_args *a,
			  const struct net_info *in);
/* Begin a run on x0: image `ref` of dataset d, or the PNG file ref (d
 * NULL). EXIT_OK, or EXIT_FAIL with the message printed. */
int cmd_attack_log_begin(struct run_log *l, const struct attack_params *p,
			 const struct dataset *d, const char *ref, int label,
			 const float *x0);
/* Log one step; non-zero cancels the attack (a log error, or Ctrl-C). */
int cmd_attack_log_step(struct run_log *l, const struct attack_report *r);
/* After the attack: record how it ended and say what went wrong, if
 * anything (printed). cancelled: attack_run's 1. */
int cmd_attack_log_outcome(struct run_log *l, int cancelled,
			   const struct attack_report *final, const float *x_adv);
/* The open run's id, 0 when none. */
int64_t cmd_attack_log_id(const struct run_log *l);

/* ---- the modes ------------------------------------------------------------------ */

/* --image: one attack, a table of its steps and a summary. */
int cmd_attack_one(struct attack_args *a, struct net *n, struct dataset *d,
		   struct run_log *log);
/* --images A:B: every image at every epsilon, a success rate per epsilon. */
int cmd_attack_sweep(struct attack_args *a, struct net *n, struct dataset *d,
		     struct run_log *log);

#endif
