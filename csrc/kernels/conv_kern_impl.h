/* conv_kern_impl.h: the direct convolution tiles of conv_kern.h for ONE (instruction set, dtype).
 *
 * Included by conv_generic.c / conv_avx2.c / conv_avx512.c once per dtype, after defining
 *   AF_DTYPE_F32 or AF_DTYPE_F64, CK_ISA (name suffix), CK_VBYTES (vector bytes: 16, 32, 64),
 *   CK_ROWS2 (tile rows with two vectors of filters: what the vector registers hold),
 *   CK_CELLV (vectors of cells per step of the one-channel forward tile), CK_DWK (kernel
 *   positions per one-channel weight-gradient tile, with 4 filters),
 *   optionally CK_LOADN_F32/_F64(p, n), CK_STOREN_F32/_F64(p, v, n): the first n lanes of a
 *   vector from / to memory (masked moves); without them, memcpy of n values.
 * The vectors are GCC/Clang vector types of CK_VBYTES bytes, so the same code becomes SSE2,
 * AVX2 or AVX-512 under the including file's target; acc += a * w contracts to an FMA where the
 * target has one (GNU C's default -ffp-contract=fast), the same way in every tile. */
#include <string.h>
#include "dtype_begin.h"

#define CK_FN(name) AF_FN(AF_CAT(AF_CAT(name, _), CK_ISA))
#define CK_VL (CK_VBYTES / (int)sizeof(T))
#define CK_ROWS1 12
#define VT AF_CAT(ck_vec_, AF_FN(CK_ISA))

typedef T VT __attribute__((vector_size(CK_VBYTES)));

static inline __attribute__((always_inline)) VT CK_FN(ck_load)(const T *p)
{
    VT v;
    memcpy(&v, p, sizeof v);
    return v;
}

#if defined(AF_DTYPE_F32) && defined(CK_STOREN_F32)
#define CK_LOADN CK_LOADN_F32
#define CK_STOREN CK_STOREN_F32
#elif defined(AF_DTYPE_F64) && defined(CK_STOREN_F64)
#define CK_LOADN CK_LOADN_F64
#define CK_STOREN CK_STOREN_F64
#endif

/* The first n lanes (a row of fewer filters than the vector holds), without touching memory past
 * them. Masked moves where the ISA has them: a vector stored whole and read back in pieces
 * stalls store forwarding (x3 on LeNet's 6-filter layer). */
static inline __attribute__((always_inline)) VT CK_FN(ck_loadn)(const T *p, size_t n)
{
#ifdef CK_LOADN
    return CK_LOADN(p, n);
#else
    VT v = {0};
    memcpy(&v, p, n * sizeof(T));
    return v;
#endif
}

static inline __attribute__((always_inline)) void CK_FN(ck_storen)(T *p, VT v, size_t n)
{
    if (n == (size_t)CK_VL) {
        memcpy(p, &v, sizeof v);
        return;
    }
#ifdef CK_STOREN
    CK_STOREN(p, v, n);
#else
    memcpy(p, &v, n * sizeof(T));
#endif
}

/* The integer vector type of VT's lane width (comparison results). */
#if defined(AF_DTYPE_F32)
typedef int32_t AF_CAT(VT, _i) __attribute__((vector_size(CK_VBYTES)));
#else
typedef int64_t AF_CAT(VT, _i) __attribute__((vector_size(CK_VBYTES)));
#endif

/* relu as the engine's (x > 0 ? x : 0; NaN -> 0): a lane mask and a bitwise and */
static inline __attribute__((always_inline)) VT CK_FN(ck_relu)(VT v)
{
    return (VT)((AF_CAT(VT, _i))v & (v > (VT){0}));
}

