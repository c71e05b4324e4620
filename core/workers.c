/* workers.c - the kernels' thread pool (see workers.h).
 *
 * A run is published through one 64-bit "ticket": the run's generation in
 * the high half, the next unclaimed task in the low half. Threads claim a
 * task with a compare-and-swap on the whole ticket, so a claim can only
 * succeed for the run it read the parameters of. Between runs the caller
 * first marks the ticket closed, then writes the next run's parameters,
 * then opens the new generation (a seqlock): a thread that wakes late and
 * reads half-written parameters fails its claim, because the ticket it
 * read no longer matches.
 *
 * The caller waits only for the tasks to be done, not for every thread to
 * have looked: a worker that is asleep or preempted when a run starts
 * simply finds it finished.
 *
 * Waiting, on both sides, spins for a short while (WK_SPIN_NS) before
 * sleeping on a condition variable: the phases of a layer follow each
 * other within microseconds, far less than a sleep/wake round trip, but a
 * worker must not burn a core while the caller is elsewhere (loss, I/O,
 * other processes on a shared machine).
 */
#include "workers.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

/* How long a waiting thread spins before it sleeps. Longer than the gaps
 * between the runs of a layer, shorter than most gaps between layers.
 * Measured on 2 cores with a VGG16 step (forward + backward, ~100 runs):
 * idle, sleeping at once cost ~2 ms a step more than spinning 20-100 us
 * (1 ms of spin saved 1 ms more); with another process busy on one core,
 * 20-50 us was best and 1 ms of spin cost 25 ms a step, the spinning
 * worker taking the only free core from the caller. */
#define WK_SPIN_NS 50000L

/* Low half of the ticket while the caller rewrites the run parameters. */
#define WK_CLOSED 0xffffffffu

#if defined(__x86_64__) || defined(__i386__)
#define WK_PAUSE() __builtin_ia32_pause()
#else
#define WK_PAUSE() ((void)0)
#endif

struct wk_thread {
	struct workers *pool;
	int index;		/* 1 .. n-1; the caller is 0 */
};

struct workers {
	int n;			/* threads, the caller included */
	int started;		/* threads running (for cleanup) */
	pthread_t *tid;		/* n - 1 */
	struct wk_thread *arg;	/* n - 1 */
	pthread_mutex_t mu;
	pthread_cond_t wake;	/* workers sleep here between runs */
	pthread_cond_t done;	/* the caller sleeps here for the last task */
	/* The run: written by the caller only while the ticket is closed,
	 * atomics (relaxed) because late workers may read them meanwhile. */
	_Atomic(workers_fn *) fn;
	_Atomic(void *) ctx;
	atomic_int ntasks;
	atomic_int stop;
	atomic_int sleepers;	/* workers in (or going into) cond_wait */
	/* On their own cache lines: every claim and completion writes one. */
	_Alignas(64) _Atomic uint64_t ticket;
	_Alignas(64) atomic_int finished; /* tasks of this run completed */
};

static uint32_t wk_gen(uint64_t t)
{
	return (uint32_t)(t >> 32);
}

static uint32_t wk_next(uint64_t t)
{
	return (uint32_t)t;
}

static long wk_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* Spin until cond(p, arg) is non-zero, for at most WK_SPIN_NS. Returns non-zero when the condition came true. The clock is
 * read every 64 pauses only: it costs more than a pause. */
static int wk_spin(int (*cond)(struct workers *, uint32_t),
		   struct workers *p, uint32_t arg)
{
	long t0 = 0;
	int i;

	for (i = 0;; i++) {
		if (cond(p, arg))
			return 1;
		if ((i & 63) == 0) {
			long t = wk_now_ns();

			if (i == 0)
				t0 = t;
			else if (t - t0 > WK_SPIN_NS)
				return 0;
		}
		WK_PAUSE();
	}
}

/* Claim and run tasks of generation gen until none is left. thread: the
 * runner's index. */
static void wk_work(struct workers *p, uint32_t gen, int thread)
{
	for (;;) {
		uint64_t t = atomic_load_explicit(&p->ticket,
						  memory_order_acquire);
		workers_fn *fn;
		void *ctx;
		int nt;

		if (wk_gen(t) != gen || wk_next(t) == WK_CLOSED)
			return;
		fn = atomic_load_explicit(&p->fn, memory_order_relaxed);
		ctx = atomic_load_explicit(&p->ctx, memory_order_relaxed);
		nt = atomic_load_explicit(&p->ntasks, memory_order_relaxed);
		/* Pairs with the release fence after closing: if any value
		 * above is the next run's, the ticket below has changed and
		 * the claim fails. */
		atomic_thread_fence(memory_order_acquire);
		if (wk_next(t) >= (uint32_t)nt)
			return;
		if (!atomic_compare_exchange_weak_explicit(
			    &p->ticket, &t, t + 1, memory_order_acq_rel,
			    memory_order_relaxed))
			continue;
		fn(ctx, (int)wk_next(t), thread);
		if (atomic_fetch_add_explicit(&p->finished, 1,
					      memory_order_acq_rel) + 1 == nt &&
		    thread != 0) {
			/* The last task: the caller may be asleep. */
			pthread_mutex_lock(&p->mu);
			pthread_cond_signal(&p->done);
			pthread_mutex_unlock(&p->mu);
		}
	}
}

/* seq_cst: see the sleepers protocol in wk_main (on x86 a plain load). */
static int wk_new_run(struct workers *p, uint32_t seen)
{
	return wk_gen(atomic_load(&p->ticket)) != seen ||
	       atomic_load_explicit(&p->stop, memory_order_relaxed);
}

