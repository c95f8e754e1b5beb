"""annfast.matmul's NaN/inf check, which runs inside the C product (af_*gemm_checked).

The check looks at the inputs before computing when they are smaller than the result (k small),
else at each finished tile of the result (a NaN/inf input always reaches the result), and tells
an overflow apart from a non-finite input by scanning the inputs. Every kernel path is covered:
tiny, skinny (row and column kernels), direct, one-row GEMV, packed, threaded packed.
"""
import numpy as np
import pytest

import annfast

# (m, n, k): tiny, skinny n (row kernel / column kernel with trans_a), direct loop, one row,
# k small (input check), packed with the in-kernel check, threaded packed (m n k >= 2e6), packed
# with several K blocks (a bad value in any block must be seen)
SHAPES = [(3, 4, 5), (40, 7, 30), (9, 40, 9), (1, 300, 200), (200, 150, 4), (130, 70, 90),
          (160, 140, 120), (50, 60, 700)]  # the last: several K blocks
DTYPES = [np.float32, np.float64]


def operands(rng, m, n, k, ta, tb, dtype):
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    return a, b


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_input_raises_naming_it(isa, dtype, bad, threads):
    rng = np.random.default_rng(0)
    for nt in (1, 2):
        threads(nt)
        for m, n, k in SHAPES:
            for ta, tb in [(False, False), (True, False), (False, True), (True, True)]:
                for which in ("a", "b"):
                    # first and last element (first and last K block) and one at random
                    for where in ("first", "last", "random"):
                        a, b = operands(rng, m, n, k, ta, tb, dtype)
                        x = a if which == "a" else b
                        at = {"first": (0, 0), "last": (-1, -1),
                              "random": (rng.integers(x.shape[0]), rng.integers(x.shape[1]))}[where]
                        x[at] = bad
                        with pytest.raises(ValueError, match=f"^{which} contains NaN or inf"):
                            annfast.matmul(a, b, trans_a=ta, trans_b=tb)
                        out = np.zeros((m, n), dtype)
                        with pytest.raises(ValueError, match=f"^{which} contains NaN or inf"):
                            annfast.matmul(a, b, trans_a=ta, trans_b=tb, out=out)
                        # never a half-written product in `out`: all NaN
                        assert np.isnan(out).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_finite_inputs_same_bits_with_and_without_check(isa, dtype):
    rng = np.random.default_rng(1)
    for m, n, k in SHAPES:
        for ta, tb in [(False, False), (True, False), (False, True)]:
            a, b = operands(rng, m, n, k, ta, tb, dtype)
            c1 = annfast.matmul(a, b, trans_a=ta, trans_b=tb)
            c2 = annfast.matmul(a, b, trans_a=ta, trans_b=tb, check_finite=False)
            assert np.array_equal(c1, c2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_overflow_is_not_an_error(isa, dtype):
    """Finite inputs whose product overflows give inf as NumPy does, not ValueError."""
    big = np.finfo(dtype).max / 4
    for m, n, k in SHAPES:
        a = np.full((m, k), big, dtype)
        b = np.full((k, n), 8, dtype)
        out = np.zeros((m, n), dtype)
        c = annfast.matmul(a, b, out=out)
        assert c is out and np.isposinf(c).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_nonfinite_outside_the_view_is_ignored(dtype):
    """Only the elements of the operands count: NaN in a strided view's gaps is never read."""
    rng = np.random.default_rng(2)
    for m, n, k in SHAPES:
        abig = np.full((m, k + 3), np.nan, dtype)
        abig[:, :k] = rng.standard_normal((m, k))
        bbig = np.full((k, n + 2), np.inf, dtype)
        bbig[:, 1:1 + n] = rng.standard_normal((k, n))
        a, b = abig[:, :k], bbig[:, 1:1 + n]
        c = annfast.matmul(a, b)
        np.testing.assert_allclose(c, a.astype(np.float64) @ b.astype(np.float64),
                                   rtol=1e-4 if dtype == np.float32 else 1e-12,
                                   atol=1e-4 if dtype == np.float32 else 1e-12)


def test_nan_propagates_without_check():
    a = np.ones((50, 40))
    a[7, 3] = np.nan
    c = annfast.matmul(a, np.ones((40, 30)), check_finite=False)
    assert np.isnan(c[7]).all() and np.isfinite(np.delete(c, 7, axis=0)).all()
