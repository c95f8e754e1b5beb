/* conv_kern_impl.h: the direct convolution tiles of conv_kern.h for ONE (instruction set, dtype).
 *
 * Included by conv_generic.c / conv_avx2.c / conv_avx512.c once per dtype, after defining
 *   AF_DTYPE_F32 or AF_DTYPE_F64, CK_ISA (name suffix), CK_VBYTES (vector bytes: 16, 32, 64),
 *   CK_ROWS2 (tile rows with two vectors of filters: what the vector registers hold),
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

const AF_FN(af_conv_kinfo) AF_FN(AF_CAT(af_conv_, CK_ISA)) = {
    (size_t)CK_VL, {0, CK_ROWS1, CK_ROWS2}, CK_FN(ck_fwd), CK_FN(ck_dw), CK_FN(ck_colsum)};

#undef CK_FN
#undef CK_LOADN
#undef CK_STOREN
#undef CK_VL
#undef CK_ROWS1
#undef VT
#include "dtype_end.h"
