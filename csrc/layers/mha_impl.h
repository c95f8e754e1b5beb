/* mha_impl.h: multi-head attention forward, backward and decoding step for one dtype (included
 * twice by mha.c). */
#include "dtype_begin.h"

#if defined(AF_DTYPE_F32)
#define GEMM_EX af_sgemm_ex
#define GEMM af_sgemm
#define ATTN_FWD af_attn_forward_f32
#define ATTN_BWD af_attn_backward_f32
#define ATTN_ROW af_attn_row_f32
#else
#define GEMM_EX af_dgemm_ex
#define GEMM af_dgemm
#define ATTN_FWD af_attn_forward_f64
#define ATTN_BWD af_attn_backward_f64
#define ATTN_ROW af_attn_row_f64
#endif

/* Y (m x n) = X (m x k) W (k x n) + b  (b may be NULL); ldy: Y's row stride. */
static af_status AF_FN(mha_proj)(size_t m, size_t n, size_t k, const T *X, const T *W, const T *b,
                                 T *Y, size_t ldy)
{
    af_epilogue ep;
    ep.bias = b;
    ep.act = AF_ACT_LINEAR;
    ep.act_param = 0;
    return GEMM_EX(0, 0, m, n, k, (T)1, X, k, W, n, (T)0, Y, ldy, &ep);
}

/* The kept tensors of a forward pass over B samples (aux layout of mha_sizes). */
typedef struct {
    T *Q, *K, *V, *O, *stat, *P;
} AF_FN(mha_kept);

static void AF_FN(mha_kept_of)(const af_mha_cfg *c, const mha_dims *d, size_t B, T *aux,
                               AF_FN(mha_kept) *k)
{
    k->Q = aux;
    k->K = k->Q + B * d->Tq * d->hk;
    k->V = k->K + B * d->Tk * d->hk;
    k->O = k->V + B * d->Tk * d->hv;
    k->stat = k->O + B * d->Tq * d->hv;
    k->P = mha_keep_p(c, d) ? k->stat + 2 * B * d->H * d->Tq : NULL;
}

static void AF_FN(mha_core_args)(const af_op_args *a, const mha_dims *d, const AF_FN(mha_kept) *k,
                                 af_attn_args *t)
{
    const af_mha_cfg *c = (const af_mha_cfg *)a->cfg;
    memset(t, 0, sizeof *t);
    t->B = a->batch;
    t->H = d->H;
    t->Tq = d->Tq;
    t->Tk = d->Tk;
    t->dk = d->dk;
    t->dv = d->dv;
    t->Q = k->Q;
    t->K = k->K;
    t->V = k->V;
    t->ldq = t->ldk = d->hk;
    t->ldv = d->hv;
    t->O = k->O;
    t->ldo = d->hv;
    t->scale = 1.0 / sqrt((double)d->dk);
    t->causal = c->causal;
    t->mask = d->mask_in ? (const int32_t *)a->x[d->mask_in] : NULL;
    t->mask_rank = d->mask_in ? a->in_shape[d->mask_in].rank : 0;
    t->dropout = c->dropout;
    t->training = a->training;
    t->seed = a->seed;
    t->step = a->step;
    t->row0 = a->row0;
    t->P = k->P;
    t->stat = k->stat;
    t->work = a->scratch;
}

