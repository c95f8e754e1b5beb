/* gemm_emu_half.h: the half-vector operations of gemm_skinny_impl.h's row kernel on GCC generic
 * vectors, for the emulated AVX-512 test build (gemm_avx512.c with AF_GEMM_EMULATE_AVX512), in
 * terms of the full type V and the half type VH defined by the includer. No include guard:
 * gemm_skinny_impl.h undefines these macros, so the file is included again for each dtype. */
#define VHZERO() ((VH){0})
#define VHBCAST(p) ((VH){0} + *(p))
#define VHFMA(a, b, c) ((a) * (b) + (c))
#define VHLOW(v) __extension__({ V v_ = (v); VH h_; memcpy(&h_, &v_, sizeof h_); h_; })
#define VHWIDEN(h) __extension__({ VH h_ = (h); V v_ = {0}; memcpy(&v_, &h_, sizeof h_); v_; })
