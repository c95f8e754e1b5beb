/* gemm_avx512.c: AVX-512F GEMM kernels (float and double from gemm_kern_impl.h).
 *
 * Compiled without -march flags: every function carries target("avx512f,avx2,fma") and is only
 * called when af_cpu_has(AF_ISA_AVX512) (cpu.c) reports AVX-512F with OS support.
 *
 * Register block: 12 rows x 2 zmm vectors = 24 accumulators + 2 B vectors + 1 broadcast = 27 of
 * the 32 zmm registers. float: 12 x 32, double: 12 x 16. 24 independent FMA chains cover two
 * 512-bit FMA pipes of latency 4.
 * Cache blocks (Skylake-SP..Sapphire Rapids: L1d 32-48 KB, L2 1-2 MB):
 *   KC = 192: B micro-panel KC x NR = 192*32*4 B = 192*16*8 B = 24 KB, inside L1.
 *   MC: A block MC x KC ~ 1/2 of a 1 MB L2 (float 480*192*4 = 360 KB, double 240*192*8 =
 *       360 KB), multiple of MR = 12.
 *   NC = 3072 (multiple of 32 and 16): the B block KC x NC (2.3-4.5 MB) lives in L3.
 */
#include "gemm_kern.h"

#if AF_GEMM_X86 && defined(AF_GEMM_EMULATE_AVX512)
/* Test build only (tests/test_gemm_avx512_emulated.py): the same block shapes with 64-byte GCC
 * generic vectors under the avx2 names, so this file's kernels can be checked on a CPU without
 * AVX-512. Never defined by setup.py. */
#include <string.h>
typedef float af_ev_f32 __attribute__((vector_size(64)));
typedef double af_ev_f64 __attribute__((vector_size(64)));
typedef float af_evh_f32 __attribute__((vector_size(32)));
typedef double af_evh_f64 __attribute__((vector_size(32)));
#define AF_KISA avx2
#define AF_KATTR __attribute__((target("avx2,fma")))
#define AF_EMU_OPS 1
#elif AF_GEMM_X86
#include <immintrin.h>

#define AF_KISA avx512
#define AF_KATTR __attribute__((target("avx512f,avx2,fma")))
#endif

#if AF_GEMM_X86 && !defined(AF_EMU_OPS)
/* ---- register transposes for packing (B^T panels, A panels) ----------------------------- */

/* Transpose of the 16 x 16 float block s[r*lds + i] into registers: r[i] = column i. Rows at
 * and past `rows` (a multiple of 4, constant after inlining) are taken as zero and never read,
 * so a 12-row A panel needs no loads past the matrix. 4 stages of 16 shuffles:
 * unpack interleaves row pairs, shuffle_ps gathers a 4-row piece of one column per 128-bit
 * lane, two shuffle_f32x4 stages move those pieces to their lanes. */
static inline __attribute__((always_inline)) AF_KATTR void af_tr16_ps(__m512 r[16], const float *s,
                                                                      size_t lds, const int rows)
{
    __m512 t[16];
#pragma GCC unroll 4
    for (int g = 0; g < 16; g += 4) {
        if (g >= rows) {
            t[g] = t[g + 1] = t[g + 2] = t[g + 3] = _mm512_setzero_ps();
            continue;
        }
        /* loaded group by group: 16 rows and 16 results at once would spill */
        __m512 r0 = _mm512_loadu_ps(s + g * lds), r1 = _mm512_loadu_ps(s + (g + 1) * lds);
        __m512 r2 = _mm512_loadu_ps(s + (g + 2) * lds), r3 = _mm512_loadu_ps(s + (g + 3) * lds);
        __m512 lo01 = _mm512_unpacklo_ps(r0, r1), hi01 = _mm512_unpackhi_ps(r0, r1);
        __m512 lo23 = _mm512_unpacklo_ps(r2, r3), hi23 = _mm512_unpackhi_ps(r2, r3);
        t[g] = _mm512_shuffle_ps(lo01, lo23, 0x44);     /* lane L: column 4L of rows g..g+3 */
        t[g + 1] = _mm512_shuffle_ps(lo01, lo23, 0xEE); /* column 4L+1 */
        t[g + 2] = _mm512_shuffle_ps(hi01, hi23, 0x44); /* column 4L+2 */
        t[g + 3] = _mm512_shuffle_ps(hi01, hi23, 0xEE); /* column 4L+3 */
    }
    /* Column 4L+c is lane L of t[c], t[4+c], t[8+c], t[12+c]: gather even/odd lanes, then pairs. */
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        __m512 e0 = _mm512_shuffle_f32x4(t[c], t[4 + c], 0x88);      /* lanes 0 2 0 2 */
        __m512 o0 = _mm512_shuffle_f32x4(t[c], t[4 + c], 0xDD);      /* lanes 1 3 1 3 */
        __m512 e1 = _mm512_shuffle_f32x4(t[8 + c], t[12 + c], 0x88);
        __m512 o1 = _mm512_shuffle_f32x4(t[8 + c], t[12 + c], 0xDD);
        r[c] = _mm512_shuffle_f32x4(e0, e1, 0x88);      /* lanes 0 */
        r[4 + c] = _mm512_shuffle_f32x4(o0, o1, 0x88);  /* lanes 1 */
        r[8 + c] = _mm512_shuffle_f32x4(e0, e1, 0xDD);  /* lanes 2 */
        r[12 + c] = _mm512_shuffle_f32x4(o0, o1, 0xDD); /* lanes 3 */
    }
}

