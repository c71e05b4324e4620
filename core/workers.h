/* workers.h - a small persistent thread pool for the kernels.
 *
 * Why advex has its own: at batch 1 a VGG step is ~700 small matrix
 * products. Left to OpenBLAS, each one is split across its threads, which
 * hand off and yield to each other every time; most of the second core
 * went to the scheduler. Instead, OpenBLAS runs single-threaded while
 * these threads run whole, independent products (and the transforms
 * around them) side by side: one hand-off per phase of a layer.
 *
 * A pool of n threads is the caller plus n - 1 threads started by
 * workers_new, which wait between runs (spinning briefly, then asleep on a
 * condition variable). workers_run hands out the tasks of one run one at
 * a time, so a thread that the system preempts holds up at most the task
 * it is in: the others, the caller included, take the rest.
 *
 * Nothing is allocated and nothing global is touched after workers_new.
 * One pool serves one calling thread at a time (runs do not nest). The
 * pool's threads block every signal, so signals reach the program's own
 * threads only.
 */
#ifndef ADVEX_WORKERS_H
#define ADVEX_WORKERS_H

struct workers;

/* One task of a run: task in [0, ntasks); thread in [0, workers_count)
 * names the thread that runs it (0 is the caller), so that a task can use
 * per-thread scratch. No two tasks run on the same thread at once. */
typedef void workers_fn(void *ctx, int task, int thread);

/* A pool of nthreads threads in all, the caller included (nthreads < 1
 * counts as 1: no threads started). NULL when out of memory or when a
 * thread cannot be started. */
struct workers *workers_new(int nthreads);

/* Stops and joins the threads. NULL is a no-op. */
void workers_free(struct workers *w);

/* Threads in the pool, the caller included; 1 for NULL. */
int workers_count(const struct workers *w);

/* fn(ctx, i, thread) for every i in [0, ntasks), in no fixed order and on
 * any of the pool's threads; returns when all have returned, with their
 * writes visible to the caller. w NULL (or a pool of 1): all on the
 * calling thread, in order, thread 0. */
void workers_run(struct workers *w, workers_fn *fn, void *ctx, int ntasks);

/* A run over count items in ranges: about per_thread tasks per thread (one
 * task on a pool of 1), each of *step items; returns the number of tasks.
 * The kernels split this way so that a preempted thread holds up little. */
int workers_split(const struct workers *w, int count, int per_thread, int *step);

/* Task `task`'s items [*lo, *hi) of count, in ranges of step. */
static inline void workers_range(int task, int step, int count, int *lo,
				 int *hi)
{
	*lo = task * step < count ? task * step : count;
	*hi = count - *lo > step ? *lo + step : count;
}

#endif
