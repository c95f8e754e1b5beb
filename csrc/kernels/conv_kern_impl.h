/* conv_kern_impl.h: the direct convolution tiles of conv_kern.h for ONE (instruction set, dtype).
 *
 * Included by conv_generic.c / conv_avx2.c / conv_avx512.c once per dtype, after defining
 *   AF_DTYPE_F32 or AF_DTYPE_F64, CK_ISA (name suffix), CK_VBYTES (vector bytes: 16, 32, 64),
 *   CK_ROWS2 (tile rows with two vectors of filters: what the vector registers hold).
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
    VT z[CK_ROWS1 * 2];
    size_t w_ = fv * CK_VL;
    if (fv == 1)
        CK_FN(ck_fwd_body)(CK_ROWS1, 1, K, x, base, off, w, ldw, z);
    else
        CK_FN(ck_fwd_body)(CK_ROWS2, 2, K, x, base, off, w, ldw, z);
    const T *zt = (const T *)z;
    /* z + bias, then relu written as the engine's (act_kern_impl.h, the GEMM epilogue), so the
     * direct and GEMM paths agree bit for bit */
    for (size_t r = 0; r < nr; r++) {
        const T *zr = zt + r * w_;
        T *yr = y + r * ldy;
        for (size_t f = 0; f < nf; f++) {
            T v = zr[f] + (bias ? bias[f] : (T)0);
            yr[f] = relu ? (v > 0 ? v : (T)0) : v;
        }
    }
}

/* dW tile body: J kernel positions x FV vectors of filters, summed over n cells. */
static inline __attribute__((always_inline)) void
CK_FN(ck_dw_body)(const int J, const int FV, size_t n, const T *restrict x,
                  const size_t *restrict base, const size_t *restrict koff, const T *restrict d,
                  size_t ldd, VT *restrict out)
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
        const T *xr = x + base[r];
        VT dv[2];
#pragma GCC unroll 2
        for (int v = 0; v < FV; v++) dv[v] = CK_FN(ck_load)(d + r * ldd + v * CK_VL);
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
    size_t w_ = fv * CK_VL;
    if (fv == 1)
        CK_FN(ck_dw_body)(CK_ROWS1, 1, n, x, base, koff, d, ldd, s);
    else
        CK_FN(ck_dw_body)(CK_ROWS2, 2, n, x, base, koff, d, ldd, s);
    const T *st = (const T *)s;
    for (size_t j = 0; j < nj; j++) {
        T *gj = g + j * ldg;
        const T *sj = st + j * w_;
        if (acc)
            for (size_t f = 0; f < nf; f++) gj[f] += sj[f];
        else
            for (size_t f = 0; f < nf; f++) gj[f] = sj[f];
    }
}

const AF_FN(af_conv_kinfo) AF_FN(AF_CAT(af_conv_, CK_ISA)) = {
    (size_t)CK_VL, {0, CK_ROWS1, CK_ROWS2}, CK_FN(ck_fwd), CK_FN(ck_dw)};

#undef CK_FN
#undef CK_VL
#undef CK_ROWS1
#undef VT
#include "dtype_end.h"
