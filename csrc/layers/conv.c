/* conv.c: 2-D and 1-D convolution over channels-last samples (Keras' Conv2D / Conv1D).
 *
 * Per sample, x (H, W, C) [a 1-D sample (steps, C) is (1, steps, C)], kernel Wt (KH, KW, C, F)
 * seen as a K x F matrix, K = KH KW C, bias b (F); with conv_geom.h's padding and cells:
 *   P[cell, (kh, kw, c)] = xpad[oh SH + kh DH, ow SW + kw DW, c]      (the im2col matrix)
 *   forward   Z = P Wt + b,  Y = f(Z)                                   Y (OH OW x F)
 *   backward  dZ = dY * f'(Z);  db = sum_cells dZ;  dWt = P^T dZ;  dP = dZ Wt^T,
 *             dx = the sum of each dP entry into the input cell it came from (col2im)
 * Parameters: Wt (K x F, the Keras kernel layout) then b. The penalty covers Wt.
 *
 * Four paths, chosen from the shape alone (conv_path; docs/cnn.md):
 *   cells      one input channel, stride 1 along the width, F <= 8 (LeNet's first layer): the
 *              cells of an output row read consecutive inputs, so vectors run along the row
 *              (every lane busy however few filters), transposed into channels-last rows.
 *   direct     F <= 16 or K < 32: few filters (LeNet's 6 and 16) or few inputs per window
 *              (a first layer on 1 or 3 channels). Register tiles of 12 cells x 1-2 vectors of
 *              filters read the padded input in place through offset tables (conv_kern.h): no
 *              im2col, and no GEMM micro-tile half empty for lack of filters.
 *   gemm       otherwise: one im2col block of `mb` cells at a time (about 256 KB) per thread,
 *              multiplied by the packed GEMM with the bias + activation epilogue; the forward,
 *              when rows are long enough (conv_implicit), as an implicit GEMM reading the input
 *              in place (conv_fwd_implicit: no im2col). Never a padded copy of the batch: the
 *              im2col blocks and the implicit GEMM's window rows write zeros for the padding.
 *   pointwise  1x1 kernel, stride 1, no padding: P is x itself; one GEMM over the batch.
 * Weight gradients are summed over fixed chunks of cells in `ng` fixed groups (each its own
 * partial sum, in chunk order), then the groups in order: the same bits for any thread count.
 * Input gradients (only when dx is wanted) are formed sample by sample: dP block by GEMM, then
 * col2im into that sample's own (padded) gradient image, so samples never race. */
#include "util.h"
#include "conv_geom.h"
#include "conv_kern.h"
#include "isa_ctx.h"
#include "slots.h"
#include "pool.h"

typedef struct {
    int64_t filters;
    int64_t n_kernel;                     /* AF_FIELD_INTS: count, then the values */
    int64_t kernel[AF_FIELD_MAX_INTS];
    int64_t n_strides;
    int64_t strides[AF_FIELD_MAX_INTS];
    int64_t n_dilation;
    int64_t dilation[AF_FIELD_MAX_INTS];
    int padding;                          /* AF_PAD_VALID / AF_PAD_SAME */
    int act;                              /* af_act */
    double alpha;                         /* leaky_relu slope / elu scale */
    int use_bias;
    double l1, l2;                        /* kernel penalties */
} af_conv_cfg;

static const af_field conv_fields[] = {
    {"filters", AF_FIELD_INT, offsetof(af_conv_cfg, filters), 1, 1 << 24, NULL},
    {"kernel_size", AF_FIELD_INTS, offsetof(af_conv_cfg, kernel), 1, 1 << 20, NULL},
    {"strides", AF_FIELD_INTS, offsetof(af_conv_cfg, strides), 1, 1 << 20, NULL},
    {"padding", AF_FIELD_ENUM, offsetof(af_conv_cfg, padding), 0, 0, af_padding_names},
    {"dilation_rate", AF_FIELD_INTS, offsetof(af_conv_cfg, dilation), 1, 1 << 20, NULL},
    {"activation", AF_FIELD_ENUM, offsetof(af_conv_cfg, act), 0, 0, af_act_names},
    {"alpha", AF_FIELD_REAL, offsetof(af_conv_cfg, alpha), 0, 1e300, NULL},
    {"use_bias", AF_FIELD_BOOL, offsetof(af_conv_cfg, use_bias), 0, 1, NULL},
    {"l1", AF_FIELD_REAL, offsetof(af_conv_cfg, l1), 0, 1e300, NULL},
    {"l2", AF_FIELD_REAL, offsetof(af_conv_cfg, l2), 0, 1e300, NULL},
    {NULL, 0, 0, 0, 0, NULL}};

