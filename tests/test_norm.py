"""Batch normalisation and dropout kernels (csrc/batchnorm.c, csrc/dropout.c via annfast._core):
forward vs NumPy formulas, backward vs central finite differences (float64) and torch autograd,
running statistics, inference mode, dropout mask properties and thread-count determinism."""
import numpy as np
import pytest

import annfast
from annfast import _core


@pytest.fixture
def restore_threads():
    n = annfast.get_num_threads()
    yield
    annfast.set_num_threads(n)


ISAS = [i for i in ("generic", "avx2") if i in _core.build_info()["supported_isas"]]


@pytest.fixture(params=ISAS)
def isa(request):
    """Run a test once per kernel path (baseline and AVX2+FMA where the CPU has it)."""
    before = annfast.get_isa()  # ANNFAST_ISA's path, or the best one
    annfast.set_isa(request.param)
    yield request.param
    annfast.set_isa(before)


def bn_ref(x, gamma, beta, eps):
    """Training-mode batch norm in float64 NumPy: returns y, mean, biased var."""
    x = x.astype(np.float64)
    mean = x.mean(axis=0)
    var = ((x - mean) ** 2).mean(axis=0)
    y = gamma * (x - mean) / np.sqrt(var + eps) + beta
    return y, mean, var


def bn_inputs(m=32, n=70, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((m, n)) * rng.uniform(0.5, 3, n) + rng.uniform(-2, 2, n)).astype(dtype)
    gamma = rng.uniform(0.5, 1.5, n).astype(dtype)
    beta = rng.uniform(-1, 1, n).astype(dtype)
    return x, gamma, beta


# float32 forward: inputs of size ~5, statistics in double; each output rounds a subtract, a
# multiply and an add in float32 (a few eps32 = 1.2e-7 relative to |x - mean| * scale ~ 10), so
# 1e-5 absolute is ~10x the worst case. float64: a few eps64 on O(10) values -> 1e-12.
TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bn_forward_training_matches_numpy(dtype, isa):
    x, gamma, beta = bn_inputs(dtype=dtype)
    y, mean, invstd = _core.batchnorm_forward(x, gamma, beta, eps=1e-3)
    yr, mr, vr = bn_ref(x, gamma.astype(np.float64), beta.astype(np.float64), 1e-3)
    assert y.dtype == dtype and mean.dtype == dtype and invstd.dtype == dtype
    np.testing.assert_allclose(y, yr, **TOL[dtype])
    np.testing.assert_allclose(mean, mr, **TOL[dtype])
    np.testing.assert_allclose(invstd, 1 / np.sqrt(vr + 1e-3), **TOL[dtype])
    # normalised output: zero mean, unit variance per feature (up to eps)
    z = (y.astype(np.float64) - beta) / gamma
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-5 if dtype == np.float32 else 1e-12)


