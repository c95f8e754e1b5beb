/* batchnorm.c: batch normalisation forward (training and inference) and backward, float and
 * double from batchnorm_impl.h (see dtype.h and norm.h for the formulas).
 *
 * Threads split the features into fixed blocks of AF_BN_COLS columns; each block's sums run
 * over the rows in order with one accumulator per column, so results never depend on the thread
 * count. Inner loops run along a row's columns (contiguous), which the compiler vectorises. */
#include "annfast.h"
#include "internal.h"
#include "fpenv.h"
#include "isa_ctx.h"
#include "norm.h"

#include <math.h>

static af_status bn_check_sizes(size_t m, size_t n)
{
    size_t total;
    return af_mul_size(m, n, &total);
}

static int bn_params_ok(double eps, double momentum)
{
    return isfinite(eps) && eps > 0 && isfinite(momentum) && momentum >= 0 && momentum <= 1;
}

#define AF_DTYPE_F32
#include "batchnorm_impl.h"
#define AF_DTYPE_F64
#include "batchnorm_impl.h"
