/* act_generic.c: activation row kernels for any CPU (baseline instruction set). */
#include "act_kern.h"

#define AF_ACT_ISA generic
#define AF_DTYPE_F32
#include "act_kern_impl.h"
#define AF_DTYPE_F64
#include "act_kern_impl.h"
