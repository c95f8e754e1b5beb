/* graph.c: the table of layer kinds, and the plan of a graph: checks, topological order, shapes
 * through each kind's infer, and the workspace layout (per-node output, kept-for-backward and
 * delta regions), computed once per (graph, batch size). dtype-independent; the passes that use
 * the plan are in engine_impl.h. */
#include <stdlib.h>
#include <string.h>

#include "plan.h"

#define AF_KIND(k) extern const af_layer_ops af_op_##k;
#include "layers/kinds.h"
#undef AF_KIND
#define AF_KIND(k) &af_op_##k,
const af_layer_ops *const af_layer_kinds[] = {
#include "layers/kinds.h"
    NULL};
#undef AF_KIND

const af_layer_ops *af_layer_find(const char *name)
{
    if (!name) return NULL;
    for (size_t i = 0; af_layer_kinds[i]; i++)
        if (strcmp(af_layer_kinds[i]->name, name) == 0) return af_layer_kinds[i];
    return NULL;
}

const char *af_layer_kind_name(size_t i)
{
    for (size_t k = 0; af_layer_kinds[k]; k++)
        if (k == i) return af_layer_kinds[k]->name;
    return NULL;
}

size_t af_shape_size(const af_shape *s)
{
    size_t n = 1;
    for (int i = 0; i < s->rank; i++) n *= s->dim[i];
    return n;
}

size_t af_shape_last(const af_shape *s) { return s->rank ? s->dim[s->rank - 1] : 1; }

/* ---- workspace layout helpers ------------------------------------------------------------- */
static af_status add_size(size_t a, size_t b, size_t *out)
{
    if (a > SIZE_MAX - b) return AF_ESHAPE;
    *out = a + b;
    return AF_OK;
}

/* Appends a region of a * b elements (rounded up to AF_WS_ALIGN) at *cursor; *off gets its start. */
static af_status region(size_t *cursor, size_t a, size_t b, size_t *off)
{
    size_t len;
    if (af_mul_size(a, b, &len) || len > SIZE_MAX - AF_WS_ALIGN) return AF_ESHAPE;
    len = (len + AF_WS_ALIGN - 1) / AF_WS_ALIGN * AF_WS_ALIGN;
    *off = *cursor;
    return add_size(*cursor, len, cursor);
}

/* Is [off, off + len) inside a buffer of size total? */
static int in_range(size_t off, size_t len, size_t total) { return off <= total && len <= total - off; }

/* A shape's element count without overflow (AF_ESHAPE if it overflows). */
static af_status shape_size(const af_shape *s, size_t *n)
{
    size_t t = 1;
    if (s->rank < 0 || s->rank > AF_MAX_RANK) return AF_ESHAPE;
    for (int i = 0; i < s->rank; i++)
        if (s->dim[i] == 0 || af_mul_size(t, s->dim[i], &t)) return AF_ESHAPE;
    *n = t;
    return AF_OK;
}

void af_plan_free(af_plan *p)
{
    if (!p) return;
    free(p->mem);
    free(p);
}

/* ---- the checks and the order -------------------------------------------------------------- */
/* Every field of a config inside its declared range (the Cython builder checks too, with messages;
 * this keeps the C API safe on its own). */
static af_status check_fields(const af_layer_ops *ops, const void *cfg)
{
    for (const af_field *f = ops->fields; f && f->name; f++) {
        const char *at = (const char *)cfg + f->offset;
        switch (f->type) {
        case AF_FIELD_INT: {
            int64_t v;
            memcpy(&v, at, sizeof v);
            if (!((double)v >= f->lo && (double)v <= f->hi)) return AF_EINVAL;
            break;
        }
        case AF_FIELD_INTS: {
            int64_t n, v;
            memcpy(&n, at - sizeof(int64_t), sizeof n);
            if (n < 1 || n > AF_FIELD_MAX_INTS) return AF_EINVAL;
            for (int64_t k = 0; k < n; k++) {
                memcpy(&v, at + k * sizeof v, sizeof v);
                if (!((double)v >= f->lo && (double)v <= f->hi)) return AF_EINVAL;
            }
            break;
        }
        case AF_FIELD_REAL: {
            double v;
            memcpy(&v, at, sizeof v);
            if (!(v >= f->lo && v <= f->hi)) return AF_EINVAL;
            break;
        }
        case AF_FIELD_BOOL: {
            int v;
            memcpy(&v, at, sizeof v);
            if (v != 0 && v != 1) return AF_EINVAL;
            break;
        }
        case AF_FIELD_ENUM: {
            int v, n = 0;
            memcpy(&v, at, sizeof v);
            while (f->names && f->names[n]) n++;
            if (v < 0 || v >= n) return AF_EINVAL;
            break;
        }
        default:
            return AF_EINVAL;
        }
    }
    return AF_OK;
}

