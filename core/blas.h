/* blas.h - the only door to OpenBLAS.
 *
 * Every matrix product in advex goes through blas_sgemm, so that a change of
 * BLAS, of threading or of instrumentation happens in one place.
 */
#ifndef ADVEX_BLAS_H
#define ADVEX_BLAS_H

/* Row-major C = alpha * op(A) * op(B) + beta * C, where op(A) is M x K and
 * op(B) is K x N; trans_a / trans_b non-zero mean "use the transpose". */
void blas_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
		const float *a, int lda, const float *b, int ldb, float beta,
		float *c, int ldc);

/* Number of threads OpenBLAS may use (>= 1). */
void blas_set_threads(int n);
int blas_get_threads(void);

#endif
