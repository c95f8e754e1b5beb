/* rnn_cell_avx2.c: the fused recurrent step kernels compiled for avx2,fma (no -march flag: the
 * target applies to this file only, and they run through isa_ctx.c's avx2 table, only on that
 * path). */
#include "rnn_cell.h"

#if AF_RNN_X86
#ifdef __clang__
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx2,fma")
#endif

#define AF_RNN_ISA avx2
#define AF_DTYPE_F32
#include "rnn_cell_kern_impl.h"
#define AF_DTYPE_F64
#include "rnn_cell_kern_impl.h"

#ifdef __clang__
#pragma clang attribute pop
#endif
#endif
