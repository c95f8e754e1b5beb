/* rnn_cell_kern_impl.h: the fused step kernels of rnn_cell.h for ONE (ISA, dtype) pair, included
 * by rnn_cell_generic.c / rnn_cell_avx2.c / rnn_cell_avx512.c (which set the compile target and
 * AF_RNN_ISA). Each row is one straight-line loop over the H units that the compiler vectorises
 * (exp through vexp.h); the common activations (tanh with a sigmoid recurrent activation) and
 * the masked / unmasked cases are separate instantiations, so the activation switch folds away. */
#include "dtype_begin.h"
#define KN(name) AF_FN(AF_CAT(AF_CAT(name, _), AF_RNN_ISA))
#define STEP AF_FN(af_rnn_step)
#define INL static inline __attribute__((always_inline))
/* The row loops read and write disjoint rows (gate blocks, states, outputs): no dependence
 * between iterations, which GCC cannot prove for this many pointers (it gives up on run-time
 * alias checks past 10). */
#if defined(__clang__)
#define AF_RNN_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#define AF_RNN_IVDEP _Pragma("GCC ivdep")
#else
#define AF_RNN_IVDEP
#endif

/* tanh(x) = 1 - 2 / (1 + e^{2x}): exactly +-1 in the limits, NaN in gives NaN. Near 0 the
 * subtraction cancels, so |x| < 1/8 takes the odd Taylor series (its first omitted term is below
 * 4e-16 of the result there). e^x here and in the sigmoid is VEXP_DEN (vexp.h): in 1 + e^x under
 * annfast's flush-to-zero the same bits as VEXP, with a third fewer operations (batch-1 LSTM
 * predict: 55.8 -> 55.0 us with avx512, 68.1 -> 67.2 us with avx2). */
INL T KN(rnn_tanh)(T x)
{
    T big = (T)1 - (T)2 / ((T)1 + VEXP_DEN((T)2 * x));
    T x2 = x * x;
#if defined(AF_DTYPE_F64)
    T p = (T)21844.0 / (T)6081075.0;
    p = p * x2 - (T)1382.0 / (T)155925.0;
    p = p * x2 + (T)62.0 / (T)2835.0;
    p = p * x2 - (T)17.0 / (T)315.0;
#else
    T p = (T)-17.0 / (T)315.0;
#endif
    p = p * x2 + (T)2.0 / (T)15.0;
    p = p * x2 - (T)1.0 / (T)3.0;
    T small = x + x * (x2 * p);
    return FABS(x) < (T)0.125 ? small : big;
}

/* f(x) for the activations a cell accepts (af_rnn_act_ok); relu keeps NaN. */
INL T KN(rnn_act)(int a, T x)
{
    switch (a) {
    case AF_ACT_SIGMOID: return (T)1 / ((T)1 + VEXP_DEN(-x));
    case AF_ACT_TANH: return KN(rnn_tanh)(x);
    case AF_ACT_RELU: return x < 0 ? (T)0 : x;
    default: return x;
    }
}

/* f'(x) from y = f(x). */
INL T KN(rnn_dact)(int a, T y)
{
    switch (a) {
    case AF_ACT_SIGMOID: return y * ((T)1 - y);
    case AF_ACT_TANH: return (T)1 - y * y;
    case AF_ACT_RELU: return y > 0 ? (T)1 : (T)0;
    default: return (T)1;
    }
}

/* keep = 1 where the row's mask is nonzero (and when there is no mask). */
INL T KN(rnn_keep)(const STEP *s, size_t r, int masked)
{
    return masked ? (s->mask[r * s->ld_mask] != 0 ? (T)1 : (T)0) : (T)1;
}

/* ---- forward --------------------------------------------------------------------------------
 * state(t) = keep new + (1 - keep) state(t-1);  y_t = keep h_new (exact for keep in {0, 1}). */

