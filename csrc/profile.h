/* profile.h: time spent per layer kind in the engine's passes (profile.c). Diagnostics for
 * finding where a model's step goes (annfast._core._profile, benchmarks); off by default, when it
 * costs one relaxed load per node call. Internal. */
#ifndef AF_PROFILE_H
#define AF_PROFILE_H
#include <stdatomic.h>
#include <stddef.h>
#include "layer.h"

/* Set under profile.c's mutex, read by the passes without it (a stale value only skips or adds
 * one sample); atomic so the unlocked reads are not a data race. */
extern _Atomic int af_profile_on;

/* Whether profiling is on: one relaxed load (read it once per call and keep the answer). */
static inline int af_profiling(void)
{
    return atomic_load_explicit(&af_profile_on, memory_order_relaxed);
}

/* Seconds on a monotonic clock (the passes take two readings around a call when profiling). */
double af_profile_now(void);
/* Add the time since t0 of one forward (backward = 0) or backward call of a node of kind ops. */
void af_profile_add(const af_layer_ops *ops, int backward, double t0);

#endif
