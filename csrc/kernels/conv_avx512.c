/* conv_avx512.c: direct convolution tiles for AVX-512F (64-byte vectors, 32 registers: 12 x 2
 * accumulators fit). Run through isa_ctx.c's avx512 table, only on that path. */
#include "conv_kern.h"

#if AF_CONV_X86
#ifdef __clang__
#pragma clang attribute push(__attribute__((target("avx512f,avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx512f,avx2,fma")
#endif

#include <immintrin.h>

#define CK_ISA avx512
/* masked moves of the first n lanes */
#define CK_LOADN_F32(p, n) ((VT)_mm512_maskz_loadu_ps((__mmask16)((1u << (n)) - 1), p))
#define CK_STOREN_F32(p, v, n) _mm512_mask_storeu_ps(p, (__mmask16)((1u << (n)) - 1), (__m512)(v))
#define CK_LOADN_F64(p, n) ((VT)_mm512_maskz_loadu_pd((__mmask8)((1u << (n)) - 1), p))
#define CK_STOREN_F64(p, v, n) _mm512_mask_storeu_pd(p, (__mmask8)((1u << (n)) - 1), (__m512d)(v))
#define CK_VBYTES 64
#define CK_ROWS2 12
#define CK_CELLV 2
#define CK_DWK 5
#define AF_DTYPE_F32
#include "conv_kern_impl.h"
#define AF_DTYPE_F64
#include "conv_kern_impl.h"

#ifdef __clang__
#pragma clang attribute pop
#endif
#endif