/* Forward tile body: R cells x FV vectors of filters, accumulators in registers over all K. */
static inline __attribute__((always_inline)) void
CK_FN(ck_fwd_body)(const int R, const int FV, size_t K, const T *restrict x,
                   const size_t *restrict base, const size_t *restrict off, const T *restrict w,
                   size_t ldw, VT *restrict out)
{
    VT acc[CK_ROWS1][2];
    const T *xr[CK_ROWS1];
#pragma GCC unroll 16
    for (int r = 0; r < R; r++) {
        xr[r] = x + base[r];
#pragma GCC unroll 2
        for (int v = 0; v < FV; v++) acc[r][v] = (VT){0};
    }
    for (size_t k = 0; k < K; k++) {
        size_t o = off[k];
        VT wv[2];
#pragma GCC unroll 2
        for (int v = 0; v < FV; v++) wv[v] = CK_FN(ck_load)(w + k * ldw + v * CK_VL);
#pragma GCC unroll 16
        for (int r = 0; r < R; r++) {
            VT a = xr[r][o] - (VT){0};   /* a broadcast: x - 0 is x, even for -0 */
#pragma GCC unroll 2
            for (int v = 0; v < FV; v++) acc[r][v] += a * wv[v];
        }
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; r++)
#pragma GCC unroll 2
        for (int v = 0; v < FV; v++) out[r * FV + v] = acc[r][v];
}

static void CK_FN(ck_fwd)(size_t fv, size_t K, const T *x, const size_t *base, const size_t *off,
                          const T *w, size_t ldw, const T *bias, int relu, T *y, size_t ldy,
                          size_t nr, size_t nf)
{
    VT z[CK_ROWS1 * 2], bv[2] = {{0}, {0}};
    if (fv == 1)
        CK_FN(ck_fwd_body)(CK_ROWS1, 1, K, x, base, off, w, ldw, z);
    else
        CK_FN(ck_fwd_body)(CK_ROWS2, 2, K, x, base, off, w, ldw, z);
    /* z + bias, relu, then the valid rows and lanes; the same operations as the GEMM epilogue */
    for (size_t v = 0; v < fv; v++) {
        size_t lanes = nf > v * CK_VL ? nf - v * CK_VL : 0;
        if (bias && lanes) bv[v] = CK_FN(ck_loadn)(bias + v * CK_VL, lanes < CK_VL ? lanes : CK_VL);
    }
    for (size_t r = 0; r < nr; r++)
        for (size_t v = 0; v < fv; v++) {
            size_t lanes = nf > v * CK_VL ? nf - v * CK_VL : 0;
            if (!lanes) break;
            VT o = bias ? z[r * fv + v] + bv[v] : z[r * fv + v];
            if (relu) o = CK_FN(ck_relu)(o);
            CK_FN(ck_storen)(y + r * ldy + v * CK_VL, o, lanes < CK_VL ? lanes : CK_VL);
        }
}

/* dW tile body: J kernel positions x FV vectors of filters, summed over n cells. The last
 * vector of a row of dZ holds `last` filters (all CK_VL when FULL): read with a masked load, so
 * dZ is read in place however few filters there are. */
static inline __attribute__((always_inline)) void
CK_FN(ck_dw_body)(const int J, const int FV, const int FULL, size_t last, size_t n,
                  const T *restrict x, const size_t *restrict base, const size_t *restrict koff,
                  const T *restrict d, size_t ldd, VT *restrict out)
{
    VT acc[CK_ROWS1][2];
    size_t ko[CK_ROWS1];
#pragma GCC unroll 16
    for (int j = 0; j < J; j++) {
        ko[j] = koff[j];
#pragma GCC unroll 2
        for (int v = 0; v < FV; v++) acc[j][v] = (VT){0};
    }
    for (size_t r = 0; r < n; r++) {
        const T *xr = x + base[r], *dr = d + r * ldd;
        VT dv[2];
#pragma GCC unroll 2
        for (int v = 0; v < FV; v++)
            dv[v] = FULL || v + 1 < FV ? CK_FN(ck_load)(dr + v * CK_VL)
                                        : CK_FN(ck_loadn)(dr + v * CK_VL, last);
#pragma GCC unroll 16
        for (int j = 0; j < J; j++) {
            VT a = xr[ko[j]] - (VT){0};
#pragma GCC unroll 2
            for (int v = 0; v < FV; v++) acc[j][v] += a * dv[v];
        }
    }
#pragma GCC unroll 16
    for (int j = 0; j < J; j++)
#pragma GCC unroll 2
        for (int v = 0; v < FV; v++) out[j * FV + v] = acc[j][v];
}