static af_status check_graph(const af_graph *g)
{
    if (!g || !g->nodes || g->n_nodes == 0) return AF_EINVAL;
    if (g->n_inputs == 0 || g->n_inputs > AF_MAX_IO || g->n_outputs == 0 || g->n_outputs > AF_MAX_IO)
        return AF_EINVAL;
    if (g->n_params && (!g->params || !g->grads)) return AF_EINVAL;
    if (g->n_stats && !g->stats) return AF_EINVAL;
    if (!(g->clipnorm >= 0 && g->clipnorm - g->clipnorm == 0)) return AF_EINVAL;
    if (!(g->clipvalue >= 0 && g->clipvalue - g->clipvalue == 0)) return AF_EINVAL;
    for (size_t i = 0; i < g->n_inputs; i++) {
        if (g->inputs[i] >= g->n_nodes || !(g->nodes[g->inputs[i]].ops->flags & AF_OP_INPUT))
            return AF_EINVAL;
        for (size_t j = 0; j < i; j++)
            if (g->inputs[j] == g->inputs[i]) return AF_EINVAL;
    }
    for (size_t o = 0; o < g->n_outputs; o++) {
        if (g->outputs[o] >= g->n_nodes || (unsigned)g->losses[o] >= AF_LOSS_COUNT) return AF_EINVAL;
        if (!(g->loss_weights[o] >= 0 && g->loss_weights[o] - g->loss_weights[o] == 0)) return AF_EINVAL;
        for (size_t j = 0; j < o; j++)
            if (g->outputs[j] == g->outputs[o]) return AF_EINVAL;
    }
    for (size_t i = 0; i < g->n_nodes; i++) {
        const af_node *nd = &g->nodes[i];
        if (!nd->ops || !nd->cfg) return AF_EINVAL;
        if (nd->n_inputs < nd->ops->min_inputs || nd->n_inputs > nd->ops->max_inputs ||
            nd->n_inputs > AF_MAX_INPUTS)
            return AF_EINVAL;
        for (size_t k = 0; k < nd->n_inputs; k++)
            if (nd->inputs[k] >= g->n_nodes) return AF_EINVAL;
        /* every input node must be one of the graph's inputs (data is bound to it) */
        if (nd->ops->flags & AF_OP_INPUT) {
            size_t k = 0;
            while (k < g->n_inputs && g->inputs[k] != i) k++;
            if (k == g->n_inputs) return AF_EINVAL;
        }
    }
    return AF_OK;
}

/* Depth-first post-order from the outputs: the nodes the outputs depend on, inputs first.
 * mark: 0 unseen, 1 on the stack (a second visit means a cycle), 2 done. Iterative (a 1000-layer
 * chain must not exhaust the C stack). */
static af_status topo_order(const af_graph *g, unsigned char *mark, size_t *stack, size_t *next,
                            size_t *order, size_t *n_order)
{
    size_t n = 0;
    for (size_t o = 0; o < g->n_outputs; o++) {
        size_t top = 0, root = g->outputs[o];
        if (mark[root] == 2) continue;
        stack[top] = root;
        next[top] = 0;
        mark[root] = 1;
        top = 1;
        while (top) {
            size_t v = stack[top - 1];
            const af_node *nd = &g->nodes[v];
            if (next[top - 1] < nd->n_inputs) {
                size_t u = nd->inputs[next[top - 1]++];
                if (mark[u] == 1) return AF_EINVAL;          /* cycle */
                if (mark[u] == 0) {
                    mark[u] = 1;
                    stack[top] = u;
                    next[top] = 0;
                    top++;
                }
            } else {
                mark[v] = 2;
                order[n++] = v;
                top--;
            }
        }
    }
    *n_order = n;
    return AF_OK;
}

