/* rows_generic.c: the row kernels of rows.h for any CPU (baseline instruction set). */
#include <math.h>
#include <string.h>

#include "rows.h"

#define AF_ROWS_ISA generic
#define AF_ROWS_VBYTES 16
#define AF_DTYPE_F32
#include "rows_kern_impl.h"
#define AF_DTYPE_F64
#include "rows_kern_impl.h"
#undef AF_ROWS_VBYTES
