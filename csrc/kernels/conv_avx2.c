/* conv_avx2.c: direct convolution tiles for AVX2 + FMA (32-byte vectors, 16 registers: 12 x 1
 * or 6 x 2 accumulators). Called only when af_get_isa() selected that path. */
#include "conv_kern.h"

#if AF_CONV_X86
#ifdef __clang__
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx2,fma")
#endif

#define CK_ISA avx2
#define CK_VBYTES 32
#define CK_ROWS2 6
#define AF_DTYPE_F32
#include "conv_kern_impl.h"
#define AF_DTYPE_F64
#include "conv_kern_impl.h"

#ifdef __clang__
#pragma clang attribute pop
#endif
#endif
