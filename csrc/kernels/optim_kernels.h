/* optim_kernels.h: constants and helpers shared by optim.c and its template optim_impl.h
 * (not part of the public API). */
#ifndef AF_OPTIM_KERNELS_H
#define AF_OPTIM_KERNELS_H
#include <stddef.h>

#include "annfast.h"

/* Elements per parallel block of an optimiser step (elementwise: any split gives equal results). */
#define AF_OPT_BLOCK 4096
/* Global-norm reduction: chunk granularity and the maximum number of chunk partials. */
#define AF_NORM_CHUNK 4096
#define AF_NORM_MAXPART 256

size_t af_norm_chunk_size(size_t n);

/* The step's block kernel (optim_kern_impl.h) is compiled in optim.c for the baseline ISA and,
 * on x86-64 with GCC or Clang, for AVX2+FMA (function target attributes, no -march); the AVX-512
 * path uses the AVX2+FMA copy (isa_ctx.c). */
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define AF_OPT_HAVE_AVX2 1
#else
#define AF_OPT_HAVE_AVX2 0
#endif

/* One block [lo, lo + len) of a step on n parameters (state: the slots, n apart); c holds the
 * step's constants (optim_impl.h). */
/* A step's constants, converted once to the float type (hyperparameters arrive as double). */
#define AF_OPT_CONSTS(T)                                                                           \
    T lr, wd, decay;        /* coupled L2 (g += wd p) and decoupled factor (p *= decay) */        \
    T mom;                  /* SGD / RMSprop momentum */                                          \
    T rho, one_m_rho;       /* RMSprop alpha, Adadelta rho */                                     \
    T one_m_b1, b2, one_m_b2;                                                                     \
    T eps;                                                                                        \
    T step_size, inv_bc2_sqrt;  /* Adam: lr / (1 - b1^t), 1 / sqrt(1 - b2^t) */                   \
    T init_acc;             /* Adagrad G_0 */                                                     \
    int nesterov, first, slots;                                                                   \
    af_opt_kind kind;
struct af_opt_consts_f32 { AF_OPT_CONSTS(float) };
struct af_opt_consts_f64 { AF_OPT_CONSTS(double) };
#undef AF_OPT_CONSTS

/* A step prepared once (af_optim_prepare_*: the checks and constants of af_optim_step_*), then
 * applied to ranges [lo, lo + len) of n parameters (af_optim_range_*, state slots n apart), each
 * element as af_optim_step_* computes it: for callers that update blocks of parameters from their
 * own threads (the split step, engine_split_impl.h). */
af_status af_optim_prepare_f32(const af_optim *o, uint64_t t, struct af_opt_consts_f32 *c);
af_status af_optim_prepare_f64(const af_optim *o, uint64_t t, struct af_opt_consts_f64 *c);
void af_optim_range_f32(const struct af_opt_consts_f32 *c, size_t n, size_t lo, size_t len,
                        float *param, const float *grad, float *state);
void af_optim_range_f64(const struct af_opt_consts_f64 *c, size_t n, size_t lo, size_t len,
                        double *param, const double *grad, double *state);
typedef void (*af_opt_block_fn_f32)(const struct af_opt_consts_f32 *c, size_t n, size_t lo,
                                    size_t len, float *p, const float *g, float *state);
typedef void (*af_opt_block_fn_f64)(const struct af_opt_consts_f64 *c, size_t n, size_t lo,
                                    size_t len, double *p, const double *g, double *state);

#define AF_OPT_DECLARE(ISA)                                                                        \
    void af_opt_block_##ISA##_f32(const struct af_opt_consts_f32 *c, size_t n, size_t lo,         \
                                  size_t len, float *p, const float *g, float *state);             \
    void af_opt_block_##ISA##_f64(const struct af_opt_consts_f64 *c, size_t n, size_t lo,         \
                                  size_t len, double *p, const double *g, double *state);
AF_OPT_DECLARE(generic)
#if AF_OPT_HAVE_AVX2
AF_OPT_DECLARE(avx2)
#endif
#endif