static void CK_FN(ck_dw)(size_t fv, size_t n, const T *x, const size_t *base, const size_t *koff,
                         const T *d, size_t ldd, T *g, size_t ldg, size_t nj, size_t nf, int acc)
{
    VT s[CK_ROWS1 * 2];
    size_t last = nf - (fv - 1) * CK_VL;
    if (fv == 1 && last == CK_VL)
        CK_FN(ck_dw_body)(CK_ROWS1, 1, 1, last, n, x, base, koff, d, ldd, s);
    else if (fv == 1)
        CK_FN(ck_dw_body)(CK_ROWS1, 1, 0, last, n, x, base, koff, d, ldd, s);
    else if (last == CK_VL)
        CK_FN(ck_dw_body)(CK_ROWS2, 2, 1, last, n, x, base, koff, d, ldd, s);
    else
        CK_FN(ck_dw_body)(CK_ROWS2, 2, 0, last, n, x, base, koff, d, ldd, s);
    for (size_t j = 0; j < nj; j++)
        for (size_t v = 0; v < fv; v++) {
            size_t lanes = v + 1 < fv ? CK_VL : last;
            T *gj = g + j * ldg + v * CK_VL;
            VT o = acc ? CK_FN(ck_loadn)(gj, lanes) + s[j * fv + v] : s[j * fv + v];
            CK_FN(ck_storen)(gj, o, lanes);
        }
}

/* g[f] = (acc ? g[f] : 0) + sum_{r < n} d[r ldd + f] for f < nf, each column in row order. */
static void CK_FN(ck_colsum)(size_t n, const T *d, size_t ldd, size_t nf, T *g, int acc)
{
    for (size_t f0 = 0; f0 < nf; f0 += CK_VL) {
        size_t lanes = nf - f0 < CK_VL ? nf - f0 : CK_VL;
        VT s = {0};
        if (lanes == CK_VL)
            for (size_t r = 0; r < n; r++) s += CK_FN(ck_load)(d + r * ldd + f0);
        else
            for (size_t r = 0; r < n; r++) s += CK_FN(ck_loadn)(d + r * ldd + f0, lanes);
        if (acc) s = CK_FN(ck_loadn)(g + f0, lanes) + s;
        CK_FN(ck_storen)(g + f0, s, lanes);
    }
}

/* ---- one input channel, stride 1: vectors along an output row ---------------------------------
 * With one input channel and stride 1 the cells of an output row read consecutive inputs, so a
 * vector holds consecutive cells and every lane works whatever the number of filters (6 filters
 * fill 6 of 16 lanes in the tiles above). The price is a transposition between the cell-major
 * vectors and the channels-last rows, done once per tile through a small buffer. */
#define CK_FWF 8   /* filters per forward pass */
#define CK_DWF 4   /* filters per weight-gradient tile */

/* The first n (<= CK_VL) values at p, zeros after: masked when n < CK_VL. */
static inline __attribute__((always_inline)) VT CK_FN(ck_loadz)(const T *p, size_t n)
{
    return n == (size_t)CK_VL ? CK_FN(ck_load)(p) : n ? CK_FN(ck_loadn)(p, n) : (VT){0};
}

