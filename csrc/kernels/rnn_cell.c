/* rnn_cell.c: the entry points of rnn_cell.h, dispatching to the kernels of the ISA chosen at run
 * time (af_get_isa). */
#include "rnn_cell.h"

#if AF_RNN_X86
#define AF_RNN_DISPATCH(kind, SUF)                                                                 \
    switch (af_get_isa()) {                                                                        \
    case AF_ISA_AVX512: af_rnn_##kind##_avx512_##SUF(cell, s); return;                             \
    case AF_ISA_AVX2: af_rnn_##kind##_avx2_##SUF(cell, s); return;                                 \
    default: af_rnn_##kind##_generic_##SUF(cell, s); return;                                       \
    }
#else
#define AF_RNN_DISPATCH(kind, SUF) af_rnn_##kind##_generic_##SUF(cell, s);
#endif

void af_rnn_step_forward_f32(int cell, const af_rnn_step_f32 *s) { AF_RNN_DISPATCH(fwd, f32) }
void af_rnn_step_forward_f64(int cell, const af_rnn_step_f64 *s) { AF_RNN_DISPATCH(fwd, f64) }
void af_rnn_step_backward_f32(int cell, const af_rnn_step_f32 *s) { AF_RNN_DISPATCH(bwd, f32) }
void af_rnn_step_backward_f64(int cell, const af_rnn_step_f64 *s) { AF_RNN_DISPATCH(bwd, f64) }
