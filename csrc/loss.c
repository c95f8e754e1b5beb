/* loss.c: losses (mse, mae, binary/categorical/sparse cross-entropy, hinge), their gradients and
 * metric sums, float and double from loss_impl.h. */
#include "annfast.h"
#include "internal.h"
#include "net_internal.h"

#define AF_DTYPE_F32
#include "loss_impl.h"
#define AF_DTYPE_F64
#include "loss_impl.h"
