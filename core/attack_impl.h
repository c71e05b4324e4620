/* attack_impl.h - what core/attack.c shares with the files of the attack
 * kinds (attack_apgd.c, attack_square.c): the attack's state and a small
 * table of methods per kind. Not for use outside core/attack*.c.
 *
 * The engine (attack.c) owns the loop: evaluate at x_adv (forward, the
 * kind's objective, a backward when the kind needs a gradient), track the
 * best point, then call the kind's update, then project onto the 8-bit
 * grid when --quantize. A kind's update moves x_adv and keeps its own
 * state; it allocates nothing (its buffers are work[] below, sized in
 * attack_new).
 */
#ifndef ADVEX_ATTACK_IMPL_H
#define ADVEX_ATTACK_IMPL_H

#include "attack.h"
#include "rng.h"

#define ATTACK_N_WORK 4		/* n-float scratch buffers per attack */

/* APGD's schedule and memory (Croce & Hein 2020, Algorithm 1). */
struct attack_apgd {
	double step;		/* eta: 2*eps, halved at checkpoints */
	int seg_len;		/* iterations from this checkpoint to the next */
	int seg_count;		/* iterations since the last checkpoint */
	int seg_min, seg_decr;	/* 0.06 N and 0.03 N (at least 1) */
	int n_incr;		/* loss increases since the last checkpoint */
	double prev_loss;	/* loss of the previous iterate */
	double loss_best;	/* highest loss of this restart */
	double loss_best_last;	/* loss_best at the last checkpoint */
	int reduced_last;	/* the last checkpoint halved the step */
	int it;			/* moves made in this restart */
	int restart;		/* 0..restarts-1 */
	int label;		/* true label, for targeted DLR too */
	int started;		/* the restart's start point was evaluated */
};

/* The Square attack's state (Andriushchenko et al. 2020). */
struct attack_square {
	double loss_best;	/* lowest loss so far (the accepted point's) */
	int it;			/* candidates drawn */
	int started;		/* the accepted point holds a value */
};
/* DeepFool's linearisation at the current iterate (prepare). */
struct attack_deepfool {
	int have;		/* a class to move toward was found */
	double ratio;		/* its |f| / ||w|| */
	double f, wnorm;	/* its f_l = z_l - z_y and ||w_l|| (dual norm) */
};
/* C&W-L2's binary search and Adam's step count. */
struct attack_cw {
	double c;		/* the constant of this binary step */
	double lo, hi;		/* its bounds; hi < 0: not set yet */
	int bstep;		/* binary step, 0.. */
	int t;			/* Adam steps in this binary step */
	int found;		/* a successful iterate in this binary step */
};
/* (APGD's started flag: the restart's start point was evaluated.) */

struct attack {
	struct net *net;	/* borrowed */
	const struct attack_method *m; /* of p.kind */
	int k;			/* classes */
	int out_is_probs;
	size_t n;		/* pixels of one image, C*H*W */
	int c, h, w;		/* its shape */
	float *x0, *x_adv;	/* n each */
	float *grad;		/* n: dLoss/dpixels of the last evaluation */
	float *acc;		/* n: MI-FGSM momentum */
	float *x_best;		/* n: the best point evaluated (attack_x_best) */
	float *work[ATTACK_N_WORK]; /* n each: the kinds' scratch */
	float *out, *probs, *dout; /* k each */
	struct attack_params p;
	struct loss_params loss_used; /* p.loss, or the mode of the kind's
				   objective (the diagnosis reads it) */
	struct rng rng;
	int label;		/* true label in use, -1 unknown */
	int iter;		/* updates made */
	int stopped;		/* early stop reached */
	int ready;		/* a reset succeeded */
	long queries;		/* forwards of this image since the reset */
	int evaluated;		/* iter of the last step's evaluation, -1 none */
	int has_best;		/* x_best holds a point */
	int best_success, best_iter;
	double best_loss, best_score, best_linf, best_l2;
	union {
		struct attack_apgd apgd;
		struct attack_square sq;
		struct attack_deepfool df;
		struct attack_cw cw;
	} st;
	char diag[DIAG_EXPLAIN_MAX];
};

/* A kind's methods; NULL members take the engine's default. */
struct attack_method {
	/* The kind's state. fresh 1: from attack_reset, which set x0,
	 * params, the label and the seed: also the start point. fresh 0:
	 * from attack_set_params: go on from x_adv as it is. */
	void (*reset)(struct attack *a, int fresh);
	/* Before a step's evaluation of x_adv when an update will follow
	 * (alone or in a batch, before the batch's forward): may run the
	 * net itself (DeepFool's per-class backwards). NULL: nothing. */
	void (*prepare)(struct attack *a);
	/* The kind's own objective at the point x (n pixels) with output row
	 * z (k values): returns the loss reported and writes dLoss/dz into
	 * dout. NULL: loss_eval of p.loss. */
	double (*objective)(struct attack *a, const float *x, const float *z,
			    float *dout);
	/* With an objective: the loss mode whose loss_info and diagnosis
	 * describe it best (ce, or cw for a margin on the outputs). */
	enum loss_mode (*report_mode)(const struct attack *a);
	/* After an evaluation at x_adv when the attack is not finished: move
	 * x_adv (the engine then quantizes when asked). Returns 0 when the
	 * kind ends here instead (e.g. restarts left but success reached). */
	int (*update)(struct attack *a, const struct attack_report *rep);
	/* 1 when the next step needs dLoss/dpixels (NULL: always). */
	int (*needs_grad)(const struct attack *a);
	/* Updates the whole attack makes. */
	int (*total_iters)(const struct attack *a);
	int ascends;		/* the reported loss is maximised (else: as
				   the gradient kinds, by target/untargeted) */
	int descends;		/* the reported loss is minimised */
	int returns_best;	/* the result is x_best, not the last x_adv */
	int minimal;		/* a minimal-perturbation attack: among
				   successful points the smaller perturbation
				   is better; no eps-ball */
};

extern const struct attack_method attack_apgd_method;
extern const struct attack_method attack_square_method;
extern const struct attack_method attack_deepfool_method;
extern const struct attack_method attack_cw_method;

/* Engine helpers for the kinds (attack.c). */
float attack_clamp01(float v);
/* Onto the eps-ball around x0 and onto [0,1] (the attack's norm). */
void attack_project(struct attack *a, float *x);
/* Same, for the L2 ball, the way AutoAttack writes it:
 * x0 + d/(||d||+1e-12) * min(eps, ||d||), then clip to [0,1]. */
void attack_project_l2_aa(struct attack *a, float *x);
/* sqrt(sum v^2) with non-finite components counted as 0. */
double attack_l2(const float *v, size_t n);

#endif