/* The same for an 8 x 8 double block (rows past `rows`, a multiple of 2, never read): unpack
 * pairs rows per 128-bit lane, two shuffle_f64x2 stages move the lanes; 24 shuffles. */
static inline __attribute__((always_inline)) AF_KATTR void af_tr8_pd(__m512d r[8], const double *s,
                                                                     size_t lds, const int rows)
{
    __m512d t[8];
#pragma GCC unroll 4
    for (int g = 0; g < 8; g += 2) {
        if (g >= rows) {
            t[g] = t[g + 1] = _mm512_setzero_pd();
            continue;
        }
        __m512d r0 = _mm512_loadu_pd(s + g * lds), r1 = _mm512_loadu_pd(s + (g + 1) * lds);
        t[g] = _mm512_unpacklo_pd(r0, r1);     /* lane L: column 2L of rows g, g+1 */
        t[g + 1] = _mm512_unpackhi_pd(r0, r1); /* column 2L+1 */
    }
#pragma GCC unroll 2
    for (int c = 0; c < 2; c++) {
        __m512d e0 = _mm512_shuffle_f64x2(t[c], t[2 + c], 0x88);
        __m512d o0 = _mm512_shuffle_f64x2(t[c], t[2 + c], 0xDD);
        __m512d e1 = _mm512_shuffle_f64x2(t[4 + c], t[6 + c], 0x88);
        __m512d o1 = _mm512_shuffle_f64x2(t[4 + c], t[6 + c], 0xDD);
        r[c] = _mm512_shuffle_f64x2(e0, e1, 0x88);
        r[2 + c] = _mm512_shuffle_f64x2(o0, o1, 0x88);
        r[4 + c] = _mm512_shuffle_f64x2(e0, e1, 0xDD);
        r[6 + c] = _mm512_shuffle_f64x2(o0, o1, 0xDD);
    }
}

/* KTRANSPOSE, float: d[i*ldd + r] = s[r*lds + i], 16 x 16 (packing of B^T). */
static inline __attribute__((always_inline)) AF_KATTR void af_tr16x16_ps(float *d, size_t ldd,
                                                                         const float *s, size_t lds)
{
    __m512 r[16];
    af_tr16_ps(r, s, lds, 16);
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) _mm512_storeu_ps(d + i * ldd, r[i]);
}

/* KTRANSPOSE, double: d[i*ldd + r] = s[r*lds + i], 8 x 8. */
static inline __attribute__((always_inline)) AF_KATTR void af_tr8x8_pd(double *d, size_t ldd,
                                                                       const double *s, size_t lds)
{
    __m512d r[8];
    af_tr8_pd(r, s, lds, 8);
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) _mm512_storeu_pd(d + i * ldd, r[i]);
}

/* KPACKA, float: 16 columns of a full 12-row A panel, d[i*12 + r] = s[r*lds + i]. Each
 * transposed column carries 4 padding lanes, left out by the 12-lane store mask. */