/* z[f][v] = sum_k xrow[off[k] + c0 + v VL + lane] w[k ldw + f] for n cells from c0 (n <= CELLV VL) */
static inline __attribute__((always_inline)) void
CK_FN(ck_fwdc_body)(const int FC, size_t K, const T *restrict xrow, const size_t *restrict off,
                    size_t n, const T *restrict w, size_t ldw, VT z[CK_FWF][CK_CELLV])
{
    VT acc[CK_FWF][CK_CELLV];
    size_t lanes[CK_CELLV];
#pragma GCC unroll 4
    for (int v = 0; v < CK_CELLV; v++) {
        size_t done = (size_t)v * CK_VL;
        lanes[v] = n > done ? (n - done < (size_t)CK_VL ? n - done : (size_t)CK_VL) : 0;
    }
#pragma GCC unroll 8
    for (int f = 0; f < FC; f++)
#pragma GCC unroll 4
        for (int v = 0; v < CK_CELLV; v++) acc[f][v] = (VT){0};
    for (size_t k = 0; k < K; k++) {
        const T *xk = xrow + off[k];
        VT xv[CK_CELLV];
#pragma GCC unroll 4
        for (int v = 0; v < CK_CELLV; v++) xv[v] = CK_FN(ck_loadz)(xk + v * CK_VL, lanes[v]);
#pragma GCC unroll 8
        for (int f = 0; f < FC; f++) {
            VT wf = w[k * ldw + f] - (VT){0};
#pragma GCC unroll 4
            for (int v = 0; v < CK_CELLV; v++) acc[f][v] += xv[v] * wf;
        }
    }
#pragma GCC unroll 8
    for (int f = 0; f < FC; f++)
#pragma GCC unroll 4
        for (int v = 0; v < CK_CELLV; v++) z[f][v] = acc[f][v];
}

/* One output row of n cells, filters [0, nf), nf <= CK_FWF:
 *   y[c ldy + f] = f(bias[f] + sum_k xrow[off[k] + c] w[k ldw + f])   (relu or none) */
static void CK_FN(ck_fwd_cells)(size_t K, const T *xrow, const size_t *off, size_t n, const T *w,
                                size_t ldw, const T *bias, int relu, T *y, size_t ldy, size_t nf)
{
    VT z[CK_FWF][CK_CELLV];
    T t[CK_FWF][CK_CELLV * CK_VL] __attribute__((aligned(64)));
    const size_t step = (size_t)CK_CELLV * CK_VL;
    for (size_t c0 = 0; c0 < n; c0 += step) {
        size_t m = n - c0 < step ? n - c0 : step;
        switch (nf) {
#define CK_CASE(fc) case fc: CK_FN(ck_fwdc_body)(fc, K, xrow + c0, off, m, w, ldw, z); break;
            CK_CASE(1) CK_CASE(2) CK_CASE(3) CK_CASE(4) CK_CASE(5) CK_CASE(6) CK_CASE(7) CK_CASE(8)
#undef CK_CASE
        }
        /* bias and relu on the vectors, then the transposition into channels-last rows */
        for (size_t f = 0; f < nf; f++)
            for (int v = 0; v < CK_CELLV; v++) {
                VT o = bias ? z[f][v] + (bias[f] - (VT){0}) : z[f][v];
                if (relu) o = CK_FN(ck_relu)(o);
                memcpy(t[f] + v * CK_VL, &o, sizeof o);
            }
        for (size_t c = 0; c < m; c++)
            for (size_t f = 0; f < nf; f++) y[(c0 + c) * ldy + f] = t[f][c];
    }
}

/* s[j][f] = sum over rows r and cells c < n of x[rbase[r] + koff[j] + c] dzt[f ldf + r ldr + c]
 * (dzt rows zero-padded to whole vectors) for j < CK_DWK, f < FC. */
