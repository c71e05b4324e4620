/* audits.h - `advex audit` in the run log, and the re-read of exported
 * PNGs.
 *
 * Tables (db.c, schema 2): audits (one row per audit: its parameters and
 * its checks as JSON, core/audit_json.h, and the verdict counts),
 * audit_images (one row per image: what each check measured, and the run
 * of the audited attack on it), exports (every PNG an attack wrote, read
 * back and classified again: still adversarial at 8 bits or not).
 * Library code: never prints or exits.
 */
#ifndef ADVEX_AUDITS_H
#define ADVEX_AUDITS_H

#include <jansson.h>
#include <stdint.h>

#include "audit.h"
#include "status.h"

struct db;

/* Store one audit in one transaction: p, the n records with the id of the
 * run each image's audited attack was logged as (run_ids[i] 0: none), and
 * the checks. *id: the new audit's id. */
enum status audits_save(struct db *db, const struct audit_params *p,
			const struct audit_image *recs, const int64_t *run_ids,
			int n, const struct audit_check *checks, int64_t *id,
			char *err);

/* The stored audit id as JSON (caller json_decref's): {id, created,
 * params, checks, summary: {pass, warn, fail}, images: [{...record,
 * run_id}]}. id 0: the latest audit. ST_ERR_ARG when there is none. */
enum status audits_load(struct db *db, int64_t id, json_t **out, char *err);

/* Every audit, newest first, as a JSON array of {id, created, n_images,
 * pass, warn, fail, attack, eps}. */
enum status audits_list(struct db *db, json_t **out, char *err);

/* An exported PNG of run run_id, read back: its predicted class and
 * whether it is still adversarial. */
enum status exports_record(struct db *db, int64_t run_id, const char *path,
			   int pred, int success, char *err);

#endif
