/* finite.c: is every value of a block finite? Used to reject NaN/inf inputs up front. */
#include "annfast.h"
#include "fpenv.h"

#define AF_DTYPE_F32
#include "finite_impl.h"
#define AF_DTYPE_F64
#include "finite_impl.h"
