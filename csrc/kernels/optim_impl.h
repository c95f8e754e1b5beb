/* optim_impl.h: optimiser steps, value clipping and the global L2 norm for one dtype (included
 * twice by optim.c; see dtype.h). Each kernel works on one block of elements with restrict
 * pointers and straight-line loops so the compiler vectorises it; the driver splits the vector
 * into AF_OPT_BLOCK-element chunks run on annfast's threads (pool.h). */
#include "dtype_begin.h"

/* Per-step constants (optim_kernels.h). */
typedef struct AF_FN(af_opt_consts) AF_FN(opt_consts);

/* The block kernels, once for the baseline ISA and, on x86 with GCC/Clang, once compiled for
 * AVX2+FMA (wider vectors): af_opt_block_<isa> (optim_kernels.h); a step runs the one of the path
 * in use (isa_ctx.h). FMA contraction may change the last bit between the two paths; within a
 * path, results never depend on the thread count. */
#define AF_KN(name) AF_FN(AF_CAT(name, _generic))
#define AF_KATTR
#include "optim_kern_impl.h"
#undef AF_KN
#undef AF_KATTR
#if AF_OPT_HAVE_AVX2
#define AF_KN(name) AF_FN(AF_CAT(name, _avx2))
#define AF_KATTR __attribute__((target("avx2,fma,prfchw")))
#include "optim_kern_impl.h"
#undef AF_KN
#undef AF_KATTR
#endif

/* One optimiser step on the parameters, as chunks of AF_OPT_BLOCK elements (pool.h). */
typedef struct {
    const AF_FN(opt_consts) *c;
    size_t n;
    T *param;
    const T *grad;
    T *state;
    AF_FN(af_opt_block_fn) block; /* of the path in use */
} AF_FN(opt_job);

static void AF_FN(opt_chunk)(void *ctx, size_t b, size_t slot)
{
    (void)slot;
    const AF_FN(opt_job) *j = (const AF_FN(opt_job) *)ctx;
    size_t lo = b * AF_OPT_BLOCK, len = j->n - lo < AF_OPT_BLOCK ? j->n - lo : AF_OPT_BLOCK;
    j->block(j->c, j->n, lo, len, j->param, j->grad, j->state);
}

af_status AF_FN(af_optim_prepare)(const af_optim *o, uint64_t t, AF_FN(opt_consts) *c)
{
    af_status st = af_optim_check(o);
    if (st != AF_OK) return st;
    if (t < 1 || !c) return AF_EINVAL;
    /* eps below T's smallest normal would be stored as 0 (or a subnormal that flush-to-zero
     * drops): zero gradients would give 0 / 0. The Python layer says so; refuse here too. */
    if (o->kind != AF_OPT_SGD && o->eps < (sizeof(T) == sizeof(float) ? (double)FLT_MIN : DBL_MIN))
        return AF_EINVAL;
    c->kind = o->kind;
    c->slots = af_optim_slots_used(o);
    c->first = t == 1;
    c->nesterov = o->nesterov;
    c->lr = (T)o->lr;
    c->wd = o->decoupled_wd ? (T)0 : (T)o->weight_decay;
    c->decay = o->decoupled_wd ? (T)(1.0 - o->lr * o->weight_decay) : (T)1;
    c->mom = (T)o->momentum;
    c->rho = (T)o->rho;
    c->one_m_rho = (T)(1.0 - o->rho);
    c->one_m_b1 = (T)(1.0 - o->beta1);
    c->b2 = (T)o->beta2;
    c->one_m_b2 = (T)(1.0 - o->beta2);
    c->eps = (T)o->eps;
    c->init_acc = (T)o->initial_accumulator;
    c->step_size = (T)1;
    c->inv_bc2_sqrt = (T)1;
    if (o->kind == AF_OPT_ADAM) {
        /* bias corrections in double: 1 - b^t; t beyond 2^53 is exact enough as a double */
        double bc1 = 1.0 - pow(o->beta1, (double)t);
        double bc2 = 1.0 - pow(o->beta2, (double)t);
        if (!(bc1 > 0) || !(bc2 > 0)) return AF_EINVAL; /* beta == 0 edge is fine: bc = 1 */
        c->step_size = (T)(o->lr / bc1);
        c->inv_bc2_sqrt = (T)(1.0 / sqrt(bc2));
    }
    return AF_OK;
}

void AF_FN(af_optim_range)(const AF_FN(opt_consts) *c, size_t n, size_t lo, size_t len, T *param,
                           const T *grad, T *state)
{
    if (len) AF_FN(af_kern)()->opt_block(c, n, lo, len, param, grad, state);
}

af_status AF_FN(af_optim_step)(const af_optim *o, size_t n, T *param, const T *grad, T *state,
                               uint64_t t)
{
    AF_FP_SCOPE();
    AF_FN(opt_consts) c;
    af_status st = AF_FN(af_optim_prepare)(o, t, &c);
    if (st != AF_OK) return st;
    if (n == 0) return AF_OK;
    size_t total;
    if (af_mul_size((size_t)c.slots, n, &total)) return AF_ESHAPE;
    if (!param || !grad || (c.slots > 0 && !state)) return AF_EINVAL;
    size_t nblk = (n + AF_OPT_BLOCK - 1) / AF_OPT_BLOCK;
    AF_FN(opt_job) job = {&c, n, param, grad, state, AF_FN(af_kern)()->opt_block};
    af_pool_run(AF_FN(opt_chunk), &job, nblk, n >= AF_PAR_MIN ? af_get_num_threads() : 1);
    return AF_OK;
}

