/* batchnorm_split_impl.h: batch normalisation of one piece of a split batch (split.h), for one
 * dtype (included twice by batchnorm.c). The statistics are those of the WHOLE batch, from sums
 * the driver adds over the pieces (and processes) between two calls (layer.h, AF_SUMS_*):
 *
 * forward  PARTIAL  s = [m, sum_i (x_ij - K_j), sum_i (x_ij - K_j)^2]   (K: the running mean, the
 *                   same everywhere; the shift keeps the sum of squares free of cancellation)
 *          TOTAL    N, S1, S2 of the whole batch:  mean = K + S1 / N,
 *                   var = max(S2 / N - (S1 / N)^2, 0)  (biased, as the whole-batch kernel);
 *                   y = gamma (x - mean) / sqrt(var + eps) + beta; running statistics updated
 *                   where update_stats is set (the driver's last piece, after all read K)
 * backward PARTIAL  s = [m, sum_i dy_ij, sum_i dy_ij xhat_ij]
 *          TOTAL    N, dbeta, dgamma of the whole batch:
 *                   dx = gamma invstd / N (N dy - dbeta - xhat dgamma); the parameter gradient
 *                   written is this piece's own sums (the driver adds the pieces').
 * Sums in double over the rows in order, columns in fixed blocks in parallel: identical for any
 * thread count. A piece may be empty (m = 0). */
#include "dtype_begin.h"

/* Runs body(j0, w) over column blocks of AF_COL_BLOCK in parallel (m x n work). */
#define BN_SPLIT_BLOCKS(m, n, body)                                                               \
    do {                                                                                          \
        size_t nb_ = ((n) + AF_COL_BLOCK - 1) / AF_COL_BLOCK;                                     \
        int nt = ((m) * (n) >= AF_PAR_MIN && nb_ > 1) ? af_get_num_threads() : 1;                \
        (void)nt;                                                                                 \
        _Pragma("omp parallel for schedule(static) num_threads(nt) if (nt > 1)")                 \
        for (size_t b_ = 0; b_ < nb_; b_++) {                                                     \
            AF_FP_SCOPE(); /* OpenMP workers too (fpenv.h) */                                     \
            size_t j0 = b_ * AF_COL_BLOCK, w = (n) - j0 < AF_COL_BLOCK ? (n) - j0 : AF_COL_BLOCK; \
            body;                                                                                 \
        }                                                                                         \
    } while (0)

/* Forward partial sums on one column block: s1_j = sum_i (x_ij - K_j), s2_j = sum_i (x_ij - K_j)^2. */
static void AF_FN(bn_part_fwd)(size_t m, size_t n, size_t j0, size_t w, const T *x, const T *K,
                               double *s1, double *s2)
{
    double a[AF_COL_BLOCK], b[AF_COL_BLOCK], k[AF_COL_BLOCK];
    for (size_t j = 0; j < w; j++) {
        a[j] = b[j] = 0.0;
        k[j] = (double)K[j0 + j];
    }
    for (size_t i = 0; i < m; i++) {
        const T *xr = x + i * n + j0;
        for (size_t j = 0; j < w; j++) {
            double d = (double)xr[j] - k[j];
            a[j] += d;
            b[j] += d * d;
        }
    }
    for (size_t j = 0; j < w; j++) {
        s1[j0 + j] = a[j];
        s2[j0 + j] = b[j];
    }
}

/* Backward partial sums on one column block: sb_j = sum_i dy_ij, sg_j = sum_i dy_ij xhat_ij. */
static void AF_FN(bn_part_bwd)(size_t m, size_t n, size_t j0, size_t w, const T *x, const T *dy,
                               const T *mean, const T *invstd, double *sb, double *sg)
{
    double a[AF_COL_BLOCK], b[AF_COL_BLOCK];
    T mt[AF_COL_BLOCK], is[AF_COL_BLOCK];
    for (size_t j = 0; j < w; j++) {
        a[j] = b[j] = 0.0;
        mt[j] = mean[j0 + j];
        is[j] = invstd[j0 + j];
    }
    for (size_t i = 0; i < m; i++) {
        const T *xr = x + i * n + j0, *dr = dy + i * n + j0;
        for (size_t j = 0; j < w; j++) {
            T xh = (xr[j] - mt[j]) * is[j];
            a[j] += (double)dr[j];
            b[j] += (double)dr[j] * (double)xh;
        }
    }
    for (size_t j = 0; j < w; j++) {
        sb[j0 + j] = a[j];
        sg[j0 + j] = b[j];
    }
}