static af_status AF_FN(mha_forward)(const af_op_args *a)
{
    const af_mha_cfg *c = (const af_mha_cfg *)a->cfg;
    mha_dims d;
    mha_dims_of(c, a->in_shape, &d);
    size_t B = a->batch;
    const T *W = (const T *)a->param, *Xq = (const T *)a->x[0], *Xv = (const T *)a->x[1];
    const T *Xk = (const T *)a->x[d.key_in];
    int nb = c->use_bias;
    AF_FN(mha_kept) k;
    AF_FN(mha_kept_of)(c, &d, B, (T *)a->aux, &k);
    af_status s;
    /* Q = Xq Wq + bq;  K = Xk Wk + bk;  V = Xv Wv + bv */
    if ((s = AF_FN(mha_proj)(B * d.Tq, d.hk, d.Dq, Xq, W + d.wq, nb ? W + d.bq : NULL, k.Q, d.hk)))
        return s;
    if ((s = AF_FN(mha_proj)(B * d.Tk, d.hk, d.Dk, Xk, W + d.wk, nb ? W + d.bk : NULL, k.K, d.hk)))
        return s;
    if ((s = AF_FN(mha_proj)(B * d.Tk, d.hv, d.Dv, Xv, W + d.wv, nb ? W + d.bv : NULL, k.V, d.hv)))
        return s;
    af_attn_args t;
    AF_FN(mha_core_args)(a, &d, &k, &t);
    if ((s = ATTN_FWD(&t))) return s;
    /* Y = O Wo + bo */
    return AF_FN(mha_proj)(B * d.Tq, d.Do, d.hv, k.O, W + d.wo, nb ? W + d.bo : NULL, (T *)a->y, d.Do);
}

/* Gradients of one projection Y = X W + b from dY (m x n): dW = X^T dY, db = sum dY (written or
 * added per acc), and dX (m x k) = dY W^T written or added per dx_acc (dX may be NULL). */
static af_status AF_FN(mha_proj_back)(size_t m, size_t n, size_t k, const T *X, const T *W, T *dY,
                                      T *dW, T *db, int acc, T *dX, int dx_acc)
{
    af_status s;
    if (db) AF_FN(af_act_back_colsum)(AF_ACT_LINEAR, 0, m, n, dY, dY, dY, db, (T)1, acc);
    if ((s = GEMM(1, 0, k, n, m, (T)1, X, k, dY, n, acc ? (T)1 : (T)0, dW, n))) return s;
    if (dX) return GEMM(0, 1, m, k, n, (T)1, dY, n, W, n, dx_acc ? (T)1 : (T)0, dX, k);
    return AF_OK;
}

static af_status AF_FN(mha_backward)(const af_op_args *a)
{
    const af_mha_cfg *c = (const af_mha_cfg *)a->cfg;
    mha_dims d;
    mha_dims_of(c, a->in_shape, &d);
    size_t B = a->batch;
    const T *W = (const T *)a->param, *Xq = (const T *)a->x[0], *Xv = (const T *)a->x[1];
    const T *Xk = (const T *)a->x[d.key_in];
    T *G = (T *)a->grad, *dY = (T *)a->dy;
    int nb = c->use_bias, acc = a->grad_acc;
    AF_FN(mha_kept) k;
    AF_FN(mha_kept_of)(c, &d, B, (T *)a->aux, &k);
    T *dO = (T *)a->scratch + af_attn_work_len(B, d.H, d.Tq, d.Tk, d.dk, d.dv);
    T *dQ = dO + B * d.Tq * d.hv, *dK = dQ + B * d.Tq * d.hk, *dV = dK + B * d.Tk * d.hk;
    af_status s;
    /* dWo = O^T dY;  dbo = sum dY;  dO = dY Wo^T */
    if ((s = AF_FN(mha_proj_back)(B * d.Tq, d.Do, d.hv, k.O, W + d.wo, dY, G + d.wo,
                                  nb ? G + d.bo : NULL, acc, dO, 0)))
        return s;
    af_attn_args t;
    AF_FN(mha_core_args)(a, &d, &k, &t);
    t.dO = dO;
    t.lddo = d.hv;
    t.dQ = dQ;
    t.dK = dK;
    t.dV = dV;
    t.lddq = t.lddk = d.hk;
    t.lddv = d.hv;
    if ((s = ATTN_BWD(&t))) return s;
    /* the input gradients in input order: inputs that are one tensor (self attention) are
     * written by the first and added to by the others (the plan's dx_acc) */
    if ((s = AF_FN(mha_proj_back)(B * d.Tq, d.hk, d.Dq, Xq, W + d.wq, dQ, G + d.wq, nb ? G + d.bq : NULL,
                                  acc, (T *)a->dx[0], a->dx_acc[0])))
        return s;
    if ((s = AF_FN(mha_proj_back)(B * d.Tk, d.hv, d.Dv, Xv, W + d.wv, dV, G + d.wv, nb ? G + d.bv : NULL,
                                  acc, (T *)a->dx[1], a->dx_acc[1])))
        return s;
    /* without a key input, the key projection's input gradient adds into the value's */
    return AF_FN(mha_proj_back)(B * d.Tk, d.hk, d.Dk, Xk, W + d.wk, dK, G + d.wk, nb ? G + d.bk : NULL,
                                acc, (T *)a->dx[d.key_in], d.key_in == 1 ? 1 : a->dx_acc[2]);
}

