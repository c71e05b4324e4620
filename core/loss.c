/* loss.c - cross-entropy on logits (see loss.h). */
#include "loss.h"

#include <math.h>

double loss_ce(int k, const float *z, int target, float *probs, float *dz)
{
	double m = z[0], sum = 0.0, lse;
	int i;

	for (i = 1; i < k; i++)
		if (z[i] > m)
			m = z[i];
	for (i = 0; i < k; i++)
		sum += exp((double)z[i] - m);
	lse = m + log(sum);
	for (i = 0; i < k; i++) {
		double p = exp((double)z[i] - lse);
		if (probs)
			probs[i] = (float)p;
		if (dz)
			dz[i] = (float)(p - (i == target ? 1.0 : 0.0));
	}
	return lse - z[target];
}
