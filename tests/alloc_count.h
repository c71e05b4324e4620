/* alloc_count.h - count the allocations a test's code makes, to check that
 * a step allocates nothing. The test program links with
 * -Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc, so every call
 * from our objects lands here first. Include it in exactly one file of a
 * test program (it defines the wrappers). alloc_fail_at makes the
 * allocation with that count fail (NULL), to test out-of-memory paths. */
#ifndef ADVEX_ALLOC_COUNT_H
#define ADVEX_ALLOC_COUNT_H

#include <stddef.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);

static long alloc_count;	/* test-only counter: the wrap hooks have no context */
static long alloc_fail_at = -1;	/* the alloc_count value that fails */
static size_t alloc_largest;	/* the largest request seen (reset it freely) */

static void alloc_note(size_t n)
{
	if (n > alloc_largest)
		alloc_largest = n;
}

void *__wrap_malloc(size_t n)
{
	if (++alloc_count == alloc_fail_at)
		return NULL;
	alloc_note(n);
	return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t m)
{
	if (++alloc_count == alloc_fail_at)
		return NULL;
	alloc_note(m && n > (size_t)-1 / m ? (size_t)-1 : n * m);
	return __real_calloc(n, m);
}

void *__wrap_realloc(void *p, size_t n)
{
	if (++alloc_count == alloc_fail_at)
		return NULL;
	alloc_note(n);
	return __real_realloc(p, n);
}

#endif
