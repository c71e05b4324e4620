/* splitmix.h - the kernel tests' generator: splitmix64, small and
 * deterministic, the same stream on every platform (not core/rng, whose
 * stream would change the tests' data). */
#ifndef ADVEX_TESTS_SPLITMIX_H
#define ADVEX_TESTS_SPLITMIX_H

#include <stdint.h>

struct splitmix {
	uint64_t s;
};

static inline uint64_t splitmix_next(struct splitmix *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [-1, 1), 24 bits so the value is exact in float. */
static inline float splitmix_uniform(struct splitmix *r)
{
	return (float)((double)(splitmix_next(r) >> 40) / 8388608.0 - 1.0);
}

#endif
