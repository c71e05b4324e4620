/* shard.h - which images one shard of a sweep takes, for every command
 * that splits a range of images across jobs (attack, eval, audit): the
 * --shard I/N and --shard slurm options, the rule, and the %i/%n names of
 * the per-shard run logs. Never prints.
 *
 * The rule: the M images of a range [A, B) are cut into N contiguous
 * blocks whose sizes differ by at most one; shard I (0 <= I < N) takes
 * [A + floor(I*M/N), A + floor((I+1)*M/N)). Every image is in exactly one
 * shard, shards are balanced, and which image a shard holds depends only
 * on (A, B, I, N). What an image's attack computes never depends on the
 * shard (its seed is the run's --seed, not its position), so the union of
 * the N shards' results is the unsharded run's, for any N - exactly when
 * the shards run with the unsharded run's --batch (a batch changes only
 * the float rounding of the network's kernels, see advex attack --help).
 * A shard may be empty when N > M.
 *
 * --shard slurm: I = SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN (MIN
 * taken as 0 when unset), N = SLURM_ARRAY_TASK_COUNT. SLURM arrays may
 * start anywhere (--array=5-9 gives IDs 5..9, MIN 5, COUNT 5: shards
 * 0..4); an array with a step or gaps (--array=0-9:2, --array=1,4,7) has
 * MAX - MIN + 1 != COUNT and is refused, since its IDs would not number
 * the shards 0..N-1. */
#ifndef ADVEX_SHARD_H
#define ADVEX_SHARD_H

#include <stddef.h>

#include "status.h"

/* Most shards: far more than any job array, small enough for %i to stay
 * short. */
#define SHARD_MAX 1000000

struct shard {
	int i, n;	/* shard i of n; 0 of 1: everything */
};

/* "I/N" (0 <= I < N <= SHARD_MAX) or "slurm" (from the environment, see
 * above). ST_ERR_ARG with a one-line message naming the value or the
 * variable on bad input. */
enum status shard_parse(const char *text, struct shard *s, char *err);

/* The part [*lo, *hi) of [a, b) that shard s takes (the rule above). */
void shard_range(const struct shard *s, int a, int b, int *lo, int *hi);

/* 1 when image k of [a, b) belongs to shard s. */
int shard_owns(const struct shard *s, int a, int b, int k);

/* The path template tmpl with %i replaced by the shard's index, %n by the
 * shard count and %% by %, into buf (n bytes). Any other % sequence, or a
 * result that does not fit, is ST_ERR_ARG with a message. */
enum status shard_expand(const char *tmpl, const struct shard *s, char *buf,
			 size_t n, char *err);

#endif
