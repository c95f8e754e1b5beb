/* conv_kern.h: the direct convolution tiles (conv_kern_impl.h), compiled once per instruction set
 * (conv_generic.c, conv_avx2.c, conv_avx512.c); callers take the tiles of the path in use,
 * AF_FN(af_kern)()->conv (isa_ctx.h). Internal.
 *
 * Both tiles read their input through offset tables, so one kernel serves every stride,
 * dilation and channel count: x[base[r] + off[k]] is the input value that output cell r meets
 * at kernel position k = (kh, kw, c) (see csrc/layers/conv.c). Filters are vectorised: a tile
 * holds `fv` vectors of `vl` filters (fv = 1 or 2) for `rows(fv)` cells in registers.
 *
 *   fwd: for r < rows(fv), f < fv vl:  z[r][f] = bias[f] + sum_{k < K} x[base[r] + off[k]] w[k ldw + f]
 *        y[r ldy + f] = z (relu: max(z, 0), NaN kept) for r < nr, f < nf.
 *        base has rows(fv) entries (callers repeat the last cell to fill a short tile); w has
 *        fv vl readable columns per row (zero-padded past the filters); bias (or NULL) nf values.
 *   dw:  for j < rows(fv), f < fv vl:  s[j][f] = sum_{r < n} x[base[r] + koff[j]] d[r ldd + f]
 *        g[j ldg + f] = s (acc = 0) or g + s (acc = 1) for j < nj, f < nf.
 *        koff has rows(fv) entries (repeated to fill); d rows are read for their nf filters only.
 *   colsum: g[f] = (acc ? g[f] : 0) + sum_{r < n} d[r ldd + f], f < nf (the bias gradient).
 * One input channel and stride 1 (the cells of an output row read consecutive inputs), vectors
 * along the row instead of across the filters:
 *   fwd_cells: y[c ldy + f] = f(bias[f] + sum_k xrow[off[k] + c] w[k ldw + f]), c < n, f < nf
 *              (nf <= fwf; relu or none); through a transposition buffer.
 *   dw_cells:  g[j ldg + f] (+)= sum_{r < rows, c < n} x[rbase[r] + koff[j] + c] dzt[f ldf + r ldr + c]
 *              for j < nj (<= dwk; koff has dwk entries), f < nf (<= dwf); dzt is dZ transposed
 *              (filter-major), rows zero-padded to whole vectors. Each sum: per lane in cell
 *              order, then the lanes in order.
 *   col2im:    dst[base[r] + off[s seg] + i] += dP[r ldp + s seg + i], r < n, s < nseg, i < seg
 *              (the input gradient's scatter, runs of seg values).
 * Each output value is one chain of multiply-adds in k (fwd) or r (dw) order, whichever tile
 * or thread computes it. */
#ifndef AF_CONV_KERN_H
#define AF_CONV_KERN_H
#include <stddef.h>
#include "annfast.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define AF_CONV_X86 1
#else
#define AF_CONV_X86 0
#endif

#define AF_CONV_KINFO(T, SUF)                                                                      \
    typedef struct {                                                                               \
        size_t vl;            /* filters per vector */                                             \
        size_t rows[3];       /* rows[fv]: cells (fwd) or kernel positions (dw) per tile */        \
        size_t fwf, dwk, dwf; /* one-channel tiles: filters per fwd pass, dw tile k x f */         \
        void (*fwd)(size_t fv, size_t K, const T *x, const size_t *base, const size_t *off,        \
                    const T *w, size_t ldw, const T *bias, int relu, T *y, size_t ldy, size_t nr,  \
                    size_t nf);                                                                    \
        void (*dw)(size_t fv, size_t n, const T *x, const size_t *base, const size_t *koff,        \
                   const T *d, size_t ldd, T *g, size_t ldg, size_t nj, size_t nf, int acc);       \
        void (*colsum)(size_t n, const T *d, size_t ldd, size_t nf, T *g, int acc);                \
        void (*fwd_cells)(size_t K, const T *xrow, const size_t *off, size_t n, const T *w,         \
                          size_t ldw, const T *bias, int relu, T *y, size_t ldy, size_t nf);        \
        void (*dw_cells)(size_t rows, const T *x, const size_t *rbase, const size_t *koff,         \
                         size_t nj, size_t n, const T *dzt, size_t ldf, size_t ldr, size_t nf,      \
                         T *g, size_t ldg, int acc);                                                \
        void (*col2im)(size_t n, const T *dP, size_t ldp, const size_t *base, const size_t *off,    \
                       size_t nseg, size_t seg, T *dst);                                           \
    } af_conv_kinfo_##SUF;

AF_CONV_KINFO(float, f32)
AF_CONV_KINFO(double, f64)

extern const af_conv_kinfo_f32 af_conv_generic_f32;
extern const af_conv_kinfo_f64 af_conv_generic_f64;
#if AF_CONV_X86
extern const af_conv_kinfo_f32 af_conv_avx2_f32;
extern const af_conv_kinfo_f64 af_conv_avx2_f64;
extern const af_conv_kinfo_f32 af_conv_avx512_f32;
extern const af_conv_kinfo_f64 af_conv_avx512_f64;
#endif

#endif
