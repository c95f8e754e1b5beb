/* rnn_cell.c: the entry points of rnn_cell.h, running the step kernels of the path in use
 * (isa_ctx.h). */
#include "rnn_cell.h"
#include "isa_ctx.h"

void af_rnn_step_forward_f32(int cell, const af_rnn_step_f32 *s)
{
    af_kern_f32()->rnn_fwd(cell, s);
}

void af_rnn_step_forward_f64(int cell, const af_rnn_step_f64 *s)
{
    af_kern_f64()->rnn_fwd(cell, s);
}

void af_rnn_step_backward_f32(int cell, const af_rnn_step_f32 *s)
{
    af_kern_f32()->rnn_bwd(cell, s);
}

void af_rnn_step_backward_f64(int cell, const af_rnn_step_f64 *s)
{
    af_kern_f64()->rnn_bwd(cell, s);
}
