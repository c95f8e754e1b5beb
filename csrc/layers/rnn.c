/* rnn.c: recurrent layers (SimpleRNN, LSTM, GRU) over (steps, features) sequences, one or two
 * directions (Bidirectional), with masking of skipped steps, initial states and dropout.
 *
 * Inputs: x (T, F); then, if cfg.mask, a (T,) mask (a step is skipped where it is 0); then, if
 * cfg.initial_state, the initial states (H,) per direction: h (and c for lstm). The cell maths
 * and the gate order (PyTorch's) are in rnn_cell.h.
 *
 * Parameters, per direction (the backward direction's after the forward one's), row-major:
 *   kernel            W (F, G H)   x W: columns gate by gate (lstm i f g o, gru r z n)
 *   recurrent_kernel  U (H, G H)
 *   bias              simple / lstm: b (G H)            (PyTorch's b_ih + b_hh)
 *                     gru: (2, G H), b_ih then b_hh     (PyTorch's bias_ih_l0, bias_hh_l0)
 * so W = weight_ih_l0.T, U = weight_hh_l0.T of torch.nn.RNN / LSTM / GRU.
 *
 * Output per sample: the sequence (T, Hout) when return_sequences, else the last state (Hout);
 * Hout = 2H when two directions are concatenated, else H. A one-direction sequence is in
 * processing order (go_backwards reverses it, as Keras); two directions are aligned to the input
 * steps. With return_state the output is flat: that part, then the final h (and c) of each
 * direction (H each); the Python layer slices it into separate tensors.
 *
 * Forward, per direction:  A = X W (one GEMM over all B T rows); then per step t
 *   R = h_{t-1} U (one GEMM for all gates), and one fused pass (rnn_cell.h) adding the biases,
 *   applying the gate nonlinearities and updating the state.
 * Backward (BPTT), per direction: per step, from t = T-1 down: the fused pass turns the saved
 *   activations into dA (in place) and dL/dh_{t-1} = dR U^T (one GEMM) + the direct part;
 *   after the loop, large GEMMs:  dW = X^T dA,  dU = H_prev^T dR,  db = column sums,
 *   dX = dA W^T.
 * The batch is cut into a fixed number of sample blocks (it depends on B and the direction
 * count only); every (direction, block) runs its whole step loop independently, so blocks and
 * directions run on separate threads without any barrier, and the results never depend on the
 * thread count. Two directions of one block each on at most two threads: each direction's thread
 * also makes its A = X W and its dW, dU, db (rnn_dir_threads). A batch too small for two blocks instead shares the units of its one direction
 * between threads in the forward pass (rnn_units_forward), with the same results. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_getcpu */
#endif
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "fpenv.h"
#include "isa_ctx.h"
#include "util.h"
#include "norm.h"
#include "pool.h"
#include "rng.h"
#include "rnn.h"

static const char *const rnn_cell_names[] = {"simple", "lstm", "gru", NULL};
static const char *const rnn_merge_names[] = {"concat", "sum", "mul", "ave", NULL};

static const af_field rnn_fields[] = {
    {"cell", AF_FIELD_ENUM, offsetof(af_rnn_cfg, cell), 0, 0, rnn_cell_names},
    {"units", AF_FIELD_INT, offsetof(af_rnn_cfg, units), 1, 1 << 20, NULL},
    {"activation", AF_FIELD_ENUM, offsetof(af_rnn_cfg, act), 0, 0, af_act_names},
    {"recurrent_activation", AF_FIELD_ENUM, offsetof(af_rnn_cfg, rec_act), 0, 0, af_act_names},
    {"use_bias", AF_FIELD_BOOL, offsetof(af_rnn_cfg, use_bias), 0, 1, NULL},
    {"return_sequences", AF_FIELD_BOOL, offsetof(af_rnn_cfg, return_sequences), 0, 1, NULL},
    {"return_state", AF_FIELD_BOOL, offsetof(af_rnn_cfg, return_state), 0, 1, NULL},
    {"go_backwards", AF_FIELD_BOOL, offsetof(af_rnn_cfg, go_backwards), 0, 1, NULL},
    {"bidirectional", AF_FIELD_BOOL, offsetof(af_rnn_cfg, bidirectional), 0, 1, NULL},
    {"merge_mode", AF_FIELD_ENUM, offsetof(af_rnn_cfg, merge), 0, 0, rnn_merge_names},
    {"mask", AF_FIELD_BOOL, offsetof(af_rnn_cfg, mask), 0, 1, NULL},
    {"initial_state", AF_FIELD_BOOL, offsetof(af_rnn_cfg, initial_state), 0, 1, NULL},
    {"dropout", AF_FIELD_REAL, offsetof(af_rnn_cfg, dropout), 0, 0.99999999999999989, NULL},
    {"recurrent_dropout", AF_FIELD_REAL, offsetof(af_rnn_cfg, recurrent_dropout), 0, 0.99999999999999989, NULL},
    {NULL, 0, 0, 0, 0, NULL}};

