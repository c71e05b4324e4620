/* attack_square.c - the Square attack, Linf and L2 (Andriushchenko,
 * Croce, Flammarion & Hein 2020, "Square Attack: a query-efficient
 * black-box adversarial attack via random search"), behind the method
 * table of attack_impl.h. It reads only the model's outputs: no backward
 * while it steps (the end point's attack_evaluate still takes a gradient,
 * for the diagnosis).
 *
 * Both norms: the loss, minimised: untargeted the margin z_y - max_{i!=y}
 * z_i, targeted CE(z, t) (as the paper's code). A candidate is accepted
 * when its loss is lower than the accepted point's; the attack stops at
 * its first success. p starts at p_init and halves on the paper's
 * schedule of the query fraction (p_selection, the same for both norms);
 * p_init is the paper's: 0.05 for Linf, 0.1 for L2.
 *
 * Linf. The start: vertical stripes, x0 + eps * s_{c,w} with one random
 * sign per channel and column, clipped to [0,1]. Each further query: a
 * square window of side s = round(sqrt(p * C*H*W / C)), clamped to
 * [1, H-1], at a random corner (row floor(u (H - s)), column
 * floor(u (W - s))), set to x0 + eps * s_c with one random sign per
 * channel (drawn again until the window differs from the accepted
 * point's, at most 1000 times), everything else as the accepted point.
 * Draws, in this order, from core/rng with the attack's seed: C*W stripe
 * signs (channel-major; u < 0.5 is -eps); per query the row, the column,
 * then C signs per try.
 *
 * L2 (the paper's Algorithm 3, as the authors' square_attack_l2 writes
 * it). The pattern M(s) of a window of side s ("meta-square"): its top
 * s/2 rows are R(s/2, s), its bottom s - s/2 rows -R(s - s/2, s), each
 * half scaled to unit L2 norm, then the whole to unit norm; transposed
 * when a draw u > 0.5. R(a, b) is a sum of centred squares: cell (i, j)
 * holds the sum over k = max(|i - a/2|, |j - b/2|) .. max(a/2, b/2) of
 * 1/(k+1)^2. The start: blocks of side s0 = H/5 (at least 1) tiled from
 * row and column (H - 5 s0)/2, H/s0 rows by W/s0 columns of blocks (a
 * block that overruns the image is cut), block b of channel c holding
 * sign_{b,c} * M(s0); this delta is scaled to L2 norm eps, added to x0 and
 * clipped to [0,1]. Each further query, with d = accepted - x0 (in
 * double from the float32 points): s = max(round(sqrt(p * C*H*W / C)),
 * 3), plus 1 if even, then clamped to [1, min(H, W) - 1]; window 1 at row
 * floor(u (H - s)), column floor(u (W - s)); window 2 the same way; per
 * channel c the new window 1 is n_c = sign_c * M(s) + d_c|w1 /
 * (1e-10 + ||d_c|w1||), rescaled to L2 norm sqrt(max(eps^2 - ||d||^2, 0) /
 * C + ||d_c|w1 u w2||^2) (the mass of both windows and the unused
 * budget), then window 2 of d is zeroed and window 1 set to n_c (window
 * 1 wins where they overlap); the candidate is x0 + eps d / ||d||,
 * clipped to [0,1]: on the sphere of radius eps before the clip, inside
 * the ball after it. A zero d (a degenerate image) gives x0.
 * Draws, in this order: per start block (row-major) one transpose draw
 * then C signs (u < 0.5 is -1); per query window 1's row and column,
 * window 2's row and column, one transpose draw, C signs.
 *
 * Both are replayed by tests/attacksref.py (tests/test_attacks_ref.py).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attack_impl.h"
#include "loss.h"
#include "rng.h"

#define SQUARE_P_INIT 0.05	/* Linf; the paper's values */
#define SQUARE_P_INIT_L2 0.1
#define SQUARE_L2_MIN_SIDE 3
#define SQUARE_MAX_TRIES 1000

enum { W_ACCEPTED };	/* work[]: the accepted point */

static void l2_start(struct attack *a);
static void l2_candidate(struct attack *a);