/* Whole-batch statistics from the totals, the running update, and y on one column block. */
static void AF_FN(bn_total_fwd)(size_t m, size_t n, size_t j0, size_t w, const double *tot,
                                const T *x, const T *gamma, const T *beta, double eps,
                                double momentum, T *rmean, T *rvar, int update, T *mean,
                                T *invstd, T *y)
{
    double N = tot[0];
    const double *S1 = tot + 1, *S2 = tot + 1 + n;
    T mt[AF_COL_BLOCK], sc[AF_COL_BLOCK], sh[AF_COL_BLOCK];
    for (size_t j = 0; j < w; j++) {
        size_t c = j0 + j;
        double d = S1[c] / N, mu = (double)rmean[c] + d, var = S2[c] / N - d * d;
        if (var < 0) var = 0;   /* rounding below zero (a NaN stays NaN) */
        double is = 1.0 / sqrt(var + eps);
        mean[c] = (T)mu;
        invstd[c] = (T)is;
        if (update) {
            rmean[c] = (T)(momentum * (double)rmean[c] + (1.0 - momentum) * mu);
            rvar[c] = (T)(momentum * (double)rvar[c] + (1.0 - momentum) * var);
        }
        mt[j] = (T)mu;
        sc[j] = gamma[c] * (T)is;   /* y = (x - mean) * (gamma invstd) + beta */
        sh[j] = beta[c];
    }
    for (size_t i = 0; i < m; i++) {
        const T *xr = x + i * n + j0;
        T *yr = y + i * n + j0;
        for (size_t j = 0; j < w; j++) yr[j] = (xr[j] - mt[j]) * sc[j] + sh[j];
    }
}

/* dx = k (N dy - dbeta - xhat dgamma), k = gamma invstd / N, on one column block. */
static void AF_FN(bn_total_bwd)(size_t m, size_t n, size_t j0, size_t w, const double *tot,
                                const T *x, const T *dy, const T *gamma, const T *mean,
                                const T *invstd, T *dx)
{
    const T N = (T)tot[0];
    const double *SB = tot + 1, *SG = tot + 1 + n;
    T mt[AF_COL_BLOCK], is[AF_COL_BLOCK], k[AF_COL_BLOCK], db[AF_COL_BLOCK], dg[AF_COL_BLOCK];
    for (size_t j = 0; j < w; j++) {
        size_t c = j0 + j;
        mt[j] = mean[c];
        is[j] = invstd[c];
        db[j] = (T)SB[c];
        dg[j] = (T)SG[c];
        k[j] = gamma[c] * is[j] / N;
    }
    for (size_t i = 0; i < m; i++) {
        const T *xr = x + i * n + j0, *dr = dy + i * n + j0;
        T *o = dx + i * n + j0;
        for (size_t j = 0; j < w; j++) {
            T xh = (xr[j] - mt[j]) * is[j];
            o[j] = k[j] * (N * dr[j] - db[j] - xh * dg[j]);
        }
    }
}

static af_status AF_FN(batchnorm_forward_split)(const af_op_args *a)
{
    const af_batchnorm_cfg *c = (const af_batchnorm_cfg *)a->cfg;
    size_t m = af_rows(a->in_shape, a->batch), n = af_shape_last(a->in_shape);
    const T *x = (const T *)a->x[0], *gamma = (const T *)a->param, *beta = gamma + n;
    T *rmean = (T *)a->stat, *rvar = rmean + n, *mean = (T *)a->aux, *invstd = mean + n;
    double *s = a->sums;
    if (!s || !a->training) return AF_EINVAL;
    if (a->sums_phase == AF_SUMS_PARTIAL) {
        s[0] = (double)m;
        BN_SPLIT_BLOCKS(m, n, AF_FN(bn_part_fwd)(m, n, j0, w, x, rmean, s + 1, s + 1 + n));
        return AF_OK;
    }
    if (!(s[0] > 0)) return AF_ESHAPE;   /* a batch without samples has no statistics */
    int upd = a->update_stats;
    BN_SPLIT_BLOCKS(m, n, AF_FN(bn_total_fwd)(m, n, j0, w, s, x, gamma, beta, c->eps, c->momentum,
                                              rmean, rvar, upd, mean, invstd, (T *)a->y));
    return AF_OK;
}

static af_status AF_FN(batchnorm_backward_split)(const af_op_args *a)
{
    size_t m = af_rows(a->in_shape, a->batch), n = af_shape_last(a->in_shape);
    const T *x = (const T *)a->x[0], *gamma = (const T *)a->param;
    const T *mean = (const T *)a->aux, *invstd = mean + n;
    T *dy = (T *)a->dy;
    double *s = a->sums;
    if (!s || !a->training) return AF_EINVAL;
    if (a->sums_phase == AF_SUMS_PARTIAL) {
        s[0] = (double)m;
        BN_SPLIT_BLOCKS(m, n, AF_FN(bn_part_bwd)(m, n, j0, w, x, dy, mean, invstd, s + 1, s + 1 + n));
        return AF_OK;
    }
    if (!(s[0] > 0) || !a->sums_part) return AF_EINVAL;
    if (a->dx[0]) {
        /* dx straight into the input's delta when it is written, else in place in dy then added */
        T *dx = a->dx_acc[0] ? dy : (T *)a->dx[0];
        BN_SPLIT_BLOCKS(m, n, AF_FN(bn_total_bwd)(m, n, j0, w, s, x, dy, gamma, mean, invstd, dx));
        if (a->dx_acc[0]) AF_FN(af_copy_add)(m * n, dx, (T *)a->dx[0], 1);
    }
    /* this piece's share of dgamma, dbeta (the driver adds the pieces' gradients) */
    const double *own = a->sums_part;
    T *gr = (T *)a->grad;
    for (size_t j = 0; j < n; j++) {
        T dg = (T)own[1 + n + j], db = (T)own[1 + j];
        gr[j] = a->grad_acc ? gr[j] + dg : dg;
        gr[n + j] = a->grad_acc ? gr[n + j] + db : db;
    }
    return AF_OK;
}

#undef BN_SPLIT_BLOCKS
#include "dtype_end.h"
