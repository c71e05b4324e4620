/* blas.c - thin wrapper over OpenBLAS (see blas.h for why). */
#include "blas.h"

#include <cblas.h>

#include "workers.h"

void blas_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
		const float *a, int lda, const float *b, int ldb, float beta,
		float *c, int ldc)
{
	cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
		    trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda,
		    b, ldb, beta, c, ldc);
}

void blas_sgemv(int trans, int m, int n, float alpha, const float *a,
		int lda, const float *x, float beta, float *y)
{
	cblas_sgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, m, n,
		    alpha, a, lda, x, 1, beta, y, 1);
}

/* ---- blas_sgemm_par ------------------------------------------------------ */

/* Pieces: a fixed number, whatever the number of threads, so that the
 * result does not depend on it. (OpenBLAS's kernels round the edges of a
 * product a little differently from its inside, so where the cuts fall
 * moves the last bits of some elements.) Enough for up to 8 threads, and
 * to let a thread that another process preempts hand its share to the
 * others; each piece re-reads the undivided operand once more. */
#define PAR_PIECES 8
/* Piece edges fall on multiples of this (the kernels' unroll sizes divide
 * it), so no piece is needlessly ragged. */
#define PAR_ALIGN 16

struct par_gemm {
	int trans_a, trans_b, m, n, k, lda, ldb, ldc;
	float alpha, beta;
	const float *a, *b;
	float *c;
	int by_rows;	/* cut the rows of C, else the columns */
	int step;	/* rows or columns per piece */
};

static void par_gemm_piece(void *ctx, int task, int thread)
{
	const struct par_gemm *p = ctx;
	int lo = task * p->step, len;

	(void)thread;
	if (p->by_rows) {
		len = p->m - lo < p->step ? p->m - lo : p->step;
		/* Rows of op(A): rows of A, or its columns when transposed. */
		blas_sgemm(p->trans_a, p->trans_b, len, p->n, p->k, p->alpha,
			   p->a + (p->trans_a ? (size_t)lo :
				   (size_t)lo * p->lda), p->lda,
			   p->b, p->ldb, p->beta, p->c + (size_t)lo * p->ldc,
			   p->ldc);
	} else {
		len = p->n - lo < p->step ? p->n - lo : p->step;
		blas_sgemm(p->trans_a, p->trans_b, p->m, len, p->k, p->alpha,
			   p->a, p->lda,
			   p->b + (p->trans_b ? (size_t)lo * p->ldb :
				   (size_t)lo), p->ldb,
			   p->beta, p->c + lo, p->ldc);
	}
}

void blas_sgemm_par(struct workers *wk, int trans_a, int trans_b, int m,
		    int n, int k, float alpha, const float *a, int lda,
		    const float *b, int ldb, float beta, float *c, int ldc)
{
	struct par_gemm p = {
		.trans_a = trans_a, .trans_b = trans_b, .m = m, .n = n, .k = k,
		.lda = lda, .ldb = ldb, .ldc = ldc, .alpha = alpha,
		.beta = beta, .a = a, .b = b, .c = c, .by_rows = m >= n,
	};
	int len = p.by_rows ? m : n, saved;

	if (m <= 0 || n <= 0)
		return;
	p.step = (len + PAR_PIECES - 1) / PAR_PIECES;
	p.step = (p.step + PAR_ALIGN - 1) / PAR_ALIGN * PAR_ALIGN;
	/* On a pool, single-threaded OpenBLAS even for one piece: a
	 * multi-threaded call would leave its threads spinning for a while,
	 * against ours. */
	saved = blas_serial_begin(wk);
	workers_run(wk, par_gemm_piece, &p, (len + p.step - 1) / p.step);
	blas_serial_end(saved);
}

/* ---- threads ------------------------------------------------------------- */

void blas_set_threads(int n)
{
	openblas_set_num_threads(n < 1 ? 1 : n);
}

int blas_get_threads(void)
{
	return openblas_get_num_threads();
}

int blas_serial_begin(const struct workers *wk)
{
	int saved;

	if (workers_count(wk) <= 1)
		return 0;
	saved = openblas_get_num_threads();
	if (saved != 1)
		openblas_set_num_threads(1);
	return saved;
}

void blas_serial_end(int saved)
{
	if (saved > 1)
		openblas_set_num_threads(saved);
}