static double square_objective(struct attack *a, const float *x, const float *z,
				float *dout)
{
	(void)x;
	if (a->p.target >= 0)
		return loss_ce(a->k, z, a->p.target, NULL, dout);
	return loss_margin(a->k, z, a->label, dout);
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
	if (a->p.norm == ATTACK_L2) {
		l2_start(a);
		return;
	}
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
static double p_selection(double p, int it, int n_iters)
{
	static const int edge[] = { 10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000, 10000 };
	int t = (int)((double)it / n_iters * 10000), j;

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
	double p = p_selection(SQUARE_P_INIT, s->it, a->p.iters);
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


/* ---- L2 ----------------------------------------------------------------------------- */

/* Cell (i, j) of R(rows, cols), the sum of centred squares: the squares
 * of half-side k = max(|i - rows/2|, |j - cols/2|) .. K - 1 each add
 * 1/(k+1)^2, in that order (as the authors' loop adds them). */
static double rect_cell(int rows, int cols, int i, int j)
{
	int di = abs(i - rows / 2), dj = abs(j - cols / 2);
	int k = di > dj ? di : dj, kmax = (rows / 2 > cols / 2 ? rows / 2 : cols / 2) + 1;
	double v = 0.0;

	for (; k < kmax; k++)
		v += 1.0 / ((double)(k + 1) * (k + 1));
	return v;
}

static double rect_norm(int rows, int cols)
{
	double ss = 0.0, v;
	int i, j;

	for (i = 0; i < rows; i++)
		for (j = 0; j < cols; j++) {
			v = rect_cell(rows, cols, i, j);
			ss += v * v;
		}
	return sqrt(ss);
}

/* M(s), the meta-square, transposed or not: norms precomputed so a
 * cell costs one rect_cell. */
struct meta {
	int s, tr;
	double n_top, n_bot;	/* L2 norms of R(s/2, s), R(s - s/2, s) */
	double n_all;		/* of the two halves once each is unit */
};

static double meta_half(const struct meta *m, int i, int j)
{
	int top = m->s / 2;

	if (i < top)
		return rect_cell(top, m->s, i, j) / m->n_top;
	return -rect_cell(m->s - top, m->s, i - top, j) / m->n_bot;
}

static void meta_init(struct meta *m, int s, int tr)
{
	double ss = 0.0, v;
	int i, j;

	m->s = s;
	m->tr = tr;
	m->n_top = s / 2 ? rect_norm(s / 2, s) : 1.0;
	m->n_bot = rect_norm(s - s / 2, s);
	m->n_all = 1.0;
	for (i = 0; i < s; i++)
		for (j = 0; j < s; j++) {
			v = meta_half(m, i, j);
			ss += v * v;
		}
	m->n_all = sqrt(ss);
}

static double meta_cell(const struct meta *m, int i, int j)
{
	return (m->tr ? meta_half(m, j, i) : meta_half(m, i, j)) / m->n_all;
}

static double unit_sign(struct attack *a)
{
	return rng_uniform(&a->rng) < 0.5 ? -1.0 : 1.0;
}

/* The start's blocks: side, first row/column, count per axis. */
struct l2_blocks {
	int s, off, nr, nc;
};

static struct l2_blocks l2_blocks(const struct attack *a)
{
	struct l2_blocks b;

	b.s = a->h / 5 > 0 ? a->h / 5 : 1;
	b.off = (a->h - 5 * b.s) / 2;
	b.nr = a->h / b.s;
	b.nc = a->w / b.s;
	return b;
}

/* One pass over the start's blocks with their draws: pass 0 sums the
 * delta's squares, pass 1 writes x0 + scale * delta (clipped). The
 * caller replays the generator between the passes, so nothing is
 * stored. */
static double l2_start_pass(struct attack *a, const struct l2_blocks *b,
			    const struct meta *m, int pass, double scale)
{
	size_t hw = (size_t)a->h * a->w;
	double ss = 0.0;
	int br, bc, c, i, j;

	for (br = 0; br < b->nr; br++)
		for (bc = 0; bc < b->nc; bc++) {
			struct meta mt = *m;
			int r0 = b->off + br * b->s, c0 = b->off + bc * b->s;

			mt.tr = rng_uniform(&a->rng) > 0.5;
			for (c = 0; c < a->c; c++) {
				double sg = unit_sign(a);

				for (i = 0; i < b->s && r0 + i < a->h; i++)
					for (j = 0; j < b->s && c0 + j < a->w; j++) {
						size_t at = c * hw + (size_t)(r0 + i) * a->w + c0 + j;
						double d = sg * meta_cell(&mt, i, j);

						if (pass)
							a->x_adv[at] = attack_clamp01(
								(float)(a->x0[at] + scale * d));
						else
							ss += d * d;
					}
			}
		}
	return ss;
}

static void l2_start(struct attack *a)
{
	struct l2_blocks b = l2_blocks(a);
	struct rng before = a->rng;
	struct meta m;
	double nrm;

	meta_init(&m, b.s, 0);
	memcpy(a->x_adv, a->x0, sizeof(float) * a->n);
	nrm = sqrt(l2_start_pass(a, &b, &m, 0, 0.0));
	a->rng = before;
	l2_start_pass(a, &b, &m, 1, nrm > 0.0 ? a->p.eps / nrm : 0.0);
}

/* A query's windows and pattern. */
struct l2_query {
	int s, r1, c1, r2, c2;
	struct meta m;
};

static int in_win(int r, int col, int r0, int c0, int s)
{
	return r >= r0 && r < r0 + s && col >= c0 && col < c0 + s;
}

/* Channel c's new window 1, its factor: n_c's cell (i, j) is
 * sg * M(i, j) + d(i, j) * inv, times scale. */
struct l2_chan {
	double sg, inv, scale;
};

/* The accepted delta d at pixel `at`, in double. */
static double old_delta(const struct attack *a, size_t at)
{
	return (double)a->work[W_ACCEPTED][at] - a->x0[at];
}

static struct l2_chan l2_channel(struct attack *a, const struct l2_query *q, int c,
				 double d2_all)
{
	size_t hw = (size_t)a->h * a->w, base = c * hw;
	double w1 = 0.0, both = 0.0, nn = 0.0, d, v;
	struct l2_chan ch;
	int r, col;

	for (r = 0; r < a->h; r++)
		for (col = 0; col < a->w; col++) {
			int in1 = in_win(r, col, q->r1, q->c1, q->s);

			if (!in1 && !in_win(r, col, q->r2, q->c2, q->s))
				continue;
			d = old_delta(a, base + (size_t)r * a->w + col);
			both += d * d;
			if (in1)
				w1 += d * d;
		}
	ch.sg = unit_sign(a);
	ch.inv = 1.0 / (1e-10 + sqrt(w1));
	for (r = 0; r < q->s; r++)
		for (col = 0; col < q->s; col++) {
			d = old_delta(a, base + (size_t)(q->r1 + r) * a->w + q->c1 + col);
			v = ch.sg * meta_cell(&q->m, r, col) + d * ch.inv;
			nn += v * v;
		}
	v = a->p.eps * a->p.eps - d2_all;
	ch.scale = nn > 0.0 ? sqrt((v > 0.0 ? v : 0.0) / a->c + both) / sqrt(nn) : 0.0;
	return ch;
}

/* The new delta at (c, r, col): window 1 n_c, window 2 zero, else d. */
static double new_delta(const struct attack *a, const struct l2_query *q,
			const struct l2_chan *ch, int c, int r, int col)
{
	size_t at = c * (size_t)a->h * a->w + (size_t)r * a->w + col;

	if (in_win(r, col, q->r1, q->c1, q->s))
		return ch->scale * (ch->sg * meta_cell(&q->m, r - q->r1, col - q->c1) +
				    old_delta(a, at) * ch->inv);
	if (in_win(r, col, q->r2, q->c2, q->s))
		return 0.0;
	return old_delta(a, at);
}

/* The channels' new deltas, for pass 0 their sum of squares, for pass 1
 * written as x0 + scale * delta (clipped) into x_adv. */
static double l2_candidate_pass(struct attack *a, const struct l2_query *q,
				double d2_all, int pass, double scale)
{
	size_t hw = (size_t)a->h * a->w;
	double ss = 0.0, d;
	int c, r, col;

	for (c = 0; c < a->c; c++) {
		struct l2_chan ch = l2_channel(a, q, c, d2_all);

		for (r = 0; r < a->h; r++)
			for (col = 0; col < a->w; col++) {
				size_t at = c * hw + (size_t)r * a->w + col;

				d = new_delta(a, q, &ch, c, r, col);
				if (pass)
					a->x_adv[at] = attack_clamp01((float)(a->x0[at] + scale * d));
				else
					ss += d * d;
			}
	}
	return ss;
}

static void l2_candidate(struct attack *a)
{
	struct attack_square *s = &a->st.sq;
	double p = p_selection(SQUARE_P_INIT_L2, s->it, a->p.iters), d2 = 0.0, d, nrm;
	int lim = (a->h < a->w ? a->h : a->w) - 1;
	struct l2_query q;
	struct rng before;
	size_t i;

	q.s = (int)nearbyint(sqrt(p * (double)a->n / a->c));
	if (q.s < SQUARE_L2_MIN_SIDE)
		q.s = SQUARE_L2_MIN_SIDE;
	q.s += q.s % 2 == 0;
	if (q.s > lim)
		q.s = lim;
	if (q.s < 1)
		q.s = 1;
	q.r1 = (int)(rng_uniform(&a->rng) * (a->h - q.s));
	q.c1 = (int)(rng_uniform(&a->rng) * (a->w - q.s));
	q.r2 = (int)(rng_uniform(&a->rng) * (a->h - q.s));
	q.c2 = (int)(rng_uniform(&a->rng) * (a->w - q.s));
	meta_init(&q.m, q.s, rng_uniform(&a->rng) > 0.5);
	for (i = 0; i < a->n; i++) {
		d = old_delta(a, i);
		d2 += d * d;
	}
	before = a->rng;
	nrm = sqrt(l2_candidate_pass(a, &q, d2, 0, 0.0));
	a->rng = before;
	l2_candidate_pass(a, &q, d2, 1, nrm > 0.0 ? a->p.eps / nrm : 0.0);
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
	if (a->p.norm == ATTACK_L2)
		l2_candidate(a);
	else
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
