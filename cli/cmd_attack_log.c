/* cmd_attack_log.c - `advex attack`'s glue to the run log: the model's
 * fields of every run, where an image came from, Ctrl-C, and the messages
 * a failed write ends with. The state machine itself is db/runlog.c,
 * shared with the explorer. */
#define _XOPEN_SOURCE 700	/* realpath */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_attack.h"
#include "dataset.h"
#include "db.h"
#include "runlog.h"

/* Set by SIGINT/SIGTERM. The step callback sees it and cancels, so the run
 * is finished as 'interrupted' rather than left half-written. A handler can
 * reach nothing but a file-scope flag, hence not part of a context. */
static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* SA_RESETHAND: a second Ctrl-C kills at once, should the first be stuck
 * (in a long wait for another process's write lock, say). */
void cmd_attack_log_catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop_signal;
	sa.sa_flags = SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

int cmd_attack_log_open(struct run_log *l)
{
	char err[ERR_MAX];

	if (runlog_new(l->db, &l->w, err) != ST_OK)
		return cli_fail("%s", err);
	return EXIT_OK;
}

void cmd_attack_log_close(struct run_log *l)
{
	runlog_free(l->w);
	l->w = NULL;
}

int64_t cmd_attack_log_id(const struct run_log *l)
{
	return runlog_id(l->w);
}

void cmd_attack_log_model(struct run_log *l, const struct attack_args *a,
			  const struct net_info *in)
{
	char data[4096];
	int demo;

	if (a->mo.arch)
		snprintf(l->model_path, sizeof l->model_path, "builtin:%s", a->mo.arch);
	else if (a->mo.model)
		snprintf(l->model_path, sizeof l->model_path, "%s", a->mo.model);
	else if (source_default(data, l->model_path, sizeof l->model_path, &demo))
		snprintf(l->model_path, sizeof l->model_path, "(unknown)");
	source_model_summary(&a->mo, in, l->arch, sizeof l->arch);
	l->b.model_path = l->model_path;
	l->b.model_arch = l->arch;
	l->b.n_classes = in->n_classes;
	l->b.classes = in->classes;
	l->b.h = in->in_h;
	l->b.w = in->in_w;
}

int cmd_attack_log_begin(struct run_log *l, const struct attack_params *p,
			 const struct dataset *d, const char *ref, int label,
			 const float *x0)
{
	char *abs = NULL, err[ERR_MAX];

	if (!l->db)
		return EXIT_OK;
	l->b.params = p;
	l->b.true_label = label;
	l->b.x0 = x0;
	if (d) {
		l->b.data_path = dataset_path(d);
		l->b.data_kind = dataset_kind_name(dataset_kind(d));
		l->b.data_split = dataset_split(d);
		l->b.image_ref = ref;
	} else {
		abs = realpath(ref, NULL);
		snprintf(l->ref, sizeof l->ref, "%s", abs ? abs : ref);
		free(abs);
		l->b.data_path = NULL;
		l->b.data_kind = "png";
		l->b.data_split = NULL;
		l->b.image_ref = l->ref;
	}
	if (runlog_begin(l->w, &l->b, err) != ST_OK)
		return cli_fail("%s", err);
	return EXIT_OK;
}

int cmd_attack_log_step(struct run_log *l, const struct attack_report *r)
{
	char err[ERR_MAX];

	return runlog_step(l->w, r, err) != ST_OK || stop_requested;
}

int cmd_attack_log_outcome(struct run_log *l, int cancelled,
			   const struct attack_report *final, const float *x_adv)
{
	int64_t id = runlog_id(l->w);
	char err[ERR_MAX];

	if (runlog_error(l->w)) {
		/* if this fails too, the next open of the log marks the run
		 * interrupted */
		runlog_fail(l->w, final, x_adv);
		return cli_fail("%s", runlog_error(l->w));
	}
	if (runlog_finish(l->w, cancelled ? "interrupted" : "done", final, x_adv,
			  err) != ST_OK) {
		runlog_fail(l->w, NULL, NULL);
		return cli_fail("%s", err);
	}
	if (cancelled) {
		if (id)
			return cli_fail("interrupted: run %lld recorded as interrupted in %s",
					(long long)id, db_path(l->db));
		return cli_fail("interrupted");
	}
	return EXIT_OK;
}
