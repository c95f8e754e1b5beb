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

/* ---- pieces of a one-process fit ------------------------------------------------------------
 * Dense layers on vectors at moderate batches: a step cut into two pieces (as a data-parallel run
 * cuts it over processes), one per thread, with one pool job for the pieces' passes and one for
 * the update (engine_split_impl.h), beats threading each product of the step, whose small
 * products (below the GEMM's threading threshold) run on one core and whose larger ones end in a
 * join each. Measured on 2 cores, float32, Adam, batch 200 unless said: 64-64-10 (digits) 1.25x,
 * 50-128-64-10 1.5x, 784-256-10 1.16x, 784-512-256-10 1.05x, 100-256-256-2 at batch 64 1.19x; but
 * 784-512-256-10 at batch 64 0.85x (each piece reads all of W for 32 rows, and the pieces'
 * gradients are summed) and at batch 128 1.0x (0.95x with plain SGD, whose update the whole
 * step fuses into its products). Hence: pieces from 2 x AF_PIECE_MIN_ROWS rows for networks of
 * up to AF_PIECES_SMALL weights, from AF_PIECES_LARGE_BATCH rows up to AF_PIECES_MAX weights.
 * The cut depends on the network and the batch size only, never on the thread count, so one
 * thread computes the same pieces in turn and gets the same bits (and is a few percent slower
 * than an uncut step); the bits differ from an uncut step's by the order the gradient sums the
 * samples in. */
#define AF_PIECE_MIN_ROWS 32
#define AF_PIECES_SMALL 150000.0
#define AF_PIECES_LARGE_BATCH 192
#define AF_PIECES_MAX 1000000.0

size_t af_local_pieces(const af_graph *g, const af_plan *p, size_t batch)
{
    if (!g || !p || batch < 2 * AF_PIECE_MIN_ROWS || af_split_sums_len(p)) return 1;
    double weights = 0;
    for (size_t r = 0; r < p->n_order; r++) {
        size_t i = p->order[r];
        unsigned f = g->nodes[i].ops->flags;
        if (f & (AF_OP_INPUT | AF_OP_ALIAS | AF_OP_INFER_IDENTITY)) continue;
        /* vectors through position-wise kinds only (dense, activation, add...): a step's work is
         * then about batch x weights; convolutions and recurrences reuse each weight many times
         * per sample and thread their own products */
        if (!(f & AF_OP_POSITIONWISE) || p->info[i].out.rank != 1) return 1;
        weights += (double)p->info[i].n_params;
    }
    if (weights <= AF_PIECES_SMALL) return 2;
    return batch >= AF_PIECES_LARGE_BATCH && weights <= AF_PIECES_MAX ? 2 : 1;
}
