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
#endif
