/* optim.h: toolkit additions beside the optimiser/clipping API of annfast.h (implemented in
 * optim.c). Plain C11, no Python headers. */
#ifndef AF_OPTIM_H
#define AF_OPTIM_H
#include "annfast.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Number of state slots ([slot][n]) this configuration actually touches: plain SGD 0, SGD with
 * momentum 1, RMSprop 1 (2 with momentum), Adagrad 1, Adadelta 2, Adam 2; -1 for NULL or an
 * unknown kind. af_optim_step_* reads only these slots, and accepts state == NULL when it is 0,
 * so callers may allocate slots_used * n instead of af_optim_state_slots(kind) * n. */
int af_optim_slots_used(const af_optim *o);

/* Clip by global L2 norm (Keras global_clipnorm semantics):
 *     norm = ||g||_2 (af_l2_norm_*, fixed chunk order);  if norm > max_norm: g *= max_norm / norm
 * max_norm must be finite and > 0. *norm_out (may be NULL) receives the norm before clipping.
 * A non-finite norm leaves g unchanged and returns AF_ENONFINITE. Bitwise identical for any
 * thread count (the scale is one number; the rescaling is elementwise). */
af_status af_clip_norm_f32(size_t n, float *g, double max_norm, double *norm_out);
af_status af_clip_norm_f64(size_t n, double *g, double max_norm, double *norm_out);

#ifdef __cplusplus
}
#endif
#endif
