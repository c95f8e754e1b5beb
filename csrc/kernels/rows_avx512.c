/* rows_avx512.c: the row kernels of rows.h compiled for avx512f,avx2,fma (the target applies to this file
 * only; they run through isa_ctx.c's avx512 table, only on that path). */
#include <math.h>
#include <string.h>

#include "rows.h"

#if AF_ROWS_X86
#include <immintrin.h>
#ifdef __clang__
#pragma clang attribute push(__attribute__((target("avx512f,avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx512f,avx2,fma")
#endif

#define AF_ROWS_ISA avx512
#define AF_ROWS_AVX512 1 /* the AVX-512 intrinsics of tut_kern_impl.h */
#define AF_ROWS_VBYTES 64
#define AF_DTYPE_F32
#include "rows_kern_impl.h"
#define AF_DTYPE_F64
#include "rows_kern_impl.h"
#undef AF_ROWS_VBYTES
#undef AF_ROWS_AVX512

#ifdef __clang__
#pragma clang attribute pop
#endif
#endif
