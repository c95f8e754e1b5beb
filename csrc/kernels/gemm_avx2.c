/* gemm_avx2.c: AVX2 + FMA GEMM kernels (float and double from gemm_kern_impl.h).
 *
 * Compiled without -march flags: every function carries target("avx2,fma") and is only called
 * when af_cpu_has(AF_ISA_AVX2) (cpu.c) says the CPU and OS support it.
 *
 * Register block: 6 rows x 2 ymm vectors = 12 accumulators + 2 B vectors + 1 broadcast = 15 of
 * the 16 ymm registers. float: 6 x 16, double: 6 x 8. With two FMA pipes of latency 4-5 cycles,
 * 12 independent accumulators keep both pipes busy.
 * Cache blocks (Zen 2/3 and Haswell..Ice Lake client: L1d 32 KB, L2 512 KB-1.25 MB, L3 shared):
 *   KC = 256: the B micro-panel KC x NR = 256*16*4 B (float) = 256*8*8 B (double) = 16 KB stays
 *             in half of L1 while the kernel walks down the A block.
 *   MC: the packed A block MC x KC fills ~1/4..1/3 of a 512 KB L2 (float 144*256*4 = 144 KB,
 *       double 72*256*8 = 144 KB), multiple of MR = 6.
 *   NC = 1024 (multiple of 16 and 8): the B block KC x NC (1-2 MB) lives in L3; measured on
 *       Zen 3 at n = 2048 slightly faster than 4080 (the B block stays nearer the core).
 */
#include "gemm_kern.h"

#if AF_GEMM_X86
#include <immintrin.h>

#define AF_KISA avx2
#define AF_KATTR __attribute__((target("avx2,fma")))

/* 8 x 8 float transpose: d[i*ldd + r] = s[r*lds + i] (packing of B^T). unpack interleaves row
 * pairs, shuffle gathers 4-element column pieces per 128-bit lane, permute2f128 joins lanes. */
static inline __attribute__((always_inline)) AF_KATTR void af_tr8x8_ps(float *d, size_t ldd,
                                                                       const float *s, size_t lds)
{
    __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + lds);
    __m256 r2 = _mm256_loadu_ps(s + 2 * lds), r3 = _mm256_loadu_ps(s + 3 * lds);
    __m256 r4 = _mm256_loadu_ps(s + 4 * lds), r5 = _mm256_loadu_ps(s + 5 * lds);
    __m256 r6 = _mm256_loadu_ps(s + 6 * lds), r7 = _mm256_loadu_ps(s + 7 * lds);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(d, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(d + ldd, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(d + 2 * ldd, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(d + 3 * ldd, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(d + 4 * ldd, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(d + 5 * ldd, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(d + 6 * ldd, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(d + 7 * ldd, _mm256_permute2f128_ps(u3, u7, 0x31));
}

/* 4 x 4 double transpose: d[i*ldd + r] = s[r*lds + i]. */
static inline __attribute__((always_inline)) AF_KATTR void af_tr4x4_pd(double *d, size_t ldd,
                                                                       const double *s, size_t lds)
{
    __m256d r0 = _mm256_loadu_pd(s), r1 = _mm256_loadu_pd(s + lds);
    __m256d r2 = _mm256_loadu_pd(s + 2 * lds), r3 = _mm256_loadu_pd(s + 3 * lds);
    __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
    __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
    _mm256_storeu_pd(d, _mm256_permute2f128_pd(t0, t2, 0x20));
    _mm256_storeu_pd(d + ldd, _mm256_permute2f128_pd(t1, t3, 0x20));
    _mm256_storeu_pd(d + 2 * ldd, _mm256_permute2f128_pd(t0, t2, 0x31));
    _mm256_storeu_pd(d + 3 * ldd, _mm256_permute2f128_pd(t1, t3, 0x31));
}

/* Lane sums in the row kernel's fixed order (gemm_skinny_impl.h, rowk_lanes_sum): lane l + w
 * added to lane l for w = 4 (floats), 2, 1, in registers. */
static inline __attribute__((always_inline)) AF_KATTR float af_hsum8_ps(__m256 v)
{
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
}
static inline __attribute__((always_inline)) AF_KATTR double af_hsum4_pd(__m256d v)
{
    __m128d q = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(q, _mm_unpackhi_pd(q, q)));
}

/* Lane masks for partial loads/stores (VLOADN/VSTOREN): lanes below cnt set. */
static inline __attribute__((always_inline)) AF_KATTR __m256i af_mask8_epi32(size_t cnt)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)cnt), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline __attribute__((always_inline)) AF_KATTR __m256i af_mask4_epi64(size_t cnt)
{
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)cnt), _mm256_setr_epi64x(0, 1, 2, 3));
}

