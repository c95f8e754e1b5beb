/* finite.c: is every value of a block finite? Used to reject NaN/inf inputs up front. */
#include <stdint.h>
#include <string.h>

#include "annfast.h"
#include "fpenv.h"
#include "pool.h"

/* Inputs from AF_FINITE_PAR_MIN values are scanned by annfast's threads, in chunks of 64K values
 * (256-512 KB: each a few tens of microseconds, more than a job costs). The scan is bound by
 * memory bandwidth, which one core does not saturate: a 51 MB float32 training set (16384 x 784)
 * took 2.6 ms on one core of the CI machine, a fit epoch over it 135 ms. */
#define AF_FINITE_CHUNK ((size_t)1 << 16)
#define AF_FINITE_PAR_MIN ((size_t)1 << 18)

#define AF_DTYPE_F32
#include "finite_impl.h"
#define AF_DTYPE_F64
#include "finite_impl.h"
