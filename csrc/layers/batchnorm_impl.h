/* batchnorm_impl.h (layer): batch-norm forward and backward for one dtype (batchnorm.c). */
#include "dtype_begin.h"

#if defined(AF_DTYPE_F32)
#define BN_TRAIN af_bn_forward_train_f32
#define BN_INFER af_bn_forward_infer_f32
#define BN_BACK af_bn_backward_f32
#else
#define BN_TRAIN af_bn_forward_train_f64
#define BN_INFER af_bn_forward_infer_f64
#define BN_BACK af_bn_backward_f64
#endif

static af_status AF_FN(batchnorm_forward)(const af_op_args *a)
{
    const af_batchnorm_cfg *c = (const af_batchnorm_cfg *)a->cfg;
    size_t m = af_rows(a->in_shape, a->batch), n = af_shape_last(a->in_shape);
    const T *gamma = (const T *)a->param, *beta = gamma + n;
    T *rmean = (T *)a->stat, *rvar = rmean + n;
    if (!a->training)
        return BN_INFER(m, n, (const T *)a->x[0], gamma, beta, rmean, rvar, c->eps, (T *)a->y);
    T *mean = (T *)a->aux, *invstd = mean + n;
    return BN_TRAIN(m, n, (const T *)a->x[0], gamma, beta, c->eps, c->momentum, 0,
                    a->update_stats ? rmean : NULL, a->update_stats ? rvar : NULL, mean, invstd,
                    (T *)a->y);
}

/* Inference-mode backward (running statistics are constants):
 *   dx = dy gamma r;  dgamma_j = sum_i dy_ij xhat_ij;  dbeta_j = sum_i dy_ij
 * Fixed column blocks, rows summed in order: thread-count independent. */
static void AF_FN(bn_back_infer)(size_t m, size_t n, const T *x, const T *dy, const T *gamma,
                                 const T *rmean, const T *rvar, double eps, T *dx, T *dgamma,
                                 T *dbeta)
{
    size_t nblk = (n + AF_COL_BLOCK - 1) / AF_COL_BLOCK;
    int nt = (m * n >= AF_PAR_MIN) ? af_get_num_threads() : 1;
    (void)nt;
    #pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (size_t jb = 0; jb < nblk; jb++) {
        AF_FP_SCOPE(); /* OpenMP workers too (fpenv.h) */
        size_t j0 = jb * AF_COL_BLOCK, w = n - j0 < AF_COL_BLOCK ? n - j0 : AF_COL_BLOCK, j;
        T r[AF_COL_BLOCK], sg[AF_COL_BLOCK], sb[AF_COL_BLOCK];
        for (j = 0; j < w; j++) {
            r[j] = (T)1 / SQRT(rvar[j0 + j] + (T)eps);
            sg[j] = 0;
            sb[j] = 0;
        }
        for (size_t i = 0; i < m; i++) {
            const T *xi = x + i * n + j0, *di = dy + i * n + j0;
            T *oi = dx + i * n + j0;
            for (j = 0; j < w; j++) {
                sg[j] += di[j] * (xi[j] - rmean[j0 + j]) * r[j];
                sb[j] += di[j];
                oi[j] = di[j] * gamma[j0 + j] * r[j];
            }
        }
        for (j = 0; j < w; j++) {
            dgamma[j0 + j] = sg[j];
            dbeta[j0 + j] = sb[j];
        }
    }
}

static af_status AF_FN(batchnorm_backward)(const af_op_args *a)
{
    const af_batchnorm_cfg *c = (const af_batchnorm_cfg *)a->cfg;
    size_t m = af_rows(a->in_shape, a->batch), n = af_shape_last(a->in_shape);
    const T *x = (const T *)a->x[0], *gamma = (const T *)a->param;
    T *dy = (T *)a->dy;
    /* dx straight into the input's delta when it is written, else in place in dy then added */
    T *dx = (a->dx[0] && !a->dx_acc[0]) ? (T *)a->dx[0] : dy;
    /* the gradients straight into grad, or into scratch when they are added to shared ones */
    T *dg = a->grad_acc ? (T *)a->scratch : (T *)a->grad;
    af_status s = AF_OK;
    if (a->training) {
        const T *mean = (const T *)a->aux, *invstd = mean + n;
        s = BN_BACK(m, n, x, dy, gamma, mean, invstd, dx, dg, dg + n);
    } else {
        const T *rmean = (const T *)a->stat;
        AF_FN(bn_back_infer)(m, n, x, dy, gamma, rmean, rmean + n, c->eps, dx, dg, dg + n);
    }
    if (s != AF_OK) return s;
    if (a->grad_acc) AF_FN(af_copy_add)(2 * n, dg, (T *)a->grad, 1);
    if (a->dx[0] && a->dx_acc[0]) AF_FN(af_copy_add)(m * n, dx, (T *)a->dx[0], 1);
    return AF_OK;
}

#undef BN_TRAIN
#undef BN_INFER
#undef BN_BACK
#include "dtype_end.h"
