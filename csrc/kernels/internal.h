/* internal.h: helpers shared between engine files but not part of the public C API. */
#ifndef AF_INTERNAL_H
#define AF_INTERNAL_H
#include "annfast.h"
#include "fpenv.h"

/* One-row activation helpers (act.c), for fusing into other loops. Softmax works on the row. */
/* y = e^x elementwise (vexp.h, ~1 ulp) with the kernel of the path in use; y may be x. */
void af_vexp_row_f32(size_t n, const float *x, float *y);
void af_vexp_row_f64(size_t n, const double *x, double *y);
void af_act_row_forward_f32(af_act act, float param, size_t n, const float *x, float *y);
void af_act_row_forward_f64(af_act act, double param, size_t n, const double *x, double *y);
void af_act_row_backward_f32(af_act act, float param, size_t n, const float *x, const float *y,
                             const float *dy, float *dx);
void af_act_row_backward_f64(af_act act, double param, size_t n, const double *x, const double *y,
                             const double *dy, double *dx);

/* The backward pass's fused activation-derivative + bias-gradient pass (act_colsum.c) over an
 * m x n block, in place in d:  dZ = dA * f'(Z)  (f' from y = f(Z), or from z for the kinds that
 * need the pre-activation: af_act_needs_input), and with s = sum over rows of dZ:
 *     db = alpha s (acc == 0)   or   db = db + alpha s (acc == 1);   db may be NULL.
 * Columns are split into fixed blocks of AF_COL_BLOCK, each summing its rows in order, so the
 * result is the same for any number of threads. Softmax (a row-wise Jacobian) runs per row
 * first. relu keeps NaN: see act_kern_impl.h. */
#define AF_COL_BLOCK 64
void af_act_back_colsum_f32(af_act act, float p, size_t m, size_t n, const float *z,
                            const float *y, float *d, float *db, float alpha, int acc);
void af_act_back_colsum_f64(af_act act, double p, size_t m, size_t n, const double *z,
                            const double *y, double *d, double *db, double alpha, int acc);

/* dst = src (acc == 0) or dst += src (acc == 1), n elements, in parallel for large n. */
void af_copy_add_f32(size_t n, const float *src, float *dst, int acc);
void af_copy_add_f64(size_t n, const double *src, double *dst, int acc);
/* y = a + b, n elements, in parallel for large n. */
void af_sum2_f32(size_t n, const float *a, const float *b, float *y);
void af_sum2_f64(size_t n, const double *a, const double *b, double *y);

#endif
