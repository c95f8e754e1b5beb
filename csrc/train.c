/* train.c: forward/backward passes (net_impl.h) and whole epochs, predict, evaluate and exact
 * gradients (train_impl.h), float and double from the same two template headers. */
#include <string.h>

#include "net_internal.h"
#include "fpenv.h"

#define AF_DTYPE_F32
#include "net_impl.h"
#define AF_DTYPE_F32
#include "train_impl.h"
#define AF_DTYPE_F64
#include "net_impl.h"
#define AF_DTYPE_F64
#include "train_impl.h"
