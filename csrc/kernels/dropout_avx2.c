/* dropout_avx2.c: the dropout block (dropout_kern_impl.h) compiled for avx2,fma; it runs
 * through isa_ctx.c's avx2 table, only on that path. */
#include <string.h>

#include "dropout_kern.h"

#if AF_DROPOUT_X86
#ifdef __clang__
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx2,fma")
#endif

#define AF_DROPOUT_ISA avx2
#define AF_DTYPE_F32
#include "dropout_kern_impl.h"
#define AF_DTYPE_F64
#include "dropout_kern_impl.h"

#ifdef __clang__
#pragma clang attribute pop
#endif
#endif
