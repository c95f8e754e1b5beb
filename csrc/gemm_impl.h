/* gemm_impl.h: PLACEHOLDER reference GEMM for one dtype (replaced by the packed engine). */
#include "dtype_begin.h"

static af_status AF_FN(gemm_check)(int ta, int tb, size_t m, size_t n, size_t k, const T *a,
                                   size_t lda, const T *b, size_t ldb, const T *c, size_t ldc)
{
    size_t t;
    if (m == 0 || n == 0) return AF_OK;
    if (!c || ldc < n || af_mul_size(m, ldc, &t)) return AF_ESHAPE;
    if (k == 0) return AF_OK;
    if (!a || !b) return AF_EINVAL;
    if (lda < (ta ? m : k) || ldb < (tb ? k : n)) return AF_ESHAPE;
    if (af_mul_size(ta ? k : m, lda, &t) || af_mul_size(tb ? n : k, ldb, &t)) return AF_ESHAPE;
    return AF_OK;
}

af_status AF_FN(af_gemm_ex)(int ta, int tb, size_t m, size_t n, size_t k, T alpha, const T *a,
                            size_t lda, const T *b, size_t ldb, T beta, T *c, size_t ldc,
                            const af_epilogue *ep)
{
    af_status s = AF_FN(gemm_check)(ta, tb, m, n, k, a, lda, b, ldb, c, ldc);
    if (s != AF_OK || m == 0 || n == 0) return s;
    if (ep && ep->act == AF_ACT_SOFTMAX) return AF_EINVAL;
    for (size_t i = 0; i < m; i++) {
        T *ci = c + i * ldc;
        for (size_t j = 0; j < n; j++) {
            T acc = 0;
            for (size_t p = 0; p < k; p++)
                acc += (ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j]);
            ci[j] = beta == 0 ? alpha * acc : alpha * acc + beta * ci[j];
        }
        if (ep) {
            const T *bias = (const T *)ep->bias;
            if (bias) for (size_t j = 0; j < n; j++) ci[j] += bias[j];
            if (ep->act != AF_ACT_LINEAR) AF_FN(af_act_row_forward)(ep->act, (T)ep->act_param, n, ci, ci);
        }
    }
    return AF_OK;
}

#include "dtype_end.h"
