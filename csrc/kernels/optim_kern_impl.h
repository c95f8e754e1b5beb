/* optim_kern_impl.h: the optimiser block kernels for one dtype and one instruction set
 * (included by optim_impl.h once per ISA, see there): AF_KN(name) gives the ISA-suffixed name,
 * AF_KATTR the function attribute (empty or a GCC/Clang target attribute). */

/* SGD without momentum:  g' = g + wd p;  p = decay p - lr g' */
AF_KATTR static void AF_KN(k_sgd)(size_t n, T *restrict p, const T *restrict g, const AF_FN(opt_consts) *c)
{
    const T lr = c->lr, wd = c->wd, decay = c->decay;
    for (size_t i = 0; i < n; i++) {
        T gi = g[i] + wd * p[i];
        p[i] = p[i] * decay - lr * gi;
    }
}

/* SGD with momentum (dampening 0):  v = mom v + g';  p = decay p - lr (nesterov ? g' + mom v : v)
 * (torch keeps v = g' at the first step; with v zero-initialised mom*0 + g' is the same value). */
AF_KATTR static void AF_KN(k_sgd_mom)(size_t n, T *restrict p, const T *restrict g, T *restrict v,
                             const AF_FN(opt_consts) *c)
{
    const T lr = c->lr, wd = c->wd, decay = c->decay, mom = c->mom;
    if (c->nesterov) {
        for (size_t i = 0; i < n; i++) {
            T gi = g[i] + wd * p[i];
            T vi = mom * v[i] + gi;
            v[i] = vi;
            p[i] = p[i] * decay - lr * (gi + mom * vi);
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            T gi = g[i] + wd * p[i];
            T vi = mom * v[i] + gi;
            v[i] = vi;
            p[i] = p[i] * decay - lr * vi;
        }
    }
}

/* Adagrad:  G += g'^2;  p = decay p - lr g' / (sqrt(G) + eps)   (G = initial_accumulator at t=1) */
AF_KATTR static void AF_KN(k_adagrad)(size_t n, T *restrict p, const T *restrict g, T *restrict G,
                             const AF_FN(opt_consts) *c)
{
    const T lr = c->lr, wd = c->wd, decay = c->decay, eps = c->eps;
    if (c->first)
        for (size_t i = 0; i < n; i++) G[i] = c->init_acc;
    for (size_t i = 0; i < n; i++) {
        T gi = g[i] + wd * p[i];
        T Gi = G[i] + gi * gi;
        G[i] = Gi;
        p[i] = p[i] * decay - (lr * gi) / (SQRT(Gi) + eps);
    }
}

/* RMSprop:  E = rho E + (1-rho) g'^2;  a = sqrt(E) + eps;
 *           no momentum: p = decay p - lr g'/a;   momentum: b = mom b + g'/a, p = decay p - lr b */
AF_KATTR static void AF_KN(k_rmsprop)(size_t n, T *restrict p, const T *restrict g, T *restrict E,
                             T *restrict b, const AF_FN(opt_consts) *c)
{
    const T lr = c->lr, wd = c->wd, decay = c->decay, eps = c->eps;
    const T rho = c->rho, omr = c->one_m_rho, mom = c->mom;
    if (b) {
        for (size_t i = 0; i < n; i++) {
            T gi = g[i] + wd * p[i];
            T Ei = E[i] * rho + omr * gi * gi;
            E[i] = Ei;
            T bi = b[i] * mom + gi / (SQRT(Ei) + eps);
            b[i] = bi;
            p[i] = p[i] * decay - lr * bi;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            T gi = g[i] + wd * p[i];
            T Ei = E[i] * rho + omr * gi * gi;
            E[i] = Ei;
            p[i] = p[i] * decay - (lr * gi) / (SQRT(Ei) + eps);
        }
    }
}

/* Adadelta:  E = rho E + (1-rho) g'^2;  d = sqrt(D + eps) / sqrt(E + eps) * g';
 *            D = rho D + (1-rho) d^2;  p = decay p - lr d */
