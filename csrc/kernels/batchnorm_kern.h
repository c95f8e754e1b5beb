/* batchnorm_kern.h: the batch-norm column-block kernels (batchnorm_kern_impl.h), compiled in
 * batchnorm.c for the baseline ISA and, on x86 with GCC/Clang, for AVX2+FMA (function target
 * attributes, no -march); the AVX-512 path uses the AVX2+FMA copy (isa_ctx.c). Internal. */
#ifndef AF_BATCHNORM_KERN_H
#define AF_BATCHNORM_KERN_H
#include <stddef.h>

/* Columns per block: threads split the features into blocks of this many. */
#define AF_BN_COLS 64

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define AF_BN_HAVE_AVX2 1
#else
#define AF_BN_HAVE_AVX2 0
#endif

/* Each kernel works on the columns [j0, j0 + w) of the m x n batch; see batchnorm_kern_impl.h. */
#define AF_BN_KERN(T, SUF)                                                                         \
    typedef struct {                                                                               \
        void (*train)(size_t m, size_t n, size_t j0, size_t w, const T *x, const T *gamma,         \
                      const T *beta, double eps, double momentum, int unbiased, T *rmean,          \
                      T *rvar, T *mean, T *invstd, T *y);                                          \
        void (*infer)(size_t m, size_t n, size_t j0, size_t w, const T *x, const T *gamma,         \
                      const T *beta, const T *running_mean, const T *running_var, double eps,      \
                      T *y);                                                                       \
        void (*back)(size_t m, size_t n, size_t j0, size_t w, const T *x, const T *dy,             \
                     const T *gamma, const T *mean, const T *invstd, T *dx, T *dgamma, T *dbeta);  \
    } af_bn_kern_##SUF;
AF_BN_KERN(float, f32)
AF_BN_KERN(double, f64)
#undef AF_BN_KERN

extern const af_bn_kern_f32 af_bn_generic_f32;
extern const af_bn_kern_f64 af_bn_generic_f64;
#if AF_BN_HAVE_AVX2
extern const af_bn_kern_f32 af_bn_avx2_f32;
extern const af_bn_kern_f64 af_bn_avx2_f64;
#endif

#endif
