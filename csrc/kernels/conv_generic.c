/* conv_generic.c: direct convolution tiles for any CPU (16-byte vectors: SSE2 on x86-64, NEON on
 * arm64; 16 vector registers, so two vectors of filters take 6-cell tiles). */
#include "conv_kern.h"

#define CK_ISA generic
#define CK_VBYTES 16
#define CK_ROWS2 6
#define CK_CELLV 1
#define CK_DWK 2
#define AF_DTYPE_F32
#include "conv_kern_impl.h"
#define AF_DTYPE_F64
#include "conv_kern_impl.h"
