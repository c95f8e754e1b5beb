/* gemm_generic_ops.h: the V* vector operations of gemm_kern_impl.h for the portable path, in
 * terms of a type V defined by the includer. No include guard: gemm_kern_impl.h undefines these
 * macros, so gemm_generic.c includes this file again before each dtype. */
#if defined(__GNUC__) || defined(__clang__)
/* GCC/Clang generic vectors: arithmetic is elementwise, a scalar operand is broadcast. */
#define VLOADU(p) __extension__({ V v_; memcpy(&v_, (p), sizeof v_); v_; })
#define VSTOREU(p, v) do { V v_ = (v); memcpy((p), &v_, sizeof v_); } while (0)
#define VZERO() ((V){0})
#define VSET1(x) ((V){0} + (x))
#define VBCAST(p) ((V){0} + *(p))
#else
#define VLOADU(p) (*(p))
#define VSTOREU(p, v) (*(p) = (v))
#define VZERO() 0
#define VSET1(x) (x)
#define VBCAST(p) (*(p))
#endif
#if defined(__GNUC__) || defined(__clang__)
/* x where x > 0 or x is NaN, else +0: clear the lanes where x <= 0 (false for NaN) */
#define VRELU(x) __extension__({ V x_ = (x); __typeof__(x_ <= x_) le_ = x_ <= (V){0}; \
                                 (V)((__typeof__(le_))x_ & ~le_); })
#else
#define VRELU(x) ((x) <= 0 ? 0 : (x))
#endif
#define VADD(a, b) ((a) + (b))
#define VMUL(a, b) ((a) * (b))
#define VFMA(a, b, c) ((a) * (b) + (c))
