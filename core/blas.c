/* blas.c - thin wrapper over cblas_sgemm (see blas.h for why). */
#include "blas.h"

#include <cblas.h>

void blas_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
		const float *a, int lda, const float *b, int ldb, float beta,
		float *c, int ldc)
{
	cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
		    trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda,
		    b, ldb, beta, c, ldc);
}

void blas_set_threads(int n)
{
	openblas_set_num_threads(n < 1 ? 1 : n);
}

int blas_get_threads(void)
{
	return openblas_get_num_threads();
}
