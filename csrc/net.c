/* net.c: validation of a network description, the workspace plan, and the epoch's shuffle.
 * dtype-independent; the numerics are in net_impl.h / train_impl.h (train.c). */
#include <string.h>

#include "net_internal.h"

size_t af_net_y_cols(const af_net *net)
{
    if (!net || !net->layers || net->n_layers == 0) return 0;
    return net->loss == AF_LOSS_SCCE ? 1 : net->layers[net->n_layers - 1].n_out;
}

int af_net_fused_output(const af_net *net)
{
    const af_layer *last = &net->layers[net->n_layers - 1];
    if (last->kind != AF_LAYER_DENSE) return 0;
    if (last->act == AF_ACT_SOFTMAX) return net->loss == AF_LOSS_CCE || net->loss == AF_LOSS_SCCE;
    if (last->act == AF_ACT_SIGMOID) return net->loss == AF_LOSS_BCE;
    return 0;
}

/* a + b into *out, AF_ESHAPE on overflow. */
static af_status add_size(size_t a, size_t b, size_t *out)
{
    if (a > SIZE_MAX - b) return AF_ESHAPE;
    *out = a + b;
    return AF_OK;
}

/* Is [off, off + len) inside a buffer of size total? */
static int in_range(size_t off, size_t len, size_t total)
{
    return off <= total && len <= total - off;
}

static int finite_nonneg(double v) { return v >= 0 && v - v == 0; }

af_status af_net_check(const af_net *net)
{
    if (!net || !net->layers || net->n_layers == 0) return AF_EINVAL;
    if ((unsigned)net->loss >= AF_LOSS_COUNT) return AF_EINVAL;
    if (net->n_params && (!net->params || !net->grads)) return AF_EINVAL;
    if (net->n_stats && !net->stats) return AF_EINVAL;
    if (!finite_nonneg(net->clipnorm) || !finite_nonneg(net->clipvalue)) return AF_EINVAL;
    size_t width = net->n_in, t;
    if (width == 0) return AF_ESHAPE;
    for (size_t l = 0; l < net->n_layers; l++) {
        const af_layer *ly = &net->layers[l];
        if (ly->n_in != width || ly->n_out == 0) return AF_ESHAPE;
        switch (ly->kind) {
        case AF_LAYER_DENSE:
            if ((unsigned)ly->act >= AF_ACT_COUNT) return AF_EINVAL;
            /* The backward pass reads f'(x) from the output y = f(x); with alpha >= 0 the sign
             * of y is the sign of x for leaky_relu and elu. */
            if ((ly->act == AF_ACT_LEAKY_RELU || ly->act == AF_ACT_ELU) && !finite_nonneg(ly->act_param))
                return AF_EINVAL;
            if (!finite_nonneg(ly->l1) || !finite_nonneg(ly->l2)) return AF_EINVAL;
            if (af_mul_size(ly->n_in, ly->n_out, &t) || !in_range(ly->w_off, t, net->n_params))
                return AF_ESHAPE;
            if (ly->use_bias && !in_range(ly->b_off, ly->n_out, net->n_params)) return AF_ESHAPE;
            break;
        case AF_LAYER_BATCHNORM:
            if (ly->n_out != ly->n_in) return AF_ESHAPE;
            if (!(ly->momentum >= 0 && ly->momentum <= 1) || !(ly->eps > 0 && ly->eps - ly->eps == 0))
                return AF_EINVAL;
            if (!in_range(ly->w_off, ly->n_in, net->n_params) ||
                !in_range(ly->b_off, ly->n_in, net->n_params))
                return AF_ESHAPE;
            if (af_mul_size(ly->n_in, 2, &t) || !in_range(ly->s_off, t, net->n_stats)) return AF_ESHAPE;
            break;
        case AF_LAYER_DROPOUT:
            if (ly->n_out != ly->n_in) return AF_ESHAPE;
            if (!(ly->rate >= 0 && ly->rate < 1)) return AF_EINVAL;
            break;
        default:
            return AF_EINVAL;
        }
        width = ly->n_out;
    }
    return AF_OK;
}

/* n rounded up to the workspace alignment (overflow-checked). */
static af_status round_up(size_t n, size_t *out)
{
    if (n > SIZE_MAX - AF_WS_ALIGN) return AF_ESHAPE;
    *out = (n + AF_WS_ALIGN - 1) / AF_WS_ALIGN * AF_WS_ALIGN;
    return AF_OK;
}