/* Sample blocks per direction: about 16 rows each with one direction, 32 with two (so a batch of
 * 32 gives two independent work items either way), at most 64. A function of B and the
 * direction count only: never of the thread count. */
static size_t rnn_blocks(size_t B, size_t D)
{
    size_t rows = D == 2 ? 32 : 16, n = (B + rows / 2) / rows;
    if (n < 1) n = 1;
    if (n > 64) n = 64;
    if (n > B) n = B;
    return n;
}

/* Units per block when the threads share the units of one sequence block. */
#define AF_RNN_UNITS 64
/* Elements between two unit blocks' own regions (s_priv): at least 4 KB, so that no page holds
 * two blocks' data. */
#define AF_RNN_PRIV_GAP 1024

/* Where the pieces of a unit block's own region start, for n rows, NT steps, G gates and nu
 * units (elements from the region's start; end: its length). rnn_layout sizes the regions with
 * it, rnn_priv (rnn_impl.h) places them: one layout for both. */
typedef struct {
    size_t gate, bias, c, rn, end;
} rnn_priv_offsets;

static rnn_priv_offsets rnn_priv_at(size_t n, size_t NT, size_t G, size_t nu)
{
    rnn_priv_offsets o;
    o.gate = 0;                        /* gates: input parts, then activations */
    o.bias = o.gate + n * NT * G * nu; /* the block's biases */
    o.c = o.bias + G * nu;             /* c of the last two steps */
    o.rn = o.c + 2 * n * nu;           /* gru's h U_n + b_hn */
    o.end = o.rn + n * nu;
    return o;
}

/* Region of n elements at *cur, rounded up to 16 elements (64 bytes of float). */
static size_t rnn_take(size_t *cur, size_t n)
{
    size_t off = *cur;
    *cur += (n + 15) / 16 * 16;
    return off;
}

/* The sizes and offsets for B samples (no overflow: infer checked the per-sample sizes and the
 * plan checked B times them). */
