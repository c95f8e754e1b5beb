/* gemm.c: GEMM entry points (PLACEHOLDER reference implementation; see issue "GEMM engine"). */
#include "annfast.h"
#include "internal.h"

#define AF_DTYPE_F32
#include "gemm_impl.h"
#define AF_DTYPE_F64
#include "gemm_impl.h"

af_status af_sgemm_ex(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *a,
                      size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc,
                      const af_epilogue *ep)
{
    return af_gemm_ex_f32(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ep);
}

af_status af_dgemm_ex(int ta, int tb, size_t m, size_t n, size_t k, double alpha, const double *a,
                      size_t lda, const double *b, size_t ldb, double beta, double *c, size_t ldc,
                      const af_epilogue *ep)
{
    return af_gemm_ex_f64(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ep);
}

af_status af_sgemm(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *a,
                   size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc)
{
    return af_gemm_ex_f32(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, NULL);
}

af_status af_dgemm(int ta, int tb, size_t m, size_t n, size_t k, double alpha, const double *a,
                   size_t lda, const double *b, size_t ldb, double beta, double *c, size_t ldc)
{
    return af_gemm_ex_f64(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, NULL);
}
