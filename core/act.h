/* act.h - elementwise and row-wise activations: ReLU, leaky ReLU, clip,
 * sigmoid, tanh, softmax, log-softmax.
 * Rows are (N, K); softmax and log-softmax subtract the row max first. */
#ifndef ADVEX_ACT_H
#define ADVEX_ACT_H

#include <stddef.h>

/* y = max(x, 0); x == y allowed. */
void act_relu_forward(const float *x, float *y, size_t n);
/* dx = dy where y > 0, else 0; dy == dx allowed. y is the forward output. */
void act_relu_backward(const float *y, const float *dy, float *dx, size_t n);

void act_softmax_forward(int n, int k, const float *z, float *p);
/* dz = p * (dp - sum(dp * p)) per row; p is the forward output. */
void act_softmax_backward(int n, int k, const float *p, const float *dp,
			  float *dz);

void act_log_softmax_forward(int n, int k, const float *z, float *lp);
/* dz = dlp - exp(lp) * sum(dlp) per row; lp is the forward output. */
void act_log_softmax_backward(int n, int k, const float *lp, const float *dlp,
			      float *dz);

/* The graph's other activations; x == y and dy == dx allowed; backward
 * reads the forward output y. leaky: alpha > 0. clip: to [lo, hi]. */
void act_leaky_forward(float alpha, const float *x, float *y, size_t n);
void act_leaky_backward(float alpha, const float *y, const float *dy,
			float *dx, size_t n);
void act_clip_forward(float lo, float hi, const float *x, float *y, size_t n);
void act_clip_backward(float lo, float hi, const float *y, const float *dy,
		       float *dx, size_t n);
void act_sigmoid_forward(const float *x, float *y, size_t n);
void act_sigmoid_backward(const float *y, const float *dy, float *dx,
			  size_t n);
void act_tanh_forward(const float *x, float *y, size_t n);
void act_tanh_backward(const float *y, const float *dy, float *dx, size_t n);

#endif