/* ---- path thresholds (docs/cnn.md) -------------------------------------------------------- */
#define AF_CONV_CELLS_MAX_F 8       /* one input channel, stride 1, at most this many: cells */
#define AF_CONV_DIRECT_MAX_F 16     /* at most this many filters: direct */
#define AF_CONV_DIRECT_MIN_K 32     /* fewer inputs per window than this: direct */
#define AF_CONV_BLOCK_ELEMS 65536   /* im2col block: about this many values (256 KB float) */
#define AF_CONV_IMPLICIT_MIN_OW 8   /* GEMM path: output rows at least this long read in place */
#define AF_CONV_IMPLICIT_MIN_SEG 16 /* ... and contiguous window runs at least this long */
#define AF_CONV_GEMM_NR_MAX 32      /* widest GEMM micro-tile (AVX-512 float): packed filter panels */
#define AF_CONV_IMPLICIT_MR_MAX 16  /* tallest micro-tile the implicit path plans window slack for */
#define AF_CONV_IMPLICIT_CHUNKS 32  /* implicit forward: chunks of output rows per thread */
#define AF_CONV_WIN_RING 16         /* implicit forward, padded: window rows spanning at most this
                                     * many input rows are kept in a ring (conv_win_slots) */
#define AF_CONV_CHUNK_DIRECT 256    /* cells per weight-gradient chunk on the direct path */
#define AF_CONV_CHUNK_CELLS 1024    /* about this many (whole rows) on the cells path: its tiles
                                     * end with horizontal sums, paid once per chunk */
#define AF_CONV_MAX_GROUPS 16       /* partial weight gradients */
#define AF_CONV_PART_ELEMS (1 << 22) /* at most this many values of partial gradients */
#define AF_CONV_FPAD 16             /* packed filter columns: a multiple of every vector width */
#define AF_CONV_PAR_MIN 2.0e5       /* multiply-adds below which a pass runs on one thread */

enum { CONV_DIRECT = 0, CONV_GEMM = 1, CONV_POINTWISE = 2, CONV_CELLS = 3 };

/* Everything a pass needs, from the config and the input shape; scratch offsets in elements of a
 * type of tsize bytes (sizes() plans with the smallest, float, whose index arrays need most). */
typedef struct {
    af_win_geom g;
    size_t F, K, S;        /* filters, K = KH KW C, S = OH OW cells per sample */
    int path;
    size_t fpad;           /* F rounded up to AF_CONV_FPAD (direct: packed filter columns) */
    size_t mb;             /* cells per im2col block (gemm) */
    size_t mbx;            /* cells per dP block of the input gradient (all paths) */
    size_t chunk;          /* cells per weight-gradient chunk */
    size_t owp;            /* cells: output row length padded to whole vectors */
    size_t slots, slot_len;
    size_t wpack, offs, part, slot0, scratch;   /* scratch regions */
    size_t xpad, zkeep, aux;                    /* aux regions */
} conv_plan;

static int conv_path(const af_win_geom *g, size_t F, size_t K)
{
    if (g->KH == 1 && g->KW == 1 && g->SH == 1 && g->SW == 1 && !g->padded && F > AF_CONV_DIRECT_MAX_F)
        return CONV_POINTWISE;
    if (g->C == 1 && g->SW == 1 && F <= AF_CONV_CELLS_MAX_F) return CONV_CELLS;
    if (F <= AF_CONV_DIRECT_MAX_F || K < AF_CONV_DIRECT_MIN_K) return CONV_DIRECT;
    return CONV_GEMM;
}

/* The GEMM path's forward reads the input in place (conv_fwd_implicit) when output rows fill the
 * micro-kernel's tiles well and the window's contiguous runs are long enough to amortise storing
 * a tile's partial sums between them; else it multiplies im2col blocks (conv_fwd_gemm). */
static inline size_t conv_seg(const af_win_geom *g);
static int conv_implicit(const conv_plan *p)
{
    return p->path == CONV_GEMM && p->g.OW >= AF_CONV_IMPLICIT_MIN_OW &&
           conv_seg(&p->g) >= AF_CONV_IMPLICIT_MIN_SEG;
}

