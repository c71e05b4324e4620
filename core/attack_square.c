/* attack_square.c - the Square attack, Linf (Andriushchenko, Croce,
 * Flammarion & Hein 2020, "Square Attack: a query-efficient black-box
 * adversarial attack via random search"), behind the method table of
 * attack_impl.h. It reads only the model's outputs: no backward while it
 * steps (the end point's attack_evaluate still takes a gradient, for the
 * diagnosis).
 *
 * The loss, minimised: untargeted the margin z_y - max_{i!=y} z_i,
 * targeted CE(z, t) (as the paper's code). The start: vertical stripes,
 * x0 + eps * s_{c,w} with one random sign per channel and column, clipped
 * to [0,1]. Each further query: a square window of side
 * s = round(sqrt(p * C*H*W / C)), clamped to [1, H-1], at a random corner
 * (row floor(u (H - s)), column floor(u (W - s))), set to x0 + eps * s_c
 * with one random sign per channel (drawn again until the window differs
 * from the accepted point's, at most 1000 times), everything else as the
 * accepted point; the candidate is accepted when its loss is lower.
 * p starts at 0.05 and halves on the paper's schedule of the query
 * fraction (p_selection). The attack stops at its first success.
 *
 * Random draws, in this order, from core/rng with the attack's seed:
 * C*W stripe signs (channel-major; u < 0.5 is -eps); per query the row,
 * the column, then C signs per try. tests/test_attacks_ref.py replays
 * them.
 */
#include <math.h>
#include <string.h>

#include "attack_impl.h"
#include "loss.h"
#include "rng.h"

#define SQUARE_P_INIT 0.05
#define SQUARE_MAX_TRIES 1000

enum { W_ACCEPTED };	/* work[]: the accepted point */

static double square_objective(struct attack *a, const float *x, const float *z,
				float *dout)
{
	int y = a->p.target >= 0 ? a->p.target : a->label, o = -1, i;

	(void)x;
	if (a->p.target >= 0)
		return loss_ce(a->k, z, y, NULL, dout);
	for (i = 0; i < a->k; i++) {
		dout[i] = 0.0f;
		if (i != y && (o < 0 || z[i] > z[o]))
			o = i;
	}
	dout[y] = 1.0f;
	dout[o] = -1.0f;
	return (double)z[y] - z[o];
}

static enum loss_mode square_report_mode(const struct attack *a)
{
	return a->p.target >= 0 ? LOSS_CE : LOSS_CW;
}

static double sign_draw(struct attack *a)
{
	return rng_uniform(&a->rng) < 0.5 ? -a->p.eps : a->p.eps;
}

static void square_reset(struct attack *a, int fresh)
{
	struct attack_square *s = &a->st.sq;
	size_t hw = (size_t)a->h * a->w;
	int c, r, col;

	s->it = 0;
	s->started = 0;
	if (!fresh)
		return;
	for (c = 0; c < a->c; c++)
		for (col = 0; col < a->w; col++) {
			double d = sign_draw(a);

			for (r = 0; r < a->h; r++) {
				size_t i = c * hw + (size_t)r * a->w + col;

				a->x_adv[i] = attack_clamp01((float)(a->x0[i] + d));
			}
		}
}

/* The paper's p_selection: p_init halved as the fraction of the budget
 * used passes 10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000 / 10000. */
static double p_selection(int it, int n_iters)
{
	static const int edge[] = { 10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000, 10000 };
	int t = (int)((double)it / n_iters * 10000), j;
	double p = SQUARE_P_INIT;

	for (j = 0; j < 9; j++)
		if (t > edge[j] && t <= edge[j + 1])
			return p / (double)(2 << j);
	return p;
}

/* The next candidate into x_adv, from the accepted point. */
static void draw_candidate(struct attack *a)
{
	struct attack_square *s = &a->st.sq;
	const float *best = a->work[W_ACCEPTED], *x0 = a->x0;
	size_t hw = (size_t)a->h * a->w;
	double p = p_selection(s->it, a->p.iters);
	int side = (int)nearbyint(sqrt(p * (double)a->n / a->c)), r0, c0, c, r, col, tries;

	if (side > a->h - 1)
		side = a->h - 1;
	if (side < 1)
		side = 1;
	r0 = (int)(rng_uniform(&a->rng) * (a->h - side));
	c0 = (int)(rng_uniform(&a->rng) * (a->w - side));
	memcpy(a->x_adv, best, sizeof(float) * a->n);
	for (tries = 0; tries < SQUARE_MAX_TRIES; tries++) {
		int changed = 0;

		for (c = 0; c < a->c; c++) {
			double d = sign_draw(a);

			for (r = r0; r < r0 + side; r++)
				for (col = c0; col < c0 + side; col++) {
					size_t i = c * hw + (size_t)r * a->w + col;

					a->x_adv[i] = attack_clamp01((float)(x0[i] + d));
					changed |= fabsf(a->x_adv[i] - best[i]) >= 1e-7f;
				}
		}
		if (changed)
			break;
	}
	s->it++;
}

static int square_update(struct attack *a, const struct attack_report *rep)
{
	struct attack_square *s = &a->st.sq;

	if (!s->started || rep->loss < s->loss_best) {
		s->started = 1;
		s->loss_best = rep->loss;
		memcpy(a->work[W_ACCEPTED], a->x_adv, sizeof(float) * a->n);
		if (rep->success)
			return 0;
	}
	draw_candidate(a);
	return 1;
}

static int square_needs_grad(const struct attack *a)
{
	(void)a;
	return 0;
}

/* iters queries: the start and iters - 1 candidates. */
static int square_total_iters(const struct attack *a)
{
	return a->p.iters - 1;
}

const struct attack_method attack_square_method = {
	.reset = square_reset,
	.objective = square_objective,
	.report_mode = square_report_mode,
	.update = square_update,
	.needs_grad = square_needs_grad,
	.total_iters = square_total_iters,
	.descends = 1,
	.returns_best = 1,
};
