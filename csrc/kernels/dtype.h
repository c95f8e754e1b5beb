/* dtype.h: one source for float and double.
 * A kernel file writes its body once in a *_impl.h using T (the element type), AF_FN(name)
 * (the name with the dtype suffix) and the math macros below, then includes it twice:
 *     #define AF_DTYPE_F32
 *     #include "act_impl.h"
 *     #define AF_DTYPE_F64
 *     #include "act_impl.h"
 * Each inclusion of dtype_begin.h / dtype_end.h sets up and clears these macros. */
#ifndef AF_DTYPE_H
#define AF_DTYPE_H
#include <math.h>
#define AF_CAT_(a, b) a##b
#define AF_CAT(a, b) AF_CAT_(a, b)
/* OpenMP only pays off above this many elements per call. */
#define AF_PAR_MIN 32768
#endif