static void rnn_layout(const af_rnn_cfg *c, const af_shape *in, size_t B, af_rnn_layout *L)
{
    memset(L, 0, sizeof *L);
    L->B = B;
    L->NT = in[0].dim[0];
    L->F = in[0].dim[1];
    L->H = (size_t)c->units;
    L->G = af_rnn_gates(c->cell);
    L->GH = L->G * L->H;
    L->D = c->bidirectional ? 2 : 1;
    L->S = c->cell == AF_RNN_LSTM ? 2 : 1;
    L->nsb = rnn_blocks(B, L->D);
    size_t T = L->NT, F = L->F, H = L->H, GH = L->GH;
    L->n_per = F * GH + H * GH + (c->use_bias ? (c->cell == AF_RNN_GRU ? 2 * GH : GH) : 0);
    L->hout = L->D == 2 && c->merge == AF_MERGE_CONCAT ? 2 * H : H;
    L->seq_len = c->return_sequences ? T * L->hout : L->hout;
    L->out_len = L->seq_len + (c->return_state ? L->D * L->S * H : 0);
    int lstm = c->cell == AF_RNN_LSTM, gru = c->cell == AF_RNN_GRU;
    size_t a = 0;
    L->a_gate = rnn_take(&a, B * T * GH);    /* pre-activations -> activations -> dA */
    L->a_hp = rnn_take(&a, B * T * H);       /* h before each input step */
    L->a_c = lstm ? rnn_take(&a, B * T * H) : 0;   /* c after each input step */
    L->a_rn = gru ? rnn_take(&a, B * T * H) : 0;   /* h U_n + b_hn per step */
    L->a_ys = L->D == 2 && c->return_sequences && c->merge != AF_MERGE_CONCAT ? rnn_take(&a, B * T * H) : 0;
    L->a_lh = rnn_take(&a, B * H);           /* final h */
    L->a_lc = lstm ? rnn_take(&a, B * H) : 0;
    L->a_xd = c->dropout > 0 ? rnn_take(&a, B * T * F) : 0;      /* dropped-out input */
    L->a_mx = c->dropout > 0 ? rnn_take(&a, B * F) : 0;          /* its mask */
    L->a_hd = c->recurrent_dropout > 0 ? rnn_take(&a, B * T * H) : 0;  /* dropped-out h_prev */
    L->a_mh = c->recurrent_dropout > 0 ? rnn_take(&a, B * H) : 0;
    L->aux_dir = a;
    size_t s = 0;
    L->s_rec = rnn_take(&s, B * GH);         /* R rows of each block (backward gru: dR) */
    L->s_gh = rnn_take(&s, B * H);           /* running dL/dh */
    L->s_gc = lstm ? rnn_take(&s, B * H) : 0;  /* running dL/dc */
    L->s_tmp = c->recurrent_dropout > 0 ? rnn_take(&s, B * H) : 0;
    L->s_dummy = rnn_take(&s, L->nsb * H);   /* an output row per block that nobody reads */
    L->s_ut = rnn_take(&s, GH * H);          /* U^T for the backward GEMM */
    /* U (forward) or U^T (backward) as the GEMM packs it, panels of up to 64 columns */
    size_t pk_u = H * ((GH + 63) / 64 * 64), pk_ut = GH * ((H + 63) / 64 * 64);
    L->pk_len = pk_u > pk_ut ? pk_u : pk_ut;
    L->s_pk = rnn_take(&s, L->pk_len);
    L->s_gy = c->merge == AF_MERGE_MUL && L->D == 2 && c->return_sequences ? rnn_take(&s, B * T * H) : 0;
    L->s_bias = gru && c->use_bias ? rnn_take(&s, GH) : 0;   /* gru: b_ih + [b_hr, b_hz, 0] */
    L->s_sum = rnn_take(&s, GH + H);         /* bias-gradient column sums */
    /* a region of its own per unit block, for forward-only passes whose threads share the units
     * at batch 1-2 (rnn_priv in rnn_impl.h); sized for min(B, 2) rows, so never more for a
     * smaller B */
    L->priv_stride = 0;
    if (L->D == 1 && H >= 2 * AF_RNN_UNITS) {
        size_t rows = B < 2 ? B : 2, numax = H - (H / AF_RNN_UNITS - 1) * AF_RNN_UNITS;
        L->priv_stride = (rnn_priv_at(rows, T, L->G, numax).end + 15) / 16 * 16 + AF_RNN_PRIV_GAP;
    }
    L->s_priv = rnn_take(&s, L->priv_stride * (H / AF_RNN_UNITS));
    L->scr_dir = s;
    s *= L->D;
    L->s_zero = rnn_take(&s, GH > H ? GH : H);  /* a zero row */
    L->s_dx = c->dropout > 0 ? rnn_take(&s, B * T * F) : 0;
    L->scr_total = s;
}