/* A worker: wait for a generation other than the last one seen, work on
 * it, repeat until stopped. */
static void *wk_main(void *arg)
{
	struct wk_thread *self = arg;
	struct workers *p = self->pool;
	uint32_t seen = 0;

	for (;;) {
		if (!wk_spin(wk_new_run, p, seen)) {
			pthread_mutex_lock(&p->mu);
			/* sleepers before the ticket check, the caller
			 * stores the ticket before reading sleepers (both
			 * seq_cst): one of the two sees the other. */
			atomic_fetch_add(&p->sleepers, 1);
			while (!wk_new_run(p, seen))
				pthread_cond_wait(&p->wake, &p->mu);
			atomic_fetch_sub(&p->sleepers, 1);
			pthread_mutex_unlock(&p->mu);
		}
		if (atomic_load_explicit(&p->stop, memory_order_relaxed))
			return NULL;
		seen = wk_gen(atomic_load_explicit(&p->ticket,
						   memory_order_acquire));
		wk_work(p, seen, self->index);
	}
}

static int wk_all_done(struct workers *p, uint32_t nt)
{
	return (uint32_t)atomic_load_explicit(&p->finished,
					      memory_order_acquire) == nt;
}

void workers_run(struct workers *w, workers_fn *fn, void *ctx, int ntasks)
{
	uint64_t t;
	uint32_t gen;
	int i;

	if (ntasks <= 0)
		return;
	if (!w || w->n == 1 || ntasks == 1) {
		for (i = 0; i < ntasks; i++)
			fn(ctx, i, 0);
		return;
	}
	/* Close the finished run, rewrite the parameters, open the next. */
	t = atomic_load_explicit(&w->ticket, memory_order_relaxed);
	gen = wk_gen(t) + 1;
	atomic_store_explicit(&w->ticket, (t & ~(uint64_t)WK_CLOSED) | WK_CLOSED,
			      memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	atomic_store_explicit(&w->fn, fn, memory_order_relaxed);
	atomic_store_explicit(&w->ctx, ctx, memory_order_relaxed);
	atomic_store_explicit(&w->ntasks, ntasks, memory_order_relaxed);
	atomic_store_explicit(&w->finished, 0, memory_order_relaxed);
	atomic_store(&w->ticket, (uint64_t)gen << 32);
	if (atomic_load(&w->sleepers)) {
		pthread_mutex_lock(&w->mu);
		pthread_cond_broadcast(&w->wake);
		pthread_mutex_unlock(&w->mu);
	}
	wk_work(w, gen, 0);
	if (wk_spin(wk_all_done, w, (uint32_t)ntasks))
		return;
	pthread_mutex_lock(&w->mu);
	while (!wk_all_done(w, (uint32_t)ntasks))
		pthread_cond_wait(&w->done, &w->mu);
	pthread_mutex_unlock(&w->mu);
}

int workers_count(const struct workers *w)
{
	return w ? w->n : 1;
}

/* Stop and join the threads started so far, free everything. */
static void wk_destroy(struct workers *w)
{
	int i;

	pthread_mutex_lock(&w->mu);
	atomic_store(&w->stop, 1);
	pthread_cond_broadcast(&w->wake);
	pthread_mutex_unlock(&w->mu);
	for (i = 0; i < w->started; i++)
		pthread_join(w->tid[i], NULL);
	pthread_cond_destroy(&w->done);
	pthread_cond_destroy(&w->wake);
	pthread_mutex_destroy(&w->mu);
	free(w->tid);
	free(w->arg);
	free(w);
}

struct workers *workers_new(int nthreads)
{
	sigset_t all, old;
	struct workers *w;
	int i;

	if (nthreads < 1)
		nthreads = 1;
	/* aligned_alloc: the _Alignas members need their cache lines. */
	w = aligned_alloc(_Alignof(struct workers), sizeof *w);
	if (!w)
		return NULL;
	w->n = nthreads;
	w->started = 0;
	w->tid = calloc((size_t)nthreads, sizeof *w->tid);
	w->arg = calloc((size_t)nthreads, sizeof *w->arg);
	atomic_init(&w->fn, NULL);
	atomic_init(&w->ctx, NULL);
	atomic_init(&w->ntasks, 0);
	atomic_init(&w->stop, 0);
	atomic_init(&w->sleepers, 0);
	atomic_init(&w->ticket, WK_CLOSED);
	atomic_init(&w->finished, 0);
	if (!w->tid || !w->arg) {
		free(w->tid);
		free(w->arg);
		free(w);
		return NULL;
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->wake, NULL);
	pthread_cond_init(&w->done, NULL);
	/* The threads start with every signal blocked (they inherit the
	 * mask): signals must reach the program's own threads, e.g. a
	 * terminal UI's SIGWINCH and SIGINT, never a worker. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < nthreads - 1; i++) {
		w->arg[i].pool = w;
		w->arg[i].index = i + 1;
		if (pthread_create(&w->tid[i], NULL, wk_main, &w->arg[i]))
			break;
		w->started++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (w->started < nthreads - 1) {
		wk_destroy(w);
		return NULL;
	}
	return w;
}

void workers_free(struct workers *w)
{
	if (w)
		wk_destroy(w);
}

int workers_split(const struct workers *w, int count, int per_thread, int *step)
{
	int threads = workers_count(w);
	int pieces = threads == 1 ? 1 : threads * per_thread;

	*step = count > 0 ? (count + pieces - 1) / pieces : 1;
	return (count + *step - 1) / *step;
}
