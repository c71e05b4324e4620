/* rng.h - a small seeded generator (xoshiro128+-style state seeded through
 * splitmix64), so that random weights, random starts and shuffles are
 * reproducible from one integer on every machine. */
#ifndef ADVEX_RNG_H
#define ADVEX_RNG_H

#include <stdint.h>

struct rng {
	uint64_t s[2];	/* state; never all zero */
};

void rng_seed(struct rng *r, uint64_t seed);
uint64_t rng_next(struct rng *r);
/* Uniform in [0, 1). */
double rng_uniform(struct rng *r);
/* Standard normal (Box-Muller). */
double rng_normal(struct rng *r);

#endif
