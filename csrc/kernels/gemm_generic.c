/* gemm_generic.c: portable GEMM kernels (float and double from gemm_kern_impl.h).
 *
 * Used on non-x86 builds, on x86 CPUs without AVX2+FMA, and when ANNFAST_ISA=generic. With GCC
 * or Clang the "vectors" are 16-byte generic vector types (SSE2 on x86-64, NEON on arm64) and
 * a * b + c is a plain multiply then add (no FMA assumed); other compilers get scalar code.
 * Register block 4 rows x 2 vectors = 8 accumulators of the 16 vector registers:
 * float 4 x 8, double 4 x 4.
 * Cache blocks: KC = 256 (B micro-panel 8 KB in L1), MC = 128 (A block 128-256 KB in L2),
 * NC = 2048 (B block 2-4 MB in L3).
 */
#include <string.h>
#include "gemm_kern.h"

#define AF_KISA generic
#define AF_KATTR

#if defined(__GNUC__) || defined(__clang__)
typedef float af_gv_f32 __attribute__((vector_size(16)));
typedef double af_gv_f64 __attribute__((vector_size(16)));
#define AF_GLANES_F32 4
#define AF_GLANES_F64 2
#else
typedef float af_gv_f32;
typedef double af_gv_f64;
#define AF_GLANES_F32 1
#define AF_GLANES_F64 1
#endif

#define AF_DTYPE_F32
#define KMR 4
#define KVN AF_GLANES_F32
#define KNV (8 / AF_GLANES_F32)
#define KMC 128
#define KKC 256
#define KNC 2048
#define V af_gv_f32
#define KROWS1 8
#define KCOLNB 6
#include "gemm_generic_ops.h"
#include "gemm_kern_impl.h"

#define AF_DTYPE_F64
#define KMR 4
#define KVN AF_GLANES_F64
#define KNV (4 / AF_GLANES_F64)
#define KMC 128
#define KKC 256
#define KNC 2048
#define V af_gv_f64
#define KROWS1 8
#define KCOLNB 6
#include "gemm_generic_ops.h"
#include "gemm_kern_impl.h"
