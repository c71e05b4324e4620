/* audit_json.h - an audit as JSON (jansson), the one shape both the
 * command line (--json) and the run log (db/audits) use. Keys:
 *   params: {attack, norm, loss, eps, alpha, iters, target, seed, budgets,
 *            noise_samples, noise_r, random_passes, square_queries}
 *   images: [{index, label, clean_pred, outputs_probs, row_sum, grad_zero,
 *             cause, success, ever_success, iters, tail_improvement,
 *             unconstrained, square, budget: [...], noise_change, random,
 *             export_ok, pert_linf, pert_l2, final_loss}]  (-1: not measured)
 *   checks: {KEY: {n, title, verdict, figure, detail, sentence, n_flagged,
 *            first_image}}  in check order (audit.h)
 *   summary: {pass, warn, fail, skipped}
 */
#ifndef ADVEX_AUDIT_JSON_H
#define ADVEX_AUDIT_JSON_H

#include <jansson.h>

#include "audit.h"

json_t *audit_json_params(const struct audit_params *p);
json_t *audit_json_image(const struct audit_image *r, int n_eps);
json_t *audit_json_checks(const struct audit_check *checks);
json_t *audit_json_summary(const struct audit_check *checks);
/* The whole report: params, images, checks, summary (NULL: out of memory). */
json_t *audit_json_report(const struct audit_params *p, const struct audit_image *recs,
			  int n, const struct audit_check *checks);

#endif
