/* diag.h - what a gradient looks like, and why an attack is stuck.
 *
 * Gradient statistics (norms, exact zeros, non-finite counts and a
 * histogram of log10|g| by decade), the perturbation's size, and
 * diag_explain: one plain sentence naming the cause when the input gradient
 * is zero or vanishing - a clipped probability, a float32 underflow, a model
 * that already outputs probabilities, a layer where the gradient dies, a C&W
 * margin already past kappa. The TUI, the database and the JSON output all
 * use the bins defined here.
 */
#ifndef ADVEX_DIAG_H
#define ADVEX_DIAG_H

#include <stddef.h>

#include "loss.h"
#include "net.h"

/* Histogram of log10|g|: one bin per decade, bin i holds
 * 10^(DIAG_HIST_LO_EXP + i) <= |g| < 10^(DIAG_HIST_LO_EXP + i + 1),
 * i.e. [1e-12, 1e-11) ... [1e1, 1e2). Values outside have their own counts. */
#define DIAG_HIST_LO_EXP (-12)
#define DIAG_HIST_HI_EXP 2
#define DIAG_HIST_BINS (DIAG_HIST_HI_EXP - DIAG_HIST_LO_EXP)	/* 14 */

/* Below this Linf (pixel units) a gradient counts as vanishing. */
#define DIAG_VANISH_LINF 1e-10

/* Below this L2 norm of dLoss/d(model output) the loss itself is saturated
 * (ce, prob-ce and prob-naive give O(1) output gradients otherwise). */
#define DIAG_SATURATED_OUT 1e-6

/* Longest sentence diag_explain writes, with its NUL. */
#define DIAG_EXPLAIN_MAX 512

struct diag_grad {
	size_t n;		/* components */
	double l1, l2, linf;	/* over the finite components */
	size_t n_zero;		/* exactly 0 */
	double zero_frac;	/* n_zero / n */
	size_t n_nan, n_inf;
	size_t hist[DIAG_HIST_BINS];	/* by decade, see above */
	size_t n_tiny;		/* 0 < |g| < 1e-12 */
	size_t n_huge;		/* 1e2 <= |g| < inf */
};

/* Weights that are NaN or infinite make every output and gradient through
 * them meaningless, yet a model file may hold them (a diverged training
 * run, a bad conversion). How many parameters of n are not finite, and the
 * first layer holding one (-1 when none); writes one sentence into buf
 * (len bytes, DIAG_EXPLAIN_MAX is enough; "" when all are finite).
 * O(parameters): call once per model, not per step. */
size_t diag_nonfinite_params(struct net *n, int *first_layer, char *buf,
			     size_t len);

/* Lower edge of histogram bin i (0 <= i <= DIAG_HIST_BINS; i ==
 * DIAG_HIST_BINS gives the upper edge of the last bin, 1e2). */
double diag_hist_edge(int i);

/* Statistics of g (n floats). */
void diag_grad_stats(const float *g, size_t n, struct diag_grad *out);

/* Linf and L2 of x - x0 (n floats each); either output may be NULL. */
void diag_perturbation(const float *x, const float *x0, size_t n,
		       double *linf, double *l2);

/* Everything diag_explain looks at. */
struct diag_input {
	const struct loss_params *loss;	/* the mode and its eps / kappa */
	const struct loss_info *li;	/* from loss_eval */
	double loss_value;
	const char *const *classes;	/* class names, NULL: "class N" */
	const struct diag_grad *grad;	/* of the input (pixel) gradient */
	const struct net *net;	/* per-layer norms and layer names of the
				   last backward; NULL: skip that check */
};

/* Write one sentence explaining a zero, vanishing or non-finite input
 * gradient into buf (len bytes, DIAG_EXPLAIN_MAX is enough) and return buf;
 * a model that outputs probabilities attacked with ce or cw is explained
 * whatever the gradient. When nothing is wrong, buf is "" and the result is
 * NULL. UTF-8. */
const char *diag_explain(const struct diag_input *in, char *buf, size_t len);

/* The same with the layer norms of one image of a batched backward
 * (net_grad_norms_image: n_layers + 1) in place of the net's norms over the
 * whole batch, so each image is explained by its own gradient; in->net
 * still names the layers. NULL layer_norms skips the layer check. */
const char *diag_explain_image(const struct diag_input *in,
			       const double *layer_norms, char *buf, size_t len);

#endif
