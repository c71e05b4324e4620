/* diag.c - gradient statistics and the one-sentence diagnosis (see diag.h).
 *
 * The diagnosis checks the causes in order of certainty: facts the loss
 * reported about itself (a clip, an underflow, a flat C&W margin) name the
 * cause exactly; the per-layer norms locate a gradient that dies inside the
 * network; a generic sentence is the last resort, so a stuck attack is
 * never silent.
 */
#include "diag.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

double diag_hist_edge(int i)
{
	return pow(10.0, DIAG_HIST_LO_EXP + i);
}

/* Decade bin of a finite |g| in [edge[0], edge[DIAG_HIST_BINS]): the last
 * edge at or below it, found by bisection over the edges themselves (no
 * log10 rounding to correct, and no pow per component: this runs on every
 * pixel of every step). */
static int hist_bin(double a, const double *edge)
{
	int lo = 0, hi = DIAG_HIST_BINS;	/* edge[lo] <= a < edge[hi] */

	while (hi - lo > 1) {
		int mid = (lo + hi) / 2;

		if (a >= edge[mid])
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

void diag_grad_stats(const float *g, size_t n, struct diag_grad *out)
{
	double edge[DIAG_HIST_BINS + 1], lo, hi;
	size_t i;
	int b;

	for (b = 0; b <= DIAG_HIST_BINS; b++)
		edge[b] = diag_hist_edge(b);
	lo = edge[0];
	hi = edge[DIAG_HIST_BINS];
	memset(out, 0, sizeof *out);
	out->n = n;
	for (i = 0; i < n; i++) {
		double a = fabs((double)g[i]);

		if (isnan(a)) {
			out->n_nan++;
			continue;
		}
		if (isinf(a)) {
			out->n_inf++;
			continue;
		}
		out->l1 += a;
		out->l2 += a * a;
		if (a > out->linf)
			out->linf = a;
		if (a == 0.0)
			out->n_zero++;
		else if (a < lo)
			out->n_tiny++;
		else if (a >= hi)
			out->n_huge++;
		else
			out->hist[hist_bin(a, edge)]++;
	}
	out->l2 = sqrt(out->l2);
	out->zero_frac = n ? (double)out->n_zero / (double)n : 0.0;
}

void diag_perturbation(const float *x, const float *x0, size_t n,
		       double *linf, double *l2)
{
	double m = 0.0, s = 0.0;
	size_t i;

	for (i = 0; i < n; i++) {
		double d = fabs((double)x[i] - (double)x0[i]);

		if (d > m)
			m = d;
		s += d * d;
	}
	if (linf)
		*linf = m;
	if (l2)
		*l2 = sqrt(s);
}

/* ---- the diagnosis ------------------------------------------------------ */

struct explain {
	const struct diag_input *in;
	const double *norms;	/* layer norms of this image; NULL: none */
	const char *cls;	/* name of the loss's class */
	char *buf;
	size_t len;
};

static const char *explain_put(struct explain *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static const char *explain_put(struct explain *e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e->buf, e->len, fmt, ap);
	va_end(ap);
	return e->buf;
}

static const char *what_gradient(const struct diag_grad *g)
{
	if (g->n_nan)
		return "NaN";
	if (g->n_inf)
		return "infinite";
	return g->n_zero == g->n ? "zero" : "vanishing";
}

static const char *explain_probs_model(struct explain *e)
{
	const struct diag_input *in = e->in;

	return explain_put(e, "the model outputs probabilities (its last layer is a softmax), "
			   "so %s treats probabilities as logits (loss %.3f, input gradient "
			   "Linf %.3g); re-import it with advex-import, which strips the softmax",
			   loss_mode_name(in->loss->mode), in->loss_value, in->grad->linf);
}

static const char *explain_underflow(struct explain *e)
{
	const struct diag_input *in = e->in;
	char why[96];

	if (in->li->out_is_probs)
		snprintf(why, sizeof why, "in the model's own softmax");
	else
		snprintf(why, sizeof why, "its logit is %.3f below the largest",
			 in->li->logit_gap);
	return explain_put(e, "float32 softmax underflows: p(%s) = 0 (%s), so the loss "
			   "−ln p = %.3f and the gradient is %s; use --loss ce",
			   e->cls, why, in->loss_value, what_gradient(in->grad));
}

/* A Keras model whose final softmax advex-import split off: the user's own
 * loss ran on its probabilities, advex has the logits under them. */
static int from_keras_softmax(const struct diag_input *in)
{
	const struct net_info *ni = in->net ? net_get_info(in->net) : NULL;

	return ni && ni->removed_softmax && ni->source &&
	       !strncmp(ni->source, "keras:", 6);
}

static const char *explain_clip(struct explain *e)
{
	const struct diag_input *in = e->in;
	const char *fix = from_keras_softmax(in) ?
		"this Keras model ends in softmax; advex attacks the logits under it: "
		"use --loss ce" : "use --loss ce";

	if (in->li->cls_clipped < 0)
		return explain_put(e, "p(%s) = %.3g is below the clip ε = %.3g of probability "
				   "cross-entropy, so the loss is flat there (%.3f = −ln ε); %s",
				   e->cls, (double)in->li->p_cls, in->loss->clip_eps,
				   in->loss_value, fix);
	return explain_put(e, "p(%s) = %.7g is above the clip 1 − ε = %.7g of probability "
			   "cross-entropy, so the loss is flat there (%.3g = −ln(1 − ε)); %s",
			   e->cls, (double)in->li->p_cls,
			   (double)(1.0f - (float)in->loss->clip_eps), in->loss_value, fix);
}

static const char *explain_cw(struct explain *e)
{
	const struct diag_input *in = e->in;

	if (in->li->untargeted)
		return explain_put(e, "the C&W margin (best wrong class − %s) = %.3f is already "
				   "above κ = %.3g: the attack succeeded with margin, so the loss "
				   "is flat there; raise --kappa to push further",
				   e->cls, in->li->margin, in->loss->kappa);
	return explain_put(e, "the C&W margin (best other class − %s) = %.3f is already "
			   "below −κ = %.3g: the attack succeeded with margin, so the loss "
			   "is flat there; raise --kappa to push further",
			   e->cls, in->li->margin, 0.0 - in->loss->kappa);
}

/* The first boundary, from the loss toward the input, where the gradient
 * norm turns exactly 0; failing that, where it shrinks the most. */
static const char *explain_layers(struct explain *e)
{
	const struct diag_input *in = e->in;
	const double *norms = e->norms;
	int nl = net_get_info(in->net)->n_layers, i, worst = -1;
	double worst_ratio = 1.0;
	struct net_layer_info li;

	/* dLoss/doutput of these losses is O(1) unless the loss is saturated
	 * (p(target) = 1 to float precision): then the gradient is small from
	 * the very start, and blaming a layer inside would mislead. */
	if (norms[nl] < DIAG_SATURATED_OUT)
		return explain_put(e, "the loss is saturated at the model output: "
				   "||dLoss/doutput|| = %.3g (%s loss %.3g, p(%s) = %.3g), so "
				   "there is nothing left to descend here",
				   norms[nl], loss_mode_name(in->loss->mode), in->loss_value,
				   e->cls, (double)in->li->p_cls);
	/* node i's output norm is norms[li.out_norm] (in a chain, i + 1);
	 * where a tensor feeds several nodes no single entry holds it */
	for (i = nl - 1; i >= 0; i--) {
		int o;

		net_layer(in->net, i, &li);
		o = li.out_norm;
		if (o < 0)
			continue;
		if (norms[i] == 0.0 && norms[o] > 0.0)
			return explain_put(e, "the gradient dies inside the network at layer %d "
					   "(%s%s%s): its L2 norm is %.3g at the layer's output "
					   "and exactly 0 at its input%s",
					   i, li.kind, *li.name ? " " : "", li.name, norms[o],
					   li.op == NET_RELU ?
					   " (dead ReLUs: no unit there is active for this image)" : "");
		if (norms[o] > 0.0 && norms[i] / norms[o] < worst_ratio) {
			worst_ratio = norms[i] / norms[o];
			worst = i;
		}
	}
	if (worst < 0)
		return NULL;
	net_layer(in->net, worst, &li);
	return explain_put(e, "the gradient vanishes inside the network: its L2 norm is %.3g "
			   "at the output and %.3g at the input; the largest drop is at layer "
			   "%d (%s%s%s), from %.3g to %.3g",
			   norms[nl], norms[0], worst, li.kind, *li.name ? " " : "", li.name,
			   norms[li.out_norm], norms[worst]);
}

static const char *explain_generic(struct explain *e)
{
	const struct diag_input *in = e->in;
	const struct diag_grad *g = in->grad;

	if (g->n_nan || g->n_inf)
		return explain_put(e, "the input gradient has %zu NaN and %zu infinite "
				   "components (%s loss %.3f)",
				   g->n_nan, g->n_inf, loss_mode_name(in->loss->mode),
				   in->loss_value);
	return explain_put(e, "the input gradient is %s (Linf %.3g, %s loss %.3f) and "
			   "neither the loss nor the layer norms show why",
			   what_gradient(g), g->linf, loss_mode_name(in->loss->mode),
			   in->loss_value);
}

const char *diag_explain(const struct diag_input *in, char *buf, size_t len)
{
	return diag_explain_image(in, in->net ? net_grad_norms(in->net) : NULL,
				  buf, len);
}

const char *diag_explain_image(const struct diag_input *in,
			       const double *layer_norms, char *buf, size_t len)
{
	const struct loss_info *li = in->li;
	const struct diag_grad *g = in->grad;
	enum loss_mode mode = in->loss->mode;
	struct explain e = { in, layer_norms, NULL, buf, len };
	char name[32];
	int stuck;

	if (!buf || !len)
		return NULL;
	buf[0] = '\0';
	if (in->classes) {
		e.cls = in->classes[li->cls];
	} else {
		snprintf(name, sizeof name, "class %d", li->cls);
		e.cls = name;
	}
	if (li->out_is_probs && (mode == LOSS_CE || mode == LOSS_CW))
		return explain_probs_model(&e);
	stuck = g->n_nan || g->n_inf || g->linf < DIAG_VANISH_LINF;
	if (!stuck)
		return NULL;
	if (mode == LOSS_PROB_NAIVE && li->cls_underflow)
		return explain_underflow(&e);
	if (mode == LOSS_PROB_CE && li->cls_clipped)
		return explain_clip(&e);
	if (mode == LOSS_CW && li->flat)
		return explain_cw(&e);
	if (!g->n_nan && !g->n_inf && in->net && layer_norms && explain_layers(&e))
		return buf;
	return explain_generic(&e);
}

/* Counts of NaN and of +-inf in p (n floats). */
static void count_nonfinite(const float *p, size_t n, size_t *nan_n,
			    size_t *inf_n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (isnan(p[i]))
			(*nan_n)++;
		else if (isinf(p[i]))
			(*inf_n)++;
	}
}

size_t diag_nonfinite_params(struct net *n, int *first_layer, char *buf,
			     size_t len)
{
	const struct net_info *in = net_get_info(n);
	size_t nan_n = 0, inf_n = 0;
	int i;

	*first_layer = -1;
	if (len)
		buf[0] = '\0';
	for (i = 0; i < in->n_layers; i++) {
		struct net_param_view v;
		size_t before = nan_n + inf_n;

		net_layer_params(n, i, &v);
		if (v.w)
			count_nonfinite(v.w, v.nw, &nan_n, &inf_n);
		if (v.b)
			count_nonfinite(v.b, v.nb, &nan_n, &inf_n);
		if (*first_layer < 0 && nan_n + inf_n > before)
			*first_layer = i;
	}
	if (nan_n + inf_n && len) {
		struct net_layer_info li;

		net_layer(n, *first_layer, &li);
		snprintf(buf, len,
			 "the model's weights hold %zu NaN and %zu infinite "
			 "values of %zu (the first in layer %d, %s%s%s): every "
			 "output and gradient through them is meaningless",
			 nan_n, inf_n, in->n_params, *first_layer, li.kind,
			 li.id[0] && li.id[0] != '#' ? " " : "",
			 li.id[0] != '#' ? li.id : "");
	}
	return nan_n + inf_n;
}
