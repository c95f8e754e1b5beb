/* split.h: training with every global batch split into pieces by sample index: the engine side of
 * data-parallel training over processes (MPI), with results that do not depend on which process
 * computes which piece.
 *
 * A global batch of Bg samples (consecutive rows of the epoch's order) is split into `parts`
 * pieces: piece q holds the batch positions [Bg q / parts, Bg (q + 1) / parts). A caller computes
 * the pieces first .. first + count - 1 (MPI: first = rank, count = 1; one process reproducing an
 * MPI run: first = 0, count = parts), each on its own workspace, with the same calls whoever
 * computes it:
 *   - forward and backward of the piece's samples, each loss scaled by 1 / Bg, so the pieces'
 *     gradients add up to the gradient of the batch's mean loss;
 *   - dropout masks indexed by the sample's position in the global batch (af_op_args.row0);
 *   - kinds whose training pass sums over the samples (batch norm's count, sum and sum of squares;
 *     af_node_sizes.sums > 0) run in two phases (AF_SUMS_PARTIAL, AF_SUMS_TOTAL, layer.h): the
 *     pieces' partial sums are added in piece order, then summed over processes by g->reduce, and
 *     every piece finishes with the sums of the whole batch;
 *   - the pieces' gradients are added in piece order and summed over processes by g->reduce (one
 *     call per step, over the whole flat gradient);
 *   - then the L1/L2 penalty, clipping and the optimiser step, identical on every process.
 * One process computing all the pieces therefore gets bitwise the weights of two processes
 * computing one each (their reduce adds two values: a + b == b + a in IEEE arithmetic). With more
 * processes the MPI library's summation order decides the last bits (identical on every process
 * and from run to run for a given process count and library).
 * Before each step the stop requests (af_stop_requested) of all processes are summed through
 * g->reduce, so every process stops after the same step.
 */
#ifndef AF_SPLIT_H
#define AF_SPLIT_H
#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    size_t parts;                /* pieces per global batch, >= 1 */
    size_t first, count;         /* this caller computes pieces first .. first + count - 1 */
    void *const *ws;             /* count workspaces of ws_len elements, from a plan for batches
                                  * of ceil(batch / parts) samples (the plan passed to the call) */
    size_t ws_len;
    void *const *grads;          /* count - 1 gradient buffers of n_params (pieces first + 1, ...);
                                  * piece `first` uses g->grads, which ends with the summed one */
    double *sums;                /* (count + 1) x af_split_sums_len(plan) doubles */
    af_epoch_stats *stats;       /* count per-piece sums (piece `first` also gets the penalty
                                  * when first == 0); zeroed by the call */
} af_split;

/* Doubles of cross-sample sums the largest node of the plan exchanges (0: no such node). */
size_t af_split_sums_len(const af_plan *p);

/* Samples of piece q of a batch of Bg: [*lo, *hi). */
void af_split_piece(size_t Bg, size_t parts, size_t q, size_t *lo, size_t *hi);

/* Sum of nbuf equal-length buffers over [lo, hi), in buffer order (bufs[0] + bufs[1] + ...: the
 * order one process adds its pieces in), written into every buffer: the processes of one machine
 * sum a range each of their gradient buffers in shared memory instead of an MPI Allreduce.
 * AF_EINVAL for no buffers, lo > hi or a missing buffer. */
af_status af_split_sum_all_f32(size_t nbuf, float *const *bufs, size_t lo, size_t hi);
af_status af_split_sum_all_f64(size_t nbuf, double *const *bufs, size_t lo, size_t hi);

/* Pieces a one-process fit cuts each batch of `batch` samples into (1: none), from the network
 * and the batch size only (split.c). Where no node sums over samples, a caller computing several
 * pieces (count > 1) runs them at once on annfast's threads, one pool job per step. */
size_t af_local_pieces(const af_graph *g, const af_plan *p, size_t batch);

/* One epoch (or its batches first_batch .. , as af_graph_train_epoch) of split batches. The
 * stats are per piece (sum them, over processes too, for the epoch's figures). Returns AF_EINTR
 * when any process asked to stop (all stop after the same step), or the status of a failed
 * reduce. */
af_status af_graph_train_split_f32(const af_graph *g, af_plan *p, const af_split *sp,
                                   const af_data *d, const af_epoch_args *e, const af_optim *opt,
                                   float *opt_state, uint64_t *step);
af_status af_graph_train_split_f64(const af_graph *g, af_plan *p, const af_split *sp,
                                   const af_data *d, const af_epoch_args *e, const af_optim *opt,
                                   double *opt_state, uint64_t *step);

#ifdef __cplusplus
}
#endif
#endif
