/* net_internal.h: pieces shared by net.c, loss.c and train.c (not part of the public C API). */
#ifndef AF_NET_INTERNAL_H
#define AF_NET_INTERNAL_H
#include "net.h"
#include "internal.h"
#include "optim.h"
#include "norm.h"

/* Every workspace region starts on a multiple of this many elements (64 bytes for float). */
#define AF_WS_ALIGN 16
/* Column block of the fused activation-derivative + bias-gradient pass, and the chunk of the
 * penalty sums: fixed sizes, so reductions never depend on the thread count. */
#define AF_COL_BLOCK 64
#define AF_SUM_CHUNK 4096
/* Interleaved partial sums inside one chunk (the penalty's sum of squares). */
#define AF_SUM_LANES 16
/* The engine's own per-step passes (activation derivative + bias sums) are memory-bound and
 * cheap next to the GEMMs: they use threads only above this many elements, so a training step
 * opens few parallel regions (each ends in a barrier, costly when cores are shared). */
#ifndef AF_PAR_MIN_PASS
#define AF_PAR_MIN_PASS (4 * AF_PAR_MIN)
#endif
/* The batch gather (train_impl.h) uses threads from this many elements (64 rows of 784). */
#ifndef AF_PAR_MIN_GATHER
#define AF_PAR_MIN_GATHER 50000
#endif

/* Offsets (in elements) of the workspace regions for batches of up to max_batch rows.
 * xb, yb: gathered input/target batch; d0, d1: ping-pong deltas (max_batch x widest layer);
 * rows: 3 x max_batch per-row loss/accuracy/squared error; part: penalty partial sums. */
typedef struct {
    size_t xb, yb, d0, d1, rows, part, layers, end;
} af_ws_plan;

af_status af_ws_plan_make(const af_net *net, size_t max_batch, af_ws_plan *plan);
/* Offset of layer l's output (max_batch x n_out) and of its auxiliary region (BN: batch mean
 * and inverse std, n each; none for the other kinds). */
void af_ws_layer(const af_net *net, const af_ws_plan *plan, size_t max_batch, size_t l,
                 size_t *out_off, size_t *aux_off);

/* 1 when the output layer is softmax + (sparse) categorical cross-entropy or sigmoid + binary
 * cross-entropy: the loss is then computed from the logits. */
int af_net_fused_output(const af_net *net);

/* splitmix64: the state advances by a constant; the output is a bijective mix of it. */
static inline uint64_t af_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Dropout seed of layer l: the model seed mixed with the layer index, so layers draw
 * independent masks. */
static inline uint64_t af_layer_seed(uint64_t seed, size_t l)
{
    uint64_t st = seed ^ (0x2545F4914F6CDD1DULL * ((uint64_t)l + 1));
    return af_splitmix64(&st);
}

/* The epoch's order: identity, then a Fisher-Yates shuffle driven by splitmix64 seeded from
 * (seed, key) only, so the order never depends on earlier calls. */
void af_shuffle_order(uint64_t seed, uint64_t key, size_t n, uint64_t *perm);

/* Per-row losses (see loss_impl.h). */
af_status af_loss_rows_f32(af_loss loss, int from_logits, size_t m, size_t n, const float *p,
                           size_t ldp, const float *y, size_t ldy, float scale, float *grad,
                           size_t ldg, float *row_loss, float *row_acc, float *row_sse);
af_status af_loss_rows_f64(af_loss loss, int from_logits, size_t m, size_t n, const double *p,
                           size_t ldp, const double *y, size_t ldy, double scale, double *grad,
                           size_t ldg, double *row_loss, double *row_acc, double *row_sse);

#endif
