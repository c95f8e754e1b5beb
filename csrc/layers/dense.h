/* dense.h: the configuration of a dense layer (dense.c). */
#ifndef AF_LAYER_DENSE_H
#define AF_LAYER_DENSE_H
#include <stdint.h>

typedef struct {
    int64_t units;     /* N */
    int act;           /* af_act */
    double alpha;      /* leaky_relu slope / elu scale (>= 0) */
    int use_bias;
    double l1, l2;     /* kernel penalties */
} af_dense_cfg;

#endif
