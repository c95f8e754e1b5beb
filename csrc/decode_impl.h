/* decode_impl.h: greedy decoding for one dtype (included twice by decode.c). */
#include "dtype_begin.h"

#if defined(AF_DTYPE_F32)
#define DT AF_F32
#else
#define DT AF_F64
#endif

/* Bytes of one sample of a tensor of this shape (float type or int32). */
static size_t AF_FN(dec_sample_bytes)(const af_shape *s)
{
    return af_shape_size(s) * (s->elem == AF_ELEM_INT32 ? sizeof(int32_t) : sizeof(T));
}

/* Output pointers for an inference pass; the decoder input reads `tokens`. */
static void AF_FN(dec_bind)(const af_graph *g, af_plan *p, T *ws, const void *const *xin,
                            size_t tin, const int32_t *tokens)
{
    for (size_t r = 0; r < p->n_order; r++) {
        size_t i = p->order[r];
        const af_node *nd = &g->nodes[i];
        unsigned f = nd->ops->flags;
        if (f & AF_OP_INPUT) {
            size_t k = 0;
            while (p->input_node[k] != i) k++;
            p->ptr[i] = i == tin ? (void *)tokens : (void *)xin[k];
        } else if (f & (AF_OP_ALIAS | AF_OP_INFER_IDENTITY)) {
            p->ptr[i] = p->ptr[nd->inputs[0]];
        } else {
            p->ptr[i] = ws + p->out_off[i];
        }
    }
}

/* Forward of the nodes with mark == which (0: the encoder, 1: the decoder), full length. */
static af_status AF_FN(dec_forward)(const af_graph *g, af_plan *p, T *ws, size_t B, int which,
                                    size_t out, int fused)
{
    af_op_args a;
    for (size_t r = 0; r < p->n_order; r++) {
        size_t i = p->order[r];
        unsigned f = g->nodes[i].ops->flags;
        if (p->mark[i] != which || (f & (AF_OP_INPUT | AF_OP_ALIAS | AF_OP_INFER_IDENTITY))) continue;
        af_node_args(g, p, ws, sizeof(T), i, B, &a);
        a.fused_loss = fused && i == out && p->fused[i];   /* logits are enough for argmax */
        a.forward_only = 1;
        af_status s = g->nodes[i].ops->forward[DT](&a);
        if (s != AF_OK) return s;
    }
    return AF_OK;
}

/* The decoder nodes at position pos only (see decode.h). */
static af_status AF_FN(dec_step)(const af_graph *g, af_plan *p, T *ws, T *cache, size_t B,
                                 size_t pos, size_t out, int fused)
{
    af_op_args a;
    af_shape one_in[AF_MAX_INPUTS], one_out;
    size_t coff = 0;
    for (size_t r = 0; r < p->n_order; r++) {
        size_t i = p->order[r];
        const af_node *nd = &g->nodes[i];
        unsigned f = nd->ops->flags;
        size_t csz = p->sz[i].cache;
        T *c = cache + coff;
        coff += csz;
        if (!p->mark[i] || (f & (AF_OP_INPUT | AF_OP_ALIAS | AF_OP_INFER_IDENTITY))) continue;
        af_node_args(g, p, ws, sizeof(T), i, B, &a);
        a.fused_loss = fused && i == out && p->fused[i];
        a.pos = pos;
        a.cache = csz ? c : NULL;
        for (size_t k = 0; k < nd->n_inputs; k++)
            if (p->mark[nd->inputs[k]]) a.step_in |= 1u << k;
        af_status s;
        if (nd->ops->step[DT]) {
            s = nd->ops->step[DT](&a);
        } else {
            /* positionwise: forward on a length-1 axis 0 */
            for (size_t k = 0; k < nd->n_inputs; k++) {
                one_in[k] = a.in_shape[k];
                one_in[k].dim[0] = 1;
            }
            one_out = *a.out_shape;
            one_out.dim[0] = 1;
            a.in_shape = one_in;
            a.out_shape = &one_out;
            s = nd->ops->forward[DT](&a);
        }
        if (s != AF_OK) return s;
    }
    return AF_OK;
}

