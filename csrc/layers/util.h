/* util.h: small helpers the layer files share. */
#ifndef AF_LAYER_UTIL_H
#define AF_LAYER_UTIL_H
#include <string.h>

#include "dtype.h"
#include "internal.h"
#include "layer.h"

/* Activation names, in af_act order (engine.c): the ENUM field of kinds with an activation. */
extern const char *const af_act_names[];

/* Rows of a B-sample tensor of shape s seen as a matrix over its last axis. */
static inline size_t af_rows(const af_shape *s, size_t B) { return B * (af_shape_size(s) / af_shape_last(s)); }

/* 1 if every input holds floats. */
static inline int af_inputs_float(size_t n, const af_shape *in)
{
    for (size_t k = 0; k < n; k++)
        if (in[k].elem != AF_ELEM_FLOAT) return 0;
    return 1;
}

/* 1 if a and b have the same dims. */
static inline int af_same_shape(const af_shape *a, const af_shape *b)
{
    if (a->rank != b->rank) return 0;
    for (int i = 0; i < a->rank; i++)
        if (a->dim[i] != b->dim[i]) return 0;
    return 1;
}

/* An af_layer_ops forward/backward pair for both dtypes from functions named <base>_f32/_f64. */
#define AF_OPS_FN(base) {base##_f32, base##_f64}

#endif
