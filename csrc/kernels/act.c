/* act.c: activation functions and their derivatives, float and double from act_impl.h. */
#include "annfast.h"
#include "internal.h"
#include "isa_ctx.h"
#include "fpenv.h"
#include "pool.h"

#define AF_DTYPE_F32
#include "act_impl.h"
#define AF_DTYPE_F64
#include "act_impl.h"
