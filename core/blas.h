/* blas.h - the only door to OpenBLAS.
 *
 * Every matrix product in advex goes through here, so that a change of
 * BLAS, of threading or of instrumentation happens in one place.
 *
 * Threads: OpenBLAS has its own, which split every product between them.
 * That suits a few large products; advex's layers at batch 1 are many
 * small ones, which run faster whole and side by side on advex's own
 * threads (workers.h) while OpenBLAS runs single-threaded. The calls that
 * take a struct workers do that; NULL (or a pool of one thread) leaves the
 * threading to OpenBLAS as set by blas_set_threads.
 */
#ifndef ADVEX_BLAS_H
#define ADVEX_BLAS_H

struct workers;

/* Row-major C = alpha * op(A) * op(B) + beta * C, where op(A) is M x K and
 * op(B) is K x N; trans_a / trans_b non-zero mean "use the transpose". */
void blas_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
		const float *a, int lda, const float *b, int ldb, float beta,
		float *c, int ldc);

/* blas_sgemm cut into pieces along the rows or the columns of C (the
 * longer side, so that the operand every piece reads whole is the smaller
 * one), the pieces run on wk's threads. The cuts depend on the shape only,
 * never on the number of threads, and wk NULL runs the same pieces in
 * turn: the result is the same for any pool (given single-threaded
 * OpenBLAS, which a pool of more than one thread ensures). It may differ
 * from one uncut blas_sgemm in the last bits. */
void blas_sgemm_par(struct workers *wk, int trans_a, int trans_b, int m,
		    int n, int k, float alpha, const float *a, int lda,
		    const float *b, int ldb, float beta, float *c, int ldc);

/* Row-major y = alpha * op(A) x + beta * y, A is M x N (op(A) N x M when
 * trans is non-zero). One thread's worth; dense.c splits it. */
void blas_sgemv(int trans, int m, int n, float alpha, const float *a,
		int lda, const float *x, float beta, float *y);

/* Number of threads OpenBLAS may use (>= 1). */
void blas_set_threads(int n);
int blas_get_threads(void);

/* Around a section in which wk's threads call BLAS side by side: sets
 * OpenBLAS to one thread and returns the count to give blas_serial_end,
 * or does nothing (and returns 0) when wk has one thread. Switching is
 * cheap in OpenBLAS 0.3.21 (a variable, the worker threads stay parked). */
int blas_serial_begin(const struct workers *wk);
void blas_serial_end(int saved);

#endif
