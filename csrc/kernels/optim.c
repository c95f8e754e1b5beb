/* optim.c: fused optimiser updates over a flat parameter vector, gradient clipping by value and
 * by global norm. float and double come from optim_impl.h (see dtype.h); this file holds the
 * dtype-free parts: state slot counts and hyperparameter validation.
 *
 * The formulas (see annfast.h) follow torch.optim: SGD (momentum, dampening 0, nesterov),
 * Adagrad (initial_accumulator_value, eps outside the sqrt), RMSprop (alpha = rho, eps outside the
 * sqrt, optional momentum buffer), Adadelta (rho, eps inside both sqrts, lr), Adam (bias-corrected)
 * and decoupled weight decay (AdamW: p *= 1 - lr wd before the update). Every update is
 * elementwise, so the parallel split cannot change a result. */
/* The adaptive optimisers' loops vectorise only with -fno-math-errno (setup.py sets it): with errno
 * semantics every sqrt carries a branch. Here sqrt only ever sees values >= 0. */
#include "annfast.h"
#include "optim.h"
#include "internal.h"
#include "optim_kernels.h"
#include "isa_ctx.h"
#include "fpenv.h"
#include "pool.h"

#include <float.h>
#include <math.h>

int af_optim_state_slots(af_opt_kind kind)
{
    switch (kind) {
    case AF_OPT_SGD: return 1;      /* momentum buffer v (unused without momentum) */
    case AF_OPT_ADAGRAD: return 1;  /* sum of squared gradients G */
    case AF_OPT_RMSPROP: return 2;  /* mean square E, momentum buffer (unused without momentum) */
    case AF_OPT_ADADELTA: return 2; /* mean square gradient E, mean square update D */
    case AF_OPT_ADAM: return 2;     /* first moment m, second moment v */
    default: return -1;
    }
}

int af_optim_slots_used(const af_optim *o)
{
    if (!o) return -1;
    switch (o->kind) {
    case AF_OPT_SGD: return o->momentum > 0 ? 1 : 0;
    case AF_OPT_RMSPROP: return o->momentum > 0 ? 2 : 1;
    default: return af_optim_state_slots(o->kind);
    }
}

static int finite_in(double x, double lo, double hi, int hi_open)
{
    if (!isfinite(x) || x < lo) return 0;
    return hi_open ? x < hi : x <= hi;
}

af_status af_optim_check(const af_optim *o)
{
    if (!o) return AF_EINVAL;
    if ((unsigned)o->kind >= AF_OPT_COUNT) return AF_EINVAL;
    /* common: lr >= 0, weight_decay >= 0, finite; flags are 0 or 1 */
    if (!finite_in(o->lr, 0.0, HUGE_VAL, 0)) return AF_EINVAL;
    if (!finite_in(o->weight_decay, 0.0, HUGE_VAL, 0)) return AF_EINVAL;
    if (o->decoupled_wd != 0 && o->decoupled_wd != 1) return AF_EINVAL;
    if (o->nesterov != 0 && o->nesterov != 1) return AF_EINVAL;
    if (o->nesterov && (o->kind != AF_OPT_SGD || !(o->momentum > 0))) return AF_EINVAL;
    switch (o->kind) {
    case AF_OPT_SGD:
        if (!finite_in(o->momentum, 0.0, 1.0, 1)) return AF_EINVAL;
        break;
    case AF_OPT_ADAGRAD:
        if (!finite_in(o->initial_accumulator, 0.0, HUGE_VAL, 0)) return AF_EINVAL;
        if (!(isfinite(o->eps) && o->eps > 0)) return AF_EINVAL;
        break;
    case AF_OPT_RMSPROP:
        if (!finite_in(o->momentum, 0.0, 1.0, 1)) return AF_EINVAL;
        if (!finite_in(o->rho, 0.0, 1.0, 1)) return AF_EINVAL;
        if (!(isfinite(o->eps) && o->eps > 0)) return AF_EINVAL;
        break;
    case AF_OPT_ADADELTA:
        if (!finite_in(o->rho, 0.0, 1.0, 1)) return AF_EINVAL;
        if (!(isfinite(o->eps) && o->eps > 0)) return AF_EINVAL;
        break;
    case AF_OPT_ADAM:
        if (!finite_in(o->beta1, 0.0, 1.0, 1) || !finite_in(o->beta2, 0.0, 1.0, 1)) return AF_EINVAL;
        if (!(isfinite(o->eps) && o->eps > 0)) return AF_EINVAL;
        break;
    default: return AF_EINVAL;
    }
    return AF_OK;
}

/* Chunk plan for the global norm: it depends on n only, never on the thread count. Chunks are
 * multiples of AF_NORM_CHUNK elements, at most AF_NORM_MAXPART of them, so the partial sums fit
 * a fixed stack array (no malloc). */
size_t af_norm_chunk_size(size_t n)
{
    size_t per = (n + AF_NORM_MAXPART - 1) / AF_NORM_MAXPART;
    size_t c = (per + AF_NORM_CHUNK - 1) / AF_NORM_CHUNK * AF_NORM_CHUNK;
    return c < AF_NORM_CHUNK ? AF_NORM_CHUNK : c;
}

#define AF_DTYPE_F32
#include "optim_impl.h"
#define AF_DTYPE_F64
#include "optim_impl.h"
