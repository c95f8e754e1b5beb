"""Skinny GEMM products (csrc/gemm_skinny_impl.h): n small, every transpose, every ISA.

The row kernel (vectors along n) takes n below one register panel; the column kernel (vectors
along m, op(A) = A^T read in place) takes n <= 32 with trans_a. Shapes sweep n across every vector
width (4/2 generic, 8/4 AVX2, 16/8 AVX-512 lanes, and twice and three times those) and m across the kernels' row
tiles (8/12 rows, 2 x lanes) and their tails; k includes 1 and lengths past the prefetch
distance. The error bound is the k*eps bound of tests/test_gemm.py.
"""
import numpy as np
import pytest

import annfast
from annfast import _core

from test_gemm import check, make

DTYPES = [np.float32, np.float64]
NS = list(range(1, 34)) + [40, 41, 47, 48, 49]  # AVX-512's 3-vector row tiles: up to 24 / 48
MS = [1, 2, 3, 4, 5, 7, 8, 9, 11, 12, 13, 15, 16, 17, 23, 24, 25, 31, 32, 33, 47, 48, 49, 100]
KS = [1, 3, 8, 17, 64]


def lanes(isa, dtype):
    """Vector lanes of an ISA's kernels (16-byte generic vectors, 32-byte AVX2, 64-byte AVX-512)."""
    return {"generic": 16, "avx2": 32, "avx512": 64}[isa] // np.dtype(dtype).itemsize


def row_kernel_width(isa, dtype):
    """The row kernel's widest n: two vectors, three with AVX-512 (32 registers)."""
    return (3 if isa == "avx512" else 2) * lanes(isa, dtype)


def dot_columns(isa, dtype, n):
    """How many of the row kernel's last columns are dot products along k (gemm_kern.h,
    AF_GEMM_ROWK_TAIL): the n % lanes columns past whole vectors when they are at most a quarter
    vector and the vectors at most two."""
    v = lanes(isa, dtype)
    t = n % v
    return t if t <= v // 4 and n - t <= 2 * v else 0


def skinny(isa, dtype, ta, n):
    """True when this product takes a skinny kernel (so each row's bits are its own)."""
    return n <= 32 if ta else n <= row_kernel_width(isa, dtype)


def gemm(ta, tb, a, b, alpha=1.0, beta=0.0, c0=None, dtype=None, m=None, n=None):
    c = np.full((m, n), np.nan, dtype) if c0 is None else c0.copy()
    _core.gemm(ta, tb, alpha, a, b, beta, c)
    return c