static af_status rnn_infer(const void *cfg, size_t n_in, const af_shape *in, af_node_info *info)
{
    const af_rnn_cfg *c = (const af_rnn_cfg *)cfg;
    if (!af_inputs_float(n_in, in) || in[0].rank != 2) return AF_ESHAPE;
    if (!af_rnn_act_ok(c->act) || (c->cell != AF_RNN_SIMPLE && !af_rnn_act_ok(c->rec_act)))
        return AF_EINVAL;
    size_t T = in[0].dim[0], F = in[0].dim[1], H = (size_t)c->units, G = af_rnn_gates(c->cell);
    size_t D = c->bidirectional ? 2 : 1, S = c->cell == AF_RNN_LSTM ? 2 : 1;
    if (n_in != 1 + (size_t)c->mask + (c->initial_state ? D * S : 0)) return AF_EINVAL;
    size_t k = 1;
    if (c->mask && !(in[k].rank == 1 && in[k].dim[0] == T)) return AF_ESHAPE;
    k += (size_t)c->mask;
    for (; k < n_in; k++)
        if (!(in[k].rank == 1 && in[k].dim[0] == H)) return AF_ESHAPE;
    /* every buffer of one sample fits: T (G H + F + 5 H), the weights D (F + H + 2) G H */
    size_t t1, t2, t3;
    if (af_mul_size(G, H, &t1) || af_mul_size(T, t1 + F + 5 * H, &t2) || t2 > ((size_t)1 << 40) ||
        af_mul_size(F + H + 2, t1, &t3) || af_mul_size(t3, D, &t3))
        return AF_ESHAPE;
    af_rnn_layout L;
    rnn_layout(c, in, 1, &L);
    info->n_params = D * L.n_per;
    info->out.elem = AF_ELEM_FLOAT;
    if (c->return_state) {
        info->out.rank = 1;
        info->out.dim[0] = L.out_len;
    } else if (c->return_sequences) {
        info->out.rank = 2;
        info->out.dim[0] = T;
        info->out.dim[1] = L.hout;
    } else {
        info->out.rank = 1;
        info->out.dim[0] = L.hout;
    }
    return AF_OK;
}

static void rnn_sizes(const void *cfg, size_t n_in, const af_shape *in, const af_shape *out, size_t B,
                      int training, af_node_sizes *sz)
{
    af_rnn_layout L;
    (void)n_in;
    (void)out;
    (void)training;
    rnn_layout((const af_rnn_cfg *)cfg, in, B, &L);
    sz->aux = L.D * L.aux_dir;
    sz->scratch = L.scr_total;
}

/* The work of a recurrence that pays for a parallel region (multiply-adds of the step GEMMs). */
#define AF_RNN_PAR_MIN 200000.0
/* The multiply-adds of one step that pay for a barrier per step. */
#define AF_RNN_PAR_MIN_STEP 32768.0

/* 1 when threads may share the units of a forward pass instead of the batch: one direction, a
 * batch too small for two sample blocks, and at least two unit blocks (of H >= 128 units, so
 * every block's recurrent product is a packed GEMM or a GEMV, never the GEMM's small direct
 * loop, and computes each value as the full product does). */
static int rnn_unit_blocks(const af_rnn_layout *L)
{
    return L->D == 1 && L->nsb == 1 && L->H >= 2 * AF_RNN_UNITS;
}

/* Unit block k of H: 64 units each, the last one taking the remainder (64 to 127 units), so no
 * block's product is small enough for the GEMM's direct loop. */
static inline void rnn_unit_block(size_t H, size_t k, size_t *u0, size_t *nu)
{
    size_t nub = H / AF_RNN_UNITS;
    *u0 = k * AF_RNN_UNITS;
    *nu = k + 1 == nub ? H - *u0 : AF_RNN_UNITS;
}

/* 1 when threads sharing the units also make their columns of A = X W: when every block's
 * product, (B T, nu >= 64) per gate, is big enough for the GEMM's packed or row paths, which
 * compute each column as the full product does (its direct loop takes up to 4096
 * multiply-adds). */
static int rnn_blocks_project(const af_rnn_layout *L)
{
    return (double)L->B * (double)L->NT * (double)L->F * 64.0 > 8192.0;
}

/* A fused pass (rnn_fuse in rnn_impl.h) makes the first rnn_fuse_first steps' rows of A = X W in
 * one GEMM before the loop, then each later block of AF_GEMM_PROJ_ROWS steps during the
 * AF_GEMM_PROJ_ROWS steps before it, a quarter of its passes (npb of them in all) at each. Step s
 * makes passes [q0, q1) of the block whose rows start at input step t0: 0 when none. */
