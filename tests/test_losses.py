"""Losses: values against NumPy formulas, gradients against central finite differences (float64),
the fused logit forms' stability, metrics, and PyTorch's losses when installed."""
import numpy as np
import pytest

from annfast import losses as L
from annfast import metrics as M

EPS = 1e-7


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def ref(name, y, p, from_logits=False):
    """Per-sample losses, plain NumPy (Keras conventions)."""
    if name == "mse":
        return np.mean((p - y) ** 2, axis=1)
    if name == "mae":
        return np.mean(np.abs(p - y), axis=1)
    if name == "hinge":
        yy = 2 * y - 1 if np.all(np.isin(y, (0, 1))) else y
        return np.mean(np.maximum(0, 1 - yy * p), axis=1)
    if name == "binary_crossentropy":
        q = sigmoid(p) if from_logits else np.clip(p, EPS, 1 - EPS)
        return -np.mean(y * np.log(q) + (1 - y) * np.log(1 - q), axis=1)
    if name == "categorical_crossentropy":
        q = softmax(p) if from_logits else np.maximum(p, EPS)
        return -np.sum(y * np.log(q), axis=1)
    if name == "sparse_categorical_crossentropy":
        q = softmax(p) if from_logits else np.maximum(p, EPS)
        return -np.log(q[np.arange(len(y)), y.astype(int).ravel()])
    raise KeyError(name)


def case(name, from_logits, rng, m=6, n=4):
    """(y_true, y_pred) away from kinks and clamps."""
    if name in ("mse", "mae"):
        y = rng.normal(size=(m, n))
        p = y + rng.choice([-1, 1], size=(m, n)) * rng.uniform(0.1, 1, size=(m, n))
    elif name == "hinge":
        y = rng.choice([-1.0, 1.0], size=(m, n))
        p = rng.uniform(-3, 3, size=(m, n))
        p = np.where(np.abs(1 - y * p) < 0.05, p + 0.2, p)
    elif name == "binary_crossentropy":
        y = rng.uniform(size=(m, n))
        p = rng.normal(size=(m, n)) if from_logits else rng.uniform(0.05, 0.95, size=(m, n))
    elif name == "categorical_crossentropy":
        y = np.eye(n)[rng.integers(0, n, m)]
        p = rng.normal(size=(m, n)) if from_logits else softmax(rng.normal(size=(m, n)))
    else:
        y = rng.integers(0, n, m).astype(float).reshape(-1, 1)
        p = rng.normal(size=(m, n)) if from_logits else softmax(rng.normal(size=(m, n)))
    return y, p


CASES = [(n, False) for n in L.NAMES] + [(n, True) for n in L.FROM_LOGITS_OK]


