/* decode.c: greedy decoding of a planned graph (decode.h): which nodes are the decoder's, whether
 * they decode incrementally, and the passes for float and double (decode_impl.h). */
#include <string.h>

#include "decode.h"
#include "fpenv.h"
#include "internal.h"
#include "plan.h"
#include "rng.h"

size_t af_plan_cache_len(const af_plan *p)
{
    size_t n = 0;
    if (!p) return 0;
    for (size_t r = 0; r < p->n_order; r++) n += p->sz[p->order[r]].cache;
    return n;
}

/* mark[i] = 1 for the nodes that depend on the decoder input (itself included). */
static void mark_decoder(const af_graph *g, const af_plan *p, size_t tin)
{
    memset(p->mark, 0, g->n_nodes);
    for (size_t r = 0; r < p->n_order; r++) {
        size_t i = p->order[r];
        const af_node *nd = &g->nodes[i];
        int dep = i == tin;
        for (size_t k = 0; k < nd->n_inputs; k++) dep |= p->mark[nd->inputs[k]];
        p->mark[i] = (unsigned char)dep;
    }
}

/* Can decoder node i run one position at a time? (see decode.h) */
static int node_steps(const af_graph *g, const af_plan *p, size_t i, size_t T, int dt)
{
    const af_node *nd = &g->nodes[i];
    unsigned f = nd->ops->flags;
    if (f & AF_OP_INFER_IDENTITY) return 1;              /* the identity at inference */
    if (f & (AF_OP_ALIAS | AF_OP_INPUT)) return 0;
    if (nd->ops->step[dt]) return 1;
    if (!(f & AF_OP_POSITIONWISE)) return 0;
    const af_shape *out = &p->info[i].out, *in = p->in_shapes + i * AF_MAX_INPUTS;
    if (out->rank < 2 || out->dim[0] != T) return 0;
    for (size_t k = 0; k < nd->n_inputs; k++)
        if (!p->mark[nd->inputs[k]] || in[k].rank < 1 || in[k].dim[0] != T) return 0;
    return 1;
}

af_status af_graph_decode_check(const af_graph *g, const af_plan *p, const af_decode_args *da,
                                int *incremental)
{
    if (!g || !p || !da || !incremental || p->n_nodes != g->n_nodes) return AF_EINVAL;
    if (da->target_input >= g->n_inputs || da->output >= g->n_outputs) return AF_EINVAL;
    size_t tin = g->inputs[da->target_input], out = g->outputs[da->output];
    const af_shape *ts = &p->info[tin].out, *os = &p->info[out].out;
    if (ts->elem != AF_ELEM_INT32 || ts->rank != 1) return AF_ESHAPE;
    size_t T = ts->dim[0];
    if (os->rank != 2 || os->dim[0] != T) return AF_ESHAPE;
    if (da->max_len < 1 || da->max_len > T) return AF_EINVAL;
    if ((unsigned)da->mode > AF_DECODE_RECOMPUTE) return AF_EINVAL;
    mark_decoder(g, p, tin);
    if (!p->mark[out]) return AF_EINVAL;                 /* the scores ignore the decoder input */
    int inc = da->mode == AF_DECODE_AUTO;
    for (size_t r = 0; r < p->n_order && inc; r++) {
        size_t i = p->order[r];
        if (p->mark[i] && i != tin) inc = node_steps(g, p, i, T, p->dtype);
    }
    *incremental = inc;
    return AF_OK;
}

#define AF_DTYPE_F32
#include "decode_impl.h"
#define AF_DTYPE_F64
#include "decode_impl.h"
