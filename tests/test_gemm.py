"""GEMM engine (csrc/gemm*.c) and annfast.matmul against numpy.matmul.

Tolerance: a dot product of length k accumulated in dtype T has rounding error at most about
k * eps(T) * sum_p |a_ip| |b_pj| (standard forward error bound, Higham 3.1). The reference is
computed in float64 from the same inputs, so for float64 it carries an error of the same order; we
allow 2 * (k + 2) * eps * (|alpha| |A| @ |B| + |beta| |C|) elementwise (the +2 covers the alpha
scaling and the beta * C addition). These bounds are tight enough to catch any wrong index (errors
of order |A||B| itself) and loose enough for any summation order.
"""
import threading

import numpy as np
import pytest

import annfast
from annfast import _core

try:  # property tests need hypothesis; everything else runs without it
    from hypothesis import given, settings, strategies as st
except ImportError:  # pragma: no cover
    given = None

ALL_ISAS = ["generic", "avx2", "avx512"]
SUPPORTED = _core.build_info()["supported_isas"]
DTYPES = [np.float32, np.float64]


@pytest.fixture(params=ALL_ISAS)
def isa(request):
    """Each ISA path in turn; skipped with a reason when this CPU/build cannot run it."""
    if request.param not in SUPPORTED:
        pytest.skip(f"CPU/build lacks {request.param} (supported: {SUPPORTED})")
    before = annfast.get_isa()  # ANNFAST_ISA's path, or the best one
    annfast.set_isa(request.param)
    yield request.param
    annfast.set_isa(before)


@pytest.fixture
def threads():
    old = annfast.get_num_threads()
    yield
    annfast.set_num_threads(old)


def op(x, t):
    return x.T if t else x


def make(rng, shape, dtype, trans=False):
    """Random operand stored transposed when trans (so op(x) has `shape`)."""
    x = rng.standard_normal(shape[::-1] if trans else shape)
    return x.astype(dtype)


def check(c, a, b, ta, tb, alpha=1.0, beta=0.0, c0=None, dtype=np.float64):
    """Assert c == alpha op(a) op(b) + beta c0 within the k*eps bound from the module doc."""
    A = op(a, ta).astype(np.float64)
    B = op(b, tb).astype(np.float64)
    k = A.shape[1]
    ref = alpha * (A @ B)
    bound = abs(alpha) * (np.abs(A) @ np.abs(B))
    if beta != 0:
        ref = ref + beta * c0.astype(np.float64)
        bound = bound + abs(beta) * np.abs(c0.astype(np.float64))
    eps = np.finfo(dtype).eps
    tol = 2 * (k + 2) * eps * bound + np.finfo(dtype).tiny
    err = np.abs(c.astype(np.float64) - ref)
    assert c.shape == ref.shape
    assert np.all(np.isfinite(c))
    assert np.all(err <= tol), f"max err {err.max()} vs tol {tol[err > tol].min()} at shape {c.shape}"


SIZES = [0, 1, 2, 3, 7, 15, 16, 17, 31, 33, 64, 127]
SHAPES = ([(s, s, s) for s in SIZES] + [(s, 17, 33) for s in SIZES] + [(7, s, 3) for s in SIZES]
          + [(33, 5, s) for s in SIZES] + [(1, 64, 255), (255, 1, 64), (64, 255, 1)]
          + [(1000, 10, 31), (10, 1000, 17), (3, 40, 1000), (600, 2, 2), (2, 600, 1)]
          + [(255, 33, 511), (128, 10, 256), (1, 512, 784), (16, 256, 127), (2, 333, 200),
             (24, 512, 100), (13, 100, 70), (200, 5, 300),
             (784, 512, 1), (100, 67, 1), (9, 64, 1), (9, 63, 1)])  # rank-1 rows, tails
BIG_SHAPES = [(511, 255, 257), (1000, 127, 300), (130, 1000, 255), (70, 2100, 40)]  # n > NC


