/* act_kern.h: per-ISA activation row kernels (act_generic.c, act_avx2.c, act_avx512.c).
 * Internal. Same contract as af_act_row_forward_* / af_act_row_backward_* in internal.h. */
#ifndef AF_ACT_KERN_H
#define AF_ACT_KERN_H
#include "annfast.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define AF_ACT_X86 1
#else
#define AF_ACT_X86 0
#endif

#define AF_ACT_DECLARE(ISA)                                                                        \
    void af_act_rowf_##ISA##_f32(af_act, float, size_t, const float *, float *);                   \
    void af_act_rowf_##ISA##_f64(af_act, double, size_t, const double *, double *);                \
    void af_act_rowb_##ISA##_f32(af_act, float, size_t, const float *, const float *,              \
                                 const float *, float *);                                          \
    void af_act_rowb_##ISA##_f64(af_act, double, size_t, const double *, const double *,           \
                                 const double *, double *);                                        \
    void af_vexp_row_##ISA##_f32(size_t, const float *, float *);                                  \
    void af_vexp_row_##ISA##_f64(size_t, const double *, double *);

AF_ACT_DECLARE(generic)
#if AF_ACT_X86
AF_ACT_DECLARE(avx2)
AF_ACT_DECLARE(avx512)
#endif
#endif
