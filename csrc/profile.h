/* profile.h: time spent per layer kind in the engine's passes (profile.c). Diagnostics for
 * finding where a model's step goes (annfast._core._profile, benchmarks); off by default, when it
 * costs one relaxed load per node call. Internal. */
#ifndef AF_PROFILE_H
#define AF_PROFILE_H
#include <stddef.h>
#include "layer.h"

extern int af_profile_on; /* read without a lock: a stale value only skips or adds one sample */

/* Seconds on a monotonic clock (the passes take two readings around a call when profiling). */
double af_profile_now(void);
/* Add the time since t0 of one forward (backward = 0) or backward call of a node of kind ops. */
void af_profile_add(const af_layer_ops *ops, int backward, double t0);

#endif