@pytest.mark.parametrize("dtype", DTYPES)
def test_narrow_shapes_all_transposes(isa, dtype):
    rng = np.random.default_rng(10)
    for n in NS:
        for m in MS:
            k = KS[(m + n) % len(KS)]
            for ta in (False, True):
                for tb in (False,):
                    a = make(rng, (m, k), dtype, ta)
                    b = make(rng, (k, n), dtype, tb)
                    c = gemm(ta, tb, a, b, dtype=dtype, m=m, n=n)  # beta = 0 never reads C (NaN)
                    check(c, a, b, ta, tb, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_narrow_every_k(isa, dtype):
    """k from 1 to 40 (unrolled loops' remainders) at a few widths, both kernels."""
    rng = np.random.default_rng(11)
    for k in range(1, 41):
        for m, n in [(13, 3), (37, 10), (17, 17), (50, 31)]:
            for ta in (False, True):
                a = make(rng, (m, k), dtype, ta)
                b = make(rng, (k, n), dtype)
                check(gemm(ta, False, a, b, dtype=dtype, m=m, n=n), a, b, ta, False, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_narrow_alpha_beta_and_strides(isa, dtype):
    rng = np.random.default_rng(12)
    for m, n, k in [(1, 1, 5), (9, 7, 33), (40, 16, 100), (70, 30, 20), (5, 12, 300)]:
        for ta in (False, True):
            for tb in (False,):
                for alpha, beta in [(2.0, 0.0), (1.0, 1.0), (-0.5, 0.25)]:
                    # operands and C as strided views of larger arrays (leading dimension > width)
                    big_a = make(rng, (m + 3, k + 5), dtype, ta)
                    big_b = make(rng, (k + 2, n + 7), dtype, tb)
                    a = big_a[1:1 + k, 2:2 + m] if ta else big_a[1:1 + m, 2:2 + k]
                    b = big_b[3:3 + n, 1:1 + k] if tb else big_b[1:1 + k, 3:3 + n]
                    cbig = rng.standard_normal((m, n + 4)).astype(dtype)
                    before = cbig.copy()
                    c0 = cbig[:, 1:1 + n].copy()
                    c = cbig[:, 1:1 + n]
                    _core.gemm(ta, tb, alpha, a, b, beta, c)
                    check(c, a, b, ta, tb, alpha, beta, c0, dtype=dtype)
                    # the columns around C's view are never written
                    assert np.array_equal(cbig[:, 0], before[:, 0])
                    assert np.array_equal(cbig[:, 1 + n:], before[:, 1 + n:])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", [None, "relu", "sigmoid"])
def test_narrow_epilogue(isa, dtype, act):
    rng = np.random.default_rng(13)
    f = {None: lambda z: z, "relu": lambda z: np.maximum(z, 0), "sigmoid": lambda z: 1 / (1 + np.exp(-z))}[act]
    for m, n, k in [(64, 3, 16), (100, 10, 50), (7, 20, 9)]:
        for ta in (False, True):
            a = make(rng, (m, k), dtype, ta)
            b = make(rng, (k, n), dtype)
            bias = rng.standard_normal(n).astype(dtype)
            c = np.zeros((m, n), dtype)
            _core.gemm(ta, False, 1.0, a, b, 0.0, c, bias=bias, activation=act)
            ref = f((a.T if ta else a).astype(np.float64) @ b.astype(np.float64) + bias)
            tol = 1e-5 if dtype == np.float32 else 1e-12
            np.testing.assert_allclose(c, ref, rtol=tol, atol=tol * np.abs(ref).max())


@pytest.mark.parametrize("dtype", DTYPES)
def test_narrow_rows_independent_of_their_block(isa, dtype):
    """A row of C gets the same bits whichever rows are computed with it: the thread split (by
    rows) can never change a result. Each block of rows is computed alone and compared with the
    full product."""
    rng = np.random.default_rng(14)
    for m, n, k in [(103, 10, 70), (77, 3, 200), (64, 17, 33), (50, 32, 64), (40, 1, 9)]:
        for ta in (False, True):
            for tb in (False,):
                if not skinny(isa, dtype, ta, n):
                    continue
                a = make(rng, (m, k), dtype, ta)
                b = make(rng, (k, n), dtype, tb)
                full = gemm(ta, tb, a, b, dtype=dtype, m=m, n=n)
                for r0, r1 in [(0, 1), (5, 18), (13, min(50, m)), (m - 9, m), (1, m)]:
                    sub = a[:, r0:r1] if ta else a[r0:r1]
                    part = gemm(ta, tb, sub, b, dtype=dtype, m=r1 - r0, n=n)
                    assert np.array_equal(part, full[r0:r1]), (m, n, k, ta, tb, r0, r1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_narrow_bitwise_identical_1_vs_2_threads(isa, dtype, threads):
    """Products large enough for the threaded skinny path (m n k >= 2e6 multiply-adds)."""
    rng = np.random.default_rng(15)
    for m, n, k in [(6001, 10, 40), (3001, 3, 300), (1500, 31, 60), (2001, 20, 60), (2001, 40, 30)]:
        for ta in (False, True):
            a = make(rng, (m, k), dtype, ta)
            b = make(rng, (k, n), dtype)
            threads(1)
            c1 = annfast.matmul(a, b, trans_a=ta)
            threads(2)
            c2 = annfast.matmul(a, b, trans_a=ta)
            assert np.array_equal(c1, c2)
            check(c2, a, b, ta, False, dtype=dtype)


def test_narrow_nan_propagates(isa):
    """A NaN or inf in op(A) or op(B) reaches the elements of C it feeds, on every kernel path."""
    rng = np.random.default_rng(16)
    for m, n, k in [(30, 5, 20), (40, 20, 7)]:
        for ta in (False, True):
            for bad in (np.nan, np.inf):
                a = make(rng, (m, k), np.float64, ta)
                b = make(rng, (k, n), np.float64)
                (a.T if ta else a)[4, 3] = bad
                c = annfast.matmul(a, b, trans_a=ta, check_finite=False)
                assert not np.isfinite(c[4]).any()
                assert np.isfinite(np.delete(c, 4, axis=0)).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_bias_relu_epilogue_every_path_keeps_nan(isa, dtype):
    """Bias and relu run inside the packed micro-kernel's store and in the epilogue of the other
    paths; both give max(x + bias, 0) with NaN kept (never silently 0), and the same values as
    NumPy on finite inputs."""
    rng = np.random.default_rng(17)
    for m, n, k in [(3, 4, 5), (64, 3, 16), (40, 20, 30), (130, 70, 300), (1, 300, 200), (37, 33, 700)]:
        for ta in (False, True):
            a = make(rng, (m, k), dtype, ta)
            b = make(rng, (k, n), dtype)
            bias = rng.standard_normal(n).astype(dtype)
            c = np.zeros((m, n), dtype)
            _core.gemm(ta, False, 1.0, a, b, 0.0, c, bias=bias, activation="relu")
            ref = np.maximum((a.T if ta else a).astype(np.float64) @ b + bias, 0)
            tol = (k + 2) * np.finfo(dtype).eps * 4 * (np.abs(a).max() * np.abs(b).max() * k + 1)
            assert np.all(np.abs(c - ref) <= tol)
            (a.T if ta else a)[m // 2, k // 2] = np.nan
            _core.gemm(ta, False, 1.0, a, b, 0.0, c, bias=bias, activation="relu")
            assert np.isnan(c[m // 2]).all() and not np.isnan(np.delete(c, m // 2, axis=0)).any()


@pytest.mark.parametrize("dtype", DTYPES)
def test_row_kernel_column_bits_at_any_width(isa, dtype):
    """A column of the row kernel's C is computed one of two ways, neither depending on n:
    - a vector column is the same chain of FMAs whatever n is, so tiles of one, two or three
      vectors and the half-width last vector (AVX-512, when n leaves half a vector unused) give
      the bits of full vectors: those of the product as wide as the kernel takes;
    - a dot column (the last dot_columns(n) columns: a few past whole vectors, where a vector
      along n would be mostly padding) is a dot product along k, whose bits are
      those of the same column alone (n = 1, itself a dot column where the ISA has them).
    Every n up to the kernel's widest, B in place and packed (transposed), k around the vector
    width (the masked last chunk of a dot)."""
    rng = np.random.default_rng(16)
    w = row_kernel_width(isa, dtype)
    dots = [n for n in range(1, w) if dot_columns(isa, dtype, n)]
    assert dots or lanes(isa, dtype) < 4, "no dot columns where the ISA has them"
    for m, k in [(37, 70), (128, 191), (9, 9), (13, 1), (11, 16)]:
        for tb in (False,):
            a = make(rng, (m, k), dtype)
            b = make(rng, (k, w), dtype, tb)
            col = (lambda j: b[j:j + 1]) if tb else (lambda j: b[:, j:j + 1])
            full = gemm(False, tb, a, b, dtype=dtype, m=m, n=w)
            check(full, a, b, False, tb, dtype=dtype)
            alone = [gemm(False, tb, a, col(j), dtype=dtype, m=m, n=1) for j in range(w)]
            for n in range(1, w):
                part = gemm(False, tb, a, b[:n] if tb else b[:, :n], dtype=dtype, m=m, n=n)
                check(part, a, b[:n] if tb else b[:, :n], False, tb, dtype=dtype)
                nv = n - dot_columns(isa, dtype, n)
                assert np.array_equal(part[:, :nv], full[:, :nv]), (m, k, n, tb)
                for j in range(nv, n):
                    assert np.array_equal(part[:, j:j + 1], alone[j]), (m, k, n, j, tb)


@pytest.mark.parametrize("dtype", DTYPES)
def test_small_products_row_bits_do_not_depend_on_m(isa, dtype):
    """A row of C gets the same bits alone as in a batch, down to products of a few multiply-adds
    (m, n, k <= 8 took a scalar loop of their own, unfused, so a small layer's batch-1 rows
    differed from the same rows in a batch by an ulp): op(A) = A and A^T, n and k from 1 to 9.
    (With op(B) = B^T, one or two rows wider than the row kernel go by dot products with B's
    rows instead: tests/test_gemm.py, test_rows_times_b_transposed.)"""
    rng = np.random.default_rng(18)
    for ta in (False, True):
        for tb in (False,):
            for n in range(1, 10):
                for k in (1, 2, 3, 5, 8, 9):
                    a = make(rng, (20, k), dtype, ta)
                    b = make(rng, (k, n), dtype, tb)
                    full = gemm(ta, tb, a, b, dtype=dtype, m=20, n=n)
                    for i in (0, 7, 19):
                        row = a[:, i:i + 1] if ta else a[i:i + 1]
                        one = gemm(ta, tb, row, b, dtype=dtype, m=1, n=n)
                        assert np.array_equal(one, full[i:i + 1]), (ta, tb, n, k, i)
