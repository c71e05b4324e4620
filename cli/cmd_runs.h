/* cmd_runs.h - what the files of `advex runs` share: opening the log
 * (cmd_runs.c), and the subcommands kept in files of their own: merge and
 * sweep (cmd_runs_merge.c), plot (cmd_runs_plot.c). */
#ifndef ADVEX_CMD_RUNS_H
#define ADVEX_CMD_RUNS_H

struct db;

/* Open an existing log (write 0: read only; 1: as a writer). EXIT_OK or
 * EXIT_FAIL with the message printed. */
int cmd_runs_open_log(const char *path, int write, struct db **db);

/* argv[0] is the subcommand name. */
int cmd_runs_merge(int argc, char **argv);
int cmd_runs_sweep(int argc, char **argv);
int cmd_runs_plot(int argc, char **argv);

#endif
