/* act_avx2.c: activation row kernels compiled for avx2,fma (no -march flag: the target applies
 * to this file only, and they run through isa_ctx.c's avx2 table, only on that path). */
#include "act_kern.h"

#if AF_ACT_X86
#ifdef __clang__
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx2,fma")
#endif

#define AF_ACT_ISA avx2
#define AF_DTYPE_F32
#include "act_kern_impl.h"
#define AF_DTYPE_F64
#include "act_kern_impl.h"

#ifdef __clang__
#pragma clang attribute pop
#endif
#endif
