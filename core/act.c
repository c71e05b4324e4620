/* act.c - ReLU, softmax and log-softmax, forward and backward (see act.h).
 *
 * Softmax and log-softmax subtract the row max before exp: exp(z - max) is
 * at most 1, so logits in the thousands (common after an attack pushes
 * them) neither overflow nor turn into inf/inf = NaN.
 */
#include "act.h"

#include <math.h>

/* x (n), y (n); x == y allowed */
void act_relu_forward(const float *x, float *y, size_t n)
{
	size_t i;

	/* written so that a NaN passes through, as in PyTorch: diagnostics
	 * must see a NaN where it starts, not a silent zero */
	for (i = 0; i < n; i++)
		y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

/* y (n) forward output, dy (n), dx (n); dy == dx allowed */
void act_relu_backward(const float *y, const float *dy, float *dx, size_t n)
{
	size_t i;

	/* Both loads unconditional, so that the select compiles to a
	 * vector blend: a branch on the sign mispredicted on about half the
	 * units (1.1 ms for a 64x96x96 layer, against 0.1 ms). */
	for (i = 0; i < n; i++) {
		float g = dy[i];

		dx[i] = y[i] > 0.0f ? g : 0.0f;
	}
}

static float act_row_max(int k, const float *z)
{
	float m = z[0];
	int j;

	for (j = 1; j < k; j++)
		if (z[j] > m)
			m = z[j];
	return m;
}

/* z (N,K), p (N,K); z == p allowed */
void act_softmax_forward(int n, int k, const float *z, float *p)
{
	int i, j;

	for (i = 0; i < n; i++) {
		const float *zi = z + (size_t)i * k;
		float *pi = p + (size_t)i * k;
		float m = act_row_max(k, zi), sum = 0.0f, inv;

		for (j = 0; j < k; j++) {
			pi[j] = expf(zi[j] - m);
			sum += pi[j];
		}
		/* sum >= 1: the max element contributes exp(0). */
		inv = 1.0f / sum;
		for (j = 0; j < k; j++)
			pi[j] *= inv;
	}
}

/* p (N,K) forward output, dp (N,K), dz (N,K); dp == dz allowed */
void act_softmax_backward(int n, int k, const float *p, const float *dp,
			  float *dz)
{
	int i, j;

	for (i = 0; i < n; i++) {
		const float *pi = p + (size_t)i * k, *dpi = dp + (size_t)i * k;
		float *dzi = dz + (size_t)i * k;
		float dot = 0.0f;

		for (j = 0; j < k; j++)
			dot += dpi[j] * pi[j];
		for (j = 0; j < k; j++)
			dzi[j] = pi[j] * (dpi[j] - dot);
	}
}

/* z (N,K), lp (N,K); z == lp allowed */
void act_log_softmax_forward(int n, int k, const float *z, float *lp)
{
	int i, j;

	for (i = 0; i < n; i++) {
		const float *zi = z + (size_t)i * k;
		float *lpi = lp + (size_t)i * k;
		float m = act_row_max(k, zi), sum = 0.0f, log_sum;

		for (j = 0; j < k; j++)
			sum += expf(zi[j] - m);
		log_sum = logf(sum);
		/* (z - m) - log_sum, not z - (m + log_sum): with large logits
		 * the latter rounds at the scale of m and loses the small
		 * log-probabilities of the likely classes. */
		for (j = 0; j < k; j++)
			lpi[j] = (zi[j] - m) - log_sum;
	}
}

/* lp (N,K) forward output, dlp (N,K), dz (N,K); dlp == dz allowed */
void act_log_softmax_backward(int n, int k, const float *lp, const float *dlp,
			      float *dz)
{
	int i, j;

	for (i = 0; i < n; i++) {
		const float *lpi = lp + (size_t)i * k, *dlpi = dlp + (size_t)i * k;
		float *dzi = dz + (size_t)i * k;
		float sum = 0.0f;

		for (j = 0; j < k; j++)
			sum += dlpi[j];
		for (j = 0; j < k; j++)
			dzi[j] = dlpi[j] - expf(lpi[j]) * sum;
	}
}

/* Leaky ReLU, alpha > 0: the sign of y is the sign of x, so backward reads
 * the output like ReLU does. */
void act_leaky_forward(float alpha, const float *x, float *y, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		y[i] = x[i] > 0.0f ? x[i] : x[i] * alpha;
}

void act_leaky_backward(float alpha, const float *y, const float *dy,
			float *dx, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		float g = dy[i];

		dx[i] = y[i] > 0.0f ? g : g * alpha;
	}
}

/* Clip (ReLU6 = clip to [0, 6]); a NaN passes through as in PyTorch's
 * hardtanh. The gradient passes strictly inside (lo, hi), PyTorch's rule. */
void act_clip_forward(float lo, float hi, const float *x, float *y, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		y[i] = x[i] < lo ? lo : x[i] > hi ? hi : x[i];
}

void act_clip_backward(float lo, float hi, const float *y, const float *dy,
		       float *dx, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		float g = dy[i];

		dx[i] = y[i] > lo && y[i] < hi ? g : 0.0f;
	}
}

void act_sigmoid_forward(const float *x, float *y, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		y[i] = 1.0f / (1.0f + expf(-x[i]));
}

void act_sigmoid_backward(const float *y, const float *dy, float *dx,
			  size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		dx[i] = dy[i] * y[i] * (1.0f - y[i]);
}

void act_tanh_forward(const float *x, float *y, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		y[i] = tanhf(x[i]);
}

void act_tanh_backward(const float *y, const float *dy, float *dx, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}
