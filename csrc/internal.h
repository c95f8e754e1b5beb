/* internal.h: helpers shared between engine files but not part of the public C API. */
#ifndef AF_INTERNAL_H
#define AF_INTERNAL_H
#include "annfast.h"

/* One-row activation helpers (act.c), for fusing into other loops. Softmax works on the row. */
/* y = e^x elementwise (vexp.h, ~1 ulp) with the kernel of the selected ISA; y may be x. */
void af_vexp_row_f32(size_t n, const float *x, float *y);
void af_vexp_row_f64(size_t n, const double *x, double *y);
void af_act_row_forward_f32(af_act act, float param, size_t n, const float *x, float *y);
void af_act_row_forward_f64(af_act act, double param, size_t n, const double *x, double *y);
void af_act_row_backward_f32(af_act act, float param, size_t n, const float *x, const float *y,
                             const float *dy, float *dx);
void af_act_row_backward_f64(af_act act, double param, size_t n, const double *x, const double *y,
                             const double *dy, double *dx);

#endif
