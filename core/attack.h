/* attack.h - attacks one iteration at a time: FGSM, iterative FGSM (BIM),
 * PGD and MI-FGSM; APGD-CE and APGD-DLR (Croce & Hein 2020); the Square
 * attack (Andriushchenko et al. 2020, score-based, no gradient); DeepFool
 * (Moosavi-Dezfooli et al. 2016) and C&W-L2 (Carlini & Wagner 2017), the
 * minimal-perturbation attacks, which no eps-ball bounds; targeted or
 * untargeted (DeepFool: untargeted), Linf or L2 (C&W: L2 only).
 * Each kind past MI-FGSM lives in its own core/attack_<kind>.c.
 *
 * One struct attack holds the state of one attack on one image: the
 * original x0, the current x_adv, the momentum and the random generator.
 * It can be stepped one iteration at a time (the explorer), run to the end
 * with a per-step callback that may cancel (the CLI), reset to x0, or
 * continued with a changed epsilon, step size, target or loss.
 * Every buffer is sized in attack_new: stepping allocates nothing.
 *
 * A struct attack_batch steps several such attacks (images of a sweep,
 * restarts) in lockstep through one forward and one backward of the
 * images in flight; each attack goes through exactly the computation
 * attack_step would make for it alone, so its x_adv, losses, predictions
 * and success are those of the attack run by itself (up to the rounding of
 * a batched forward versus a batch-1 one, which the net keeps per row).
 *
 * Units: pixels in [0,1]; eps and alpha are in the same units (Linf: per
 * pixel; L2: over the whole image). A targeted attack descends the loss
 * toward the target; an untargeted one ascends the loss of the true label.
 * After every update x_adv is projected onto the eps-ball around x0 and
 * onto [0,1].
 */
#ifndef ADVEX_ATTACK_H
#define ADVEX_ATTACK_H

#include <stddef.h>
#include <stdint.h>

#include "diag.h"
#include "loss.h"
#include "net.h"
#include "status.h"

enum attack_kind {
	ATTACK_FGSM,	/* one step of size eps; alpha and iters ignored */
	ATTACK_BIM,	/* iterative FGSM: iters steps of size alpha */
	ATTACK_PGD,	/* BIM from a uniform random point of the eps-ball */
	ATTACK_MIFGSM,	/* BIM on g_acc = momentum * g_acc + g / ||g||_1 */
	ATTACK_APGD_CE,	/* APGD on cross-entropy (targeted: -CE of the
			   target), iters per restart, --restarts */
	ATTACK_APGD_DLR, /* APGD on the DLR loss (targeted: the targeted DLR
			   loss; needs 3 classes, targeted 4) */
	ATTACK_SQUARE,	/* Square attack, Linf or L2: iters = the query budget */
	ATTACK_DEEPFOOL, /* DeepFool, untargeted: at most iters iterations,
			   no eps-ball (the smallest perturbation found) */
	ATTACK_CW	/* Carlini-Wagner L2: binary_steps binary steps of
			   iters Adam steps, kappa = loss.kappa; no eps-ball
			   (the name is also a loss mode's: another list) */
};
#define ATTACK_N_KINDS 9

enum attack_norm { ATTACK_LINF, ATTACK_L2 };

struct attack_params {
	enum attack_kind kind;
	struct loss_params loss;
	enum attack_norm norm;
	double eps;		/* radius of the ball around x0 */
	double alpha;		/* step size, in (0, eps] */
	int iters;		/* updates, >= 1 (FGSM: always 1) */
	double momentum;	/* MI-FGSM decay mu, >= 0 */
	int random_start;	/* BIM, MI-FGSM: start at a random point of the
				   ball; PGD always does, FGSM never */
	uint64_t seed;		/* of the random start */
	int target;		/* class to reach; -1: untargeted */
	int true_label;		/* -1: unknown, the prediction at x0 stands in */
	int early_stop;		/* 1: stop when the target is predicted
				   (untargeted: when any wrong class is) */
	int restarts;		/* APGD: runs of iters iterations, restart r
				   from a random start seeded by
				   attack_restart_seed(seed, r); >= 1 */
	int quantize;		/* 1: every iterate on the 8-bit grid, see
				   attack_quantize_linf */
	int binary_steps;	/* cw: binary steps on the constant c, >= 1 */
};

