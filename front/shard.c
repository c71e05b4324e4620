/* shard.c - splitting a range of images across the jobs of a sweep (see
 * shard.h for the rule). */
#include "shard.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A whole decimal number in [lo, hi] from s, or -1. */
static long parse_count(const char *s, long lo, long hi)
{
	char *end;
	long v;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -1;
	return v;
}

static enum status from_slurm(struct shard *s, char *err)
{
	const char *id = getenv("SLURM_ARRAY_TASK_ID");
	const char *count = getenv("SLURM_ARRAY_TASK_COUNT");
	const char *min = getenv("SLURM_ARRAY_TASK_MIN");
	const char *max = getenv("SLURM_ARRAY_TASK_MAX");
	long vid, vcount, vmin = 0, vmax;

	if (!id || !count)
		return status_set(err, ST_ERR_ARG, "--shard slurm: SLURM_ARRAY_TASK_ID "
				  "and SLURM_ARRAY_TASK_COUNT are not set (not a "
				  "task of a SLURM job array: sbatch --array)");
	vid = parse_count(id, 0, 4L * SHARD_MAX);
	vcount = parse_count(count, 1, SHARD_MAX);
	if (vid < 0)
		return status_set(err, ST_ERR_ARG, "--shard slurm: SLURM_ARRAY_TASK_ID="
				  "'%.40s' is not a task id", id);
	if (vcount < 0)
		return status_set(err, ST_ERR_ARG, "--shard slurm: SLURM_ARRAY_TASK_COUNT="
				  "'%.40s' is not a count in 1..%d", count, SHARD_MAX);
	if (min && (vmin = parse_count(min, 0, 4L * SHARD_MAX)) < 0)
		return status_set(err, ST_ERR_ARG, "--shard slurm: SLURM_ARRAY_TASK_MIN="
				  "'%.40s' is not a task id", min);
	if (max && (vmax = parse_count(max, 0, 4L * SHARD_MAX)) >= 0 &&
	    vmax - vmin + 1 != vcount)
		return status_set(err, ST_ERR_ARG, "--shard slurm: the array's ids "
				  "%ld..%ld are not %ld consecutive numbers (a step or "
				  "a list in --array); use --array=0-%ld", vmin, vmax,
				  vcount, vcount - 1);
	if (vid < vmin || vid - vmin >= vcount)
		return status_set(err, ST_ERR_ARG, "--shard slurm: SLURM_ARRAY_TASK_ID "
				  "%ld is outside %ld..%ld", vid, vmin, vmin + vcount - 1);
	s->i = (int)(vid - vmin);
	s->n = (int)vcount;
	return ST_OK;
}

enum status shard_parse(const char *text, struct shard *s, char *err)
{
	const char *slash;
	char ibuf[32];
	long i, n;

	if (!strcmp(text, "slurm"))
		return from_slurm(s, err);
	slash = strchr(text, '/');
	if (!slash || (size_t)(slash - text) >= sizeof ibuf)
		return status_set(err, ST_ERR_ARG, "--shard '%.60s': want I/N (shard I "
				  "of N, 0 <= I < N) or slurm", text);
	memcpy(ibuf, text, (size_t)(slash - text));
	ibuf[slash - text] = 0;
	n = parse_count(slash + 1, 1, SHARD_MAX);
	i = parse_count(ibuf, 0, SHARD_MAX);
	if (n < 0 || i < 0)
		return status_set(err, ST_ERR_ARG, "--shard '%.60s': want I/N with "
				  "whole numbers, 1 <= N <= %d", text, SHARD_MAX);
	if (i >= n)
		return status_set(err, ST_ERR_ARG, "--shard '%.60s': I must be below "
				  "N (shards are numbered 0..%ld)", text, n - 1);
	s->i = (int)i;
	s->n = (int)n;
	return ST_OK;
}

/* floor(k*m/n) without overflow for m, n < 2^31 */
static int cut(int k, int m, int n)
{
	return (int)((long long)k * m / n);
}

void shard_range(const struct shard *s, int a, int b, int *lo, int *hi)
{
	int m = b > a ? b - a : 0;

	*lo = a + cut(s->i, m, s->n);
	*hi = a + cut(s->i + 1, m, s->n);
}

int shard_owns(const struct shard *s, int a, int b, int k)
{
	int lo, hi;

	shard_range(s, a, b, &lo, &hi);
	return k >= lo && k < hi;
}

enum status shard_expand(const char *tmpl, const struct shard *s, char *buf,
			 size_t n, char *err)
{
	size_t used = 0;
	const char *p;

	for (p = tmpl; *p; p++) {
		char piece[16];
		int w;

		if (*p != '%') {
			piece[0] = *p;
			piece[1] = 0;
		} else if (p[1] == 'i' || p[1] == 'n') {
			snprintf(piece, sizeof piece, "%d", p[1] == 'i' ? s->i : s->n);
			p++;
		} else if (p[1] == '%') {
			snprintf(piece, sizeof piece, "%%");
			p++;
		} else {
			return status_set(err, ST_ERR_ARG, "%.200s: '%%%c' is not %%i "
					  "(shard), %%n (shards) or %%%%", tmpl,
					  p[1] ? p[1] : ' ');
		}
		w = (int)strlen(piece);
		if (used + (size_t)w >= n)
			return status_set(err, ST_ERR_ARG, "%.200s: too long", tmpl);
		memcpy(buf + used, piece, (size_t)w);
		used += (size_t)w;
	}
	buf[used] = 0;
	return ST_OK;
}