static inline __attribute__((always_inline)) void
CK_FN(ck_dwc_body)(const int FC, size_t rows, const T *restrict x, const size_t *restrict rbase,
                   const size_t *restrict koff, size_t n, const T *restrict dzt, size_t ldf,
                   size_t ldr, VT s[CK_DWK][CK_DWF])
{
    VT acc[CK_DWK][CK_DWF];
    size_t ko[CK_DWK];
#pragma GCC unroll 8
    for (int j = 0; j < CK_DWK; j++) {
        ko[j] = koff[j];
#pragma GCC unroll 4
        for (int f = 0; f < FC; f++) acc[j][f] = (VT){0};
    }
    for (size_t r = 0; r < rows; r++) {
        const T *xr = x + rbase[r], *dr = dzt + r * ldr;
        for (size_t c0 = 0; c0 < n; c0 += CK_VL) {
            size_t lanes = n - c0 < (size_t)CK_VL ? n - c0 : (size_t)CK_VL;
            VT dv[CK_DWF];
#pragma GCC unroll 4
            for (int f = 0; f < FC; f++) dv[f] = CK_FN(ck_load)(dr + f * ldf + c0);
#pragma GCC unroll 8
            for (int j = 0; j < CK_DWK; j++) {
                VT xv = CK_FN(ck_loadz)(xr + ko[j] + c0, lanes);
#pragma GCC unroll 4
                for (int f = 0; f < FC; f++) acc[j][f] += xv * dv[f];
            }
        }
    }
#pragma GCC unroll 8
    for (int j = 0; j < CK_DWK; j++)
#pragma GCC unroll 4
        for (int f = 0; f < FC; f++) s[j][f] = acc[j][f];
}

/* g[j ldg + f] (+)= the sums above, lanes added in order, for j < nj, f < nf (<= CK_DWF); koff
 * holds CK_DWK entries (repeated to fill a short tile). */
static void CK_FN(ck_dw_cells)(size_t rows, const T *x, const size_t *rbase, const size_t *koff,
                               size_t nj, size_t n, const T *dzt, size_t ldf, size_t ldr, size_t nf,
                               T *g, size_t ldg, int acc)
{
    VT s[CK_DWK][CK_DWF];
    switch (nf) {
#define CK_CASE(fc) case fc: CK_FN(ck_dwc_body)(fc, rows, x, rbase, koff, n, dzt, ldf, ldr, s); break;
        CK_CASE(1) CK_CASE(2) CK_CASE(3) CK_CASE(4)
#undef CK_CASE
    }
    for (size_t j = 0; j < nj; j++)
        for (size_t f = 0; f < nf; f++) {
            T v = 0;
            for (int l = 0; l < CK_VL; l++) v += s[j][f][l];
            g[j * ldg + f] = acc ? g[j * ldg + f] + v : v;
        }
}

/* col2im: dst[base[r] + off[s seg] + i] += dP[r ldp + s seg + i] for cells r < n, runs s < nseg,
 * i < seg: whole vectors, then one masked vector for the rest of a run. */
static void CK_FN(ck_col2im)(size_t n, const T *dP, size_t ldp, const size_t *base,
                             const size_t *off, size_t nseg, size_t seg, T *dst)
{
    for (size_t r = 0; r < n; r++) {
        T *d = dst + base[r];
        const T *p = dP + r * ldp;
        for (size_t s = 0; s < nseg; s++) {
            T *to = d + off[s * seg];
            const T *from = p + s * seg;
            size_t i = 0;
            for (; i + CK_VL <= seg; i += CK_VL) {
                VT v = CK_FN(ck_load)(to + i) + CK_FN(ck_load)(from + i);
                memcpy(to + i, &v, sizeof v);
            }
            if (i < seg)
                CK_FN(ck_storen)(to + i, CK_FN(ck_loadn)(to + i, seg - i) + CK_FN(ck_loadn)(from + i, seg - i),
                                 seg - i);
        }
    }
}

const AF_FN(af_conv_kinfo) AF_FN(AF_CAT(af_conv_, CK_ISA)) = {
    (size_t)CK_VL, {0, CK_ROWS1, CK_ROWS2}, CK_FWF, CK_DWK, CK_DWF, CK_FN(ck_fwd), CK_FN(ck_dw),
    CK_FN(ck_colsum), CK_FN(ck_fwd_cells), CK_FN(ck_dw_cells), CK_FN(ck_col2im)};

#undef CK_FN
#undef CK_FWF
#undef CK_DWF
#undef CK_LOADN
#undef CK_STOREN
#undef CK_VL
#undef CK_ROWS1
#undef VT
#include "dtype_end.h"
