/* act_impl.h: activation forward/backward for one dtype (included by act.c; see dtype.h). */
#include "dtype_begin.h"

#define SELU_ALPHA ((T)1.6732632423543772848170429916717)
#define SELU_SCALE ((T)1.0507009873554804934193349852946)

/* y = f(x) for one row; softmax handled by the caller. */
static inline void AF_FN(act_row_fwd)(af_act act, T p, size_t n, const T *x, T *y)
{
    size_t j;
    switch (act) {
    case AF_ACT_LINEAR: for (j = 0; j < n; j++) y[j] = x[j]; break;
    /* sigma(x) = 1 / (1 + e^-x); e^-x overflows to inf for x << 0, giving 0, never NaN. */
    case AF_ACT_SIGMOID: for (j = 0; j < n; j++) y[j] = (T)1 / ((T)1 + VEXP(-x[j])); break;
    case AF_ACT_TANH: for (j = 0; j < n; j++) y[j] = TANH(x[j]); break;
    case AF_ACT_RELU: for (j = 0; j < n; j++) y[j] = x[j] > 0 ? x[j] : (T)0; break;
    case AF_ACT_LEAKY_RELU: for (j = 0; j < n; j++) y[j] = x[j] > 0 ? x[j] : p * x[j]; break;
    case AF_ACT_ELU: for (j = 0; j < n; j++) y[j] = x[j] > 0 ? x[j] : p * EXPM1(x[j]); break;
    case AF_ACT_SELU:
        for (j = 0; j < n; j++) y[j] = SELU_SCALE * (x[j] > 0 ? x[j] : SELU_ALPHA * EXPM1(x[j]));
        break;
    case AF_ACT_SOFTMAX: {
        /* softmax(x)_j = e^(x_j - max x) / sum_i e^(x_i - max x): shifting keeps exp <= 1. */
        T mx = n ? x[0] : (T)0, s = 0;
        for (j = 1; j < n; j++) mx = x[j] > mx ? x[j] : mx;
        for (j = 0; j < n; j++) y[j] = VEXP(x[j] - mx);
        for (j = 0; j < n; j++) s += y[j];
        T inv = (T)1 / s;
        for (j = 0; j < n; j++) y[j] *= inv;
        break;
    }
    default: break;
    }
}

/* dx = dy * f'(x) for one row. */
static inline void AF_FN(act_row_bwd)(af_act act, T p, size_t n, const T *x, const T *y,
                                      const T *dy, T *dx)
{
    size_t j;
    switch (act) {
    case AF_ACT_LINEAR: for (j = 0; j < n; j++) dx[j] = dy[j]; break;
    case AF_ACT_SIGMOID: for (j = 0; j < n; j++) dx[j] = dy[j] * (y[j] * ((T)1 - y[j])); break;
    case AF_ACT_TANH: for (j = 0; j < n; j++) dx[j] = dy[j] * ((T)1 - y[j] * y[j]); break;
    case AF_ACT_RELU: for (j = 0; j < n; j++) dx[j] = x[j] > 0 ? dy[j] : (T)0; break;
    case AF_ACT_LEAKY_RELU: for (j = 0; j < n; j++) dx[j] = x[j] > 0 ? dy[j] : p * dy[j]; break;
    /* elu'(x) = alpha e^x = y + alpha for x <= 0 */
    case AF_ACT_ELU: for (j = 0; j < n; j++) dx[j] = x[j] > 0 ? dy[j] : dy[j] * (y[j] + p); break;
    /* selu'(x) = scale alpha e^x = y + scale alpha for x <= 0 */
    case AF_ACT_SELU:
        for (j = 0; j < n; j++)
            dx[j] = x[j] > 0 ? dy[j] * SELU_SCALE : dy[j] * (y[j] + SELU_SCALE * SELU_ALPHA);
        break;
    case AF_ACT_SOFTMAX: {
        /* Jacobian-vector product: dx_j = y_j (dy_j - sum_i dy_i y_i) */
        T dot = 0;
        for (j = 0; j < n; j++) dot += dy[j] * y[j];
        for (j = 0; j < n; j++) dx[j] = y[j] * (dy[j] - dot);
        break;
    }
    default: break;
    }
}

af_status AF_FN(af_act_forward)(af_act act, T param, size_t m, size_t n,
                                const T *x, size_t ldx, T *y, size_t ldy)
{
    if ((unsigned)act >= AF_ACT_COUNT) return AF_EINVAL;
    if (m == 0 || n == 0) return AF_OK;
    if (!x || !y || ldx < n || ldy < n) return AF_EINVAL;
    size_t total;
    if (af_mul_size(m, ldx, &total) || af_mul_size(m, ldy, &total)) return AF_ESHAPE;
    int nt = (m * n >= AF_PAR_MIN) ? af_get_num_threads() : 1;
    (void)nt;
    #pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (size_t i = 0; i < m; i++) AF_FN(act_row_fwd)(act, param, n, x + i * ldx, y + i * ldy);
    return AF_OK;
}

af_status AF_FN(af_act_backward)(af_act act, T param, size_t m, size_t n,
                                 const T *x, const T *y, const T *dy, T *dx, size_t ld)
{
    if ((unsigned)act >= AF_ACT_COUNT) return AF_EINVAL;
    if (m == 0 || n == 0) return AF_OK;
    if (!x || !y || !dy || !dx || ld < n) return AF_EINVAL;
    size_t total;
    if (af_mul_size(m, ld, &total)) return AF_ESHAPE;
    int nt = (m * n >= AF_PAR_MIN) ? af_get_num_threads() : 1;
    (void)nt;
    #pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (size_t i = 0; i < m; i++) {
        size_t o = i * ld;
        AF_FN(act_row_bwd)(act, param, n, x + o, y + o, dy + o, dx + o);
    }
    return AF_OK;
}

/* Public row helpers for other engine files (the GEMM epilogue, the network step). */
void AF_FN(af_act_row_forward)(af_act act, T param, size_t n, const T *x, T *y)
{
    AF_FN(act_row_fwd)(act, param, n, x, y);
}

void AF_FN(af_act_row_backward)(af_act act, T param, size_t n, const T *x, const T *y,
                                const T *dy, T *dx)
{
    AF_FN(act_row_bwd)(act, param, n, x, y, dy, dx);
}

#undef SELU_ALPHA
#undef SELU_SCALE
#include "dtype_end.h"