/* Appends a region of a * b elements at *cursor; *off gets its start. */
static af_status region(size_t *cursor, size_t a, size_t b, size_t *off)
{
    size_t len;
    if (af_mul_size(a, b, &len) || round_up(len, &len)) return AF_ESHAPE;
    *off = *cursor;
    return add_size(*cursor, len, cursor);
}

/* Elements of layer l's output and auxiliary regions. */
static af_status layer_sizes(const af_layer *ly, size_t mb, size_t *out_len, size_t *aux_len)
{
    size_t a = 0;
    if (af_mul_size(mb, ly->n_out, out_len) || round_up(*out_len, out_len)) return AF_ESHAPE;
    /* batch norm: batch mean and inverse std (n each); dropout regenerates its mask */
    if (ly->kind == AF_LAYER_BATCHNORM && af_mul_size(2, ly->n_in, &a)) return AF_ESHAPE;
    return round_up(a, aux_len);
}

af_status af_ws_plan_make(const af_net *net, size_t mb, af_ws_plan *p)
{
    af_status s = af_net_check(net);
    if (s != AF_OK) return s;
    if (mb == 0 || !p) return AF_EINVAL;
    size_t widest = net->n_in, nchunks = 0, c = 0;
    for (size_t l = 0; l < net->n_layers; l++) {
        const af_layer *ly = &net->layers[l];
        if (ly->n_out > widest) widest = ly->n_out;
        if (ly->kind == AF_LAYER_DENSE) nchunks += (ly->n_in * ly->n_out + AF_SUM_CHUNK - 1) / AF_SUM_CHUNK;
    }
    if ((s = region(&c, mb, net->n_in, &p->xb)) || (s = region(&c, mb, af_net_y_cols(net), &p->yb)) ||
        (s = region(&c, mb, widest, &p->d0)) || (s = region(&c, mb, widest, &p->d1)) ||
        (s = region(&c, mb, 3, &p->rows)) || (s = region(&c, nchunks, 1, &p->part)))
        return s;
    p->layers = c;
    for (size_t l = 0; l < net->n_layers; l++) {
        size_t o, a;
        if ((s = layer_sizes(&net->layers[l], mb, &o, &a)) || (s = add_size(c, o, &c)) ||
            (s = add_size(c, a, &c)))
            return s;
    }
    p->end = c;
    return AF_OK;
}

void af_ws_layer(const af_net *net, const af_ws_plan *p, size_t mb, size_t l, size_t *out_off,
                 size_t *aux_off)
{
    size_t c = p->layers, o = 0, a = 0;
    for (size_t i = 0; i < l; i++) {
        layer_sizes(&net->layers[i], mb, &o, &a); /* sizes already checked by af_ws_plan_make */
        c += o + a;
    }
    layer_sizes(&net->layers[l], mb, &o, &a);
    *out_off = c;
    *aux_off = c + o;
}

af_status af_net_workspace_size(const af_net *net, size_t max_batch, size_t *n_elems)
{
    af_ws_plan p;
    if (!n_elems) return AF_EINVAL;
    af_status s = af_ws_plan_make(net, max_batch, &p);
    if (s != AF_OK) return s;
    *n_elems = p.end;
    return AF_OK;
}

/* Uniform integer in [0, bound) without modulo bias (Lemire's multiply-shift with rejection). */
static uint64_t bounded(uint64_t *st, uint64_t bound)
{
#ifdef __SIZEOF_INT128__
    unsigned __int128 m = (unsigned __int128)af_splitmix64(st) * bound;
    uint64_t low = (uint64_t)m;
    if (low < bound) {
        uint64_t thr = (0 - bound) % bound;
        while (low < thr) {
            m = (unsigned __int128)af_splitmix64(st) * bound;
            low = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
#else
    uint64_t lim = UINT64_MAX - UINT64_MAX % bound, r;
    do r = af_splitmix64(st); while (r >= lim);
    return r % bound;
#endif
}

void af_shuffle_order(uint64_t seed, uint64_t key, size_t n, uint64_t *perm)
{
    uint64_t st = seed ^ (0xD1B54A32D192ED03ULL * (key + 1));
    af_splitmix64(&st);
    for (size_t i = 0; i < n; i++) perm[i] = i;
    /* Fisher-Yates: for i = n-1 .. 1 swap perm[i] with perm[j], j uniform in [0, i]. */
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)bounded(&st, i);
        uint64_t tmp = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = tmp;
    }
}
