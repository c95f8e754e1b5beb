/* batchnorm_impl.h: batch normalisation for one dtype (included twice by batchnorm.c). */
#include "dtype_begin.h"

/* Training forward on the column block [j0, j0 + w). */
static void AF_FN(bn_train_block)(size_t m, size_t n, size_t j0, size_t w, const T *x,
                                  const T *gamma, const T *beta, double eps, double momentum,
                                  int unbiased, T *rmean, T *rvar, T *mean, T *invstd, T *y)
{
    double s[AF_BN_COLS], mu[AF_BN_COLS];
    T mt[AF_BN_COLS], sc[AF_BN_COLS], sh[AF_BN_COLS];
    size_t i, j;
    /* mean_j = sum_i x_ij / m */
    for (j = 0; j < w; j++) s[j] = 0.0;
    for (i = 0; i < m; i++) {
        const T *xr = x + i * n + j0;
        for (j = 0; j < w; j++) s[j] += (double)xr[j];
    }
    for (j = 0; j < w; j++) mu[j] = s[j] / (double)m;
    /* var_j = sum_i (x_ij - mean_j)^2 / m   (second pass: no cancellation) */
    for (j = 0; j < w; j++) s[j] = 0.0;
    for (i = 0; i < m; i++) {
        const T *xr = x + i * n + j0;
        for (j = 0; j < w; j++) {
            double d = (double)xr[j] - mu[j];
            s[j] += d * d;
        }
    }
    for (j = 0; j < w; j++) {
        double var = s[j] / (double)m;
        double is = 1.0 / sqrt(var + eps);
        mean[j0 + j] = (T)mu[j];
        invstd[j0 + j] = (T)is;
        if (rmean) {
            double vr = (unbiased && m > 1) ? var * (double)m / (double)(m - 1) : var;
            rmean[j0 + j] = (T)(momentum * (double)rmean[j0 + j] + (1.0 - momentum) * mu[j]);
            rvar[j0 + j] = (T)(momentum * (double)rvar[j0 + j] + (1.0 - momentum) * vr);
        }
        mt[j] = (T)mu[j];
        /* y = (x - mean) * (gamma invstd) + beta */
        sc[j] = (gamma ? gamma[j0 + j] : (T)1) * (T)is;
        sh[j] = beta ? beta[j0 + j] : (T)0;
    }
    for (i = 0; i < m; i++) {
        const T *xr = x + i * n + j0;
        T *yr = y + i * n + j0;
        for (j = 0; j < w; j++) yr[j] = (xr[j] - mt[j]) * sc[j] + sh[j];
    }
}

af_status AF_FN(af_bn_forward_train)(size_t m, size_t n, const T *x, const T *gamma, const T *beta,
                                     double eps, double momentum, int unbiased_running_var,
                                     T *running_mean, T *running_var, T *mean, T *invstd, T *y)
{
    if (!bn_params_ok(eps, momentum)) return AF_EINVAL;
    if (bn_check_sizes(m, n)) return AF_ESHAPE;
    if (n == 0) return AF_OK;
    if (m == 0) return AF_ESHAPE; /* an empty batch has no statistics */
    if (!x || !mean || !invstd || !y) return AF_EINVAL;
    if ((running_mean == NULL) != (running_var == NULL)) return AF_EINVAL;
    size_t nb = (n + AF_BN_COLS - 1) / AF_BN_COLS;
    int nt = (m * n >= AF_PAR_MIN && nb > 1) ? af_get_num_threads() : 1;
    (void)nt;
    #pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (size_t b = 0; b < nb; b++) {
        size_t j0 = b * AF_BN_COLS;
        size_t w = n - j0 < AF_BN_COLS ? n - j0 : AF_BN_COLS;
        AF_FN(bn_train_block)(m, n, j0, w, x, gamma, beta, eps, momentum, unbiased_running_var,
                              running_mean, running_var, mean, invstd, y);
    }
    return AF_OK;
}