static inline __attribute__((always_inline)) AF_KATTR void af_pack12x16_ps(float *d, const float *s,
                                                                           size_t lds)
{
    __m512 r[16];
    af_tr16_ps(r, s, lds, 12);
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) _mm512_mask_storeu_ps(d + i * 12, 0x0FFF, r[i]);
}

/* KPACKA, double: 8 columns of a 12-row A panel as rows 0-7 and rows 8-11 (plus zeros)
 * transposed apart; column i is 8 + 4 doubles at d + 12 i. The 4 padding lanes of column i go
 * to the start of column i + 1, rewritten next: ~15% faster than masking every store; only the
 * last store is masked, so nothing past column 7 is written. */
static inline __attribute__((always_inline)) AF_KATTR void af_pack12x8_pd(double *d,
                                                                          const double *s, size_t lds)
{
    __m512d r[8], q[8];
    af_tr8_pd(r, s, lds, 8);
    af_tr8_pd(q, s + 8 * lds, lds, 4);
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        _mm512_storeu_pd(d + i * 12, r[i]);
        if (i < 7) _mm512_storeu_pd(d + i * 12 + 8, q[i]);
        else _mm512_mask_storeu_pd(d + i * 12 + 8, 0x0F, q[i]);
    }
}

/* Lane sums in the row kernel's fixed order (gemm_skinny_impl.h, rowk_lanes_sum): lane l + w
 * added to lane l for w = 8 (floats), 4, 2, 1, in registers. */
static inline __attribute__((always_inline)) AF_KATTR float af_hsum16_ps(__m512 v)
{
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v),
                             _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
}
static inline __attribute__((always_inline)) AF_KATTR double af_hsum8_pd(__m512d v)
{
    __m256d h = _mm256_add_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd(v, 1));
    __m128d q = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
    return _mm_cvtsd_f64(_mm_add_sd(q, _mm_unpackhi_pd(q, q)));
}

#define AF_TRANSPOSE_F32(d, ldd, s, lds) af_tr16x16_ps(d, ldd, s, lds)
#define AF_TRANSPOSE_F64(d, ldd, s, lds) af_tr8x8_pd(d, ldd, s, lds)
#define AF_PACKA_F32(d, s, lds) af_pack12x16_ps(d, s, lds)
#define AF_PACKA_F64(d, s, lds) af_pack12x8_pd(d, s, lds)

#elif defined(AF_EMU_OPS)
/* Emulation: plain loops with the same contracts, so the packing code that calls them (block
 * loops, remainders, edge panels) runs in the emulated test as it does on AVX-512. */
#define AF_EMU_TRANSPOSE(d, ldd, s, lds, n)                                                 \
    do {                                                                                   \
        for (size_t i_ = 0; i_ < (n); i_++)                                                \
            for (size_t r_ = 0; r_ < (n); r_++) (d)[i_ * (ldd) + r_] = (s)[r_ * (lds) + i_]; \
    } while (0)
#define AF_EMU_PACKA(d, s, lds, n)                                                          \
    do {                                                                                   \
        for (size_t i_ = 0; i_ < (n); i_++)                                                \
            for (size_t r_ = 0; r_ < KMR; r_++) (d)[i_ * KMR + r_] = (s)[r_ * (lds) + i_];   \
    } while (0)
#define AF_TRANSPOSE_F32(d, ldd, s, lds) AF_EMU_TRANSPOSE(d, ldd, s, lds, 16)
#define AF_TRANSPOSE_F64(d, ldd, s, lds) AF_EMU_TRANSPOSE(d, ldd, s, lds, 8)
#define AF_PACKA_F32(d, s, lds) AF_EMU_PACKA(d, s, lds, 16)
#define AF_PACKA_F64(d, s, lds) AF_EMU_PACKA(d, s, lds, 8)
#endif