/* The direct and cells paths read a zero-padded copy of the batch, made by the forward and kept
 * in aux for the weight gradient; the GEMM paths read the input itself, padding as they go
 * (conv_fwd_implicit's window rows, conv_im2col). */
static int conv_keeps_xpad(const conv_plan *p)
{
    return p->g.padded && (p->path == CONV_DIRECT || p->path == CONV_CELLS);
}

/* Row buffers of the padded implicit forward's windows: one per input row the window spans
 * ((KH - 1) DH + 1), slot ih mod that, so consecutive output rows copy only their new input rows;
 * one per kernel row (all copied for every output row) when the span is longer. */
static size_t conv_win_slots(const af_win_geom *g)
{
    size_t span = (g->KH - 1) * g->DH + 1;
    return span <= AF_CONV_WIN_RING ? span : g->KH;
}

/* Groups of chunks for the weight gradient: a function of the shapes only. */
static size_t conv_groups(const conv_plan *p, size_t M)
{
    size_t nch = (M + p->chunk - 1) / p->chunk, per = p->K * p->F + p->F;
    size_t ng = nch < AF_CONV_MAX_GROUPS ? nch : AF_CONV_MAX_GROUPS;
    size_t cap = AF_CONV_PART_ELEMS / per;
    if (ng > cap) ng = cap;
    return ng < 1 ? 1 : ng;
}

static af_status conv_setup(const af_conv_cfg *c, const af_shape *in, size_t B, size_t tsize,
                            conv_plan *p)
{
    af_status s;
    if (c->n_strides != c->n_kernel || c->n_dilation != c->n_kernel) return AF_EINVAL;
    s = af_win_geom_init(&p->g, in, c->kernel, c->strides, c->dilation, c->n_kernel, c->padding);
    if (s != AF_OK) return s;
    const af_win_geom *g = &p->g;
    size_t t;
    p->F = (size_t)c->filters;
    p->K = g->KH * g->KW * g->C;
    p->S = g->OH * g->OW;
    if (af_mul_size(p->K, p->F, &t) || af_mul_size(p->S, p->F, &t) || af_mul_size(t, B, &t))
        return AF_ESHAPE;
    p->path = conv_path(g, p->F, p->K);
    p->fpad = af_round_up(p->F, AF_CONV_FPAD);
    size_t mb = AF_CONV_BLOCK_ELEMS / p->K / 48 * 48;
    p->mb = mb < 48 ? 48 : mb > 4096 ? 4096 : mb;
    /* dx blocks: 4x larger (about 1 MB, in L2), so the GEMM packs the kernel once per ~1000 cells */
    size_t mbx = 4 * AF_CONV_BLOCK_ELEMS / p->K / 48 * 48;
    p->mbx = mbx < 48 ? 48 : mbx > p->S ? p->S : mbx;
    /* cells: chunks of whole output rows; dZ transposed per chunk, rows padded to owp */
    p->owp = af_round_up(g->OW, 16);
    p->chunk = p->path == CONV_DIRECT ? AF_CONV_CHUNK_DIRECT
             : p->path == CONV_CELLS ? (g->OW < AF_CONV_CHUNK_CELLS ? AF_CONV_CHUNK_CELLS / g->OW : 1) * g->OW
             : p->mb;
    p->slots = af_slots();
    size_t padsz = af_win_padded_size(g), ng = conv_groups(p, B * p->S);
    /* per thread: an im2col block, or the offsets of the direct path's chunk of cells; for the
     * input gradient a dP block and a padded gradient image */
    size_t fwd = p->path == CONV_GEMM ? p->mb * p->K : 0;
    /* implicit: a row's KH padded window rows and the slack its tiles read past them, or tiles
     * copied near the end of the input */
    size_t impl = !conv_implicit(p) ? 0
                : g->padded ? (conv_win_slots(g) * g->Wp + AF_CONV_IMPLICIT_MR_MAX * g->SW) * g->C
                            : AF_CONV_IMPLICIT_MR_MAX * conv_seg(g);
    if (impl > fwd) fwd = impl;
    size_t rows = p->chunk / g->OW;
    size_t dw = p->path == CONV_DIRECT ? af_idx_elems(p->chunk, tsize)
              : p->path == CONV_CELLS ? p->F * rows * p->owp + af_idx_elems(rows, tsize)
                                       : p->path == CONV_GEMM ? p->mb * p->K : 0;
    size_t dx = af_round_up(p->mbx * p->K + (g->padded ? padsz : 0), 16) + af_idx_elems(p->mbx, tsize);
    size_t per = fwd > dw ? fwd : dw;
    if (dx > per) per = dx;
    p->slot_len = af_round_up(per, 16);
    /* shared: packed filters and bias, the offset table, the partial gradients */
    p->wpack = 0;
    size_t wpack = p->path == CONV_DIRECT ? (p->K + 1) * p->fpad
                 : p->path == CONV_GEMM ? p->K * af_round_up(p->F, AF_CONV_GEMM_NR_MAX) : 0;
    p->offs = af_round_up(wpack, 16);
    p->part = p->offs + af_round_up(af_idx_elems(p->K + 16, tsize), 16);
    p->slot0 = p->part + af_round_up(ng * (p->K * p->F + p->F), 16);
    p->scratch = p->slot0 + p->slots * p->slot_len;
    /* aux: the padded input (kept for the weight gradient), Z for gelu / swish */
    p->xpad = 0;
    p->zkeep = conv_keeps_xpad(p) ? af_round_up(B * padsz, 16) : 0;
    p->aux = p->zkeep + (af_act_needs_input((af_act)c->act) ? B * p->S * p->F : 0);
    return AF_OK;
}

