/* conv_geom.h: the geometry of a sliding window over a channels-last sample, shared by the
 * convolution (conv.c) and pooling (pool.c) kinds.
 *
 * A 2-D sample is (H, W, C); a 1-D sample (steps, C) is taken as (1, steps, C), so one code path
 * serves both. The window is KH x KW cells, DH / DW apart (dilation), moved SH / SW cells per
 * output (stride). Padding follows Keras (and TensorFlow's "SAME"):
 *   valid:  OH = floor((H - ((KH - 1) DH + 1)) / SH) + 1, no padding; needs H >= (KH - 1) DH + 1
 *   same:   OH = ceil(H / SH); P = max((OH - 1) SH + (KH - 1) DH + 1 - H, 0) padded rows,
 *           PT = floor(P / 2) above and P - PT below (the extra row, if any, at the bottom)
 * and likewise for the width. Output cell (oh, ow) reads input cells
 *   (oh SH + kh DH - PT, ow SW + kw DW - PL),  0 <= kh < KH, 0 <= kw < KW,
 * i.e. cells (oh SH + kh DH, ow SW + kw DW) of the input zero-padded to Hp x Wp. */
#ifndef AF_LAYER_CONV_GEOM_H
#define AF_LAYER_CONV_GEOM_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "layer.h"

enum { AF_PAD_VALID = 0, AF_PAD_SAME = 1 };

/* Names of the padding modes, in the enum's order (ENUM fields). */
static const char *const af_padding_names[] = {"valid", "same", NULL};

typedef struct {
    size_t H, W, C;           /* input sample */
    size_t KH, KW;            /* window */
    size_t SH, SW, DH, DW;    /* strides, dilation */
    size_t PT, PL;            /* padding above / left */
    size_t Hp, Wp;            /* padded input: H + PT + bottom, W + PL + right */
    size_t OH, OW;            /* output cells */
    int padded;               /* any padding at all */
} af_win_geom;

/* One axis: output length and padding before; 0 when the window does not fit. */
static inline size_t af_win_axis(size_t n, size_t k, size_t s, size_t d, int same, size_t *pad_lo,
                                 size_t *padded_n)
{
    size_t span = (k - 1) * d + 1, out;
    *pad_lo = 0;
    *padded_n = n;
    if (!same) return n >= span ? (n - span) / s + 1 : 0;
    out = (n + s - 1) / s;
    size_t need = (out - 1) * s + span;
    if (need > n) {
        *pad_lo = (need - n) / 2;
        *padded_n = need;
    }
    return out;
}

/* Fills g for an input of rank `rank` (2: (steps, C), 3: (H, W, C)) and the per-axis settings
 * (k, s, d hold rank - 1 values: height then width). AF_ESHAPE when the window is larger than
 * the (padded) input or a size overflows; AF_EINVAL for a bad setting. */
static inline af_status af_win_geom_init(af_win_geom *g, const af_shape *in, const int64_t *k,
                                         const int64_t *s, const int64_t *d, int64_t n_set,
                                         int padding)
{
    int sp = in->rank - 1;   /* spatial axes */
    if ((in->rank != 2 && in->rank != 3) || n_set != sp) return AF_ESHAPE;
    for (int i = 0; i < sp; i++)
        if (k[i] < 1 || s[i] < 1 || d[i] < 1 || k[i] > (1 << 20) || s[i] > (1 << 20) ||
            d[i] > (1 << 20))
            return AF_EINVAL;
    g->C = in->dim[sp];
    g->H = sp == 2 ? in->dim[0] : 1;
    g->W = in->dim[sp - 1];
    g->KH = sp == 2 ? (size_t)k[0] : 1;
    g->KW = (size_t)k[sp - 1];
    g->SH = sp == 2 ? (size_t)s[0] : 1;
    g->SW = (size_t)s[sp - 1];
    g->DH = sp == 2 ? (size_t)d[0] : 1;
    g->DW = (size_t)d[sp - 1];
    if (g->H > ((size_t)1 << 30) || g->W > ((size_t)1 << 30) || g->C > ((size_t)1 << 30))
        return AF_ESHAPE;
    int same = padding == AF_PAD_SAME;
    g->OH = af_win_axis(g->H, g->KH, g->SH, g->DH, same, &g->PT, &g->Hp);
    g->OW = af_win_axis(g->W, g->KW, g->SW, g->DW, same, &g->PL, &g->Wp);
    if (g->OH == 0 || g->OW == 0) return AF_ESHAPE;
    g->padded = g->Hp != g->H || g->Wp != g->W;
    size_t t;
    if (af_mul_size(g->Hp, g->Wp, &t) || af_mul_size(t, g->C, &t)) return AF_ESHAPE;
    return AF_OK;
}

/* Output shape for `f` channels: (OH, OW, f) or (OW, f) for a 1-D input. */
static inline af_shape af_win_out_shape(const af_win_geom *g, const af_shape *in, size_t f)
{
    af_shape out;
    memset(&out, 0, sizeof out);
    out.elem = AF_ELEM_FLOAT;
    out.rank = in->rank;
    if (in->rank == 3) {
        out.dim[0] = g->OH;
        out.dim[1] = g->OW;
        out.dim[2] = f;
    } else {
        out.dim[0] = g->OW;
        out.dim[1] = f;
    }
    return out;
}

/* Elements of one padded sample. */
static inline size_t af_win_padded_size(const af_win_geom *g) { return g->Hp * g->Wp * g->C; }

/* Walks output cells in batch order (b, oh, ow) without a division per cell (64-bit divisions
 * cost more than a small tile's arithmetic). `base` is the offset, in the padded batch, of the
 * top-left input cell the current output cell reads. */
typedef struct {
    size_t b, oh, ow, base;
} af_cell_cursor;

static inline void af_cursor_set(const af_win_geom *g, size_t cell, af_cell_cursor *c)
{
    size_t S = g->OH * g->OW, q;
    c->b = cell / S;
    q = cell - c->b * S;
    c->oh = q / g->OW;
    c->ow = q - c->oh * g->OW;
    c->base = c->b * af_win_padded_size(g) + (c->oh * g->SH * g->Wp + c->ow * g->SW) * g->C;
}

static inline void af_cursor_next(const af_win_geom *g, af_cell_cursor *c)
{
    if (++c->ow < g->OW) {
        c->base += g->SW * g->C;
    } else if ((c->ow = 0, ++c->oh < g->OH)) {
        c->base = c->b * af_win_padded_size(g) + c->oh * g->SH * g->Wp * g->C;
    } else {
        c->oh = 0;
        c->base = ++c->b * af_win_padded_size(g);
    }
}

#endif
