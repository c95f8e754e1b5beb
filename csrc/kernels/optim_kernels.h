/* optim_kernels.h: constants and helpers shared by optim.c and its template optim_impl.h
 * (not part of the public API). */
#ifndef AF_OPTIM_KERNELS_H
#define AF_OPTIM_KERNELS_H
#include "annfast.h"

/* Elements per parallel block of an optimiser step (elementwise: any split gives equal results). */
#define AF_OPT_BLOCK 4096
/* Global-norm reduction: chunk granularity and the maximum number of chunk partials. */
#define AF_NORM_CHUNK 4096
#define AF_NORM_MAXPART 256

size_t af_norm_chunk_size(size_t n);

/* An AVX2+FMA copy of the step kernels is compiled (function target attributes, no -march) on
 * x86-64 with GCC or Clang and used when af_get_isa() >= AF_ISA_AVX2. */
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define AF_OPT_HAVE_AVX2 1
#else
#define AF_OPT_HAVE_AVX2 0
#endif
#endif
