/* plan.h: the plan of a graph (graph.c) as the passes (engine_impl.h) read it. Internal. */
#ifndef AF_PLAN_H
#define AF_PLAN_H
#include <stdint.h>
#include <string.h>
#include "graph.h"
#include "rng.h"

/* Every workspace region starts on a multiple of this many elements (64 bytes for float). */
#define AF_WS_ALIGN 16
/* Chunk of the penalty sums: a fixed size, so reductions never depend on the thread count. */
#define AF_SUM_CHUNK 4096
/* Interleaved partial sums inside one chunk (the penalty's sum of squares). */
#define AF_SUM_LANES 16
/* The batch gather uses threads from this many elements (64 rows of 784). */
#ifndef AF_PAR_MIN_GATHER
#define AF_PAR_MIN_GATHER 50000
#endif

struct af_plan {
    int dtype;                       /* AF_F32 / AF_F64 */
    size_t max_batch, n_nodes, n_outputs;
    size_t outputs[AF_MAX_IO];
    af_loss losses[AF_MAX_IO];
    size_t input_node[AF_MAX_IO];    /* node of graph input k (SIZE_MAX past n_inputs) */
    int input_grads;                 /* AF_PLAN_INPUT_GRADS */
    int shared_params;               /* a parameter slice is used by several nodes */
    size_t n_order;
    size_t *order;                   /* the nodes the outputs need, inputs first */
    af_node_info *info;              /* per node: what infer found */
    af_shape *in_shapes;             /* per node: AF_MAX_INPUTS input shapes */
    af_node_sizes *sz;               /* per node: aux / scratch for max_batch */
    /* workspace offsets in elements (SIZE_MAX: none) */
    size_t *out_off, *aux_off, *delta_off;
    size_t *delta_root;              /* node whose delta buffer this node uses (alias chains) */
    size_t *n_consumers;
    size_t *stack;                   /* planning scratch (becomes delta_root) */
    size_t xb_off[AF_MAX_IO], yb_off[AF_MAX_IO];
    size_t rows_off, part_off, scratch_off, sw_off, ws_len;
    unsigned char *needs_grad;       /* per node: backward runs */
    unsigned char *need_dx;          /* per (node, input): dL/dx wanted */
    unsigned char *dx_acc;           /* per (node, input): add into the delta (else write it) */
    unsigned char *grad_acc;         /* per node: add into a shared parameter gradient */
    unsigned char *is_out;           /* per node: an output (or the delta root of one) */
    unsigned char *fused;            /* per node: output whose loss takes its logits */
    unsigned char *mark;             /* planning scratch */
    /* per call: where each node's output and delta are (set by the passes) */
    void **ptr, **dptr;
    char *mem;                       /* one allocation behind the arrays above */
};

/* The arguments every call of node i on B samples shares (training off, step 0, row 0; the
 * passes set those): inputs, output, its workspace regions, parameters and statistics. ws is
 * the workspace, of elements of tsize bytes. */
static inline void af_node_args(const af_graph *g, const af_plan *p, void *ws, size_t tsize,
                                size_t i, size_t B, af_op_args *a)
{
    const af_node *nd = &g->nodes[i];
    char *w = (char *)ws;
    memset(a, 0, sizeof *a);
    a->node = nd;
    a->cfg = nd->cfg;
    a->batch = B;
    a->n_in = nd->n_inputs;
    a->in_shape = p->in_shapes + i * AF_MAX_INPUTS;
    a->out_shape = &p->info[i].out;
    for (size_t k = 0; k < nd->n_inputs; k++) a->x[k] = p->ptr[nd->inputs[k]];
    a->y = p->ptr[i];
    a->aux = p->aux_off[i] == SIZE_MAX ? NULL : w + p->aux_off[i] * tsize;
    a->scratch = w + p->scratch_off * tsize;
    a->param = p->info[i].n_params ? (char *)g->params + nd->param_off * tsize : NULL;
    a->stat = p->info[i].n_stats ? (char *)g->stats + nd->stat_off * tsize : NULL;
    a->seed = af_layer_seed(g->seed, nd->rng_key);
    a->grad_alpha = 1;
}

#endif
