/* conv_avx2.c: direct convolution tiles for AVX2 + FMA (32-byte vectors, 16 registers: 12 x 1
 * or 6 x 2 accumulators). Run through isa_ctx.c's avx2 table, only on that path. */
#include "conv_kern.h"

#if AF_CONV_X86
#ifdef __clang__
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx2,fma")
#endif

#include <immintrin.h>

#define CK_ISA avx2
/* masked moves of the first n lanes: lane i moves when i < n */
#define CK_MASK32(n) _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define CK_MASK64(n) _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)(n)), _mm256_setr_epi64x(0, 1, 2, 3))
#define CK_LOADN_F32(p, n) ((VT)_mm256_maskload_ps(p, CK_MASK32(n)))
#define CK_STOREN_F32(p, v, n) _mm256_maskstore_ps(p, CK_MASK32(n), (__m256)(v))
#define CK_LOADN_F64(p, n) ((VT)_mm256_maskload_pd(p, CK_MASK64(n)))
#define CK_STOREN_F64(p, v, n) _mm256_maskstore_pd(p, CK_MASK64(n), (__m256d)(v))
#define CK_VBYTES 32
#define CK_ROWS2 6
#define CK_CELLV 1
#define CK_DWK 2
#define AF_DTYPE_F32
#include "conv_kern_impl.h"
#define AF_DTYPE_F64
#include "conv_kern_impl.h"

#ifdef __clang__
#pragma clang attribute pop
#endif
#endif