@pytest.mark.parametrize("dtype", DTYPES)
def test_shapes_all_transposes(isa, dtype):
    rng = np.random.default_rng(1)
    for m, n, k in SHAPES:
        for ta in (False, True):
            for tb in (False, True):
                a = make(rng, (m, k), dtype, ta)
                b = make(rng, (k, n), dtype, tb)
                c = np.full((m, n), np.nan, dtype)  # beta = 0 must never read C
                _core.gemm(ta, tb, 1.0, a, b, 0.0, c)
                check(c, a, b, ta, tb, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_large_shapes(isa, dtype):
    rng = np.random.default_rng(2)
    for (m, n, k), (ta, tb) in zip(BIG_SHAPES, [(False, False), (True, False), (False, True),
                                                (True, True)]):
        a = make(rng, (m, k), dtype, ta)
        b = make(rng, (k, n), dtype, tb)
        c = annfast.matmul(a, b, trans_a=ta, trans_b=tb)
        assert c.dtype == dtype
        check(c, a, b, ta, tb, dtype=dtype)
    # one square 1000 product (crosses KC and MC blocks in every kernel)
    a = make(rng, (1000, 1000), dtype)
    b = make(rng, (1000, 1000), dtype)
    check(annfast.matmul(a, b), a, b, False, False, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n,k", [(5, 6, 7), (130, 70, 300)])
def test_alpha_beta(isa, dtype, m, n, k):
    rng = np.random.default_rng(3)
    for alpha, beta in [(2.0, 0.0), (1.0, 1.0), (-0.5, 0.25), (1.5, -1.0)]:
        for ta, tb in [(False, False), (True, True)]:
            a = make(rng, (m, k), dtype, ta)
            b = make(rng, (k, n), dtype, tb)
            c0 = rng.standard_normal((m, n)).astype(dtype)
            c = c0.copy()
            _core.gemm(ta, tb, alpha, a, b, beta, c)
            check(c, a, b, ta, tb, alpha, beta, c0, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_alpha_zero_and_k_zero(dtype):
    # alpha == 0 or k == 0: C = beta * C, A and B not read (NaN in them must not leak)
    a = np.full((4, 3), np.nan, dtype)
    b = np.full((3, 5), np.nan, dtype)
    c = np.ones((4, 5), dtype)
    _core.gemm(False, False, 0.0, a, b, 3.0, c)
    assert np.all(c == 3)
    c = np.full((4, 5), np.nan, dtype)
    _core.gemm(False, False, 1.0, np.empty((4, 0), dtype), np.empty((0, 5), dtype), 0.0, c)
    assert np.all(c == 0)
    assert annfast.matmul(np.empty((0, 3), dtype), np.empty((3, 2), dtype)).shape == (0, 2)
    assert np.all(annfast.matmul(np.empty((2, 0), dtype), np.empty((0, 2), dtype)) == 0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n,k", [(3, 5, 4), (20, 33, 50), (150, 70, 300)])
def test_strided_views(isa, dtype, m, n, k):
    """Sub-matrix views (row stride > row length) are read and written in place."""
    rng = np.random.default_rng(4)
    for ta, tb in [(False, False), (True, False), (False, True), (True, True)]:
        big_a = make(rng, (m + 7, k + 9), dtype, ta)
        big_b = make(rng, (k + 5, n + 3), dtype, tb)
        a = big_a[2:2 + (k if ta else m), 3:3 + (m if ta else k)]
        b = big_b[1:1 + (n if tb else k), 2:2 + (k if tb else n)]
        big_c = rng.standard_normal((m + 4, n + 6)).astype(dtype)
        keep = big_c.copy()
        c = big_c[1:1 + m, 4:4 + n]
        c0 = c.copy()
        _core.gemm(ta, tb, 1.0, a, b, 0.5, c)
        check(c, a, b, ta, tb, 1.0, 0.5, c0, dtype=dtype)
        mask = np.ones(big_c.shape, bool)
        mask[1:1 + m, 4:4 + n] = False
        assert np.array_equal(big_c[mask], keep[mask])  # nothing outside the view is touched
        # matmul reads the same views without copying and matches numpy
        check(annfast.matmul(a, b, trans_a=ta, trans_b=tb), a, b, ta, tb, dtype=dtype)


def _act_ref(x, name, p):
    if name is None or name == "linear":
        return x
    if name == "sigmoid":
        return 1 / (1 + np.exp(-x))
    if name == "tanh":
        return np.tanh(x)
    if name == "relu":
        return np.maximum(x, 0)
    if name == "leaky_relu":
        return np.where(x > 0, x, p * x)
    if name == "elu":
        return np.where(x > 0, x, p * np.expm1(x))
    if name == "selu":
        a, s = 1.6732632423543772, 1.0507009873554805
        return s * np.where(x > 0, x, a * np.expm1(x))
    raise AssertionError(name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", [None, "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu"])
def test_epilogue(isa, dtype, act):
    """C = act(alpha A B + beta C + bias), on the direct (small) and packed paths."""
    rng = np.random.default_rng(5)
    for m, n, k in [(4, 2, 3), (1, 30, 20), (70, 45, 300)]:
        a = make(rng, (m, k), dtype)
        b = make(rng, (k, n), dtype)
        bias = rng.standard_normal(n).astype(dtype)
        c0 = rng.standard_normal((m, n)).astype(dtype)
        c = c0.copy()
        _core.gemm(False, False, 0.5, a, b, 1.0, c, bias=bias, activation=act, act_param=0.2)
        pre = 0.5 * (a.astype(np.float64) @ b) + c0 + bias
        ref = _act_ref(pre, act, 0.2)
        # activations are 1-Lipschitz-ish (selu: 1.76), so the GEMM bound carries over
        tol = 4 * (k + 3) * np.finfo(dtype).eps * (np.abs(a) @ np.abs(b) + np.abs(c0) + np.abs(bias) + 1)
        assert np.all(np.abs(c - ref) <= tol), act


def test_epilogue_k_zero_and_errors():
    c = np.full((2, 3), np.nan)
    _core.gemm(False, False, 1.0, np.empty((2, 0)), np.empty((0, 3)), 0.0, c,
               bias=np.array([1.0, -2.0, 3.0]), activation="relu")
    assert c.tolist() == [[1.0, 0.0, 3.0]] * 2
    with pytest.raises(ValueError, match="activation"):
        _core.gemm(False, False, 1.0, np.ones((2, 2)), np.ones((2, 2)), 0.0, np.ones((2, 2)),
                   activation="softmax")
    with pytest.raises(ValueError, match="bias"):
        _core.gemm(False, False, 1.0, np.ones((2, 2)), np.ones((2, 2)), 0.0, np.ones((2, 2)),
                   bias=np.ones(3))
    with pytest.raises(ValueError, match="shapes"):
        _core.gemm(False, False, 1.0, np.ones((2, 3)), np.ones((2, 2)), 0.0, np.ones((2, 2)))
    with pytest.raises(TypeError):
        _core.gemm(False, False, 1.0, np.ones((2, 2), np.float32), np.ones((2, 2)), 0.0,
                   np.ones((2, 2)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_bitwise_identical_1_vs_2_threads(isa, dtype, threads):
    rng = np.random.default_rng(6)
    # packed path (all transposes), A read in place (n small), B read in place (m small),
    # row-by-row GEMV (m <= 2): every path the driver picks by shape
    shapes = [(300, 700, 260), (1000, 300, 100), (128, 512, 784), (97, 1001, 513),
              (3000, 10, 300), (20, 1500, 300), (1, 3001, 400), (2, 1000, 777), (13, 700, 300)]
    trans = [(False, False), (True, False), (False, True), (True, True),
             (False, False), (True, False), (False, False), (True, False), (False, True)]
    for (m, n, k), (ta, tb) in zip(shapes, trans):
        a = make(rng, (m, k), dtype, ta)
        b = make(rng, (k, n), dtype, tb)
        bias = rng.standard_normal(n).astype(dtype)
        out = []
        for t in (1, 2):
            annfast.set_num_threads(t)
            c = np.full((m, n), np.nan, dtype)
            _core.gemm(ta, tb, 1.0, a, b, 0.0, c, bias=bias, activation="tanh")
            out.append(c)
        assert np.array_equal(out[0], out[1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_rows_path_split_from_bytes_streamed(dtype, threads):
    """The rows path (one or two rows of C, or a rank-1 update) is bound by the bandwidth of the
    core streaming its operand, not by its FMAs: it is split between threads from 512 KB streamed
    (AF_GEMM_ROWS_PAR_MIN_BYTES in gemm.c: B once for rows computed together, else once a row),
    far below the packed path's 2 million multiply-adds, and gives the same bits on 1 and 2
    threads."""
    rng = np.random.default_rng(21)
    item = np.dtype(dtype).itemsize
    # (m, n, k, ta, tb): GEMV, GEMV over B^T, two rows, rank-1 update; each product < 2e6 MACs
    big = [(1, 512, 784, False, False), (1, 784, 512, False, True), (2, 512, 300, True, False),
           (784, 512, 1, False, False)]
    small = [(1, 256, 128, False, False), (1, 128, 256, False, True), (200, 300, 1, False, False)]
    for m, n, k, ta, tb in big + small:
        assert m * n * k < 2e6
        a, b = make(rng, (m, k), dtype, ta), make(rng, (k, n), dtype, tb)
        out, split = [], 0
        for t in (1, 2):
            annfast.set_num_threads(t)
            c = np.full((m, n), np.nan, dtype)
            before = _core._pool_stats()
            _core.gemm(ta, tb, 1.0, a, b, 0.0, c)
            after = _core._pool_stats()
            # a job the pool ran alone because the machine looked crowded counts as planned split
            split = sum(after[key] - before[key] for key in ("parallel", "crowded"))
            out.append(c)
        assert np.array_equal(out[0], out[1]), (m, n, k)
        check(out[0], a, b, ta, tb, dtype=dtype)
        together = not tb and k >= 2 and (m > 2 or (m == 2 and n * item < 4096))  # ldb = n
        streamed = (1 if together else m) * n * k * item
        assert (split > 0) == (streamed >= 512 * 1024), (m, n, k, split)


@pytest.mark.parametrize("dtype", DTYPES)
def test_few_rows_together_same_bits_as_each_row_alone(isa, dtype, threads):
    """C = A B with 2 to 8 rows (a small batch's layer) runs its rows together on the rows path
    (gemv_multi: each vector of B loaded once for up to 4 rows): every row gets the bits of the
    same row computed alone (the single-row GEMV), for groups of 4, 2 and 1 rows, both layouts of
    A, panels of every width and the tail columns, alpha/beta and the epilogue; on 1 and 2
    threads; and agrees with a float64 reference."""
    rng = np.random.default_rng(23)
    eps = np.finfo(dtype).eps
    for m in (2, 3, 4, 5, 7, 8):
        for k, n, ta in ((2, 70, False), (17, 300, True), (64, 1000, False), (300, 257, True),
                         (784, 512, False), (130, 2047, False)):
            a = make(rng, (m, k), dtype, ta)
            b = make(rng, (k, n), dtype)
            bias = rng.standard_normal(n).astype(dtype)
            for alpha, beta, act in ((1.0, 0.0, None), (-0.5, 2.0, "tanh")):
                c0 = rng.standard_normal((m, n)).astype(dtype)
                ep = {"bias": bias, "activation": act} if act else {}
                outs = []
                for t in (1, 2):
                    annfast.set_num_threads(t)
                    c = c0.copy() if beta else np.full((m, n), np.nan, dtype)
                    _core.gemm(ta, False, alpha, a, b, beta, c, **ep)
                    outs.append(c)
                assert np.array_equal(outs[0], outs[1]), (m, k, n)
                for i in range(m):
                    ci = c0[i:i + 1].copy() if beta else np.full((1, n), np.nan, dtype)
                    ai = np.ascontiguousarray(a[i:i + 1]) if not ta else np.ascontiguousarray(a[:, i:i + 1])
                    _core.gemm(ta, False, alpha, ai, b, beta, ci, **ep)
                    assert np.array_equal(outs[0][i], ci[0]), (m, k, n, i)
                ref = alpha * (a.astype(np.float64).T if ta else a.astype(np.float64)) @ b.astype(np.float64)
                ref = ref + beta * c0.astype(np.float64) if beta else ref
                if act:
                    ref = np.tanh(ref + bias)
                # rounding bound of a k-term dot product, alpha, beta and the bias: (k + 3) eps
                # times the sum of the magnitudes (tanh only shrinks differences)
                absa = np.abs(a.astype(np.float64).T if ta else a.astype(np.float64))
                tol = (k + 3) * eps * (abs(alpha) * (absa @ np.abs(b.astype(np.float64))).max()
                                       + abs(beta) * np.abs(c0).max() + np.abs(bias).max())
                assert np.abs(outs[0] - ref).max() <= tol, (m, k, n)


@pytest.mark.parametrize("dtype", DTYPES)
def test_small_batch_k_split(isa, dtype, threads):
    """C = A B with fewer than 32 rows and K over more than one K block sums K in two halves, one
    per thread (gemm_impl.h: gemm_packed_ksplit), then adds them and applies the epilogue: the same
    bits on 1 and 2 threads, within the k*eps bound of the reference, with alpha, beta, bias and
    an activation; with the weight gradient's row split it keeps the forward's halves of W. Shapes:
    halves of unequal length after rounding to MR (k = 500 on AVX2: 252 + 248), a partial last
    panel of B, m below MR, more than two K blocks per half."""
    rng = np.random.default_rng(11)
    for m, n, k in [(16, 512, 784), (5, 13, 500), (5, 40, 500), (31, 33, 193), (3, 70, 2000),
                    (20, 64, 300)]:
        a = make(rng, (m, k), dtype)
        b = make(rng, (k, n), dtype)
        bias = rng.standard_normal(n).astype(dtype)
        c0 = rng.standard_normal((m, n)).astype(dtype)
        out = []
        for t in (1, 2):
            annfast.set_num_threads(t)
            c = c0.copy()
            _core.gemm(False, False, 0.5, a, b, -1.5, c, bias=bias, activation="tanh")
            out.append(c)
            plain = c0.copy()
            _core.gemm(False, False, 0.5, a, b, -1.5, plain)
            check(plain, a, b, False, False, alpha=0.5, beta=-1.5, c0=c0, dtype=dtype)
        assert np.array_equal(out[0], out[1]), (m, n, k)
        ref = np.tanh(0.5 * (a.astype(np.float64) @ b) - 1.5 * c0 + bias)
        tol = 4 * (k + 3) * np.finfo(dtype).eps * (np.abs(a) @ np.abs(b) + np.abs(c0) + np.abs(bias) + 1)
        assert np.all(np.abs(out[0] - ref) <= tol), (m, n, k)
        # the same batch's weight update W += -0.1 A^T D (C = W, k x n) splits C's rows instead
        # of its columns: same bits too
        d = make(rng, (m, n), dtype)
        w0 = rng.standard_normal((k, n)).astype(dtype)
        grads = []
        for t in (1, 2):
            annfast.set_num_threads(t)
            w = w0.copy()
            _core.gemm(True, False, -0.1, a, d, 1.0, w)
            grads.append(w)
        assert np.array_equal(grads[0], grads[1]), (m, n, k)
        check(grads[0], a, d, True, False, alpha=-0.1, beta=1.0, c0=w0, dtype=dtype)


# Packing shapes (m, n, k, trans_a, trans_b). AVX-512 packs B^T with 16 x 16 float / 8 x 8 double
# register transposes and A (not transposed) 12 rows x 16 / 8 columns at a time; these shapes put
# every case of that code on the packed path: k a multiple of the block and not (tail columns
# finished by one overlapping block), K blocks of 128 / 157 / 171 columns (k = 256 / 784 / 512),
# kc shorter than a block, full and partial NR panels (partial ones with and without a whole
# group of 16 / 8 rows), m a multiple of 12 and not, m past MC (two A blocks).
PACK_SHAPES = [(16, 512, 256, False, True),   # dX = dZ W^T at batch 16
               (24, 512, 256, False, True),
               (130, 500, 131, False, True),
               (37, 47, 512, False, True),
               (50, 100, 20, False, True),
               (50, 100, 9, False, True),
               (40, 130, 70, True, True),
               (96, 200, 784, False, False),  # forward product, K blocks of 157
               (100, 130, 200, False, False),
               (500, 70, 35, False, False),
               (12, 65, 16, False, False),
               (60, 300, 33, False, True)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nthreads", [1, 2])
def test_packing_blocks_and_tails(isa, dtype, nthreads, threads):
    """Packed products on 1 and 2 threads, operands contiguous and as views with padded rows."""
    annfast.set_num_threads(nthreads)
    rng = np.random.default_rng(12)
    for m, n, k, ta, tb in PACK_SHAPES:
        for pad in (0, 5):
            ash, bsh = ((k, m) if ta else (m, k)), ((n, k) if tb else (k, n))
            a = make(rng, (ash[0], ash[1] + pad), dtype)[:, :ash[1]]
            b = make(rng, (bsh[0], bsh[1] + pad), dtype)[:, :bsh[1]]
            c = np.full((m, n), np.nan, dtype)
            _core.gemm(ta, tb, 1.0, a, b, 0.0, c)
            check(c, a, b, ta, tb, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rank1_updates_with_beta(isa, dtype):
    """k == 1 with B not transposed runs row by row (batch-1 weight updates, W += -lr x^T d):
    alpha and beta applied as everywhere else, the tail columns included."""
    rng = np.random.default_rng(9)
    for m, n in [(784, 512), (100, 67), (5, 71)]:
        for ta in (False, True):
            a = make(rng, (m, 1), dtype, ta)
            b = make(rng, (1, n), dtype, False)
            for alpha, beta in [(-0.01, 1.0), (2.0, 0.5), (1.0, 0.0)]:
                c0 = rng.standard_normal((m, n)).astype(dtype)
                c = c0.copy()
                _core.gemm(ta, False, alpha, a, b, beta, c)
                check(c, a, b, ta, False, alpha=alpha, beta=beta, c0=c0, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rows_times_b_transposed(isa, dtype, threads):
    """One or two rows of C = A B^T (batch-1 input gradients dx = dz W^T) run as vector dot
    products with the rows of B: every k around the vector widths (two 16-lane chunks on AVX-512,
    then the scalar tail), groups of 4 rows of B and the remainder, padded rows of B, alpha/beta,
    the epilogue; a row of C gives the same bits alone or in a group, and for 1 or 2 threads."""
    rng = np.random.default_rng(12)
    for m in (1, 2):
        for k in (1, 5, 8, 15, 16, 31, 32, 33, 64, 65, 256, 1001):
            for n in (50, 70, 513):  # n - 1 > 48: never the skinny path (test_gemm_skinny.py)
                a = make(rng, (m, k), dtype)
                bpad = rng.standard_normal((n, k + 3)).astype(dtype)
                b = bpad[:, :k]                          # B^T as a strided view: ldb = k + 3
                for alpha, beta in [(1.0, 0.0), (-0.5, 2.0)]:
                    c0 = rng.standard_normal((m, n)).astype(dtype)
                    c = c0.copy() if beta else np.full((m, n), np.nan, dtype)
                    _core.gemm(False, True, alpha, a, b, beta, c)
                    check(c, a, b, False, True, alpha, beta, c0, dtype=dtype)
                if m * (n - 1) * k > 4096:  # both products below take this path (not the direct loop)
                    # a row of C does not depend on the group of 4 rows of B it falls in:
                    # dropping B's first row shifts every group boundary by one
                    c = np.full((m, n), np.nan, dtype)
                    _core.gemm(False, True, 1.0, a, b, 0.0, c)
                    c_shift = np.full((m, n - 1), np.nan, dtype)
                    _core.gemm(False, True, 1.0, a, b[1:], 0.0, c_shift)
                    assert np.array_equal(c[:, 1:], c_shift)
    a, b = make(rng, (2, 700), dtype), make(rng, (700, 3000), dtype, True)  # threaded size
    bias = rng.standard_normal(3000).astype(dtype)
    out = []
    for t in (1, 2):
        annfast.set_num_threads(t)
        c = np.full((2, 3000), np.nan, dtype)
        _core.gemm(False, True, 1.0, a, b, 0.0, c, bias=bias, activation="relu")
        out.append(c)
    assert np.array_equal(out[0], out[1])
    ref = np.maximum(a.astype(np.float64) @ b.T.astype(np.float64) + bias, 0)
    assert np.allclose(out[0], ref, rtol=0, atol=2 * 702 * np.finfo(dtype).eps * np.abs(a).sum(1).max()
                       * np.abs(b).max() + np.abs(bias).max() * np.finfo(dtype).eps * 4)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rows_streaming_same_bits_as_panels(isa, dtype, threads):
    """One or two rows of C = A B with B's rows a page or more apart and B over 256 KB stream B
    block of rows after block of rows (gemm_kern_impl.h: gemv_stream); closer rows go by column
    panels. Per column both sum k in order from zero, so the same values give the same bits either
    way: B once contiguous (n columns, rows 4000 or 3988 bytes apart: panels) and once as a view
    with rows 4096 to 16384 bytes apart (streaming). Blocks of 3 and 4 rows (k = 17, 33, 65, 600),
    tail columns (n not a multiple of the vector), A transposed (x strided), alpha and beta, 1 and
    2 threads; columns past one 8 KB chunk (a slice shifts the chunk boundaries) and NaN."""
    rng = np.random.default_rng(21)
    es = np.dtype(dtype).itemsize
    for n in (4000 // es, 3988 // es):
        for k in (17, 33, 65, 600):
            ld = max(4096, -(-262144 // k)) // es + 16  # rows this far apart: streaming
            for m, ta in ((1, False), (2, False), (1, True)):
                a = make(rng, (m, k), dtype, ta)
                b = rng.standard_normal((k, n)).astype(dtype)
                bpad = np.zeros((k, ld), dtype)
                bpad[:, :n] = b
                for alpha, beta in ((1.0, 0.0), (-0.5, 2.0)):
                    c0 = rng.standard_normal((m, n)).astype(dtype)
                    out = []
                    for t, bb in ((1, b), (1, bpad[:, :n]), (2, b), (2, bpad[:, :n])):
                        annfast.set_num_threads(t)
                        c = c0.copy() if beta else np.full((m, n), np.nan, dtype)
                        _core.gemm(ta, False, alpha, a, bb, beta, c)
                        out.append(c)
                    for c in out[1:]:
                        assert np.array_equal(c, out[0]), (n, k, m, ta, alpha)
                    check(out[1], a, b, ta, False, alpha, beta, c0, dtype=dtype)
    # 3000 columns (two or three chunks): a column's bits do not depend on its chunk
    a, b = make(rng, (1, 300), dtype), make(rng, (300, 3000), dtype)
    c = np.full((1, 3000), np.nan, dtype)
    _core.gemm(False, False, 1.0, a, b, 0.0, c)
    check(c, a, b, False, False, dtype=dtype)
    c_shift = np.full((1, 2997), np.nan, dtype)
    _core.gemm(False, False, 1.0, a, b[:, 3:], 0.0, c_shift)
    assert np.array_equal(c[:, 3:], c_shift)
    b[7, 1234] = np.nan  # NaN stays in its column (and never becomes a number)
    _core.gemm(False, False, 1.0, a, b, 0.0, c)
    assert np.isnan(c[0, 1234]) and np.isfinite(np.delete(c[0], 1234)).all()


def _property_random_shapes(m, n, k, ta, tb, f32, pad, beta, seed):
    dtype = np.float32 if f32 else np.float64
    rng = np.random.default_rng(seed)
    ash = (k, m) if ta else (m, k)
    bsh = (n, k) if tb else (k, n)
    a = rng.standard_normal((ash[0], ash[1] + pad)).astype(dtype)[:, :ash[1]]
    b = rng.standard_normal((bsh[0], bsh[1] + pad)).astype(dtype)[:, :bsh[1]]
    c0 = rng.standard_normal((m, n)).astype(dtype)
    c = c0.copy() if beta != 0 else np.full((m, n), np.nan, dtype)
    _core.gemm(ta, tb, 1.0, a, b, beta, c)
    check(c, a, b, ta, tb, 1.0, beta, c0, dtype=dtype)


if given is not None:
    test_property_random_shapes = settings(max_examples=60, deadline=None)(given(
        m=st.integers(0, 70), n=st.integers(0, 70), k=st.integers(0, 300),
        ta=st.booleans(), tb=st.booleans(), f32=st.booleans(), pad=st.integers(0, 5),
        beta=st.sampled_from([0.0, 1.0, -2.0]), seed=st.integers(0, 2**31))(_property_random_shapes))
else:  # pragma: no cover
    @pytest.mark.skip(reason="hypothesis not installed")
    def test_property_random_shapes():
        pass


# ---- annfast.matmul: the NumPy-facing API ---------------------------------------------------

def test_matmul_dtypes_follow_numpy():
    i = np.arange(6).reshape(2, 3)
    f32 = np.ones((3, 2), np.float32)
    assert annfast.matmul(f32.T, f32).dtype == np.float32
    assert annfast.matmul(f32, f32.T.astype(np.float64)).dtype == np.float64
    assert annfast.matmul(i, f32).dtype == np.result_type(i, f32)  # int64 + float32 -> float64
    assert annfast.matmul(i.astype(np.int16), f32).dtype == np.float32
    r = annfast.matmul(i, i.T)  # integer product computed in float64
    assert r.dtype == np.float64 and np.array_equal(r, i @ i.T)
    assert annfast.matmul([[1, 2]], [[3], [4]]).tolist() == [[11.0]]
    assert annfast.matmul(np.ones((2, 2), np.float16), np.ones((2, 2), np.float16)).dtype == np.float32
    with pytest.raises(TypeError, match="dtype"):
        annfast.matmul(np.ones((2, 2), complex), np.ones((2, 2)))
    with pytest.raises(TypeError):
        annfast.matmul(np.array([["a"]]), np.ones((1, 1)))


def test_matmul_1d_like_numpy():
    rng = np.random.default_rng(7)
    m = rng.standard_normal((4, 3))
    v3, v4 = rng.standard_normal(3), rng.standard_normal(4)
    np.testing.assert_allclose(annfast.matmul(m, v3), m @ v3, rtol=1e-13)
    np.testing.assert_allclose(annfast.matmul(v4, m), v4 @ m, rtol=1e-13)
    np.testing.assert_allclose(annfast.matmul(v3, v3), v3 @ v3, rtol=1e-13)
    assert annfast.matmul(m, v3).shape == (4,)
    with pytest.raises(ValueError, match="1-D"):
        annfast.matmul(v3, m, trans_a=True)
    with pytest.raises(ValueError, match="2-D"):
        annfast.matmul(np.ones((2, 2, 2)), np.ones((2, 2)))


def test_matmul_shape_errors_name_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 4\)"):
        annfast.matmul(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="inner"):
        annfast.matmul(np.ones((2, 3)), np.ones((2, 4)), trans_b=True)


def test_matmul_out():
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal((5, 4)), rng.standard_normal((4, 3))
    out = np.full((5, 3), np.nan)
    assert annfast.matmul(a, b, out=out) is out
    np.testing.assert_allclose(out, a @ b, rtol=1e-12)
    with pytest.raises(ValueError, match="shape"):
        annfast.matmul(a, b, out=np.empty((3, 5)))
    with pytest.raises(ValueError, match="dtype"):
        annfast.matmul(a, b, out=np.empty((5, 3), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        annfast.matmul(a, b, out=np.empty((3, 5)).T)
    with pytest.raises(TypeError):
        annfast.matmul(a, b, out=[[0.0] * 3] * 5)
    sq = rng.standard_normal((4, 4))
    with pytest.raises(ValueError, match="overlap"):
        annfast.matmul(sq, np.eye(4), out=sq)
    with pytest.raises(ValueError, match="overlap"):
        annfast.matmul(np.eye(4), sq[:, :], out=sq)


def test_matmul_layouts():
    """F-ordered, transposed, negative-stride, non-unit-stride and read-only inputs."""
    rng = np.random.default_rng(9)
    a = rng.standard_normal((40, 30))
    b = rng.standard_normal((30, 20))
    for x, y in [(np.asfortranarray(a), b), (a, np.asfortranarray(b)), (a[::-1], b),
                 (a[:, ::2], b[::2]), (a[::2], b), (a.T.copy().T, b[:, ::-1])]:
        np.testing.assert_allclose(annfast.matmul(x, y), x @ y, rtol=1e-12, atol=1e-12)
    ro = a.copy()
    ro.flags.writeable = False
    np.testing.assert_allclose(annfast.matmul(ro, b), a @ b, rtol=1e-12, atol=1e-12)
    for ta in (False, True):
        for tb in (False, True):
            x = np.asfortranarray(a.T) if ta else np.asfortranarray(a)
            y = b.T.copy() if tb else b
            np.testing.assert_allclose(annfast.matmul(x, y, trans_a=ta, trans_b=tb), a @ b,
                                       rtol=1e-12, atol=1e-12)


def test_matmul_tutorial_shapes():
    """The tutorial network's products (4x2 @ 2x4, 4x4 @ 4x1, ... ) on the direct path."""
    rng = np.random.default_rng(10)
    x = rng.standard_normal((4, 2))
    w1 = rng.standard_normal((2, 4))
    h = rng.standard_normal((4, 4))
    w2 = rng.standard_normal((4, 1))
    d = rng.standard_normal((4, 1))
    for got, ref in [(annfast.matmul(x, w1), x @ w1), (annfast.matmul(h, w2), h @ w2),
                     (annfast.matmul(d, w2, trans_b=True), d @ w2.T),
                     (annfast.matmul(h, d, trans_a=True), h.T @ d),
                     (annfast.matmul(x, h, trans_a=True), x.T @ h)]:
        np.testing.assert_allclose(got, ref, rtol=1e-14, atol=1e-14)


def test_set_isa_unsupported_raises():
    missing = [i for i in ALL_ISAS if i not in SUPPORTED]
    with pytest.raises(ValueError, match="isa"):
        annfast.set_isa("sse9")
    for name in missing:
        with pytest.raises(ValueError, match="not supported"):
            annfast.set_isa(name)
    assert annfast.get_isa() in SUPPORTED


def test_concurrent_python_threads(threads):
    """Two Python threads multiplying at once (GIL released) each get their own workspace."""
    annfast.set_num_threads(2)
    rng = np.random.default_rng(11)
    mats = [(rng.standard_normal((300, 200)).astype(dt), rng.standard_normal((200, 250)).astype(dt))
            for dt in (np.float32, np.float64)]
    expected = [annfast.matmul(a, b) for a, b in mats]
    errors = []

    def work(i):
        a, b = mats[i]
        for _ in range(20):
            if not np.array_equal(annfast.matmul(a, b), expected[i]):
                errors.append(i)

    ts = [threading.Thread(target=work, args=(i,)) for i in (0, 1)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert errors == []