/* simple: h = act(a) */
INL void KN(simple_fwd)(const STEP *s, int act, int ract, int masked)
{
    const size_t H = s->units;
    (void)ract;
    for (size_t r = 0; r < s->rows; r++) {
        T *restrict a = s->gate + r * s->ld_gate;
        const T *restrict q = s->rec + r * s->ld_rec, *restrict hp = s->hp + r * s->ld_hp;
        const T *restrict bb = s->bias;
        T *restrict h = s->h + r * s->ld_h, *restrict y = s->y + r * s->ld_y;
        const T keep = KN(rnn_keep)(s, r, masked), skip = (T)1 - keep;
        AF_RNN_IVDEP
        for (size_t j = 0; j < H; j++) {
            T hn = KN(rnn_act)(act, a[j] + q[j] + bb[j]);
            a[j] = hn;
            h[j] = masked ? keep * hn + skip * hp[j] : hn;
            y[j] = masked ? keep * hn : hn;
        }
    }
}

/* lstm: i, f, g, o;  c = f c_{t-1} + i g;  h = o act(c) */
INL void KN(lstm_fwd)(const STEP *s, int act, int ract, int masked)
{
    const size_t H = s->units, S = s->stride, RS = s->rec_stride;
    for (size_t r = 0; r < s->rows; r++) {
        T *a = s->gate + r * s->ld_gate;
        const T *q = s->rec + r * s->ld_rec;
        /* one restrict pointer per gate block: the blocks never overlap */
        T *restrict ai = a, *restrict af = a + S, *restrict ag = a + 2 * S, *restrict ao = a + 3 * S;
        const T *restrict qi = q, *restrict qf = q + RS, *restrict qg = q + 2 * RS, *restrict qo = q + 3 * RS;
        const T *restrict bi = s->bias, *restrict bf = bi + S, *restrict bg = bi + 2 * S, *restrict bo = bi + 3 * S;
        const T *restrict hp = s->hp + r * s->ld_hp, *restrict cp = s->cp + r * s->ld_cp;
        T *restrict h = s->h + r * s->ld_h, *restrict c = s->c + r * s->ld_c;
        T *restrict y = s->y + r * s->ld_y;
        const T keep = KN(rnn_keep)(s, r, masked), skip = (T)1 - keep;
        AF_RNN_IVDEP
        for (size_t j = 0; j < H; j++) {
            T i = KN(rnn_act)(ract, ai[j] + qi[j] + bi[j]);
            T f = KN(rnn_act)(ract, af[j] + qf[j] + bf[j]);
            T g = KN(rnn_act)(act, ag[j] + qg[j] + bg[j]);
            T o = KN(rnn_act)(ract, ao[j] + qo[j] + bo[j]);
            T cn = f * cp[j] + i * g;
            T hn = o * KN(rnn_act)(act, cn);
            ai[j] = i;
            af[j] = f;
            ag[j] = g;
            ao[j] = o;
            c[j] = masked ? keep * cn + skip * cp[j] : cn;
            h[j] = masked ? keep * hn + skip * hp[j] : hn;
            y[j] = masked ? keep * hn : hn;
        }
    }
}

/* gru: r, z;  n = act(a_n + r (h U_n + b_hn));  h = (1 - z) n + z h_{t-1} */
INL void KN(gru_fwd)(const STEP *s, int act, int ract, int masked)
{
    const size_t H = s->units, S = s->stride, RS = s->rec_stride;
    for (size_t r = 0; r < s->rows; r++) {
        T *a = s->gate + r * s->ld_gate;
        const T *q = s->rec + r * s->ld_rec;
        T *restrict ar = a, *restrict az = a + S, *restrict an = a + 2 * S;
        const T *restrict qr = q, *restrict qz = q + RS, *restrict qnp = q + 2 * RS;
        const T *restrict br = s->bias, *restrict bz = br + S, *restrict bn = br + 2 * S;
        const T *restrict bqn = s->bias_rn;
        T *restrict rn = s->rn + r * s->ld_rn;
        const T *restrict hp = s->hp + r * s->ld_hp;
        T *restrict h = s->h + r * s->ld_h, *restrict y = s->y + r * s->ld_y;
        const T keep = KN(rnn_keep)(s, r, masked), skip = (T)1 - keep;
        AF_RNN_IVDEP
        for (size_t j = 0; j < H; j++) {
            T rr = KN(rnn_act)(ract, ar[j] + qr[j] + br[j]);
            T z = KN(rnn_act)(ract, az[j] + qz[j] + bz[j]);
            T qn = qnp[j] + bqn[j];
            T n = KN(rnn_act)(act, an[j] + bn[j] + rr * qn);
            T hn = ((T)1 - z) * n + z * hp[j];
            ar[j] = rr;
            az[j] = z;
            an[j] = n;
            rn[j] = qn;
            h[j] = masked ? keep * hn + skip * hp[j] : hn;
            y[j] = masked ? keep * hn : hn;
        }
    }
}