AF_KATTR static void AF_KN(k_adadelta)(size_t n, T *restrict p, const T *restrict g, T *restrict E,
                              T *restrict D, const AF_FN(opt_consts) *c)
{
    const T lr = c->lr, wd = c->wd, decay = c->decay, eps = c->eps;
    const T rho = c->rho, omr = c->one_m_rho;
    for (size_t i = 0; i < n; i++) {
        T gi = g[i] + wd * p[i];
        T Ei = E[i] * rho + omr * gi * gi;
        E[i] = Ei;
        T d = SQRT(D[i] + eps) / SQRT(Ei + eps) * gi;
        D[i] = D[i] * rho + omr * d * d;
        p[i] = p[i] * decay - lr * d;
    }
}

/* Adam:  m = m + (1-b1)(g' - m)  [= b1 m + (1-b1) g'];  v = b2 v + (1-b2) g'^2;
 *        p = decay p - (lr / (1-b1^t)) m / (sqrt(v) / sqrt(1-b2^t) + eps)
 * which is p -= lr mhat / (sqrt(vhat) + eps) in torch.optim.Adam's operation order, except that
 * the division by sqrt(1-b2^t) is a multiplication by its reciprocal (one division per element
 * instead of two; differs from torch by at most an ulp). */
AF_KATTR static void AF_KN(k_adam)(size_t n, T *restrict p, const T *restrict g, T *restrict m,
                          T *restrict v, const AF_FN(opt_consts) *c)
{
    const T wd = c->wd, decay = c->decay, eps = c->eps;
    const T omb1 = c->one_m_b1, b2 = c->b2, omb2 = c->one_m_b2;
    const T ss = c->step_size, ibc2s = c->inv_bc2_sqrt;
    for (size_t i = 0; i < n; i++) {
        T gi = g[i] + wd * p[i];
        T mi = m[i] + omb1 * (gi - m[i]);
        T vi = v[i] * b2 + omb2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] * decay - (ss * mi) / (SQRT(vi) * ibc2s + eps);
    }
}

/* One block [lo, lo+len) of the step: af_opt_block_<isa>_<dtype> (optim_kernels.h). */
AF_KATTR static void AF_KN(opt_run)(const AF_FN(opt_consts) *c, size_t len, T *p, const T *g, T *s0,
                                   T *s1)
{
    switch (c->kind) {
    case AF_OPT_SGD:
        if (s0) AF_KN(k_sgd_mom)(len, p, g, s0, c);
        else AF_KN(k_sgd)(len, p, g, c);
        break;
    case AF_OPT_ADAGRAD: AF_KN(k_adagrad)(len, p, g, s0, c); break;
    case AF_OPT_RMSPROP: AF_KN(k_rmsprop)(len, p, g, s0, s1, c); break;
    case AF_OPT_ADADELTA: AF_KN(k_adadelta)(len, p, g, s0, s1, c); break;
    case AF_OPT_ADAM: AF_KN(k_adam)(len, p, g, s0, s1, c); break;
    default: break;
    }
}

/* Elements per piece of a block: the parameters of the next piece are fetched for writing
 * (prefetchw) while this one is updated. Parameters another core has just read (the pieces of a
 * split step, split.h) are then fetched once, owned, instead of read shared and then upgraded by
 * the store, a second round trip per cache line. */
#define AF_OPT_PIECE (1024 / sizeof(T))

AF_KATTR void AF_KN(af_opt_block)(const AF_FN(opt_consts) *c, size_t n, size_t lo, size_t len, T *p,
                                  const T *g, T *state)
{
    T *s0 = c->slots > 0 ? state + lo : NULL;
    T *s1 = c->slots > 1 ? state + n + lo : NULL;
    p += lo;
    g += lo;
    for (size_t j = 0; j < AF_OPT_PIECE && j < len; j += 64 / sizeof(T)) __builtin_prefetch(p + j, 1, 3);
    for (size_t i = 0; i < len; i += AF_OPT_PIECE) {
        size_t m = len - i < AF_OPT_PIECE ? len - i : AF_OPT_PIECE;
        for (size_t j = i + AF_OPT_PIECE; j < i + 2 * AF_OPT_PIECE && j < len; j += 64 / sizeof(T))
            __builtin_prefetch(p + j, 1, 3);
        AF_KN(opt_run)(c, m, p + i, g + i, s0 ? s0 + i : NULL, s1 ? s1 + i : NULL);
    }
}
#undef AF_OPT_PIECE

