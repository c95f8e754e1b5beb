/* attn_core.c: the attention core of attn_core.h for float and double. */
#include <stddef.h>

#include "attn_core.h"
#include "fpenv.h"
#include "norm.h"
#include "rng.h"
#include "rows.h"
#include "isa_ctx.h"

const af_field af_pair_attn_fields[] = {
    {"use_scale", AF_FIELD_BOOL, offsetof(af_pair_attn_cfg, use_scale), 0, 1, NULL},
    {"dropout", AF_FIELD_REAL, offsetof(af_pair_attn_cfg, dropout), 0, 0.99999999999999989, NULL},
    {"causal", AF_FIELD_BOOL, offsetof(af_pair_attn_cfg, causal), 0, 1, NULL},
    {"has_key", AF_FIELD_BOOL, offsetof(af_pair_attn_cfg, has_key), 0, 1, NULL},
    {"has_mask", AF_FIELD_BOOL, offsetof(af_pair_attn_cfg, has_mask), 0, 1, NULL},
    {NULL, 0, 0, 0, 0, NULL}};

size_t af_attn_block_rows(size_t Tq, size_t Tk)
{
    if (Tq * Tk <= AF_ATTN_BLOCK) return Tq;
    size_t r = AF_ATTN_BLOCK / Tk;
    r = r < 8 ? 8 : r / 8 * 8;
    return r < Tq ? r : Tq;
}

int af_attn_vec(size_t Tq, size_t Tk, size_t dk, size_t dv)
{
    double d = (double)(dk > dv ? dk : dv);
    return dk % AF_ROW_VN == 0 && dv % AF_ROW_VN == 0 && af_attn_block_rows(Tq, Tk) == Tq &&
           (double)Tq * (double)Tk * d <= AF_ATTN_VEC_MAX;
}

size_t af_attn_score_stride(size_t Tq, size_t Tk, size_t dk, size_t dv)
{
    return af_attn_vec(Tq, Tk, dk, dv) ? (Tk + AF_ROW_VN - 1) / AF_ROW_VN * AF_ROW_VN : Tk;
}

/* One slot: three score blocks, then K^T or V^T (max(dk, dv) x stride) for the row kernels. */
static size_t attn_slot_len(size_t Tq, size_t Tk, size_t dk, size_t dv)
{
    size_t ps = af_attn_score_stride(Tq, Tk, dk, dv);
    size_t tr = af_attn_vec(Tq, Tk, dk, dv) ? (dk > dv ? dk : dv) * ps : 0;
    return 3 * af_attn_block_rows(Tq, Tk) * ps + tr;
}

size_t af_attn_work_len(size_t B, size_t H, size_t Tq, size_t Tk, size_t dk, size_t dv)
{
    size_t slots = B * H < AF_ATTN_SLOTS ? B * H : AF_ATTN_SLOTS;
    return slots * attn_slot_len(Tq, Tk, dk, dv);
}

#define AF_DTYPE_F32
#include "attn_core_impl.h"
#define AF_DTYPE_F64
#include "attn_core_impl.h"
