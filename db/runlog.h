/* runlog.h - one attack run being written to the run log: the state
 * machine both front ends drive (the subcommand `advex attack`, one run or
 * one per batch slot, and the explorer's session thread).
 *
 *   runlog_begin -> runlog_step ... -> runlog_finish("done" | "interrupted")
 *                         \ a write fails -> runlog_fail ("failed")
 *
 * The run's wall time is measured here (core/clock). A failed write is
 * remembered with its message, so a front end can stop the attack first
 * and report after. Library code: never prints or exits.
 */
#ifndef ADVEX_RUNLOG_H
#define ADVEX_RUNLOG_H

#include <stdint.h>

#include "attack.h"
#include "runs.h"
#include "status.h"

struct db;
struct runlog;

/* A writer into db (borrowed; it must outlive the writer). db NULL: a
 * writer that records nothing (--no-log), every call succeeding. */
enum status runlog_new(struct db *db, struct runlog **out, char *err);
/* Frees the writer; an open run stays as it is (runs_begin's lock then
 * dies with the process, and the next open marks the run interrupted). */
void runlog_free(struct runlog *l);

/* Begin a run (runs_begin); ST_OK without a run when recording nothing.
 * A failure leaves no run open. */
enum status runlog_begin(struct runlog *l, const struct run_begin *b, char *err);
/* Record one step of the open run (if any). On failure the run stays open
 * for runlog_fail, and runlog_error gives the message. */
enum status runlog_step(struct runlog *l, const struct attack_report *r, char *err);
/* Close the open run (if any) as "done" or "interrupted" (runs_finish);
 * final: the evaluation at the end point, x_adv: the image to keep (each
 * NULL when there is none). On failure the run stays open for runlog_fail. */
enum status runlog_finish(struct runlog *l, const char *status,
			  const struct attack_report *final, const float *x_adv,
			  char *err);
/* After a failed write: close the open run as "failed" if the log still
 * takes that write - with final and x_adv when it can, else without them,
 * since on a full disk the image is the write least likely to fit.
 * Returns 1 when the run is marked failed, 0 when it could not be (the
 * next open of the log then marks it interrupted) or none was open. */
int runlog_fail(struct runlog *l, const struct attack_report *final,
		const float *x_adv);

/* The open run's id; 0 when none is open. */
int64_t runlog_id(const struct runlog *l);
/* The message of the first failed step write since runlog_begin, or NULL. */
const char *runlog_error(const struct runlog *l);

#endif
