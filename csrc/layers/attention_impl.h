/* attention_impl.h: dot-product attention forward and backward for one dtype (attention.c). */
#include "dtype_begin.h"

#if defined(AF_DTYPE_F32)
#define ATTN_FWD af_attn_forward_f32
#define ATTN_BWD af_attn_backward_f32
#define COPY_ADD af_copy_add_f32
#else
#define ATTN_FWD af_attn_forward_f64
#define ATTN_BWD af_attn_backward_f64
#define COPY_ADD af_copy_add_f64
#endif

static void AF_FN(attention_args)(const af_op_args *a, af_attn_args *t)
{
    const af_pair_attn_cfg *c = (const af_pair_attn_cfg *)a->cfg;
    size_t Tq = a->in_shape[0].dim[0], Tk = a->in_shape[1].dim[0], key_in = c->has_key ? 2 : 1;
    size_t mask_in = 2 + (size_t)c->has_key;
    memset(t, 0, sizeof *t);
    t->B = a->batch;
    t->H = 1;
    t->Tq = Tq;
    t->Tk = Tk;
    t->dk = a->in_shape[0].dim[1];
    t->dv = a->in_shape[1].dim[1];
    t->Q = a->x[0];
    t->K = a->x[key_in];
    t->V = a->x[1];
    t->ldq = t->ldk = t->dk;
    t->ldv = t->ldo = t->dv;
    t->O = a->y;
    t->scale = c->use_scale ? (double)*(const T *)a->param : 1.0;
    t->causal = c->causal;
    t->mask = c->has_mask ? (const int32_t *)a->x[mask_in] : NULL;
    t->mask_rank = c->has_mask ? a->in_shape[mask_in].rank : 0;
    t->dropout = c->dropout;
    t->training = a->training;
    t->seed = a->seed;
    t->step = a->step;
    t->row0 = a->row0;
    t->stat = a->aux;
    t->P = attention_keep_p(a->in_shape) ? (T *)a->aux + 2 * a->batch * Tq : NULL;
    t->work = a->scratch;
}

static af_status AF_FN(attention_forward)(const af_op_args *a)
{
    af_attn_args t;
    AF_FN(attention_args)(a, &t);
    return ATTN_FWD(&t);
}

static af_status AF_FN(attention_backward)(const af_op_args *a)
{
    const af_pair_attn_cfg *c = (const af_pair_attn_cfg *)a->cfg;
    af_attn_args t;
    AF_FN(attention_args)(a, &t);
    size_t B = a->batch, nq = B * t.Tq * t.dk, nk = B * t.Tk * t.dk, nv = B * t.Tk * t.dv;
    T *dQ = (T *)a->scratch + af_attn_work_len(B, 1, t.Tq, t.Tk, t.dk, t.dv), *dK = dQ + nq, *dV = dK + nk;
    T *part = dV + nv;
    t.dO = a->dy;
    t.lddo = t.dv;
    t.dQ = dQ;
    t.dK = dK;
    t.dV = dV;
    t.lddq = t.lddk = t.dk;
    t.lddv = t.dv;
    t.dscale_part = c->use_scale ? part : NULL;
    af_status s = ATTN_BWD(&t);
    if (s != AF_OK) return s;
    if (c->use_scale) {
        T g = 0;
        for (size_t b = 0; b < B; b++) g += part[b];
        T *G = (T *)a->grad;
        *G = a->grad_acc ? *G + g : g;
    }
    /* in input order (inputs that are one tensor: the first writes, the others add) */
    size_t key_in = c->has_key ? 2 : 1;
    if (a->dx[0]) COPY_ADD(nq, dQ, (T *)a->dx[0], a->dx_acc[0]);
    if (a->dx[1]) COPY_ADD(nv, dV, (T *)a->dx[1], a->dx_acc[1]);
    if (a->dx[key_in]) COPY_ADD(nk, dK, (T *)a->dx[key_in], key_in == 1 ? 1 : a->dx_acc[2]);
    return AF_OK;
}

#undef ATTN_FWD
#undef ATTN_BWD
#undef COPY_ADD
#include "dtype_end.h"
