/* rows.h: row kernels of the sequence layers (layer normalisation, masked softmax of attention
 * scores), compiled once per ISA (rows_generic.c, rows_avx2.c, rows_avx512.c); callers take the
 * table of the path in use, AF_FN(af_kern)()->rows (isa_ctx.h). Internal.
 *
 * Every sum runs over AF_ROW_LANES interleaved partial sums added in lane order: a fixed order
 * (the same bits for any thread count) that the compiler can vectorise.
 *
 *   ln_fwd    mean = sum x / n;  var = sum (x - mean)^2 / n;  rstd = 1 / sqrt(var + eps)
 *             y = (x - mean) rstd g + b   (g, b may be NULL: 1, 0);  stat = {mean, rstd}
 *   ln_bwd    xh = (x - mean) rstd;  e = dy g;  dx = rstd (e - mean(e) - xh mean(e xh))
 *             (written, or added when acc; dx may be dy)
 *   sm_fwd    in place over a row of scores s: allowed(j) = j < lim && (!mask || mask[j]);
 *             p_j = allowed ? e^(s_j - mx) / sum : 0,  mx = max over allowed;  stat = {mx, 1/sum}.
 *             No allowed entry (or all -inf): p = 0 and stat = {-inf, 0} (a defined result).
 *   sm_prob   p from the scores and the stat of sm_fwd: the same bits as sm_fwd gave.
 *   sm_bwd    d = p (d - sum p d)  (the softmax Jacobian-vector product, in place)
 *   mm        C = alpha op(A) B for small products (one attention head): op(A)[i][p] =
 *             A[i sai + p sap] (m x k), B (k x n, row stride ldb), C (m x n, ldc), n a multiple
 *             of AF_ROW_VN; each element sums p in order (vectors along n, four rows at once)
 *   colsum    s[j] += d[0][j] + ... + d[m-1][j], j < w (d: m x w, row stride ld), each column in
 *             row order (the bias gradient's column sums: the scalar loop's bits on every path)
 *   tut_ep    one training epoch of the tutorial's network (tutorial.c) for a small network, its
 *             rows laid out as columns (tut_kern_impl.h); float64 only (NULL in the float table) */
#ifndef AF_ROWS_H
#define AF_ROWS_H
#include <stddef.h>
#include <stdint.h>

#include "annfast.h"

#define AF_ROW_LANES 16
/* Widths rows_kern_impl.h's mm works in: n must be a multiple of this many elements (16 floats:
 * a multiple of every ISA's vector length in both types). */
#define AF_ROW_VN 16

/* Rows padded to a multiple of this many columns in tut_ep's layout (every ISA's float64 lanes). */
#define AF_TUT_LANES 8

#define AF_ROWS_TYPES(T, SUF)                                                                      \
    /* tut_ep's arguments: n rows padded to np (a multiple of AF_TUT_LANES); xt (ni x np), yt   \
     * (no x np) the inputs and targets, row i in column i, zero past n; scratch ht, dh         \
     * (nh x np), ot (no x np); the weights, updated; the forward pass's pre-activations and    \
     * activations as rows (n x nh, n x no) into ha, ho, oa, pred where not NULL. */            \
    typedef struct {                                                                               \
        size_t n, np, ni, nh, no;                                                                  \
        const T *xt, *yt;                                                                          \
        T *w1, *b1, *w2, *b2, lr;                                                                  \
        T *ht, *ot, *dh, *ha, *ho, *oa, *pred;                                                     \
    } af_tut_ep_##SUF;                                                                             \
    typedef struct {                                                                               \
        void (*ln_fwd)(size_t n, const T *x, const T *g, const T *b, T eps, T *y, T *stat);       \
        void (*ln_bwd)(size_t n, const T *x, const T *dy, const T *g, const T *stat, T *dx,      \
                       int acc);                                                                   \
        void (*sm_fwd)(size_t n, T *s, const int32_t *mask, size_t lim, T *stat);                  \
        void (*sm_prob)(size_t n, const T *s, const int32_t *mask, size_t lim, const T *stat,     \
                        T *p);                                                                     \
        void (*sm_bwd)(size_t n, const T *p, T *d);                                                \
        void (*mm)(size_t m, size_t n, size_t k, T alpha, const T *A, size_t sai, size_t sap,      \
                   const T *B, size_t ldb, T *C, size_t ldc);                                      \
        void (*colsum)(size_t m, size_t w, const T *d, size_t ld, T *s);                           \
        void (*tut_ep)(const af_tut_ep_##SUF *e);                                                  \
    } af_rows_##SUF;
AF_ROWS_TYPES(float, f32)
AF_ROWS_TYPES(double, f64)
#undef AF_ROWS_TYPES

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define AF_ROWS_X86 1
#else
#define AF_ROWS_X86 0
#endif

/* The per-ISA tables (rows_<isa>.c). */
extern const af_rows_f32 af_rows_generic_f32, af_rows_avx2_f32, af_rows_avx512_f32;
extern const af_rows_f64 af_rows_generic_f64, af_rows_avx2_f64, af_rows_avx512_f64;

#endif