static inline size_t rnn_fuse_first(const af_rnn_layout *L) { return AF_GEMM_PROJ_ROWS + L->NT % AF_GEMM_PROJ_ROWS; }

static int rnn_fuse_at(const af_rnn_layout *L, int back, size_t s, size_t npb, size_t *t0, size_t *q0, size_t *q1)
{
    const size_t R = AF_GEMM_PROJ_ROWS, first = rnn_fuse_first(L);
    if (s + R < first || s + R - first >= L->NT - first) return 0;
    const size_t i = s + R - first, a = first + i / R * R; /* a: the block's first step */
    *t0 = back ? L->NT - a - R : a;
    *q0 = npb * (i % R) / R;
    *q1 = npb * (i % R + 1) / R;
    return *q1 > *q0;
}

/* 1 when each direction runs whole on its own thread: two directions, one sample block each, and
 * no more threads than directions. Its thread then also makes its input projection (forward) and
 * its weight gradients (backward): the same GEMM calls as otherwise made one direction after the
 * other on the pool's threads, so the same bits, without the pool jobs around the step loops (a
 * pool worker spins on after its job and takes a core from the OpenMP team that runs the step
 * loops next; each GEMM split two ways also packs its shared operand twice). Measured on 2 cores:
 * batch-1 bidirectional LSTM about 1.8x faster, batch 32 training a few percent. */
static int rnn_dir_threads(const af_rnn_layout *L)
{
    return L->D == 2 && L->nsb == 1 && af_get_num_threads() <= 2;
}

/* Most work items (directions x sample blocks). */
#define AF_RNN_MAX_ITEMS 128

/* Steps finished by one of the threads sharing the units (rnn_units_forward), on a cache line of
 * its own. */
typedef struct {
    _Alignas(64) atomic_size_t steps;
} rnn_progress;

/* Wait until one thread has finished s steps. Acquire: its states for those steps are then
 * visible. */
static void rnn_wait_step(rnn_progress *p, size_t s)
{
    unsigned spins = 0;
    while (atomic_load_explicit(&p->steps, memory_order_acquire) < s) af_pool_backoff(&spins);
}

/* The threads sharing the units of a GEMV pass (rnn_units_gemv): per share, the steps finished
 * and its input projection (0 unclaimed, 1 being made, 2 made); how many threads besides the
 * first have joined; the step from which every thread computes its own share (SIZE_MAX until
 * the first thread decides). */
typedef struct {
    rnn_progress done[AF_RNN_MAX_ITEMS];
    rnn_progress proj[AF_RNN_MAX_ITEMS];
    _Alignas(64) atomic_size_t joined;
    _Alignas(64) atomic_size_t split;
} rnn_team;

/* Wait while *v == value (acquire). */
static void rnn_wait_change(atomic_size_t *v, size_t value)
{
    unsigned spins = 0;
    while (atomic_load_explicit(v, memory_order_acquire) == value) af_pool_backoff(&spins);
}

/* The CPU the calling thread runs on, or -1 where unknown. */
static int rnn_cpu(void)
{
#if defined(__linux__)
    return sched_getcpu();
#else
    return -1;
#endif
}

/* The calling thread's number in its OpenMP team and the team's size (0 and 1 outside one). */
static inline void rnn_team_ids(size_t *tid, size_t *nth)
{
#ifdef _OPENMP
    *tid = (size_t)omp_get_thread_num();
    *nth = (size_t)omp_get_num_threads();
#else
    *tid = 0;
    *nth = 1;
#endif
}

/* Wait until each of the nth threads other than `self` has finished s steps. */
static void rnn_wait_steps(rnn_progress *done, size_t nth, size_t self, size_t s)
{
    for (size_t t = 0; t < nth; t++)
        if (t != self) rnn_wait_step(&done[t], s);
}

#define AF_DTYPE_F32
#include "rnn_impl.h"
#define AF_DTYPE_F64
#include "rnn_impl.h"

const af_layer_ops af_op_rnn = {
    "rnn", rnn_fields, sizeof(af_rnn_cfg), 1, 6, 0,
    rnn_infer, rnn_sizes, AF_OPS_FN(rnn_forward), AF_OPS_FN(rnn_backward)};