/* ---- backward -------------------------------------------------------------------------------
 * With gh = dL/dh_t from later steps and gy = gy_scale dL/dy_t:  dL/dh_new = keep (gh + gy);
 * a skipped step carries its state, so (1 - keep) gh (and (1 - keep) dL/dc_t) pass straight on
 * (its output is the constant 0: gy goes nowhere). */

/* simple: d a = dL/dh_new act'(h) */
INL void KN(simple_bwd)(const STEP *s, int act, int ract, int masked)
{
    const size_t H = s->units, S = s->stride;
    (void)ract;
    for (size_t r = 0; r < s->rows; r++) {
        T *restrict a = s->gate + r * s->ld_gate, *restrict gh = s->gh + r * S;
        const T *restrict gy = s->gy + r * s->ld_gy;
        const T keep = KN(rnn_keep)(s, r, masked), skip = (T)1 - keep, sc = s->gy_scale;
        AF_RNN_IVDEP
        for (size_t j = 0; j < H; j++) {
            T g = gh[j], dh = masked ? keep * (g + sc * gy[j]) : g + sc * gy[j];
            a[j] = dh * KN(rnn_dact)(act, a[j]);
            gh[j] = masked ? skip * g : (T)0;
        }
    }
}

/* lstm:  dc = dL/dc_t + dh o act'(c);  d a_o = dh act(c) ract'(o);  d a_i = dc g ract'(i);
 *        d a_f = dc c_{t-1} ract'(f);  d a_g = dc i act'(g);  dL/dc_{t-1} = dc f */
INL void KN(lstm_bwd)(const STEP *s, int act, int ract, int masked)
{
    const size_t H = s->units, S = s->stride;
    for (size_t r = 0; r < s->rows; r++) {
        T *a = s->gate + r * s->ld_gate;
        T *restrict ai = a, *restrict af = a + S, *restrict ag = a + 2 * S, *restrict ao = a + 3 * S;
        T *restrict gh = s->gh + r * S, *restrict gc = s->gc + r * S;
        const T *restrict c = s->c + r * s->ld_c, *restrict cp = s->cp + r * s->ld_cp;
        const T *restrict gy = s->gy + r * s->ld_gy;
        const T keep = KN(rnn_keep)(s, r, masked), skip = (T)1 - keep, sc = s->gy_scale;
        AF_RNN_IVDEP
        for (size_t j = 0; j < H; j++) {
            T i = ai[j], f = af[j], g = ag[j], o = ao[j];
            T ghj = gh[j], gcj = gc[j];
            T dh = masked ? keep * (ghj + sc * gy[j]) : ghj + sc * gy[j];
            T tc = KN(rnn_act)(act, c[j]);
            T dc = (masked ? keep * gcj : gcj) + dh * o * KN(rnn_dact)(act, tc);
            ai[j] = dc * g * KN(rnn_dact)(ract, i);
            af[j] = dc * cp[j] * KN(rnn_dact)(ract, f);
            ag[j] = dc * i * KN(rnn_dact)(act, g);
            ao[j] = dh * tc * KN(rnn_dact)(ract, o);
            gc[j] = masked ? dc * f + skip * gcj : dc * f;
            gh[j] = masked ? skip * ghj : (T)0;
        }
    }
}

