/* split.c: the dtype-independent parts of split-batch training (split.h); the passes are in
 * engine_split_impl.h. */
#include <string.h>

#include "fpenv.h"
#include "plan.h"
#include "split.h"

#define AF_DTYPE_F32
#include "split_sum_impl.h"
#define AF_DTYPE_F64
#include "split_sum_impl.h"

size_t af_split_sums_len(const af_plan *p)
{
    size_t n = 0;
    if (!p) return 0;
    for (size_t r = 0; r < p->n_order; r++)
        if (p->sz[p->order[r]].sums > n) n = p->sz[p->order[r]].sums;
    return n;
}

/* Piece q holds batch positions [floor(Bg q / parts), floor(Bg (q + 1) / parts)): sizes differ by
 * at most one, the larger ones last. Bg q is formed in two parts so it cannot overflow. */
static size_t piece_start(size_t Bg, size_t parts, size_t q)
{
    return (Bg / parts) * q + (Bg % parts) * q / parts;
}

void af_split_piece(size_t Bg, size_t parts, size_t q, size_t *lo, size_t *hi)
{
    if (parts == 0 || q >= parts) {
        *lo = *hi = 0;
        return;
    }
    *lo = piece_start(Bg, parts, q);
    *hi = piece_start(Bg, parts, q + 1);
}
