/* batchnorm_kern_impl.h: batch-norm column-block kernels for one dtype and one instruction set
 * (included by batchnorm_impl.h once per ISA) and their table (batchnorm_kern.h): AF_KN(name) is
 * the ISA-suffixed name, AF_KATTR the function attribute (empty, or a GCC/Clang target attribute
 * for AVX2+FMA). */

/* Training forward on the column block [j0, j0 + w). */
AF_KATTR static void AF_KN(bn_train_block)(size_t m, size_t n, size_t j0, size_t w, const T *x,
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

/* Inference forward on the column block [j0, j0 + w). */
AF_KATTR static void AF_KN(bn_infer_block)(size_t m, size_t n, size_t j0, size_t w, const T *x,
                                           const T *gamma, const T *beta, const T *running_mean,
                                           const T *running_var, double eps, T *y)
{
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

/* Backward on the column block [j0, j0 + w). */
AF_KATTR static void AF_KN(bn_back_block)(size_t m, size_t n, size_t j0, size_t w, const T *x, const T *dy,
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

/* This ISA's table: af_bn_generic_<dtype> or af_bn_avx2_<dtype>. */
const AF_FN(af_bn_kern) AF_KN(af_bn) = {AF_KN(bn_train_block), AF_KN(bn_infer_block),
                                        AF_KN(bn_back_block)};
