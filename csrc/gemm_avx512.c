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
#define AF_KISA avx2
#define AF_KATTR __attribute__((target("avx2,fma")))
#define AF_EMU_OPS 1
#elif AF_GEMM_X86
#include <immintrin.h>

#define AF_KISA avx512
#define AF_KATTR __attribute__((target("avx512f,avx2,fma")))
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
#else
#define V __m512
#define VZERO() _mm512_setzero_ps()
#define VSET1(x) _mm512_set1_ps(x)
#define VBCAST(p) _mm512_set1_ps(*(p))
#define VLOADU(p) _mm512_loadu_ps(p)
#define VSTOREU(p, v) _mm512_storeu_ps(p, v)
#define VMUL(a, b) _mm512_mul_ps(a, b)
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#endif
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
#else
#define V __m512d
#define VZERO() _mm512_setzero_pd()
#define VSET1(x) _mm512_set1_pd(x)
#define VBCAST(p) _mm512_set1_pd(*(p))
#define VLOADU(p) _mm512_loadu_pd(p)
#define VSTOREU(p, v) _mm512_storeu_pd(p, v)
#define VMUL(a, b) _mm512_mul_pd(a, b)
#define VFMA(a, b, c) _mm512_fmadd_pd(a, b, c)
#endif
#include "gemm_kern_impl.h"

#endif
