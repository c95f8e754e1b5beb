/* act_colsum.c: the backward pass's activation derivative fused with the bias column sums, and a
 * copy-or-add helper, for float and double (act_colsum_impl.h). */
#include <string.h>

#include "internal.h"
#include "isa_ctx.h"
#include "pool.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* The per-pass work is memory-bound and cheap next to the GEMMs: threads only above this many
 * elements, so a training step opens few parallel regions (each ends in a barrier, costly when
 * cores are shared). */
#ifndef AF_PAR_MIN_PASS
#define AF_PAR_MIN_PASS (4 * AF_PAR_MIN)
#endif

/* Threads for the column pass (a pool job): one below AF_PAR_MIN_COLS values or inside an
 * OpenMP region (a layer that splits its batch over threads runs its passes serially). */
#define AF_PAR_MIN_COLS 32768
static int colsum_threads(size_t work)
{
#ifdef _OPENMP
    if (omp_in_parallel()) return 1;
#endif
    return work >= AF_PAR_MIN_COLS ? af_get_num_threads() : 1;
}

#define AF_DTYPE_F32
#include "act_colsum_impl.h"
#define AF_DTYPE_F64
#include "act_colsum_impl.h"
