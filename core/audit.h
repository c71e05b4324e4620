/* audit.h - "why did my attack fail?": an attack, run image by image, and
 * the checks that tell a failed attack from a robust model.
 *
 * Most checks are Pintor et al.'s Indicators of Attack Failure (NeurIPS
 * 2022); advex adds the ones its users hit (a model that outputs
 * probabilities, an adversarial PNG that stops working once rounded to 8
 * bits, a model that is not deterministic). For each image, audit_image
 * runs the attack audited and what the checks need beside it:
 *
 *   1 probabilities    the clean output row: a softmax at the end, or a row
 *                      of values in [0,1] that sums to 1
 *   2 gradients        the input gradient at x0 is exactly zero (and why)
 *   3 silent success   an iterate was adversarial, the returned point is not
 *   4 incomplete       the attack failed while its loss was still improving:
 *                      over the last AUDIT_TAIL evaluations the loss, scaled
 *                      to [0,1] over the whole run, improved by > 0.05
 *   5 unconstrained    where the attack failed: the same attack with the
 *                      whole pixel range as budget (Linf eps 1, L2 eps
 *                      sqrt(C*H*W)) must succeed; the step is scaled with eps
 *   6 gradient-free    where the attack failed: Square at the same budget
 *                      and norm (Linf or L2)
 *   7 budget           the attack at each epsilon of the list: the success
 *                      rate must not fall as epsilon grows
 *   8 unstable         the attack's loss at x0 under uniform noise of
 *                      +-r (AUDIT_NOISE_R, clipped to [0,1]), noise_samples
 *                      draws: the mean relative change |dL| / max(|L|, 1e-3);
 *                      and random_passes forwards of x0 that must be
 *                      bitwise identical (dropout left on, say)
 *   9 export           each success written as an 8-bit PNG (libpng, in
 *                      memory), read back and classified again
 *
 * audit_verdicts turns the records into a verdict per check (pass, warn,
 * fail, or skipped), the figure behind it and one sentence with the cause
 * and the fix. Library code: never prints or exits.
 */
#ifndef ADVEX_AUDIT_H
#define ADVEX_AUDIT_H

#include <stdint.h>

#include "attack.h"
#include "net.h"
#include "status.h"

#define AUDIT_MAX_EPS 16
#define AUDIT_TAIL 10			/* evaluations of check 4's window */
#define AUDIT_TAIL_RANGE 0.05		/* check 4's threshold (Pintor et al.) */
#define AUDIT_NOISE_R (8.0 / 255.0)	/* check 8's noise radius */
#define AUDIT_UNSTABLE 10.0		/* check 8: relative loss change of an image: an
					   order of magnitude */

enum audit_check_id {
	AUDIT_PROBS,
	AUDIT_GRADIENTS,
	AUDIT_SILENT,
	AUDIT_INCOMPLETE,
	AUDIT_UNCONSTRAINED,
	AUDIT_GRAD_FREE,
	AUDIT_BUDGET,
	AUDIT_UNSTABLE_PRED,
	AUDIT_EXPORT,
	AUDIT_N_CHECKS
};

enum audit_verdict { AUDIT_PASS, AUDIT_WARN, AUDIT_FAIL, AUDIT_SKIPPED };

struct audit_params {
	struct attack_params attack;	/* the attack audited (its eps: the
					   main budget; true_label: per image) */
	double eps[AUDIT_MAX_EPS];	/* check 7's budgets, ascending; n_eps
					   0: eps/4, eps/2, eps, 2 eps (Linf:
					   at most 1) */
	int n_eps;
	int noise_samples;		/* check 8, default 100 */
	int random_passes;		/* check 8, default 5 */
	int square_queries;		/* check 6, default 1000 */
};

/* What audit_image found on one image. -1 in an int field: not measured
 * (not needed: e.g. the unconstrained attack where the attack succeeded). */
struct audit_image {
	int index;			/* the caller's image number */
	int label;			/* true label */
	int clean_pred;
	int outputs_probs;		/* 1: the row at x0 is probabilities */
	double row_sum;			/* sum of the output row at x0 */
	int grad_zero;			/* 1: dLoss/dx0 is exactly zero; -1:
					   the attack takes no gradient */
	char cause[16];			/* of a zero gradient: "clip",
					   "underflow", "margin", "network" */
	int success;			/* the returned point is adversarial */
	int ever_success;		/* some iterate was */
	int iters;			/* updates made */
	double tail_improvement;	/* check 4, in [0,1]; -1 when the loss
					   is not finite or the run too short */
	int unconstrained;		/* success at the whole range, or -1 */
	int square;			/* Square's success, or -1 */
	int budget[AUDIT_MAX_EPS];	/* success at each eps of the list */
	double noise_change;		/* check 8's mean relative change */
	int random;			/* 1: forwards of x0 differed */
	int export_ok;			/* 8-bit PNG still succeeds, or -1 */
	double pert_linf, pert_l2;	/* of the returned point */
	double final_loss;
};

struct audit_check {
	enum audit_check_id id;
	const char *key;		/* JSON key, e.g. "silent_success" */
	const char *title;		/* "Silent success" */
	enum audit_verdict verdict;
	double figure;			/* the number behind the verdict */
	char figure_text[96];		/* the figure in words */
	char sentence[400];		/* cause and fix, one sentence or two */
	int n_flagged;			/* images the check points at */
	int first_image;		/* the first of them (its index), or -1 */
};

struct audit;

/* Defaults: the given attack, n_eps 0, 100 noise samples, 5 passes, 1000
 * Square queries. */
struct audit_params audit_params_default(const struct attack_params *ap);

/* Checks p against net (attack_params_check at every budget) and sizes
 * every buffer; net (max_batch >= 1) is borrowed and must outlive the
 * audit. The budgets actually used are in audit_get_params. */
enum status audit_new(struct net *net, const struct audit_params *p,
		      struct audit **out, char *err);
void audit_free(struct audit *au);
const struct audit_params *audit_get_params(const struct audit *au);

/* Audit one image x0 (C*H*W pixels in [0,1]) with true label `label`
 * (-1: the prediction at x0 stands in). The audited attack's steps go to
 * cb (may be NULL) as attack_run gives them; a non-zero return cancels:
 * *cancelled is set, rec is incomplete and the other checks do not run.
 * final (may be NULL) receives the evaluation at the returned point; its
 * logits, probs and diagnosis stay valid until the next audit_image (its
 * layer_norms is NULL: the checks run after it reuse the net). Fills rec.
 * ST_OK, or an error with rec incomplete. */
enum status audit_image(struct audit *au, int index, const float *x0,
			int label, attack_cb cb, void *user,
			struct attack_report *final, struct audit_image *rec,
			int *cancelled, char *err);

/* The audited attack; after audit_image, attack_x_result is the point it
 * returned (the last iterate, or the best point for APGD and Square). */
struct attack *audit_attack(struct audit *au);

/* The verdicts over n records: checks[AUDIT_N_CHECKS], in check order. */
void audit_verdicts(const struct audit *au, const struct audit_image *recs,
		    int n, struct audit_check *checks);

/* A check's static JSON key ("silent_success") and title ("Silent
 * success"); "?" for an id out of range. */
const char *audit_check_key(enum audit_check_id id);
const char *audit_check_title(enum audit_check_id id);

/* Static names: "pass", "warn", "fail", "skipped". */
const char *audit_verdict_name(enum audit_verdict v);

#endif
