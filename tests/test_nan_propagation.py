"""NaN propagation through the activation kernels, the GEMM epilogue, the losses and whole models
(issue 20, item 2), on every ISA path.

Forward: f(NaN) = NaN for every activation, as NumPy and PyTorch (softmax: the whole row).
Backward at NaN x gives what PyTorch's autograd gives:
  relu        threshold_backward: dx = 0 where x <= 0, else dy   -> NaN x passes dy through
  leaky_relu  dx = dy where x > 0, else alpha dy                -> NaN x gives alpha dy
  elu/selu    dx = dy (scale) where x > 0, else dy f'(x)         -> NaN (f'(x) from y = NaN);
              torch's vectorised kernel gives NaN as well, its scalar tail gives dy
  sigmoid, tanh, softmax are functions of y = f(x) = NaN        -> NaN
so a NaN anywhere upstream still reaches the loss, the gradients and TerminateOnNaN.
Before the fix relu(NaN) was 0 and a network with NaN weights predicted finite numbers.
"""
import math

import numpy as np
import pytest

import annfast as af
from annfast import _core, activations, callbacks, optimizers

DTYPES = (np.float32, np.float64)
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
ALPHA = {"leaky_relu": 0.2, "elu": 0.7}
ROW_LENGTHS = (1, 7, 16, 33, 100)  # scalar only, vector tails, exact vectors, several vectors


def ref_forward(name, x, alpha):
    """NumPy definitions (NaN propagates through np.maximum, np.where's arithmetic and np.max)."""
    with np.errstate(invalid="ignore", over="ignore"):
        if name == "linear":
            return x.copy()
        if name == "sigmoid":
            return 1.0 / (1.0 + np.exp(-x))
        if name == "tanh":
            return np.tanh(x)
        if name == "relu":
            return np.maximum(x, 0.0)
        if name == "leaky_relu":
            return np.where(x > 0, x, alpha * x)
        if name == "elu":
            return np.where(x > 0, x, alpha * np.expm1(x))
        if name == "selu":
            return SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(x))
        if name == "softmax":
            e = np.exp(x - x.max(axis=-1, keepdims=True))
            return e / e.sum(axis=-1, keepdims=True)
        if name == "gelu":
            return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))
        if name == "swish":
            return x / (1.0 + np.exp(-x))
    raise KeyError(name)


def ref_backward(name, x, y, dy, alpha):
    """The derivative formulas of the module doc, written with the same comparisons."""
    with np.errstate(invalid="ignore"):
        if name == "linear":
            return dy.copy()
        if name == "relu":
            return np.where(x <= 0, 0.0, dy)
        if name == "leaky_relu":
            return np.where(x > 0, dy, alpha * dy)
        if name == "elu":
            return np.where(x > 0, dy, dy * (y + alpha))
        if name == "selu":
            return np.where(x > 0, SELU_SCALE * dy, dy * (y + SELU_SCALE * SELU_ALPHA))
        if name == "sigmoid":
            return dy * y * (1 - y)
        if name == "tanh":
            return dy * (1 - y * y)
        if name == "softmax":
            return y * (dy - (dy * y).sum(axis=-1, keepdims=True))
        if name == "gelu":
            cdf = 0.5 * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))
            return dy * (cdf + x * np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi))
        if name == "swish":
            s = 1.0 / (1.0 + np.exp(-x))
            return dy * (s * (1.0 + x * (1.0 - s)))
    raise KeyError(name)


def close(got, want, dtype):
    """Same NaN positions; other values within the activation tests' tolerances."""
    assert got.dtype == dtype
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    tol = dict(rtol=2e-6, atol=1e-7) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(got, want, equal_nan=True, **tol)


