/* loss.c: losses (mse, mae, binary/categorical/sparse cross-entropy, hinge), their gradients and
 * metric sums, float and double from loss_impl.h. */
#include "annfast.h"
#include "internal.h"
#include "loss.h"
#include "fpenv.h"
#include "pool.h"

/* Rows per block of the fused softmax cross-entropy (softmax_ce_block): its per-row scratch
 * arrays live on the stack (8 arrays of this many values). */
#define AF_LOSS_ROW_BLOCK 128

#define AF_DTYPE_F32
#include "loss_impl.h"
#define AF_DTYPE_F64
#include "loss_impl.h"