/* The seed of APGD's restart r: seed + r * 0x9e3779b97f4a7c15 (mod 2^64),
 * so restart 0 is the run with the seed itself. */
uint64_t attack_restart_seed(uint64_t seed, int r);

/* One evaluation of the attack at x_adv, and the update that followed it. */
struct attack_report {
	int iter;		/* updates made before this evaluation; 0 = at x0
				   (or at the random start) */
	double loss;		/* of the loss's class (below) at x_adv */
	struct loss_info loss_info;
	int cls;		/* the loss's class: target, or true label */
	const float *logits;	/* n_classes model outputs (probabilities when
				   the model outputs them); owned by the attack */
	const float *probs;	/* n_classes, see loss_eval; owned by the attack */
	int pred;		/* argmax of the output */
	double target_prob;	/* probs[cls]: p(target), untargeted p(true label) */
	struct diag_grad grad;	/* of dLoss/dpixels */
	const double *layer_norms; /* n_layers + 1 of this image, owned by the
				   net, valid until its next backward
				   (net_grad_norms_image) */
	int n_layers;
	const char *diagnosis;	/* diag_explain sentence, "" when healthy;
				   owned by the attack, valid until the next
				   step or evaluate */
	int success;		/* target predicted / true label no longer */
	int updated;		/* 1: x_adv moved after the evaluation */
	int finished;		/* 1: iters reached or early-stopped */
	double pert_linf, pert_l2; /* of x_adv - x0 after the update
				   (attack_evaluate: of the point evaluated) */
	double step_ms;		/* wall time of the whole step */
	long queries;		/* forwards of this image since the reset,
				   this evaluation included */
	int has_grad;		/* 0: the kind took no gradient this step
				   (Square): grad, layer_norms and diagnosis
				   are empty */
	/* The best point so far, this evaluation included (attack_x_best):
	 * a successful point beats any other; among equals the higher
	 * objective (the loss the kind ascends; targeted gradient kinds and
	 * Square descend theirs). */
	double best_loss;
	int best_success;
	int best_iter;		/* the iteration it was evaluated at */
	double best_pert_linf, best_pert_l2;
};

struct attack;

/* Static names: "fgsm", "bim", "pgd", "mifgsm", "apgd-ce", "apgd-dlr",
 * "square", "deepfool", "cw"; "linf", "l2". */
const char *attack_kind_name(enum attack_kind k);
const char *attack_norm_name(enum attack_norm n);
/* What p's kind minimises or maximises, when it is not p->loss (which
 * fgsm, bim, pgd and mifgsm take): "ce" (apgd-ce), "dlr" and
 * "dlr-targeted" (apgd-dlr), "margin" (square untargeted: z_y - max
 * other; deepfool: the linearised margins), "ce" (square targeted), "cw"
 * (cw, with p->loss.kappa); loss_mode_name(p->loss.mode) otherwise. */
const char *attack_objective_name(const struct attack_params *p);
/* 1: kind k minimises or maximises p->loss (fgsm, bim, pgd, mifgsm); 0:
 * it has its own objective and --loss does not apply. */
int attack_uses_loss(enum attack_kind k);
/* 1: kind k steps by p->alpha (bim, pgd, mifgsm; FGSM's step is eps, APGD
 * sets its own from eps, Square, DeepFool and C&W take none). */
int attack_uses_alpha(enum attack_kind k);
/* 1: kind k stays in the eps-ball; 0: deepfool and cw, which look for the
 * smallest perturbation and ignore eps. */
int attack_uses_eps(enum attack_kind k);
/* What iters counts for kind k: "iters", "queries" (square), "Adam steps"
 * (cw, per binary step), "max iters" (deepfool: it stops when fooled). */
