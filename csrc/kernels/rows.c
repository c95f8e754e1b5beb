/* rows.c: the row-kernel table of the selected ISA (rows.h). */
#include "rows.h"

#define ROWS_PICK(SUF)                                                                             \
    const af_rows_##SUF *af_rows_pick_##SUF(void)                                                  \
    {                                                                                              \
        switch (af_get_isa()) {                                     \
        case AF_ISA_AVX512: return &af_rows_avx512_##SUF;                                          \
        case AF_ISA_AVX2: return &af_rows_avx2_##SUF;                                              \
        default: return &af_rows_generic_##SUF;                                                    \
        }                                                                                          \
    }
#if AF_ROWS_X86
ROWS_PICK(f32)
ROWS_PICK(f64)
#else
const af_rows_f32 *af_rows_pick_f32(void) { return &af_rows_generic_f32; }
const af_rows_f64 *af_rows_pick_f64(void) { return &af_rows_generic_f64; }
#endif
