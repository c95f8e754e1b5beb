/* conv_avx512.c: direct convolution tiles for AVX-512F (64-byte vectors, 32 registers: 12 x 2
 * accumulators fit). Called only when af_get_isa() selected that path. */
#include "conv_kern.h"

#if AF_CONV_X86
#ifdef __clang__
#pragma clang attribute push(__attribute__((target("avx512f,avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx512f,avx2,fma")
#endif

#define CK_ISA avx512
#define CK_VBYTES 64
#define CK_ROWS2 12
#define AF_DTYPE_F32
#include "conv_kern_impl.h"
#define AF_DTYPE_F64
#include "conv_kern_impl.h"

#ifdef __clang__
#pragma clang attribute pop
#endif
#endif