/* One decoding position (see mha.c). */
static af_status AF_FN(mha_step)(const af_op_args *a)
{
    const af_mha_cfg *c = (const af_mha_cfg *)a->cfg;
    mha_dims d;
    mha_dims_of(c, a->in_shape, &d);
    size_t B = a->batch, pos = a->pos;
    int self = (a->step_in >> 1) & 1, nb = c->use_bias;
    if (!(a->step_in & 1) || pos >= d.Tq) return AF_EINVAL;
    /* keys at one position must come with the value's (self attention), and only causally */
    if (c->has_key && (int)((a->step_in >> 2) & 1) != self) return AF_EINVAL;
    if ((self && (!c->causal || pos >= d.Tk)) || (d.mask_in && ((a->step_in >> d.mask_in) & 1)))
        return AF_EINVAL;
    const T *W = (const T *)a->param, *Xq = (const T *)a->x[0], *Xv = (const T *)a->x[1];
    const T *Xk = (const T *)a->x[d.key_in];
    T *Kc = (T *)a->cache, *Vc = Kc + B * d.Tk * d.hk, *q = Vc + B * d.Tk * d.hv;
    T *sc = q + B * d.hk, *o = sc + B * d.H * d.Tk;
    af_status s;
    size_t lim;
    if (self) {
        /* this position's key and value rows, appended at row pos of each sample's cache */
        if ((s = AF_FN(mha_proj)(B, d.hk, d.Dk, Xk, W + d.wk, nb ? W + d.bk : NULL, Kc + pos * d.hk,
                                 d.Tk * d.hk)))
            return s;
        if ((s = AF_FN(mha_proj)(B, d.hv, d.Dv, Xv, W + d.wv, nb ? W + d.bv : NULL, Vc + pos * d.hv,
                                 d.Tk * d.hv)))
            return s;
        lim = pos + 1;
    } else {
        if (pos == 0) {   /* the whole memory, projected once */
            if ((s = AF_FN(mha_proj)(B * d.Tk, d.hk, d.Dk, Xk, W + d.wk, nb ? W + d.bk : NULL, Kc, d.hk)))
                return s;
            if ((s = AF_FN(mha_proj)(B * d.Tk, d.hv, d.Dv, Xv, W + d.wv, nb ? W + d.bv : NULL, Vc, d.hv)))
                return s;
        }
        lim = c->causal && pos + 1 < d.Tk ? pos + 1 : d.Tk;
    }
    if ((s = AF_FN(mha_proj)(B, d.hk, d.Dq, Xq, W + d.wq, nb ? W + d.bq : NULL, q, d.hk))) return s;
    const int32_t *m = NULL;
    size_t mld = 0;
    if (d.mask_in) {
        const af_shape *ms = &a->in_shape[d.mask_in];
        m = (const int32_t *)a->x[d.mask_in] + (ms->rank == 2 ? pos * d.Tk : 0);
        mld = ms->rank == 2 ? d.Tq * d.Tk : d.Tk;
    }
    if ((s = ATTN_ROW(B, d.H, d.Tk, lim, d.dk, d.dv, q, d.hk, Kc, d.hk, Vc, d.hv, o, d.hv,
                      1.0 / sqrt((double)d.dk), m, mld, sc)))
        return s;
    return AF_FN(mha_proj)(B, d.Do, d.hv, o, W + d.wo, nb ? W + d.bo : NULL, (T *)a->y, d.Do);
}

#undef GEMM_EX
#undef GEMM
#undef ATTN_FWD
#undef ATTN_BWD
#undef ATTN_ROW
#include "dtype_end.h"
