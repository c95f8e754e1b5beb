/* attn_core.c: the attention core of attn_core.h for float and double. */
#include "attn_core.h"
#include "norm.h"
#include "rng.h"
#include "rows.h"

size_t af_attn_block_rows(size_t Tq, size_t Tk)
{
    if (Tq * Tk <= AF_ATTN_BLOCK) return Tq;
    size_t r = AF_ATTN_BLOCK / Tk;
    r = r < 8 ? 8 : r / 8 * 8;
    return r < Tq ? r : Tq;
}

size_t af_attn_work_len(size_t B, size_t H, size_t Tq, size_t Tk)
{
    size_t slots = B * H < AF_ATTN_SLOTS ? B * H : AF_ATTN_SLOTS;
    return slots * 3 * af_attn_block_rows(Tq, Tk) * Tk;
}

#define AF_DTYPE_F32
#include "attn_core_impl.h"
#define AF_DTYPE_F64
#include "attn_core_impl.h"
