/* rnn_cell_generic.c: the fused recurrent step kernels for any CPU (baseline instruction set). */
#include "rnn_cell.h"

#define AF_RNN_ISA generic
#define AF_DTYPE_F32
#include "rnn_cell_kern_impl.h"
#define AF_DTYPE_F64
#include "rnn_cell_kern_impl.h"
