/* rnn_cell.h: one time step of a recurrent cell over a block of rows (samples): the gate
 * nonlinearities and the state update fused in one pass over each row (rnn_cell.c runs the
 * kernel of the path in use, rnn_cell_kern_impl.h, isa_ctx.h). The recurrent GEMM that feeds a
 * step and the weight-gradient GEMMs are the caller's (csrc/layers/rnn_impl.h). Internal.
 *
 * Gate order as PyTorch, G gates of `units` (H) columns each, one row per sample:
 *   simple (G = 1):  h = act(a),                a = x W + b + h_{t-1} U
 *   lstm   (G = 4):  i, f, g, o = ract(a_i), ract(a_f), act(a_g), ract(a_o)
 *                    c = f c_{t-1} + i g,  h = o act(c)
 *   gru    (G = 3):  r, z = ract(a_r), ract(a_z)        a_rz = x W_rz + b_ih + h U_rz + b_hh
 *                    n = act(x W_n + b_in + r (h U_n + b_hn))              (reset after, PyTorch)
 *                    h = (1 - z) n + z h_{t-1}
 * act is the layer's activation (tanh), ract its recurrent activation (sigmoid); both are one of
 * linear, sigmoid, tanh, relu, whose derivatives come from their outputs.
 *
 * Masking: with a mask, a row whose mask value is 0 skips the step: the state (h, c) is carried
 * unchanged and the step's output is 0; a nonzero value keeps the step. Without one every step
 * is kept. */
#ifndef AF_RNN_CELL_H
#define AF_RNN_CELL_H
#include <stddef.h>

#include "annfast.h"

typedef enum { AF_RNN_SIMPLE = 0, AF_RNN_LSTM = 1, AF_RNN_GRU = 2, AF_RNN_CELL_COUNT = 3 } af_rnn_cell;

/* Gates per cell kind. */
static inline size_t af_rnn_gates(int cell) { return cell == AF_RNN_LSTM ? 4 : cell == AF_RNN_GRU ? 3 : 1; }

/* 1 if an activation can serve a recurrent cell (its derivative follows from its output). */
static inline int af_rnn_act_ok(int act)
{
    return act == AF_ACT_LINEAR || act == AF_ACT_SIGMOID || act == AF_ACT_TANH || act == AF_ACT_RELU;
}

/* The arguments of one step over `rows` rows and `units` units, gate blocks `stride` (H) apart
 * (`rec_stride` apart in rec): a call may cover one block of the units, its pointers then
 * starting at the block's first unit.
 * Row r of a matrix argument starts at p + r * ld_p (ld 0 repeats one row: the zero state of the
 * first step, a dummy output row).
 *   gate  G*H per row. Forward: the input part of the pre-activations (x W), replaced by the
 *         gate activations (lstm i f g o, gru r z n, simple h). Backward: those activations,
 *         replaced by dL/d(pre-activation) of the input part.
 *   bias  forward: G*H added to every row's pre-activations (simple / lstm: b; gru:
 *         [b_ir + b_hr, b_iz + b_hz, b_in]); bias_rn: gru, H added to h U_n (b_hn).
 *   rec   G*H per row. Forward: the recurrent pre-activations h_{t-1} U.
 *         Backward (gru): receives dL/d(recurrent pre-activation) [d a_r, d a_z, d(h U_n + b_hn)].
 *   rn    gru: H per row. Forward: keeps h_{t-1} U_n + b_hn; backward: reads it, then holds the
 *         gradient of that sum.
 *   hp    h_{t-1} (H); cp c_{t-1} (lstm).
 *   h     forward: h_t; c forward: c_t out, backward: c_t in (lstm).
 *   y     forward: the step's output (h_t, or 0 at a masked step).
 *   gy    backward: dL/dy_t, scaled by gy_scale.
 *   gh    backward, H per row (ld stride): dL/dh_t in; out: the part of dL/dh_{t-1} that does not go
 *         through the recurrent GEMM (the caller then adds d(rec) U^T).
 *   gc    backward, lstm, H per row (ld stride): dL/dc_t in, dL/dc_{t-1} out.
 *   mask  NULL, or one value per row (keep the step where nonzero). */
#define AF_RNN_STEP_STRUCT(T, SUF)                                                                 \
    typedef struct {                                                                               \
        size_t rows, units, stride, rec_stride;                                                    \
        int act, rec_act;                                                                          \
        T *gate; size_t ld_gate;                                                                   \
        const T *bias, *bias_rn;                                                                   \
        T *rec; size_t ld_rec;                                                                     \
        T *rn; size_t ld_rn;                                                                       \
        const T *hp; size_t ld_hp;                                                                 \
        const T *cp; size_t ld_cp;                                                                 \
        T *h; size_t ld_h;                                                                         \
        T *c; size_t ld_c;                                                                         \
        T *y; size_t ld_y;                                                                         \
        const T *gy; size_t ld_gy; T gy_scale;                                                     \
        T *gh; T *gc;                                                                              \
        const T *mask; size_t ld_mask;                                                             \
    } af_rnn_step_##SUF;

AF_RNN_STEP_STRUCT(float, f32)
AF_RNN_STEP_STRUCT(double, f64)

/* One forward / backward step of cell kind `cell` (af_rnn_cell), single-threaded. */
void af_rnn_step_forward_f32(int cell, const af_rnn_step_f32 *s);
void af_rnn_step_forward_f64(int cell, const af_rnn_step_f64 *s);
void af_rnn_step_backward_f32(int cell, const af_rnn_step_f32 *s);
void af_rnn_step_backward_f64(int cell, const af_rnn_step_f64 *s);

/* Per-ISA kernels behind the entry points above (rnn_cell_{generic,avx2,avx512}.c). */
#define AF_RNN_DECLARE(ISA)                                                                        \
    void af_rnn_fwd_##ISA##_f32(int cell, const af_rnn_step_f32 *s);                               \
    void af_rnn_fwd_##ISA##_f64(int cell, const af_rnn_step_f64 *s);                               \
    void af_rnn_bwd_##ISA##_f32(int cell, const af_rnn_step_f32 *s);                               \
    void af_rnn_bwd_##ISA##_f64(int cell, const af_rnn_step_f64 *s);

AF_RNN_DECLARE(generic)
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define AF_RNN_X86 1
AF_RNN_DECLARE(avx2)
AF_RNN_DECLARE(avx512)
#else
#define AF_RNN_X86 0
#endif

#endif