/* Index of the largest of n scores (the first on ties). */
static int32_t AF_FN(dec_argmax)(size_t n, const T *x)
{
    size_t best = 0;
    for (size_t j = 1; j < n; j++)
        if (x[j] > x[best]) best = j;
    return (int32_t)best;
}

af_status AF_FN(af_graph_greedy_decode)(const af_graph *g, af_plan *p, T *ws, size_t ws_len,
                                        T *cache, size_t cache_len, const af_data *d,
                                        const af_decode_args *da, int32_t *tgt, int32_t *tokens,
                                        T *scores, int *incremental)
{
    AF_FP_SCOPE(); /* a public entry point: flush subnormals as training does (fpenv.h) */
    int inc = 0;
    af_status s = af_graph_decode_check(g, p, da, &inc);
    if (s != AF_OK) return s;
    if (p->dtype != DT || !ws || ws_len < p->ws_len || !d || !tgt || !tokens) return AF_EINVAL;
    if (inc && (cache_len < af_plan_cache_len(p) || (!cache && af_plan_cache_len(p)))) return AF_EINVAL;
    for (size_t k = 0; k < g->n_inputs; k++)
        if (k != da->target_input && !d->x[k]) return AF_EINVAL;
    *incremental = inc;
    size_t tin = g->inputs[da->target_input], out = g->outputs[da->output];
    size_t T_ = p->info[tin].out.dim[0], V = p->info[out].out.dim[1], L = da->max_len;
    int32_t *step_tok = (int32_t *)(ws + p->xb_off[da->target_input]);   /* B tokens */
    const void *xs[AF_MAX_IO];
    for (size_t start = 0; start < d->n; start += p->max_batch) {
        size_t B = d->n - start < p->max_batch ? d->n - start : p->max_batch;
        int32_t *tg = tgt + start * T_, *tk = tokens + start * L;
        for (size_t k = 0; k < g->n_inputs; k++)
            xs[k] = k == da->target_input ? NULL
                    : (const char *)d->x[k] + start * AF_FN(dec_sample_bytes)(&p->info[g->inputs[k]].out);
        for (size_t b = 0; b < B; b++) {
            for (size_t t = 0; t < T_; t++) tg[b * T_ + t] = da->start_token;
        }
        AF_FN(dec_bind)(g, p, ws, xs, tin, inc ? step_tok : tg);
        if ((s = AF_FN(dec_forward)(g, p, ws, B, 0, out, 1)) != AF_OK) return s;   /* the encoder */
        for (size_t pos = 0; pos < L; pos++) {
            if (af_stop_requested()) return AF_EINTR;
            const T *rows;
            size_t row_stride;
            if (inc) {
                for (size_t b = 0; b < B; b++) step_tok[b] = tg[b * T_ + pos];
                s = AF_FN(dec_step)(g, p, ws, cache, B, pos, out, !scores);
                rows = (const T *)p->ptr[out];
                row_stride = V;
            } else {
                s = AF_FN(dec_forward)(g, p, ws, B, 1, out, !scores);
                rows = (const T *)p->ptr[out] + pos * V;
                row_stride = T_ * V;
            }
            if (s != AF_OK) return s;
            for (size_t b = 0; b < B; b++) {
                const T *row = rows + b * row_stride;
                int32_t tok = AF_FN(dec_argmax)(V, row);
                if (scores) memcpy(scores + ((start + b) * L + pos) * V, row, V * sizeof(T));
                if (da->end_token >= 0 && pos > 0 && tk[b * L + pos - 1] == da->end_token)
                    tok = da->end_token;
                tk[b * L + pos] = tok;
                if (pos + 1 < T_) tg[b * T_ + pos + 1] = tok;
            }
        }
    }
    return AF_OK;
}

#undef DT
#include "dtype_end.h"
