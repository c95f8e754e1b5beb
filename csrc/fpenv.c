/* fpenv.c: the calling thread's floating-point control word, for tests that check every entry
 * point leaves it as it found it (fpenv.h). */
#include "annfast.h"
#include "fpenv.h"

unsigned long af_fp_control_get(void) { return (unsigned long)af_fp_get(); }

void af_fp_control_set(unsigned long v) { af_fp_put((af_fpenv)v); }