#if AF_GEMM_X86
#define AF_DTYPE_F32
#define KMR 12
#define KNV 2
#define KVN 16
#define KMC 480
#define KKC 192
#define KNC 3072
#ifdef AF_EMU_OPS
#define V af_ev_f32
#include "gemm_generic_ops.h"
#define VH af_evh_f32
#include "gemm_emu_half.h"
#else
#define V __m512
#define VZERO() _mm512_setzero_ps()
#define VSET1(x) _mm512_set1_ps(x)
#define VBCAST(p) _mm512_set1_ps(*(p))
#define VLOADU(p) _mm512_loadu_ps(p)
#define VSTOREU(p, v) _mm512_storeu_ps(p, v)
#define VMUL(a, b) _mm512_mul_ps(a, b)
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VADD(a, b) _mm512_add_ps(a, b)
/* x where x > 0 or x is NaN (not less-or-equal, unordered), else +0 */
#define VRELU(x) _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_NLE_UQ), x)
#define VLOADN(p, cnt) _mm512_maskz_loadu_ps((__mmask16)((1u << (cnt)) - 1), p)
#define VSTOREN(p, v, cnt) _mm512_mask_storeu_ps(p, (__mmask16)((1u << (cnt)) - 1), v)
/* half vectors of the skinny row kernel: AVX2 ymm operations (no AVX512VL needed) */
#define VH __m256
#define VHZERO() _mm256_setzero_ps()
#define VHBCAST(p) _mm256_set1_ps(*(p))
#define VHFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VHLOW(v) _mm512_castps512_ps256(v)
#define VHWIDEN(h) _mm512_zextps256_ps512(h)
#define KHSUM(v) af_hsum16_ps(v)
#endif
#define KROWS1 12
#define KROWS3 8 /* 24 accumulators, 3 B vectors, a broadcast */
#define KDOTACC 24 /* dot-column tiles (gemm_skinny_impl.h) */
#define KCOLNB 12
#define KTRANSPOSE(d, ldd, s, lds) AF_TRANSPOSE_F32(d, ldd, s, lds)
#define KPACKA(d, s, lds) AF_PACKA_F32(d, s, lds)
#define KFUSED 1 /* scalar multiply-adds fused, as the intrinsics' VFMA (gemm_kern_impl.h, KSFMA) */
#define KPROJ 1 /* projection passes beside the GEMVs (gemm_kern_impl.h) */
#include "gemm_kern_impl.h"

#define AF_DTYPE_F64
#define KMR 12
#define KNV 2
#define KVN 8
#define KMC 240
#define KKC 192
#define KNC 3072
#ifdef AF_EMU_OPS
#define V af_ev_f64
#include "gemm_generic_ops.h"
#define VH af_evh_f64
#include "gemm_emu_half.h"
#else
#define V __m512d
#define VZERO() _mm512_setzero_pd()
#define VSET1(x) _mm512_set1_pd(x)
#define VBCAST(p) _mm512_set1_pd(*(p))
#define VLOADU(p) _mm512_loadu_pd(p)
#define VSTOREU(p, v) _mm512_storeu_pd(p, v)
#define VMUL(a, b) _mm512_mul_pd(a, b)
#define VFMA(a, b, c) _mm512_fmadd_pd(a, b, c)
#define VADD(a, b) _mm512_add_pd(a, b)
#define VRELU(x) _mm512_maskz_mov_pd(_mm512_cmp_pd_mask(x, _mm512_setzero_pd(), _CMP_NLE_UQ), x)
#define VLOADN(p, cnt) _mm512_maskz_loadu_pd((__mmask8)((1u << (cnt)) - 1), p)
#define VSTOREN(p, v, cnt) _mm512_mask_storeu_pd(p, (__mmask8)((1u << (cnt)) - 1), v)
#define VH __m256d
#define VHZERO() _mm256_setzero_pd()
#define VHBCAST(p) _mm256_set1_pd(*(p))
#define VHFMA(a, b, c) _mm256_fmadd_pd(a, b, c)
#define VHLOW(v) _mm512_castpd512_pd256(v)
#define VHWIDEN(h) _mm512_zextpd256_pd512(h)
#define KHSUM(v) af_hsum8_pd(v)
#endif
#define KROWS1 12
#define KROWS3 8 /* 24 accumulators, 3 B vectors, a broadcast */
#define KDOTACC 24 /* dot-column tiles (gemm_skinny_impl.h) */
#define KCOLNB 12
#define KTRANSPOSE(d, ldd, s, lds) AF_TRANSPOSE_F64(d, ldd, s, lds)
#define KPACKA(d, s, lds) AF_PACKA_F64(d, s, lds)
#define KFUSED 1 /* scalar multiply-adds fused, as the intrinsics' VFMA (gemm_kern_impl.h, KSFMA) */
#define KPROJ 1 /* projection passes beside the GEMVs (gemm_kern_impl.h) */
#include "gemm_kern_impl.h"

#endif
