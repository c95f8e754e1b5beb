/* rows_avx2.c: the row kernels of rows.h compiled for avx2,fma (the target applies to this file
 * only; they run through isa_ctx.c's avx2 table, only on that path). */
#include <math.h>
#include <string.h>

#include "rows.h"

#if AF_ROWS_X86
#include <immintrin.h>
#ifdef __clang__
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx2,fma")
#endif

#define AF_ROWS_ISA avx2
#define AF_ROWS_AVX2 1 /* the AVX2 intrinsics of tut_kern_impl.h */
#define AF_ROWS_VBYTES 32
#define AF_DTYPE_F32
#include "rows_kern_impl.h"
#define AF_DTYPE_F64
#include "rows_kern_impl.h"
#undef AF_ROWS_VBYTES
#undef AF_ROWS_AVX2

#ifdef __clang__
#pragma clang attribute pop
#endif
#endif