const char *attack_iters_name(enum attack_kind k);
/* Parse the names above ("ifgsm"/"i-fgsm" and "mi-fgsm" also accepted). */
enum status attack_kind_parse(const char *s, enum attack_kind *out, char *err);
enum status attack_norm_parse(const char *s, enum attack_norm *out, char *err);

/* PGD, Linf, eps 8/255, alpha 2/255, 10 iterations, momentum 1, ce loss,
 * seed 0, untargeted, true label unknown, no early stop, 1 restart, not
 * quantized, 9 binary steps (cw). */
struct attack_params attack_params_default(void);

/* ST_ERR_ARG and a message naming the value when p is unusable for a model
 * with n_classes classes: Linf eps outside (0, 1], L2 eps not > 0, alpha
 * outside (0, eps] (iterative kinds), iters < 1, target or true_label out
 * of range or equal, momentum < 0, kappa < 0, clip_eps outside (0, 0.5). */
enum status attack_params_check(const struct attack_params *p, int n_classes,
				char *err);

/* Size every buffer for one image of net's input. The attack borrows net
 * (which must outlive it and be created with max_batch >= 1) and runs
 * forward/backward on it: the net's output and norms belong to whichever
 * call ran last. */
enum status attack_new(struct net *net, struct attack **out, char *err);
void attack_free(struct attack *a);

/* Start over from x0 (C*H*W pixels in [0,1], copied) with params p:
 * x_adv = x0 (or a random start), iteration 0, momentum 0. Resolves an
 * unknown true label of an untargeted attack by one forward at x0. */
enum status attack_reset(struct attack *a, const float *x0,
			 const struct attack_params *p, char *err);

/* Change the parameters between steps, keeping x_adv and the iteration
 * count; x_adv is re-projected onto the new eps-ball. The momentum restarts
 * when the kind, target or loss mode changes; the best point, APGD's
 * schedule (from the current point, no random start) and Square's accepted
 * point start over on every change. Clears an early stop, so the
 * attack can go on. No random start here (that is attack_reset's). */
enum status attack_set_params(struct attack *a, const struct attack_params *p,
			      char *err);

/* The 8-bit grid rule of --quantize, for one pixel v of an iterate whose
 * clean value is x0: q = round(255 v) / 255, then, Linf: clamped to the
 * grid points inside [x0 - eps, x0 + eps] and [0,1] (when there is none,
 * x0 itself); L2 (whole image, after the ball projection): when the
 * rounded image leaves the ball, each pixel is rounded toward x0 instead
 * (floor of |v - x0| in grid steps), which never grows |v - x0|.
 * DeepFool and C&W have no ball: their iterates are only rounded (and
 * stay in [0,1]). This function is the Linf rule for one pixel. */
float attack_quantize_linf(float v, float x0, double eps);

/* One iteration: evaluate loss and gradient at x_adv, fill rep (may be
 * NULL), then - unless finished or early-stopped - update x_adv. Square
 * takes no gradient here (rep->has_grad 0). APGD and Square, which return
 * their best point, evaluate their last iterate too: the step after their
 * last update evaluates without updating and is the one that finishes
 * (Square: iters evaluations in all, the query budget; APGD: iters + 1
 * per restart, between restarts an update that is the next random start;
 * a restart only follows a run without success).
 * Non-finite gradient components count as 0 in the update, so a NaN never
 * reaches x_adv. Returns 1 when the attack is finished (after this step),
 * 0 when there is more to do, -1 when attack_reset never succeeded. */
int attack_step(struct attack *a, struct attack_report *rep);

/* Called after each step; a non-zero return cancels the run. */
typedef int (*attack_cb)(const struct attack_report *rep, void *user);

/* Step until finished, calling cb (may be NULL) after each step.
 * Returns 0 when finished, 1 when cb cancelled, -1 as attack_step. */
int attack_run(struct attack *a, attack_cb cb, void *user);