/* ---- plan ---------------------------------------------------------------------------------- */
/* One allocation holds every per-node array of the plan. */
static af_status plan_alloc(af_plan *p, size_t n)
{
    size_t ni = n * AF_MAX_INPUTS;
    size_t bytes = n * (sizeof(size_t) * 6 + sizeof(af_node_info) + sizeof(af_node_sizes) +
                        2 * sizeof(void *) + 5) +
                   ni * (sizeof(af_shape) + 2);
    if (n > SIZE_MAX / 4096) return AF_ESHAPE;
    char *m = (char *)calloc(1, bytes + 64);
    if (!m) return AF_ENOMEM;
    p->mem = m;
    p->order = (size_t *)m;           m += n * sizeof(size_t);
    p->out_off = (size_t *)m;         m += n * sizeof(size_t);
    p->aux_off = (size_t *)m;         m += n * sizeof(size_t);
    p->delta_off = (size_t *)m;       m += n * sizeof(size_t);
    p->n_consumers = (size_t *)m;     m += n * sizeof(size_t);
    p->stack = (size_t *)m;           m += n * sizeof(size_t);
    p->info = (af_node_info *)m;      m += n * sizeof(af_node_info);
    p->sz = (af_node_sizes *)m;       m += n * sizeof(af_node_sizes);
    p->ptr = (void **)m;              m += n * sizeof(void *);
    p->dptr = (void **)m;             m += n * sizeof(void *);
    p->in_shapes = (af_shape *)m;     m += ni * sizeof(af_shape);
    p->need_dx = (unsigned char *)m;  m += ni;
    p->dx_acc = (unsigned char *)m;   m += ni;
    p->needs_grad = (unsigned char *)m; m += n;
    p->grad_acc = (unsigned char *)m;   m += n;
    p->mark = (unsigned char *)m;       m += n;
    p->fused = (unsigned char *)m;      m += n;
    p->is_out = (unsigned char *)m;     m += n;
    return AF_OK;
}

/* Shapes and sizes of every node in order; parameter and statistics slices inside the buffers. */
static af_status infer_all(const af_graph *g, af_plan *p, size_t *err_node)
{
    for (size_t r = 0; r < p->n_order; r++) {
        size_t i = p->order[r], t;
        const af_node *nd = &g->nodes[i];
        af_shape *in = p->in_shapes + i * AF_MAX_INPUTS;
        for (size_t k = 0; k < nd->n_inputs; k++) in[k] = p->info[nd->inputs[k]].out;
        af_node_info *inf = &p->info[i];
        memset(inf, 0, sizeof *inf);
        inf->final_act = AF_ACT_LINEAR;
        *err_node = i;
        af_status s = check_fields(nd->ops, nd->cfg);
        if (s == AF_OK) s = nd->ops->infer(nd->cfg, nd->n_inputs, in, inf);
        if (s != AF_OK) return s;
        if (shape_size(&inf->out, &t)) return AF_ESHAPE;
        if (!in_range(nd->param_off, inf->n_params, g->n_params) ||
            !in_range(nd->stat_off, inf->n_stats, g->n_stats) ||
            !in_range(inf->pen_off, inf->pen_len, inf->n_params))
            return AF_ESHAPE;
        if (!(inf->l1 >= 0 && inf->l2 >= 0 && inf->l1 - inf->l1 == 0 && inf->l2 - inf->l2 == 0))
            return AF_EINVAL;
        if ((nd->ops->flags & AF_OP_ALIAS) && af_shape_size(&inf->out) != af_shape_size(&in[0]))
            return AF_ESHAPE;
        if (nd->ops->sizes)
            nd->ops->sizes(nd->cfg, nd->n_inputs, in, &inf->out, p->max_batch, 1, &p->sz[i]);
    }
    *err_node = SIZE_MAX;
    return AF_OK;
}

/* Which nodes run backward, which inputs get a delta, who writes a delta first (the others add),
 * and which parameter slices are shared by several nodes (then accumulated). */