af_status AF_FN(af_bn_forward_infer)(size_t m, size_t n, const T *x, const T *gamma, const T *beta,
                                     const T *running_mean, const T *running_var, double eps, T *y)
{
    if (!bn_params_ok(eps, 0.0)) return AF_EINVAL;
    if (bn_check_sizes(m, n)) return AF_ESHAPE;
    if (m == 0 || n == 0) return AF_OK;
    if (!x || !running_mean || !running_var || !y) return AF_EINVAL;
    size_t nb = (n + AF_BN_COLS - 1) / AF_BN_COLS;
    int nt = (m * n >= AF_PAR_MIN && nb > 1) ? af_get_num_threads() : 1;
    (void)nt;
    #pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (size_t b = 0; b < nb; b++) {
        size_t j0 = b * AF_BN_COLS;
        size_t w = n - j0 < AF_BN_COLS ? n - j0 : AF_BN_COLS;
        T mt[AF_BN_COLS], sc[AF_BN_COLS], sh[AF_BN_COLS];
        /* y = (x - running_mean) * gamma / sqrt(running_var + eps) + beta */
        for (size_t j = 0; j < w; j++) {
            double is = 1.0 / sqrt((double)running_var[j0 + j] + eps);
            mt[j] = running_mean[j0 + j];
            sc[j] = (gamma ? gamma[j0 + j] : (T)1) * (T)is;
            sh[j] = beta ? beta[j0 + j] : (T)0;
        }
        for (size_t i = 0; i < m; i++) {
            const T *xr = x + i * n + j0;
            T *yr = y + i * n + j0;
            for (size_t j = 0; j < w; j++) yr[j] = (xr[j] - mt[j]) * sc[j] + sh[j];
        }
    }
    return AF_OK;
}

/* Backward on the column block [j0, j0 + w). */
static void AF_FN(bn_back_block)(size_t m, size_t n, size_t j0, size_t w, const T *x, const T *dy,
                                 const T *gamma, const T *mean, const T *invstd, T *dx, T *dgamma,
                                 T *dbeta)
{
    double sb[AF_BN_COLS], sg[AF_BN_COLS];
    T mt[AF_BN_COLS], is[AF_BN_COLS], k[AF_BN_COLS], db[AF_BN_COLS], dg[AF_BN_COLS];
    const T mm = (T)m;
    size_t i, j;
    for (j = 0; j < w; j++) {
        sb[j] = 0.0;
        sg[j] = 0.0;
        mt[j] = mean[j0 + j];
        is[j] = invstd[j0 + j];
    }
    /* dbeta_j = sum_i dy_ij;  dgamma_j = sum_i dy_ij xhat_ij */
    for (i = 0; i < m; i++) {
        const T *xr = x + i * n + j0, *dr = dy + i * n + j0;
        for (j = 0; j < w; j++) {
            T xh = (xr[j] - mt[j]) * is[j];
            sb[j] += (double)dr[j];
            sg[j] += (double)dr[j] * (double)xh;
        }
    }
    for (j = 0; j < w; j++) {
        db[j] = (T)sb[j];
        dg[j] = (T)sg[j];
        if (dbeta) dbeta[j0 + j] = db[j];
        if (dgamma) dgamma[j0 + j] = dg[j];
        /* k_j = gamma_j invstd_j / m */
        k[j] = (gamma ? gamma[j0 + j] : (T)1) * is[j] / mm;
    }
    /* dx_ij = k_j (m dy_ij - dbeta_j - xhat_ij dgamma_j) */
    for (i = 0; i < m; i++) {
        const T *xr = x + i * n + j0, *dr = dy + i * n + j0;
        T *dxr = dx + i * n + j0;
        for (j = 0; j < w; j++) {
            T xh = (xr[j] - mt[j]) * is[j];
            dxr[j] = k[j] * (mm * dr[j] - db[j] - xh * dg[j]);
        }
    }
}

af_status AF_FN(af_bn_backward)(size_t m, size_t n, const T *x, const T *dy, const T *gamma,
                                const T *mean, const T *invstd, T *dx, T *dgamma, T *dbeta)
{
    if (bn_check_sizes(m, n)) return AF_ESHAPE;
    if (n == 0) return AF_OK;
    if (m == 0) return AF_ESHAPE;
    if (!x || !dy || !mean || !invstd || !dx) return AF_EINVAL;
    size_t nb = (n + AF_BN_COLS - 1) / AF_BN_COLS;
    int nt = (m * n >= AF_PAR_MIN && nb > 1) ? af_get_num_threads() : 1;
    (void)nt;
    #pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (size_t b = 0; b < nb; b++) {
        size_t j0 = b * AF_BN_COLS;
        size_t w = n - j0 < AF_BN_COLS ? n - j0 : AF_BN_COLS;
        AF_FN(bn_back_block)(m, n, j0, w, x, dy, gamma, mean, invstd, dx, dgamma, dbeta);
    }
    return AF_OK;
}

#include "dtype_end.h"