/* Offsets of the K kernel positions (kh, kw, c) inside a padded sample, then 16 repeats of the
 * last one (tiles of the direct path read a full tile's worth). */
static void conv_offsets(const af_win_geom *g, size_t *off)
{
    size_t k = 0;
    for (size_t kh = 0; kh < g->KH; kh++)
        for (size_t kw = 0; kw < g->KW; kw++)
            for (size_t c = 0; c < g->C; c++) off[k++] = (kh * g->DH * g->Wp + kw * g->DW) * g->C + c;
    for (size_t j = 0; j < 16; j++) off[k + j] = off[k - 1];
}

/* Contiguous runs of a window: KW C values per kernel row without dilation, else C. */
static inline size_t conv_seg(const af_win_geom *g) { return g->DW == 1 ? g->KW * g->C : g->C; }

static af_status conv_infer_rank(const void *cfg, size_t n_in, const af_shape *in,
                                 af_node_info *info, int rank)
{
    const af_conv_cfg *c = (const af_conv_cfg *)cfg;
    conv_plan p;
    if (!af_inputs_float(n_in, in) || in[0].rank != rank) return AF_ESHAPE;
    af_status s = conv_setup(c, &in[0], 1, sizeof(float), &p);
    if (s != AF_OK) return s;
    info->out = af_win_out_shape(&p.g, &in[0], p.F);
    info->pen_len = p.K * p.F;
    info->n_params = info->pen_len + (c->use_bias ? p.F : 0);
    info->l1 = c->l1;
    info->l2 = c->l2;
    if (c->act == AF_ACT_SOFTMAX || c->act == AF_ACT_SIGMOID) info->final_act = (af_act)c->act;
    return AF_OK;
}

static af_status conv2d_infer(const void *cfg, size_t n_in, const af_shape *in, af_node_info *info)
{
    return conv_infer_rank(cfg, n_in, in, info, 3);
}

static af_status conv1d_infer(const void *cfg, size_t n_in, const af_shape *in, af_node_info *info)
{
    return conv_infer_rank(cfg, n_in, in, info, 2);
}

static void conv_sizes(const void *cfg, size_t n_in, const af_shape *in, const af_shape *out,
                       size_t B, int training, af_node_sizes *sz)
{
    conv_plan p;
    (void)n_in;
    (void)out;
    (void)training;
    if (conv_setup((const af_conv_cfg *)cfg, &in[0], B, sizeof(float), &p) != AF_OK) return;
    sz->aux = p.aux;
    sz->scratch = p.scratch;
}

#define AF_DTYPE_F32
#include "conv_impl.h"
#define AF_DTYPE_F64
#include "conv_impl.h"

const af_layer_ops af_op_conv2d = {
    "conv2d", conv_fields, sizeof(af_conv_cfg), 1, 1, 0,
    conv2d_infer, conv_sizes, AF_OPS_FN(conv_forward), AF_OPS_FN(conv_backward)};

const af_layer_ops af_op_conv1d = {
    "conv1d", conv_fields, sizeof(af_conv_cfg), 1, 1, 0,
    conv1d_infer, conv_sizes, AF_OPS_FN(conv_forward), AF_OPS_FN(conv_backward)};
