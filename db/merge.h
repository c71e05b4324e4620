/* merge.h - merging run logs: the per-shard logs of a sweep (each job of a
 * SLURM array writes its own file, see front/shard.h) into one, for `advex
 * runs merge`.
 *
 * One part is merged in one transaction of the target log: its runs with
 * their steps, images and exports, and its audits with their per-image
 * records (every per-run or per-audit table both logs have, MERGE_TABLES
 * in merge.c), each run and audit once: one whose UUID the target already
 * has is skipped, so merging a part twice changes nothing. Models
 * are shared when they are the same file (same SHA-256, architecture and
 * class names, wherever the file lay; a built-in: same name), data sources
 * when they have the same path, kind and split (the log keeps no hash of
 * a data set). A run left 'running' by a writer that died (kill -9, a
 * node lost, a job over its time limit) is merged as 'interrupted', its
 * steps included; a run whose writer is still alive is left out (merge
 * again when it has finished). A part written by a newer advex is refused
 * and left as it was; an older one is migrated first, as every open does.
 * Library code: never prints. */
#ifndef ADVEX_MERGE_H
#define ADVEX_MERGE_H

#include <stdint.h>

#include "db.h"
#include "status.h"

struct merge_report {
	int64_t runs;		/* runs added */
	int64_t interrupted;	/* of which a dead writer's, now 'interrupted' */
	int64_t present;	/* runs the target had already (by UUID) */
	int64_t live;		/* runs left out: their writer is still running */
	int64_t steps, images;	/* rows added with the runs */
	int64_t audits;		/* audits added (advex audit) */
	int64_t audits_present;	/* audits the target had already (by UUID) */
	int64_t other_rows;	/* rows of the other per-run and per-audit
				   tables (exports, audit_images) */
	int64_t models_added, models_shared;
	int64_t datasets_added, datasets_shared;
};

/* Merge the log at part_path into into (opened with db_open). r is
 * filled on success. Nothing of the part is written to into on failure. */
enum status merge_part(struct db *into, const char *part_path,
		       struct merge_report *r, char *err);

#endif
