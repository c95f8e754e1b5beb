/* act_colsum.c: the backward pass's activation derivative fused with the bias column sums, and a
 * copy-or-add helper, for float and double (act_colsum_impl.h). */
#include <string.h>

#include "internal.h"

/* The per-pass work is memory-bound and cheap next to the GEMMs: threads only above this many
 * elements, so a training step opens few parallel regions (each ends in a barrier, costly when
 * cores are shared). */
#ifndef AF_PAR_MIN_PASS
#define AF_PAR_MIN_PASS (4 * AF_PAR_MIN)
#endif

#define AF_DTYPE_F32
#include "act_colsum_impl.h"
#define AF_DTYPE_F64
#include "act_colsum_impl.h"