@pytest.mark.parametrize("name,from_logits", CASES)
def test_values(name, from_logits):
    y, p = case(name, from_logits, np.random.default_rng(0))
    got = L.loss(name, y, p, from_logits=from_logits)
    np.testing.assert_allclose(got, ref(name, y, p, from_logits), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name,from_logits", CASES)
def test_gradient_finite_differences(name, from_logits):
    y, p = case(name, from_logits, np.random.default_rng(1))
    _, g = L.loss_and_gradient(name, y, p, from_logits=from_logits)

    def mean_loss(q):
        return np.mean(ref(name, y, q, from_logits))

    # central differences, h = 1e-6: truncation ~1e-12, rounding ~1e-10 relative
    h = 1e-6
    num = np.zeros_like(p)
    for idx in np.ndindex(p.shape):
        a, b = p.copy(), p.copy()
        a[idx] += h
        b[idx] -= h
        num[idx] = (mean_loss(a) - mean_loss(b)) / (2 * h)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name,from_logits", CASES)
def test_float32(name, from_logits):
    y, p = case(name, from_logits, np.random.default_rng(2))
    l32, g32 = L.loss_and_gradient(name, y.astype(np.float32), p.astype(np.float32), from_logits)
    l64, g64 = L.loss_and_gradient(name, y, p, from_logits)
    assert l32.dtype == np.float32 and g32.dtype == np.float32
    # inputs rounded to float32 (rel 6e-8) and float32 arithmetic: 1e-5 relative is ample
    np.testing.assert_allclose(l32, l64, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-6)


def test_logit_forms_do_not_overflow():
    z = np.array([[1000.0, -1000.0, 0.0]])
    for dt in (np.float32, np.float64):
        l, g = L.loss_and_gradient("categorical_crossentropy", np.array([[0.0, 1.0, 0.0]]), z.astype(dt),
                                   from_logits=True)
        np.testing.assert_allclose(l, [2000.0], rtol=1e-6)
        np.testing.assert_allclose(g, [[1.0, -1.0, 0.0]], atol=1e-6)
        l, g = L.loss_and_gradient("binary_crossentropy", np.array([[0.0, 1.0, 1.0]]), z.astype(dt),
                                   from_logits=True)
        assert np.all(np.isfinite(l)) and np.all(np.isfinite(g))
        np.testing.assert_allclose(l, [(1000 + 1000 + np.log(2)) / 3], rtol=1e-6)
    # probabilities exactly 0/1: clamped, finite
    l = L.binary_crossentropy([[1.0, 0.0]], [[0.0, 1.0]])
    np.testing.assert_allclose(l, [-np.log(EPS)], rtol=1e-6)
    assert np.isfinite(L.categorical_crossentropy([[1.0, 0.0]], [[0.0, 1.0]])).all()


def test_hinge_converts_01_labels_and_sparse_checks():
    p = np.array([[0.3], [-2.0]])
    np.testing.assert_allclose(L.hinge([[1], [0]], p), L.hinge([[1], [-1]], p))
    with pytest.raises(ValueError, match="-1/\\+1"):
        L.hinge([[2], [0]], p)
    with pytest.raises(ValueError, match="class indices"):
        L.sparse_categorical_crossentropy([0, 3], np.full((2, 3), 1 / 3))
    with pytest.raises(ValueError, match="class indices"):
        L.sparse_categorical_crossentropy([0, 0.5], np.full((2, 3), 1 / 3))
    with pytest.raises(ValueError, match="loss must be one of"):
        L.loss("kl_divergence", [[1.0]], [[1.0]])
    with pytest.raises(ValueError, match="from_logits"):
        L.loss("mse", [[1.0]], [[1.0]], from_logits=True)
    with pytest.raises(ValueError, match="shape"):
        L.mse(np.ones((3, 2)), np.ones((3, 3)))
    with pytest.raises(ValueError, match="finite"):
        L.mse([[np.nan]], [[1.0]])
    assert L.get("mean_squared_error") == "mse" and L.get("LOG_LOSS") == "binary_crossentropy"


def test_metrics():
    assert M.accuracy([[0, 1], [1, 0]], [[0.2, 0.8], [0.3, 0.7]]) == 0.5
    assert M.accuracy([1, 0], [[0.2, 0.8], [0.3, 0.7]]) == 0.5
    assert M.accuracy([1, 0, 1], [0.9, 0.2, 0.4]) == pytest.approx(2 / 3)
    assert M.rmse([[0.0, 0.0]], [[3.0, 4.0]]) == pytest.approx(np.sqrt(12.5))
    with pytest.raises(ValueError):
        M.get("f1")


@pytest.mark.parametrize("name,from_logits", CASES)
def test_against_torch(name, from_logits):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    y, p = case(name, from_logits, np.random.default_rng(3))
    tp = torch.tensor(p, requires_grad=True)
    ty = torch.tensor(y)
    if name == "mse":
        t = F.mse_loss(tp, ty)
    elif name == "mae":
        t = F.l1_loss(tp, ty)
    elif name == "hinge":
        t = torch.clamp(1 - ty * tp, min=0).mean()
    elif name == "binary_crossentropy":
        t = F.binary_cross_entropy_with_logits(tp, ty) if from_logits else F.binary_cross_entropy(tp, ty)
    elif name == "categorical_crossentropy":
        t = F.cross_entropy(tp, ty) if from_logits else F.nll_loss(torch.log(tp), ty.argmax(1))
    else:
        labels = ty.long().ravel()
        t = F.cross_entropy(tp, labels) if from_logits else F.nll_loss(torch.log(tp), labels)
    t.backward()
    l, g = L.loss_and_gradient(name, y, p, from_logits)
    # torch averages over every element where Keras averages per sample over outputs, then over
    # samples: the same mean for these losses; float64 -> 1e-12
    np.testing.assert_allclose(l.mean(), t.item(), rtol=1e-12)
    np.testing.assert_allclose(g, tp.grad.numpy(), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["categorical_crossentropy", "sparse_categorical_crossentropy"])
def test_fused_softmax_training_path_matches_evaluate(name, dtype):
    """The training step's softmax cross-entropy (a row-block kernel) against the evaluation
    path (row by row) and the NumPy loss and gradient. 300 rows span several row
    blocks; some rows have tied logits (argmax takes the first) and some a huge logit."""
    import annfast as af
    rng = np.random.default_rng(3)
    m, n = 300, 10
    Z = rng.normal(size=(m, n)) * 3
    Z[::7] = 0.5                     # ties
    Z[5, 2] = 80.0                   # e^80 overflows float32 without the max shift
    labels = rng.integers(0, n, m)
    y = labels.reshape(-1, 1).astype(float) if name.startswith("sparse") else np.eye(n)[labels]
    model = af.Sequential([af.Dense(n, activation="softmax", use_bias=False)], input_dim=n,
                          dtype=dtype, seed=0)
    model.compile(loss=name, optimizer=af.optimizers.SGD(learning_rate=0.0), metrics=["accuracy"])
    model.layers[0].kernel = np.eye(n)   # the logits are the inputs
    Zt = Z.astype(dtype)
    loss, (gW,) = model.gradients(Zt, y, return_loss=True)
    ev_loss, ev_acc = model.evaluate(Zt, y)
    # the exps differ at most in the last bit (the training path uses the ISA's exp kernel)
    assert loss == pytest.approx(ev_loss, rel=1e-6 if dtype == "float32" else 1e-14)
    Zd = Zt.astype(float)
    P = softmax(Zd)
    onehot = np.eye(n)[labels]
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(loss, np.mean(-np.log(P[np.arange(m), labels])), rtol=tol)
    np.testing.assert_allclose(gW, Zd.T @ (P - onehot) / m, rtol=tol * 10, atol=tol)
    assert ev_acc == np.mean(np.argmax(Zd, axis=1) == labels)
    # one epoch at learning rate 0: the training path's loss and accuracy sums per batch
    hist = model.fit(Zt, y, epochs=1, batch_size=m, shuffle=False, verbose=0).history
    assert hist["loss"][0] == pytest.approx(ev_loss, rel=1e-6 if dtype == "float32" else 1e-14)
    assert hist["accuracy"][0] == ev_acc
