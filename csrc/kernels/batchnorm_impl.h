/* batchnorm_impl.h: batch normalisation for one dtype (included twice by batchnorm.c). */
#include "dtype_begin.h"

/* The column-block kernels, for the baseline ISA and (x86, GCC/Clang) AVX2+FMA, each with its
 * table af_bn_<isa> (batchnorm_kern.h); the entry points run the table of the path in use
 * (isa_ctx.h). Within a path results never depend on the thread count. */
#define AF_KN(name) AF_FN(AF_CAT(name, _generic))
#define AF_KATTR
#include "batchnorm_kern_impl.h"
#undef AF_KN
#undef AF_KATTR
#if AF_BN_HAVE_AVX2
#define AF_KN(name) AF_FN(AF_CAT(name, _avx2))
#define AF_KATTR __attribute__((target("avx2,fma")))
#include "batchnorm_kern_impl.h"
#undef AF_KN
#undef AF_KATTR
#endif

/* Runs the block kernel `kern` of the table in use on every block of AF_BN_COLS columns
 * [j0, j0 + w) of the m x n input, the blocks in parallel: columns are independent, so the result
 * does not depend on the thread count. Expects m and n in scope; args may use j0 and w. */
#define BN_COLUMN_BLOCKS(kern, args)                                                               \
    do {                                                                                           \
        size_t nb_ = (n + AF_BN_COLS - 1) / AF_BN_COLS;                                            \
        int nt = (m * n >= AF_PAR_MIN && nb_ > 1) ? af_get_num_threads() : 1;                     \
        const AF_FN(af_bn_kern) *k_ = AF_FN(af_kern)()->bn;                                        \
        (void)nt;                                                                                  \
        _Pragma("omp parallel for schedule(static) num_threads(nt) if (nt > 1)")                  \
        for (size_t b_ = 0; b_ < nb_; b_++) {                                                      \
            AF_FP_SCOPE(); /* OpenMP workers too (fpenv.h) */                                      \
            size_t j0 = b_ * AF_BN_COLS, w = n - j0 < AF_BN_COLS ? n - j0 : AF_BN_COLS;            \
            k_->kern args;                                                                         \
        }                                                                                          \
    } while (0)

af_status AF_FN(af_bn_forward_train)(size_t m, size_t n, const T *x, const T *gamma, const T *beta,
                                     double eps, double momentum, int unbiased_running_var,
                                     T *running_mean, T *running_var, T *mean, T *invstd, T *y)
{
    AF_FP_SCOPE();
    if (!bn_params_ok(eps, momentum)) return AF_EINVAL;
    if (bn_check_sizes(m, n)) return AF_ESHAPE;
    if (n == 0) return AF_OK;
    if (m == 0) return AF_ESHAPE; /* an empty batch has no statistics */
    if (!x || !mean || !invstd || !y) return AF_EINVAL;
    if ((running_mean == NULL) != (running_var == NULL)) return AF_EINVAL;
    BN_COLUMN_BLOCKS(train, (m, n, j0, w, x, gamma, beta, eps, momentum, unbiased_running_var,
                             running_mean, running_var, mean, invstd, y));
    return AF_OK;
}

af_status AF_FN(af_bn_forward_infer)(size_t m, size_t n, const T *x, const T *gamma, const T *beta,
                                     const T *running_mean, const T *running_var, double eps, T *y)
{
    AF_FP_SCOPE();
    if (!bn_params_ok(eps, 0.0)) return AF_EINVAL;
    if (bn_check_sizes(m, n)) return AF_ESHAPE;
    if (m == 0 || n == 0) return AF_OK;
    if (!x || !running_mean || !running_var || !y) return AF_EINVAL;
    BN_COLUMN_BLOCKS(infer, (m, n, j0, w, x, gamma, beta, running_mean, running_var, eps, y));
    return AF_OK;
}

af_status AF_FN(af_bn_backward)(size_t m, size_t n, const T *x, const T *dy, const T *gamma,
                                const T *mean, const T *invstd, T *dx, T *dgamma, T *dbeta)
{
    AF_FP_SCOPE();
    if (bn_check_sizes(m, n)) return AF_ESHAPE;
    if (n == 0) return AF_OK;
    if (m == 0) return AF_ESHAPE;
    if (!x || !dy || !mean || !invstd || !dx) return AF_EINVAL;
    BN_COLUMN_BLOCKS(back, (m, n, j0, w, x, dy, gamma, mean, invstd, dx, dgamma, dbeta));
    return AF_OK;
}

#undef BN_COLUMN_BLOCKS
#include "dtype_end.h"