def test_bn_forward_without_gamma_beta():
    x, _, _ = bn_inputs()
    y, mean, invstd = _core.batchnorm_forward(x, eps=1e-5)
    yr, _, _ = bn_ref(x, 1.0, 0.0, 1e-5)
    np.testing.assert_allclose(y, yr, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("unbiased", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bn_running_statistics_update(dtype, unbiased, isa):
    x, gamma, beta = bn_inputs(m=16, n=5, dtype=dtype)
    rm0 = np.linspace(-1, 1, 5).astype(dtype)
    rv0 = np.linspace(0.5, 2, 5).astype(dtype)
    rm, rv = rm0.copy(), rv0.copy()
    _core.batchnorm_forward(x, gamma, beta, rm, rv, momentum=0.9, eps=1e-3,
                            unbiased_running_var=unbiased)
    _, mean, var = bn_ref(x, gamma, beta, 1e-3)
    if unbiased:
        var = var * 16 / 15
    np.testing.assert_allclose(rm, 0.9 * rm0 + 0.1 * mean, **TOL[dtype])
    np.testing.assert_allclose(rv, 0.9 * rv0 + 0.1 * var, **TOL[dtype])
    # momentum 1 freezes, momentum 0 copies the batch statistics
    rm2, rv2 = rm0.copy(), rv0.copy()
    _core.batchnorm_forward(x, gamma, beta, rm2, rv2, momentum=1.0)
    np.testing.assert_array_equal(rm2, rm0)
    np.testing.assert_array_equal(rv2, rv0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bn_inference_uses_running_statistics(dtype, isa):
    x, gamma, beta = bn_inputs(dtype=dtype)
    rng = np.random.default_rng(1)
    rm = rng.standard_normal(70).astype(dtype)
    rv = rng.uniform(0.1, 4, 70).astype(dtype)
    rm0, rv0 = rm.copy(), rv.copy()
    y = _core.batchnorm_forward(x, gamma, beta, rm, rv, training=False, eps=1e-3)
    want = gamma.astype(np.float64) * (x - rm.astype(np.float64)) / np.sqrt(rv.astype(np.float64) + 1e-3) + beta
    np.testing.assert_allclose(y, want, **TOL[dtype])
    np.testing.assert_array_equal(rm, rm0)  # inference never updates the running statistics
    np.testing.assert_array_equal(rv, rv0)
    # rows are normalised independently: one row gives the same result as inside the batch
    y1 = _core.batchnorm_forward(x[3:4], gamma, beta, rm, rv, training=False, eps=1e-3)
    np.testing.assert_array_equal(y1[0], y[3])


def bn_loss(x, gamma, beta, r, eps):
    y, _, _ = bn_ref(x, gamma, beta, eps)
    return float(np.sum(y * r))


def test_bn_backward_matches_finite_differences(isa):
    m, n, eps = 6, 4, 1e-3
    x, gamma, beta = bn_inputs(m, n, seed=2)
    r = np.random.default_rng(3).standard_normal((m, n))  # L = sum(r * y), so dy = r
    y, mean, invstd = _core.batchnorm_forward(x, gamma, beta, eps=eps)
    dx, dgamma, dbeta = _core.batchnorm_backward(x, r, gamma, mean, invstd)
    h = 1e-6
    num_dx = np.zeros_like(x)
    for i in range(m):
        for j in range(n):
            xp, xm = x.copy(), x.copy()
            xp[i, j] += h
            xm[i, j] -= h
            num_dx[i, j] = (bn_loss(xp, gamma, beta, r, eps) - bn_loss(xm, gamma, beta, r, eps)) / (2 * h)
    num_dg = np.zeros(n)
    num_db = np.zeros(n)
    for j in range(n):
        e = np.zeros(n)
        e[j] = h
        num_dg[j] = (bn_loss(x, gamma + e, beta, r, eps) - bn_loss(x, gamma - e, beta, r, eps)) / (2 * h)
        num_db[j] = (bn_loss(x, gamma, beta + e, r, eps) - bn_loss(x, gamma, beta - e, r, eps)) / (2 * h)
    # central differences in float64 with h = 1e-6: truncation O(h^2 f''') ~ 1e-12 and rounding
    # ~ eps64 |L| / h ~ 1e-10 for |L| ~ 10, so 1e-7 absolute is a safe bound; wrong terms
    # (e.g. dropping the mean/variance paths) give O(1) errors.
    np.testing.assert_allclose(dx, num_dx, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dgamma, num_dg, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dbeta, num_db, rtol=1e-6, atol=1e-7)
    # dx of a batch norm sums to zero over the batch (the mean path)
    np.testing.assert_allclose(dx.sum(axis=0), 0, atol=1e-12)


def test_bn_backward_float32_close_to_float64(isa):
    x, gamma, beta = bn_inputs(m=64, n=130, seed=4)
    dy = np.random.default_rng(5).standard_normal(x.shape)
    out64 = _core.batchnorm_backward(x, dy, gamma, *_core.batchnorm_forward(x, gamma, beta)[1:])
    x32, dy32, g32, b32 = (a.astype(np.float32) for a in (x, dy, gamma, beta))
    out32 = _core.batchnorm_backward(x32, dy32, g32, *_core.batchnorm_forward(x32, g32, b32)[1:])
    # float32: dx = k (m dy - dbeta - xhat dgamma) cancels terms of size m|dy| ~ 64 * 3 down to
    # O(1), losing ~log2(200) bits: error ~ 200 * eps32 * k ~ 1e-5 relative to |dx| ~ 1
    for a32, a64, tol in zip(out32, out64, (1e-4, 1e-4, 1e-4)):
        assert a32.dtype == np.float32
        np.testing.assert_allclose(a32, a64, rtol=tol, atol=tol * np.abs(a64).max())


def test_bn_matches_torch_autograd(isa):
    torch = pytest.importorskip("torch")
    x, gamma, beta = bn_inputs(m=20, n=9, seed=6)
    dy = np.random.default_rng(7).standard_normal(x.shape)
    rm, rv = np.zeros(9), np.ones(9)
    y, mean, invstd = _core.batchnorm_forward(x, gamma, beta, rm, rv, eps=1e-5, momentum=0.9,
                                              unbiased_running_var=True)
    dx, dgamma, dbeta = _core.batchnorm_backward(x, dy, gamma, mean, invstd)
    tx = torch.tensor(x, requires_grad=True)
    tg = torch.tensor(gamma, requires_grad=True)
    tb = torch.tensor(beta, requires_grad=True)
    trm, trv = torch.zeros(9, dtype=torch.float64), torch.ones(9, dtype=torch.float64)
    # torch's momentum is the weight of the new value: ours 0.9 == torch 0.1
    ty = torch.nn.functional.batch_norm(tx, trm, trv, tg, tb, training=True, momentum=0.1, eps=1e-5)
    ty.backward(torch.tensor(dy))
    # float64: same formulas, different summation order -> ~1e-15 relative; 1e-11 is generous.
    tol = dict(rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(y, ty.detach().numpy(), **tol)
    np.testing.assert_allclose(dx, tx.grad.numpy(), **tol)
    np.testing.assert_allclose(dgamma, tg.grad.numpy(), **tol)
    np.testing.assert_allclose(dbeta, tb.grad.numpy(), **tol)
    np.testing.assert_allclose(rm, trm.numpy(), **tol)
    np.testing.assert_allclose(rv, trv.numpy(), **tol)
    yi = _core.batchnorm_forward(x, gamma, beta, rm, rv, training=False, eps=1e-5)
    tyi = torch.nn.functional.batch_norm(torch.tensor(x), trm, trv, torch.tensor(gamma),
                                         torch.tensor(beta), training=False, eps=1e-5)
    np.testing.assert_allclose(yi, tyi.numpy(), **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bn_identical_for_1_and_2_threads(dtype, restore_threads, isa):
    x, gamma, beta = bn_inputs(m=300, n=333, dtype=dtype, seed=8)  # 100k elements, 6 blocks
    dy = np.random.default_rng(9).standard_normal(x.shape).astype(dtype)
    outs = []
    for threads in (1, 2):
        annfast.set_num_threads(threads)
        rm, rv = np.zeros(333, dtype), np.ones(333, dtype)
        y, mean, invstd = _core.batchnorm_forward(x, gamma, beta, rm, rv)
        yi = _core.batchnorm_forward(x, gamma, beta, rm, rv, training=False)
        outs.append((y, mean, invstd, rm, rv, yi) + _core.batchnorm_backward(x, dy, gamma, mean, invstd))
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


def test_bn_single_row_and_constant_feature():
    # m = 1: variance 0, so y = beta (normalised value 0); constant features behave the same
    x = np.array([[1.0, 2.0, 3.0]])
    y, mean, invstd = _core.batchnorm_forward(x, np.full(3, 2.0), np.array([0.5, 0, -1]))
    np.testing.assert_array_equal(y, [[0.5, 0, -1]])
    np.testing.assert_allclose(invstd, 1 / np.sqrt(1e-3))
    x = np.tile([[4.0, 5.0]], (10, 1))
    y, _, _ = _core.batchnorm_forward(x)
    np.testing.assert_array_equal(y, 0)


def test_bn_argument_checks():
    x = np.ones((4, 3))
    with pytest.raises(ValueError, match="gamma must be a 1-D float64 array of length 3"):
        _core.batchnorm_forward(x, np.ones(4))
    with pytest.raises(ValueError, match="eps"):
        _core.batchnorm_forward(x, eps=0.0)
    with pytest.raises(ValueError, match="momentum"):
        _core.batchnorm_forward(x, momentum=1.5)
    with pytest.raises(ValueError, match="both running_mean and running_var"):
        _core.batchnorm_forward(x, running_mean=np.zeros(3))
    with pytest.raises(ValueError, match="needs running_mean"):
        _core.batchnorm_forward(x, training=False)
    with pytest.raises(ValueError, match="at least one row"):
        _core.batchnorm_forward(np.ones((0, 3)))
    with pytest.raises(ValueError, match="2-D"):
        _core.batchnorm_forward(np.ones(3))
    with pytest.raises(TypeError, match="float32 or float64"):
        _core.batchnorm_forward(np.ones((2, 2), dtype=np.int32))
    with pytest.raises(ValueError, match="gamma must be a 1-D float32"):
        _core.batchnorm_forward(x.astype(np.float32), np.ones(3))
    with pytest.raises(ValueError, match="dy must have"):
        _core.batchnorm_backward(x, np.ones((4, 2)), None, np.zeros(3), np.ones(3))
    ro = np.ones((4, 3))
    ro.flags.writeable = False  # read-only inputs are accepted (never written)
    y, m, s = _core.batchnorm_forward(ro)
    _core.batchnorm_backward(ro, ro, None, m, s)


# ---- dropout -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_dropout_mask_values_and_rate(rate, dtype):
    n = 1_000_000
    mask = _core.dropout_mask(n, rate, seed=123, step=7, dtype=dtype)
    scale = dtype(1 / (1 - rate))
    assert mask.dtype == dtype
    assert set(np.unique(mask)) <= {dtype(0), scale}
    dropped = np.mean(mask == 0)
    # binomial: std of the dropped fraction is sqrt(rate (1 - rate) / n) <= 5e-4; allow 6 sigma
    assert abs(dropped - rate) < 6 * np.sqrt(rate * (1 - rate) / n)


@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_dropout_preserves_mean(rate):
    rng = np.random.default_rng(10)
    x = rng.uniform(1, 2, 500_000)
    y = _core.dropout_apply(x, rate, seed=5, step=0)
    # inverted scaling: E[y] = x. y - x has per-element variance x^2 rate / (1 - rate), so the
    # mean difference has std sqrt(mean(x^2) rate / (1 - rate) / n); allow 6 sigma
    sigma = np.sqrt(np.mean(x ** 2) * rate / (1 - rate) / x.size)
    assert abs(np.mean(y - x)) < 6 * sigma
    kept = y != 0
    np.testing.assert_allclose(y[kept], x[kept] / (1 - rate), rtol=1e-15)


def test_dropout_reproducible_from_seed_and_step():
    a = _core.dropout_mask((64, 100), 0.5, seed=1, step=3)
    b = _core.dropout_mask((64, 100), 0.5, seed=1, step=3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, _core.dropout_mask((64, 100), 0.5, seed=1, step=4))
    assert not np.array_equal(a, _core.dropout_mask((64, 100), 0.5, seed=2, step=3))
    # counter-based: element i depends only on (seed, step, i), so a shorter call is a prefix
    np.testing.assert_array_equal(_core.dropout_mask(3000, 0.5, seed=1, step=3), a.reshape(-1)[:3000])
    np.testing.assert_array_equal(_core.dropout_mask(2999, 0.5, seed=1, step=3), a.reshape(-1)[:2999])
    # masks of consecutive steps are (nearly) uncorrelated
    c = _core.dropout_mask(100_000, 0.5, seed=1, step=3) > 0
    d = _core.dropout_mask(100_000, 0.5, seed=1, step=4) > 0
    assert abs(np.mean(c == d) - 0.5) < 6 * 0.5 / np.sqrt(c.size)
    # the mask matches the documented rule: dropped iff the 32-bit draw < floor(rate 2^32)
    draws = np.array([_core.dropout_draw(1, 3, i) for i in range(201)], dtype=np.uint64)
    thr = np.uint64(int(0.5 * 2 ** 32))
    np.testing.assert_array_equal(a.reshape(-1)[:201] == 0, draws < thr)
    # the draws look uniform: each of the 32 bits is set about half the time
    many = np.array([_core.dropout_draw(9, 1, i) for i in range(20000)], dtype=np.uint64)
    for bit in range(32):
        frac = np.mean((many >> np.uint64(bit)) & np.uint64(1))
        assert abs(frac - 0.5) < 6 * 0.5 / np.sqrt(many.size), bit


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_identical_for_1_and_2_threads(dtype, restore_threads):
    x = np.random.default_rng(11).standard_normal(300_001).astype(dtype)
    outs = []
    for threads in (1, 2):
        annfast.set_num_threads(threads)
        outs.append((_core.dropout_mask(x.size, 0.3, 9, 2, dtype), _core.dropout_apply(x, 0.3, 9, 2)))
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])


def test_dropout_rate_zero_is_identity():
    x = np.random.default_rng(12).standard_normal((10, 7))
    np.testing.assert_array_equal(_core.dropout_apply(x, 0.0, seed=3, step=1), x)
    np.testing.assert_array_equal(_core.dropout_mask((10, 7), 0.0, 3, 1), 1.0)


def test_dropout_backward_uses_forward_mask_finite_differences():
    """With (seed, step) fixed the mask is fixed, so y = x * mask is linear: dL/dx = dy * mask.
    Backward = dropout_apply(dy) with the same (seed, step); check it against central differences."""
    rng = np.random.default_rng(13)
    x = rng.standard_normal((5, 6))
    r = rng.standard_normal((5, 6))  # L = sum(r * y)
    rate, seed, step = 0.4, 21, 8

    def loss(xx):
        return float(np.sum(r * _core.dropout_apply(xx, rate, seed, step)))

    grad = _core.dropout_apply(r, rate, seed, step)
    mask = _core.dropout_mask(x.shape, rate, seed, step)
    np.testing.assert_array_equal(grad, r * mask)
    h = 1e-6
    num = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        num[idx] = (loss(xp) - loss(xm)) / (2 * h)
    # linear function: central differences are exact up to rounding ~ eps64 |L| / h ~ 1e-9
    np.testing.assert_allclose(grad, num, atol=1e-8)
    assert 0 < np.sum(mask == 0) < mask.size


def test_dropout_argument_checks():
    with pytest.raises(ValueError, match="rate"):
        _core.dropout_mask(10, 1.0, 0, 0)
    with pytest.raises(ValueError, match="rate"):
        _core.dropout_apply(np.ones(3), -0.1, 0, 0)
    with pytest.raises(ValueError, match="seed"):
        _core.dropout_mask(10, 0.5, -1, 0)
    with pytest.raises(ValueError, match="step"):
        _core.dropout_mask(10, 0.5, 0, 2 ** 64)
    with pytest.raises(TypeError, match="float32 or float64"):
        _core.dropout_apply(np.ones(3, dtype=np.int64), 0.5, 0, 0)
