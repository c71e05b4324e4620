/* gradcheck.h - central differences of a net's cross-entropy, for the
 * tests that check backward against them (test_net, test_graph). */
#ifndef ADVEX_GRADCHECK_H
#define ADVEX_GRADCHECK_H

#include <math.h>

#include "loss.h"
#include "net.h"

/* ||a - b|| / ||b||. */
static inline double gradcheck_rel_l2(const double *a, const double *b, int n)
{
	double num = 0.0, den = 0.0;
	int i;

	for (i = 0; i < n; i++) {
		num += (a[i] - b[i]) * (a[i] - b[i]);
		den += b[i] * b[i];
	}
	return sqrt(num / (den > 0 ? den : 1e-300));
}

/* d loss / d *v by central differences, where *v is a pixel of x or a
 * parameter of n: (L(v + h) - L(v - h)) / 2h, cross-entropy toward target
 * on one image; *v is restored. */
static inline double gradcheck_central(struct net *n, float *v, double h,
				       const float *x, int n_classes,
				       int target)
{
	float keep = *v;
	double lp, lm;

	*v = keep + (float)h;
	lp = loss_ce(n_classes, net_forward(n, x, 1), target, NULL, NULL);
	*v = keep - (float)h;
	lm = loss_ce(n_classes, net_forward(n, x, 1), target, NULL, NULL);
	*v = keep;
	return (lp - lm) / (2 * h);
}

#endif