static af_status plan_backward(const af_graph *g, af_plan *p)
{
    size_t n = g->n_nodes;
    for (size_t r = 0; r < p->n_order; r++) {
        size_t i = p->order[r];
        const af_node *nd = &g->nodes[i];
        int need = p->info[i].n_params > 0;
        if (nd->ops->flags & AF_OP_INPUT)
            need = p->input_grads && p->info[i].out.elem == AF_ELEM_FLOAT;
        for (size_t k = 0; k < nd->n_inputs; k++) {
            p->need_dx[i * AF_MAX_INPUTS + k] = p->needs_grad[nd->inputs[k]];
            need |= p->needs_grad[nd->inputs[k]];
            p->n_consumers[nd->inputs[k]]++;
        }
        if (need && !(nd->ops->flags & AF_OP_INPUT) && !nd->ops->backward[0]) return AF_EINVAL;
        p->needs_grad[i] = (unsigned char)need;
    }
    /* delta roots: an alias node shares its input's delta */
    unsigned char *written = p->mark;   /* reused: 1 once a delta buffer has a first writer */
    memset(written, 0, n);
    for (size_t o = 0; o < g->n_outputs; o++) {
        size_t b = p->delta_root[g->outputs[o]];
        written[b] = p->is_out[b] = 1;   /* the loss writes the delta of an output first */
    }
    for (size_t r = p->n_order; r-- > 0;) {
        size_t i = p->order[r];
        const af_node *nd = &g->nodes[i];
        if (!p->needs_grad[i] || (nd->ops->flags & (AF_OP_INPUT | AF_OP_ALIAS))) continue;
        for (size_t k = 0; k < nd->n_inputs; k++) {
            if (!p->need_dx[i * AF_MAX_INPUTS + k]) continue;
            size_t b = p->delta_root[nd->inputs[k]];
            p->dx_acc[i * AF_MAX_INPUTS + k] = written[b];
            written[b] = 1;
        }
    }
    /* shared parameter slices: the first node in backward order writes, later ones add */
    for (size_t r = p->n_order; r-- > 0;) {
        size_t i = p->order[r];
        if (!p->info[i].n_params) continue;
        for (size_t q = p->n_order; --q > r;) {
            size_t j = p->order[q];
            if (!p->info[j].n_params) continue;
            size_t a0 = g->nodes[i].param_off, a1 = a0 + p->info[i].n_params;
            size_t b0 = g->nodes[j].param_off, b1 = b0 + p->info[j].n_params;
            if (a0 >= b1 || b0 >= a1) continue;
            if (a0 != b0 || a1 != b1) return AF_ESHAPE;   /* partial overlap */
            p->grad_acc[i] = 1;
            p->shared_params = 1;
        }
    }
    return AF_OK;
}

/* The workspace: gathered batches, per-node regions, the loss rows, the penalty partials. */
static af_status plan_layout(const af_graph *g, af_plan *p)
{
    size_t mb = p->max_batch, c = 0, rows = 0, nchunks = 0, scratch = 0, t;
    af_status s;
    for (size_t i = 0; i < g->n_nodes; i++) p->out_off[i] = p->aux_off[i] = p->delta_off[i] = SIZE_MAX;
    for (size_t k = 0; k < g->n_inputs; k++) {
        if ((s = region(&c, mb, af_shape_size(&p->info[g->inputs[k]].out), &p->xb_off[k])))
            return s;
    }
    for (size_t o = 0; o < g->n_outputs; o++) {
        af_shape ts;
        af_plan_target_shape(p, o, &ts);
        if ((s = region(&c, mb, af_shape_size(&ts), &p->yb_off[o]))) return s;
        size_t nrows = af_shape_size(&p->info[g->outputs[o]].out) / af_shape_last(&p->info[g->outputs[o]].out);
        if (af_mul_size(nrows, mb, &t)) return AF_ESHAPE;
        if (t > rows) rows = t;
    }
    if ((s = region(&c, rows, 3, &p->rows_off))) return s;
    if ((s = region(&c, mb, 1, &p->sw_off))) return s;   /* the batch's sample weights */
    for (size_t r = 0; r < p->n_order; r++) {
        size_t i = p->order[r];
        const af_layer_ops *ops = g->nodes[i].ops;
        size_t len = af_shape_size(&p->info[i].out);
        nchunks += (p->info[i].pen_len + AF_SUM_CHUNK - 1) / AF_SUM_CHUNK;
        if (p->sz[i].scratch > scratch) scratch = p->sz[i].scratch;
        if (!(ops->flags & (AF_OP_INPUT | AF_OP_ALIAS)) && (s = region(&c, mb, len, &p->out_off[i])))
            return s;
        if (p->sz[i].aux && (s = region(&c, p->sz[i].aux, 1, &p->aux_off[i]))) return s;
        if ((p->needs_grad[i] || p->is_out[i]) && p->delta_root[i] == i &&
            (s = region(&c, mb, len, &p->delta_off[i])))
            return s;
    }
    if ((s = region(&c, scratch, 1, &p->scratch_off))) return s;
    if ((s = region(&c, nchunks, 1, &p->part_off))) return s;
    p->ws_len = c;
    return AF_OK;
}

