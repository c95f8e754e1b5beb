/* Defines T, AF_FN and the math names for one dtype; see dtype.h. */
#include "dtype.h"
#include "vexp.h"
#if defined(AF_DTYPE_F32)
#define T float
#define AF_FN(name) AF_CAT(name, _f32)
#define EXP expf
#define VEXP af_exp_f32 /* vectorisable, ~1 ulp (vexp.h) */
#define VEXP_DEN af_exp_den_f32 /* e^x inside 1 + e^x, under FTZ (vexp.h) */
#define EXPM1 expm1f
#define TANH tanhf
#define ERF erff
#define LOG logf
#define LOG1P log1pf
#define FABS fabsf
#define SQRT sqrtf
#define AF_T_MAX 3.4028234663852886e38f
#elif defined(AF_DTYPE_F64)
#define T double
#define AF_FN(name) AF_CAT(name, _f64)
#define EXP exp
#define VEXP af_exp_f64
#define VEXP_DEN af_exp_den_f64
#define EXPM1 expm1
#define TANH tanh
#define ERF erf
#define LOG log
#define LOG1P log1p
#define FABS fabs
#define SQRT sqrt
#define AF_T_MAX 1.7976931348623157e308
#else
#error "define AF_DTYPE_F32 or AF_DTYPE_F64 before including dtype_begin.h"
#endif