/* Block sizes can be overridden at build time for tuning experiments (-DAF_AVX2_S_KC=...). */
#ifndef AF_AVX2_S_MC
#define AF_AVX2_S_MC 144
#endif
#ifndef AF_AVX2_S_KC
#define AF_AVX2_S_KC 256
#endif
#ifndef AF_AVX2_NC
#define AF_AVX2_NC 1024
#endif
#ifndef AF_AVX2_D_MC
#define AF_AVX2_D_MC 72
#endif
#ifndef AF_AVX2_D_KC
#define AF_AVX2_D_KC 256
#endif

#define AF_DTYPE_F32
#define KMR 6
#define KNV 2
#define KVN 8
#define KMC AF_AVX2_S_MC
#define KKC AF_AVX2_S_KC
#define KNC AF_AVX2_NC
#define V __m256
#define VZERO() _mm256_setzero_ps()
#define VSET1(x) _mm256_set1_ps(x)
#define VBCAST(p) _mm256_broadcast_ss(p)
#define VLOADU(p) _mm256_loadu_ps(p)
#define VSTOREU(p, v) _mm256_storeu_ps(p, v)
#define VMUL(a, b) _mm256_mul_ps(a, b)
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VADD(a, b) _mm256_add_ps(a, b)
/* x where x > 0 or x is NaN (not less-or-equal, unordered), else +0 */
#define VRELU(x) _mm256_and_ps(x, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_NLE_UQ))
#define VLOADN(p, cnt) _mm256_maskload_ps(p, af_mask8_epi32(cnt))
#define VSTOREN(p, v, cnt) _mm256_maskstore_ps(p, af_mask8_epi32(cnt), v)
#define KROWS1 12
#define KCOLNB 6
#define KTRANSPOSE(d, ldd, s, lds) af_tr8x8_ps(d, ldd, s, lds)
#define KHSUM(v) af_hsum8_ps(v)
#define KGVPF 4
#define KFUSED 1 /* scalar multiply-adds fused, as the intrinsics' VFMA (gemm_kern_impl.h, KSFMA) */
#include "gemm_kern_impl.h"

#define AF_DTYPE_F64
#define KMR 6
#define KNV 2
#define KVN 4
#define KMC AF_AVX2_D_MC
#define KKC AF_AVX2_D_KC
#define KNC AF_AVX2_NC
#define V __m256d
#define VZERO() _mm256_setzero_pd()
#define VSET1(x) _mm256_set1_pd(x)
#define VBCAST(p) _mm256_broadcast_sd(p)
#define VLOADU(p) _mm256_loadu_pd(p)
#define VSTOREU(p, v) _mm256_storeu_pd(p, v)
#define VMUL(a, b) _mm256_mul_pd(a, b)
#define VFMA(a, b, c) _mm256_fmadd_pd(a, b, c)
#define VADD(a, b) _mm256_add_pd(a, b)
#define VRELU(x) _mm256_and_pd(x, _mm256_cmp_pd(x, _mm256_setzero_pd(), _CMP_NLE_UQ))
#define VLOADN(p, cnt) _mm256_maskload_pd(p, af_mask4_epi64(cnt))
#define VSTOREN(p, v, cnt) _mm256_maskstore_pd(p, af_mask4_epi64(cnt), v)
#define KROWS1 12
#define KCOLNB 6
#define KTRANSPOSE(d, ldd, s, lds) af_tr4x4_pd(d, ldd, s, lds)
#define KHSUM(v) af_hsum4_pd(v)
#define KGVPF 4
#define KFUSED 1 /* scalar multiply-adds fused, as the intrinsics' VFMA (gemm_kern_impl.h, KSFMA) */
#include "gemm_kern_impl.h"

#endif