af_status af_plan_create(const af_graph *g, size_t max_batch, int dtype, unsigned options,
                         af_plan **out, size_t *err_node)
{
    size_t bad = SIZE_MAX;
    af_status s;
    if (err_node) *err_node = SIZE_MAX;
    if (!out) return AF_EINVAL;
    *out = NULL;
    if ((s = check_graph(g)) != AF_OK) return s;
    if (max_batch == 0 || (dtype != AF_F32 && dtype != AF_F64)) return AF_EINVAL;
    af_plan *p = (af_plan *)calloc(1, sizeof *p);
    if (!p) return AF_ENOMEM;
    p->dtype = dtype;
    p->max_batch = max_batch;
    p->n_nodes = g->n_nodes;
    p->n_outputs = g->n_outputs;
    p->input_grads = (options & AF_PLAN_INPUT_GRADS) != 0;
    memcpy(p->outputs, g->outputs, sizeof p->outputs);
    memcpy(p->losses, g->losses, sizeof p->losses);
    for (size_t k = 0; k < AF_MAX_IO; k++) p->input_node[k] = k < g->n_inputs ? g->inputs[k] : SIZE_MAX;
    if ((s = plan_alloc(p, g->n_nodes)) != AF_OK) goto fail;
    /* the order's scratch: mark, an explicit stack and its cursor (delta_off reused) */
    if ((s = topo_order(g, p->mark, p->stack, p->delta_off, p->order, &p->n_order)) != AF_OK) goto fail;
    for (size_t k = 0; k < g->n_inputs; k++)
        if (p->mark[g->inputs[k]] != 2) { bad = g->inputs[k]; s = AF_EINVAL; goto fail; }
    if ((s = infer_all(g, p, &bad)) != AF_OK) goto fail;
    p->delta_root = p->stack;           /* the stack is free again */
    for (size_t r = 0; r < p->n_order; r++) {
        size_t i = p->order[r];
        p->delta_root[i] = (g->nodes[i].ops->flags & AF_OP_ALIAS) ? p->delta_root[g->nodes[i].inputs[0]] : i;
    }
    if ((s = plan_backward(g, p)) != AF_OK) goto fail;
    /* an output's loss may take its logits when the output feeds nothing else */
    for (size_t o = 0; o < g->n_outputs; o++) {
        size_t i = g->outputs[o];
        af_act fa = p->info[i].final_act;
        af_loss l = g->losses[o];
        p->fused[i] = p->n_consumers[i] == 0 && p->delta_root[i] == i &&
                      ((fa == AF_ACT_SOFTMAX && (l == AF_LOSS_CCE || l == AF_LOSS_SCCE)) ||
                       (fa == AF_ACT_SIGMOID && l == AF_LOSS_BCE));
    }
    if ((s = plan_layout(g, p)) != AF_OK) goto fail;
    *out = p;
    return AF_OK;
fail:
    if (err_node) *err_node = bad;
    af_plan_free(p);
    return s;
}

size_t af_plan_ws_len(const af_plan *p) { return p ? p->ws_len : 0; }
size_t af_plan_max_batch(const af_plan *p) { return p ? p->max_batch : 0; }

af_status af_plan_node_info(const af_plan *p, size_t i, af_node_info *info)
{
    if (!p || !info || i >= p->n_nodes) return AF_EINVAL;
    *info = p->info[i];
    return AF_OK;
}

af_status af_plan_target_shape(const af_plan *p, size_t o, af_shape *s)
{
    if (!p || !s || o >= p->n_outputs) return AF_EINVAL;
    *s = p->info[p->outputs[o]].out;
    if (p->losses[o] == AF_LOSS_SCCE) {
        /* one class index per row: the output's shape without its last axis */
        if (s->rank > 0) s->rank--;
        if (s->rank == 0) { s->rank = 1; s->dim[0] = 1; }
    }
    s->elem = AF_ELEM_FLOAT;
    return AF_OK;
}

af_status af_plan_input_grad(const af_plan *p, size_t i, size_t *offset)
{
    if (!p || !offset || !p->input_grads || i >= AF_MAX_IO) return AF_EINVAL;
    if (p->input_node[i] == SIZE_MAX || p->delta_off[p->input_node[i]] == SIZE_MAX) return AF_EINVAL;
    *offset = p->delta_off[p->input_node[i]];
    return AF_OK;
}