/* Evaluate at the attack's result without updating (the final prediction
 * and probabilities, gradient and diagnosis at the end point): the result
 * is attack_x_result - the last x_adv for fgsm, bim, pgd and mifgsm (what
 * peer tools return), the best point for APGD and Square (what their
 * papers return). rep->iter is the number of updates made; updated is 0;
 * one query more. */
void attack_evaluate(struct attack *a, struct attack_report *rep);

/* Borrowed views (C*H*W floats), owned by the attack. x_adv changes with
 * each step; grad is dLoss/dpixels of the last evaluation. */
const float *attack_x_adv(const struct attack *a);
const float *attack_x0(const struct attack *a);
/* The best point evaluated so far (see struct attack_report), x_adv before
 * the first evaluation; and the result (attack_evaluate's point). */
const float *attack_x_best(const struct attack *a);
const float *attack_x_result(const struct attack *a);
/* Forwards of this image since the reset. */
long attack_queries(const struct attack *a);
/* 1 when the result is x_best (APGD, Square). */
int attack_returns_best(const struct attack *a);
const float *attack_grad(const struct attack *a);
size_t attack_n_pixels(const struct attack *a);
int attack_iter(const struct attack *a);
int attack_finished(const struct attack *a);
/* The true label in use: given, or the prediction at x0; -1 when neither
 * is known (a targeted attack with no label given). */
int attack_label(const struct attack *a);
const struct attack_params *attack_get_params(const struct attack *a);

/* ---- several attacks per forward/backward ---------------------------------- */

/* What a slot of a batch does in the next attack_batch_step. */
enum attack_op {
	ATTACK_OP_NONE,		/* empty: not in the batch (the default) */
	ATTACK_OP_STEP,		/* as attack_step */
	ATTACK_OP_EVALUATE	/* as attack_evaluate (the end point) */
};

struct attack_batch;

/* max slots, each an attack of its own on net (attack_new), plus the
 * batch's input, output-gradient and pixel-gradient buffers. net must be
 * created with max_batch >= max and outlive the batch. */
enum status attack_batch_new(struct net *net, int max,
			     struct attack_batch **out, char *err);
void attack_batch_free(struct attack_batch *b);
int attack_batch_max(const struct attack_batch *b);

/* The attack in slot s (0 <= s < max), owned by the batch: set it up with
 * attack_reset / attack_set_params and read it with the accessors above.
 * It may also be stepped alone (attack_step), outside attack_batch_step. */
struct attack *attack_batch_attack(struct attack_batch *b, int s);

/* Choose what slot s does from the next attack_batch_step on; it keeps
 * doing it until changed. ST_ERR_ARG for a slot out of range, or a STEP or
 * EVALUATE of an attack that attack_reset never set up. */
enum status attack_batch_set_op(struct attack_batch *b, int s,
				enum attack_op op, char *err);
enum attack_op attack_batch_op(const struct attack_batch *b, int s);

/* DeepFool needs one gradient per candidate class: before the batch's
 * forward, each DeepFool slot that will update runs its own batch-1
 * forward and up to 10 backwards (so nothing the batch's pass leaves in
 * the net for the other slots is overwritten); its queries count that
 * forward too.
 *
 * One forward and one backward of the x_adv of every slot whose op is not
 * NONE (in slot order; EVALUATE: of attack_x_result) - no backward when
 * no slot needs a gradient (only Square steps in the batch); a Square
 * slot gets no gradient when the others do. Then each such slot s does
 * what attack_step (STEP)
 * or attack_evaluate (EVALUATE) would and fills reps[s] (an array of max
 * reports; the others are left alone). A STEP slot whose attack is
 * finished is evaluated without update, as attack_step does; the caller
 * moves it on (EVALUATE for the end point, NONE, or a new image with
 * attack_reset). step_ms is the batch's wall time over the images in it.
 * reps[s].layer_norms is this image's row (net_grad_norms_image), valid
 * until the net's next backward. Allocates nothing. Returns the number of
 * images in the batch (0 when every slot is NONE). */
int attack_batch_step(struct attack_batch *b, struct attack_report *reps);

#endif