/* Elementwise passes over a vector in chunks of AF_OPT_BLOCK (pool.h): clamp to [lo, hi] or
 * scale by s. */
typedef struct {
    T *g;
    size_t n;
    T lo, hi, s;
} AF_FN(vec_job);

static void AF_FN(clip_chunk)(void *ctx, size_t b, size_t slot)
{
    (void)slot;
    const AF_FN(vec_job) *j = (const AF_FN(vec_job) *)ctx;
    size_t i0 = b * AF_OPT_BLOCK, len = j->n - i0 < AF_OPT_BLOCK ? j->n - i0 : AF_OPT_BLOCK;
    T *restrict x = j->g + i0;
    const T lo = j->lo, hi = j->hi;
    for (size_t i = 0; i < len; i++) {
        T v = x[i];
        v = v < lo ? lo : v;
        x[i] = v > hi ? hi : v;
    }
}

static void AF_FN(scale_chunk)(void *ctx, size_t b, size_t slot)
{
    (void)slot;
    const AF_FN(vec_job) *j = (const AF_FN(vec_job) *)ctx;
    size_t i0 = b * AF_OPT_BLOCK, len = j->n - i0 < AF_OPT_BLOCK ? j->n - i0 : AF_OPT_BLOCK;
    T *restrict x = j->g + i0;
    const T s = j->s;
    for (size_t i = 0; i < len; i++) x[i] *= s;
}

/* g = min(max(g, -limit), limit) elementwise; NaN stays NaN. */
af_status AF_FN(af_clip_value)(size_t n, T *g, T limit)
{
    AF_FP_SCOPE();
    if (!(limit > 0) || !(limit <= AF_T_MAX)) return AF_EINVAL;
    if (n == 0) return AF_OK;
    if (!g) return AF_EINVAL;
    AF_FN(vec_job) job = {g, n, -limit, limit, 0};
    af_pool_run(AF_FN(clip_chunk), &job, (n + AF_OPT_BLOCK - 1) / AF_OPT_BLOCK,
                n >= AF_PAR_MIN ? af_get_num_threads() : 1);
    return AF_OK;
}

/* sum_i x_i^2 over one chunk, in double, with 8 interleaved accumulators combined in a fixed
 * order (the order depends only on the chunk length, so the result is reproducible). */
static double AF_FN(sumsq_chunk)(size_t n, const T *restrict x)
{
    double a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) a[k] += (double)x[i + k] * (double)x[i + k];
    for (; i < n; i++) a[i & 7] += (double)x[i] * (double)x[i];
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

/* Sums of squares of fixed chunks of a vector, one partial per chunk (pool.h). */
typedef struct {
    const T *g;
    size_t n, cs;
    double *part;
} AF_FN(norm_job);

static void AF_FN(norm_chunk)(void *ctx, size_t k, size_t slot)
{
    (void)slot;
    const AF_FN(norm_job) *j = (const AF_FN(norm_job) *)ctx;
    size_t lo = k * j->cs, len = j->n - lo < j->cs ? j->n - lo : j->cs;
    j->part[k] = AF_FN(sumsq_chunk)(len, j->g + lo);
}

/* ||g||_2 = sqrt(sum of chunk partials in chunk order); chunking from af_norm_chunk_size(n). */
af_status AF_FN(af_l2_norm)(size_t n, const T *g, double *out)
{
    AF_FP_SCOPE();
    if (!out) return AF_EINVAL;
    *out = 0.0;
    if (n == 0) return AF_OK;
    if (!g) return AF_EINVAL;
    double part[AF_NORM_MAXPART];
    size_t cs = af_norm_chunk_size(n);
    size_t nch = (n + cs - 1) / cs;   /* <= AF_NORM_MAXPART by construction */
    AF_FN(norm_job) job = {g, n, cs, part};
    af_pool_run(AF_FN(norm_chunk), &job, nch, n >= AF_PAR_MIN ? af_get_num_threads() : 1);
    double s = 0.0;
    for (size_t k = 0; k < nch; k++) s += part[k];
    *out = sqrt(s);
    return AF_OK;
}

af_status AF_FN(af_clip_norm)(size_t n, T *g, double max_norm, double *norm_out)
{
    AF_FP_SCOPE();
    if (!(max_norm > 0) || !isfinite(max_norm)) return AF_EINVAL;
    double norm;
    af_status st = AF_FN(af_l2_norm)(n, g, &norm);
    if (st != AF_OK) return st;
    if (norm_out) *norm_out = norm;
    if (!isfinite(norm)) return AF_ENONFINITE;
    if (norm <= max_norm) return AF_OK;
    /* g *= max_norm / norm (one scale for the whole vector) */
    AF_FN(vec_job) job = {g, n, 0, 0, (T)(max_norm / norm)};
    af_pool_run(AF_FN(scale_chunk), &job, (n + AF_OPT_BLOCK - 1) / AF_OPT_BLOCK,
                n >= AF_PAR_MIN ? af_get_num_threads() : 1);
    return AF_OK;
}

#include "dtype_end.h"
