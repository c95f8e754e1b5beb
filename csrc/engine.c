/* engine.c: the passes over a planned graph (engine_impl.h) and over split batches
 * (engine_split_impl.h, split.h) for float and double, and the name tables the Python side reads
 * (it keeps no copies). */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "optim.h"
#include "optim_kernels.h"
#include "plan.h"
#include "pool.h"
#include "profile.h"
#include "tune.h"
#include "rng.h"
#include "split.h"

#define AF_DTYPE_F32
#include "engine_impl.h"
#define AF_DTYPE_F64
#include "engine_impl.h"
#define AF_DTYPE_F32
#include "engine_split_impl.h"
#define AF_DTYPE_F64
#include "engine_split_impl.h"

const char *const af_act_names[] = {"linear", "sigmoid", "tanh", "relu", "leaky_relu", "elu",
                                        "selu", "softmax", "gelu", "swish", NULL};
static const char *const loss_names[] = {"mse", "mae", "binary_crossentropy", "categorical_crossentropy",
                                         "sparse_categorical_crossentropy", "hinge", NULL};

const char *af_act_name(size_t i) { return i < AF_ACT_COUNT ? af_act_names[i] : NULL; }
const char *af_loss_name(size_t i) { return i < AF_LOSS_COUNT ? loss_names[i] : NULL; }
