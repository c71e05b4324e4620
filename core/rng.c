/* rng.c - xoroshiro128+ seeded with splitmix64 (see rng.h). */
#include "rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void rng_seed(struct rng *r, uint64_t seed)
{
	r->s[0] = splitmix64(&seed);
	r->s[1] = splitmix64(&seed);
	if (!r->s[0] && !r->s[1])
		r->s[1] = 1;
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t rng_next(struct rng *r)
{
	uint64_t s0 = r->s[0], s1 = r->s[1], out = s0 + s1;

	s1 ^= s0;
	r->s[0] = rotl(s0, 24) ^ s1 ^ (s1 << 16);
	r->s[1] = rotl(s1, 37);
	return out;
}

double rng_uniform(struct rng *r)
{
	/* top 53 bits: the low bits of xoroshiro128+ are weaker */
	return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

double rng_normal(struct rng *r)
{
	double u1 = rng_uniform(r), u2 = rng_uniform(r);

	if (u1 < 1e-300)
		u1 = 1e-300;
	return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