def rows_with_nan(rng, n, dtype, where="x"):
    """Rows of length n: one without NaN, then one NaN at the start, middle and end of a row,
    and a row of NaN. Values straddle 0 (and include exact zeros) so both branches run."""
    x = rng.normal(scale=2.0, size=(5, n))
    x[0, :: max(1, n // 3)] = 0.0
    for r, pos in ((1, 0), (2, n // 2), (3, n - 1)):
        x[r, pos] = np.nan
    x[4] = np.nan
    return x.astype(dtype)


@pytest.mark.parametrize("name", activations.NAMES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_forward_propagates_nan(isa, name, dtype):
    rng = np.random.default_rng(1)
    alpha = ALPHA.get(name, 0.0)
    for n in ROW_LENGTHS:
        x = rows_with_nan(rng, n, dtype)
        got = _core.act_forward(name, alpha, x)
        want = ref_forward(name, x.astype(np.float64), alpha)
        close(got, want.astype(dtype), dtype)
        assert np.isnan(got[1:]).any(axis=1).all()  # every row holding a NaN still holds one


@pytest.mark.parametrize("name", activations.NAMES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_backward_nan_x(isa, name, dtype):
    rng = np.random.default_rng(2)
    alpha = ALPHA.get(name, 0.0)
    for n in ROW_LENGTHS:
        x = rows_with_nan(rng, n, dtype)
        y = _core.act_forward(name, alpha, x)
        dy = rng.normal(size=x.shape).astype(dtype)
        got = _core.act_backward(name, alpha, x, y, dy)
        want = ref_backward(name, x.astype(np.float64), y.astype(np.float64), dy.astype(np.float64), alpha)
        close(got, want.astype(dtype), dtype)


@pytest.mark.parametrize("name", activations.NAMES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_backward_nan_dy(isa, name, dtype):
    """NaN in the incoming gradient: passes through every branch except relu's masked x <= 0."""
    rng = np.random.default_rng(3)
    alpha = ALPHA.get(name, 0.0)
    for n in ROW_LENGTHS:
        x = rng.normal(scale=2.0, size=(5, n)).astype(dtype)
        x[0, 0] = 0.0
        y = _core.act_forward(name, alpha, x)
        dy = rows_with_nan(rng, n, dtype)
        got = _core.act_backward(name, alpha, x, y, dy)
        want = ref_backward(name, x.astype(np.float64), y.astype(np.float64), dy.astype(np.float64), alpha)
        close(got, want.astype(dtype), dtype)


@pytest.mark.parametrize("name", activations.NAMES)
def test_activation_nan_semantics_match_torch(name):
    """The reference formulas above give PyTorch's results: check them against torch itself
    (except elu/selu gradients at NaN x, where torch's answer depends on the element's position:
    NaN from its vectorised loop, dy from its scalar tail)."""
    torch = pytest.importorskip("torch", reason="PyTorch not installed (optional oracle)")
    F = torch.nn.functional
    fn = {"linear": lambda t: t * 1, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": F.relu,
          "leaky_relu": lambda t: F.leaky_relu(t, ALPHA["leaky_relu"]),
          "elu": lambda t: F.elu(t, ALPHA["elu"]), "selu": F.selu,
          "softmax": lambda t: F.softmax(t, dim=-1), "gelu": F.gelu, "swish": F.silu}[name]
    rng = np.random.default_rng(4)
    alpha = ALPHA.get(name, 0.0)
    for x, dy in ((rows_with_nan(rng, 9, np.float64), rng.normal(size=(5, 9))),
                  (rng.normal(size=(5, 9)), rows_with_nan(rng, 9, np.float64))):
        xt = torch.tensor(x, requires_grad=True)
        yt = fn(xt)
        yt.backward(torch.tensor(dy))
        y = yt.detach().numpy()
        grad = xt.grad.numpy()
        if name in ("elu", "selu"):
            undefined = np.isnan(x)
            grad = np.where(undefined, ref_backward(name, x, y, dy, alpha), grad)
        close(y, ref_forward(name, x, alpha), np.float64)
        close(grad, ref_backward(name, x, y, dy, alpha), np.float64)
        close(_core.act_forward(name, alpha, x), y, np.float64)
        close(_core.act_backward(name, alpha, x, y, dy), grad, np.float64)


# ---------------------------------------------------------------- GEMM epilogue
GEMM_SHAPES = [(2, 3, 3), (1, 70, 33), (2, 40, 300), (64, 40, 48), (300, 64, 200)]


@pytest.mark.parametrize("name", [a for a in activations.NAMES if a != "softmax"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_epilogue_propagates_nan(isa, name, dtype):
    """C = act(A B + bias) with a NaN in A (a whole row of C) and in the bias (a column): tiny,
    one-/two-row, packed and threaded products."""
    rng = np.random.default_rng(5)
    alpha = ALPHA.get(name, 0.0)
    for m, k, n in GEMM_SHAPES:
        a = rng.normal(size=(m, k)).astype(dtype)
        b = rng.normal(size=(k, n)).astype(dtype)
        bias = rng.normal(size=n).astype(dtype)
        a[m // 2, k - 1] = np.nan
        bias[n - 1] = np.nan
        c = np.empty((m, n), dtype)
        _core.gemm(False, False, 1.0, a, b, 0.0, c, bias=bias, activation=name, act_param=alpha)
        z = a.astype(np.float64) @ b.astype(np.float64) + bias
        want = ref_forward(name, z, alpha)
        np.testing.assert_array_equal(np.isnan(c), np.isnan(want))
        assert np.isnan(c[m // 2]).all() and np.isnan(c[:, n - 1]).all()


# ---------------------------------------------------------------- losses and whole models
def nan_model(act, dtype, loss="mse", out_act=None, n_out=3):
    m = af.Sequential([af.Dense(6, activation=act), af.Dense(n_out, activation=out_act)],
                      input_dim=4, dtype=dtype, seed=0)
    m.compile(loss, optimizers.SGD(0.01))
    m.layers[0].kernel[1, 2] = np.nan  # one weight of one hidden unit
    return m


@pytest.mark.parametrize("act", activations.NAMES)
@pytest.mark.parametrize("dtype", ("float32", "float64"))
def test_model_with_nan_weight_predicts_and_evaluates_nan(isa, act, dtype):
    rng = np.random.default_rng(6)
    X, Y = rng.normal(size=(10, 4)), rng.normal(size=(10, 3))
    m = nan_model(act, dtype)
    assert np.isnan(m.predict(X)).all()
    assert np.isnan(m.evaluate(X, Y))
    loss, grads = m.gradients(X, Y, return_loss=True)
    assert np.isnan(loss)
    assert np.isnan(grads[0][:, 2]).all() and np.isnan(grads[1][2])  # the NaN unit's own gradient


@pytest.mark.parametrize("loss, out_act, target", [
    ("mse", None, "real"), ("mae", None, "real"), ("hinge", "tanh", "sign"),
    ("binary_crossentropy", "sigmoid", "binary"), ("categorical_crossentropy", "softmax", "onehot"),
    ("sparse_categorical_crossentropy", "softmax", "labels")])
@pytest.mark.parametrize("dtype", ("float32", "float64"))
def test_every_loss_reports_nan(isa, loss, out_act, target, dtype):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(12, 4))
    labels = rng.integers(0, 3, 12)
    Y = {"real": rng.normal(size=(12, 3)), "sign": np.where(rng.normal(size=(12, 3)) > 0, 1.0, -1.0),
         "binary": (rng.normal(size=(12, 3)) > 0).astype(float), "onehot": np.eye(3)[labels],
         "labels": labels}[target]
    m = nan_model("relu", dtype, loss, out_act)
    assert np.isnan(m.evaluate(X, Y))
    hist = m.fit(X, Y, epochs=3, batch_size=4, verbose=0, callbacks=[callbacks.TerminateOnNaN()])
    assert len(hist.history["loss"]) == 1 and np.isnan(hist.history["loss"][0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_loss_kernels_nan_prediction_gives_nan_loss(isa, dtype):
    """A NaN in one row of the predictions makes that row's loss NaN for every loss, from
    probabilities and from logits, and leaves the other rows alone (hinge used to clamp NaN to
    0 and categorical cross-entropy skipped the zero-target terms)."""
    rng = np.random.default_rng(8)
    p = rng.uniform(0.1, 0.9, (6, 4)).astype(dtype)
    p[2, 1] = np.nan
    onehot = np.eye(4, dtype=dtype)[[0, 0, 0, 1, 2, 3]]  # row 2's NaN is in a zero-target column
    for name, y in (("mse", onehot), ("mae", onehot), ("hinge", 2 * onehot - 1),
                    ("binary_crossentropy", onehot), ("categorical_crossentropy", onehot),
                    ("sparse_categorical_crossentropy", np.array([[0], [0], [0], [1], [2], [3]], dtype))):
        for logits in (False, True) if "crossentropy" in name else (False,):
            if name == "sparse_categorical_crossentropy" and not logits:
                continue  # -log p[label] only reads the label's column (as Keras and PyTorch)
            rl, g, _, _ = _core.loss_eval(name, logits, p, y)
            assert np.isnan(rl[2]), (name, logits)
            assert np.isfinite(np.delete(rl, 2)).all(), (name, logits)


def test_relu_model_gradients_match_torch_with_nan_weight():
    """The engine's fused relu backward (act_back_colsum) against autograd: same NaN pattern,
    same finite values (a hidden unit whose pre-activation is <= 0 for every row keeps finite,
    zero gradients in both)."""
    torch = pytest.importorskip("torch", reason="PyTorch not installed (optional oracle)")
    rng = np.random.default_rng(9)
    X, Y = rng.normal(size=(10, 4)), rng.normal(size=(10, 3))
    m = nan_model("relu", "float64")
    w = m.layers[0].kernel
    w[:, 4] = -np.abs(w[:, 4]) - 1
    m.layers[0].bias[4] = -100.0  # unit 4 never fires: its gradients stay exactly 0
    params = [torch.tensor(a, requires_grad=True) for a in
              (m.layers[0].kernel, m.layers[0].bias, m.layers[1].kernel, m.layers[1].bias)]
    W1, b1, W2, b2 = params
    out = torch.relu(torch.tensor(X) @ W1 + b1) @ W2 + b2
    torch.nn.functional.mse_loss(out, torch.tensor(Y)).backward()
    for got, p in zip(m.gradients(X, Y), params):
        close(got, p.grad.numpy(), np.float64)
    assert np.array_equal(m.gradients(X, Y)[0][:, 4], np.zeros(4))
