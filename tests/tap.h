/* tap.h - a few lines of TAP (Test Anything Protocol) for the C tests.
 * Every check prints "ok N - what was checked" or "not ok N - ...", so the
 * automake TAP driver and a reader both see each case. Header-only: the
 * state is one struct per test program, passed explicitly. */
#ifndef ADVEX_TAP_H
#define ADVEX_TAP_H

#include <stdarg.h>
#include <stdio.h>

struct tap {
	int n;		/* checks so far */
	int failed;	/* checks that failed */
};

static inline int tap_ok(struct tap *t, int cond, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static inline int tap_ok(struct tap *t, int cond, const char *fmt, ...)
{
	va_list ap;

	t->n++;
	if (!cond)
		t->failed++;
	printf("%sok %d - ", cond ? "" : "not ", t->n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	return cond;
}

static inline void tap_diag(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static inline void tap_diag(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* Print the plan and return the exit status. */
static inline int tap_done(struct tap *t)
{
	printf("1..%d\n", t->n);
	return t->failed ? 1 : 0;
}

#endif