/* gru:  dn = dh (1 - z);  dz = dh (h_{t-1} - n);  d a_n = dn act'(n);
 *       d(h U_n + b_hn) = d a_n r;  d a_r = d a_n (h U_n + b_hn) ract'(r);  d a_z = dz ract'(z);
 *       direct dL/dh_{t-1} = dh z */
INL void KN(gru_bwd)(const STEP *s, int act, int ract, int masked)
{
    const size_t H = s->units, S = s->stride, RS = s->rec_stride;
    for (size_t r = 0; r < s->rows; r++) {
        T *a = s->gate + r * s->ld_gate, *q = s->rec + r * s->ld_rec;
        T *restrict ar = a, *restrict az = a + S, *restrict an = a + 2 * S;
        T *restrict qr = q, *restrict qz = q + RS, *restrict qnp = q + 2 * RS;
        T *restrict rn = s->rn + r * s->ld_rn, *restrict gh = s->gh + r * S;
        const T *restrict hp = s->hp + r * s->ld_hp, *restrict gy = s->gy + r * s->ld_gy;
        const T keep = KN(rnn_keep)(s, r, masked), skip = (T)1 - keep, sc = s->gy_scale;
        AF_RNN_IVDEP
        for (size_t j = 0; j < H; j++) {
            T rr = ar[j], z = az[j], n = an[j], qn = rn[j];
            T ghj = gh[j];
            T dh = masked ? keep * (ghj + sc * gy[j]) : ghj + sc * gy[j];
            T dan = dh * ((T)1 - z) * KN(rnn_dact)(act, n);
            T dar = dan * qn * KN(rnn_dact)(ract, rr);
            T daz = dh * (hp[j] - n) * KN(rnn_dact)(ract, z);
            T dqn = dan * rr;
            ar[j] = dar;
            az[j] = daz;
            an[j] = dan;
            rn[j] = dqn;
            qr[j] = dar;
            qz[j] = daz;
            qnp[j] = dqn;
            gh[j] = masked ? dh * z + skip * ghj : dh * z;
        }
    }
}

/* The instantiations: (tanh, sigmoid) with constants, any other pair through the switch; each
 * with and without a mask. A simple cell has no recurrent activation. */
#define AF_RNN_VARIANTS(fn, simple)                                                                \
    do {                                                                                           \
        const int std_ = s->act == AF_ACT_TANH && (simple || s->rec_act == AF_ACT_SIGMOID);       \
        const int ra_ = simple ? AF_ACT_SIGMOID : s->rec_act;                                     \
        if (std_ && s->mask) fn(s, AF_ACT_TANH, AF_ACT_SIGMOID, 1);                                \
        else if (std_) fn(s, AF_ACT_TANH, AF_ACT_SIGMOID, 0);                                      \
        else if (s->mask) fn(s, s->act, ra_, 1);                                                   \
        else fn(s, s->act, ra_, 0);                                                                \
    } while (0)

void KN(af_rnn_fwd)(int cell, const STEP *s)
{
    switch (cell) {
    case AF_RNN_LSTM: AF_RNN_VARIANTS(KN(lstm_fwd), 0); break;
    case AF_RNN_GRU: AF_RNN_VARIANTS(KN(gru_fwd), 0); break;
    default: AF_RNN_VARIANTS(KN(simple_fwd), 1); break;
    }
}

void KN(af_rnn_bwd)(int cell, const STEP *s)
{
    switch (cell) {
    case AF_RNN_LSTM: AF_RNN_VARIANTS(KN(lstm_bwd), 0); break;
    case AF_RNN_GRU: AF_RNN_VARIANTS(KN(gru_bwd), 0); break;
    default: AF_RNN_VARIANTS(KN(simple_bwd), 1); break;
    }
}

#undef AF_RNN_VARIANTS
#undef INL
#undef AF_RNN_IVDEP
#undef STEP
#undef KN
#include "dtype_end.h"
