"""The drop-in NeuralNetwork against a plain NumPy copy of the tutorial class."""
import contextlib
import io
import re

import numpy as np
import pytest

import annfast
from annfast import NeuralNetwork
from conftest import supported_isas
from tutorial_reference import TutorialNeuralNetwork

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
XOR_Y = np.array([[0], [1], [1], [0]])
PARAMS = ("weights_input_hidden", "weights_hidden_output", "bias_hidden", "bias_output")
# The tutorial's float64 arithmetic, reordered sums only: a few ulps per epoch that do not grow on a
# well-conditioned problem. 1e-9 relative to the array's magnitude is what the issue promises.
RTOL = 1e-9


def pair(sizes, seed):
    """Our network and the tutorial's, built from the same np.random state."""
    np.random.seed(seed)
    ours = NeuralNetwork(*sizes)
    np.random.seed(seed)
    ref = TutorialNeuralNetwork(*sizes)
    return ours, ref


def run_train(nn, X, y, epochs, lr):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        nn.train(X, y, epochs, lr)
    return out.getvalue()


def rel_err(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


def assert_same_state(ours, ref, X, rtol=RTOL):
    for name in PARAMS:
        got, want = getattr(ours, name), getattr(ref, name)
        assert isinstance(got, np.ndarray) and got.dtype == np.float64 and got.shape == want.shape, name
        assert rel_err(got, want) <= rtol, (name, rel_err(got, want))
    assert rel_err(ours.feedforward(X), ref.feedforward(X)) <= rtol


def losses(text):
    return [(int(e), float(v)) for e, v in re.findall(r"^Epoch (\d+), Loss:(\S+)$", text, re.M)]


def test_initial_weights_and_attributes_identical():
    ours, ref = pair((3, 5, 2), seed=7)
    for name in PARAMS:
        np.testing.assert_array_equal(getattr(ours, name), getattr(ref, name))
        assert getattr(ours, name).dtype == np.float64
    assert (ours.input_size, ours.hidden_size, ours.output_size) == (3, 5, 2)


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_xor_training_parity(seed, isa):
    ours, ref = pair((2, 4, 1), seed)
    out_ours = run_train(ours, XOR_X, XOR_Y, 10000, 0.1)
    out_ref = run_train(ref, XOR_X, XOR_Y, 10000, 0.1)
    lo, lr_ = losses(out_ours), losses(out_ref)
    assert [e for e, _ in lo] == [0, 4000, 8000] == [e for e, _ in lr_]
    for (_, a), (_, b) in zip(lo, lr_):
        assert abs(a - b) <= RTOL * abs(b)
    assert_same_state(ours, ref, XOR_X)
    # attributes set by the last epoch's forward pass, as in the tutorial
    for name in ("hidden_activation", "hidden_output", "output_activation", "predicted_output"):
        assert rel_err(getattr(ours, name), getattr(ref, name)) <= RTOL


def test_random_problem_parity(threads):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(64, 8))
    y = rng.uniform(size=(64, 3))
    for t in (1, 2):
        threads(t)
        ours, ref = pair((8, 16, 3), seed=5)
        got, want = losses(run_train(ours, X, y, 3000, 0.01)), losses(run_train(ref, X, y, 3000, 0.01))
        assert [e for e, _ in got] == [e for e, _ in want] == [0]
        assert [v for _, v in got] == pytest.approx([v for _, v in want], rel=RTOL)
        assert_same_state(ours, ref, X)


def test_bigger_network_parity():
    rng = np.random.default_rng(11)
    X = rng.normal(size=(256, 64))
    y = rng.uniform(size=(256, 10))
    ours, ref = pair((64, 128, 10), seed=2)
    run_train(ours, X, y, 50, 0.001)
    run_train(ref, X, y, 50, 0.001)
    assert_same_state(ours, ref, X)


@pytest.mark.parametrize("sizes,n", [((64, 256, 10), 1024), ((30, 100, 5), 2600), ((12, 200, 9), 1500)])
def test_epochs_in_pieces_parity_and_threads(sizes, n, threads):
    """Epochs with enough work run their rows in pieces (2 for 1024 rows, 5 of 520 for 2600, 2 of
    750 for 1500), each piece's weight gradients summed after: within RTOL of the NumPy class, and
    the same bits on 1 and 2 threads."""
    rng = np.random.default_rng(8)
    X, y = rng.normal(size=(n, sizes[0])), rng.uniform(size=(n, sizes[2]))
    states = []
    for t in (1, 2):
        threads(t)
        ours, ref = pair(sizes, seed=3)
        got, want = losses(run_train(ours, X, y, 30, 0.002)), losses(run_train(ref, X, y, 30, 0.002))
        assert [v for _, v in got] == pytest.approx([v for _, v in want], rel=RTOL)
        assert_same_state(ours, ref, X)
        states.append([np.array(getattr(ours, p)) for p in PARAMS + ("hidden_output", "predicted_output")])
    for a, b in zip(*states):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("sizes,n", [((1, 1, 1), 1), ((3, 5, 2), 13), ((8, 16, 3), 64), ((17, 9, 7), 70),
                                     ((2, 3, 4), 5)])
def test_small_networks_whole_epoch_kernel_parity(sizes, n, isa):
    """Networks this small run each epoch as one kernel, rows laid out as columns and padded to 8
    (csrc/kernels/tut_kern_impl.h): within RTOL of the NumPy class on every kernel path, the
    printed losses and the last epoch's four forward attributes included; rows that are not a
    multiple of 8 and widths that are not a multiple of the blocks' 4."""
    rng = np.random.default_rng(n)
    X, y = rng.normal(size=(n, sizes[0])), rng.uniform(size=(n, sizes[2]))
    ours, ref = pair(sizes, seed=n)
    got, want = losses(run_train(ours, X, y, 300, 0.05)), losses(run_train(ref, X, y, 300, 0.05))
    assert [e for e, _ in got] == [e for e, _ in want] == [0]
    assert [v for _, v in got] == pytest.approx([v for _, v in want], rel=RTOL)
    assert_same_state(ours, ref, X)
    for name in ("hidden_activation", "hidden_output", "output_activation", "predicted_output"):
        assert getattr(ours, name).shape == getattr(ref, name).shape
        assert rel_err(getattr(ours, name), getattr(ref, name)) <= RTOL, name


def test_whole_epoch_sigmoid_over_the_whole_range_same_bits_on_every_path():
    """The fused epoch's sigmoid is written per ISA (csrc/kernels/tut_kern_impl.h): over inputs
    from -800 to 800, where e^-x is subnormal, 0, near the largest double or inf (the ends of
    the exponential's 2^k scaling), every path is within 3 ulp of 1 / (1 + exp(-x)), subnormal
    results flushed to 0 as annfast computes (csrc/fpenv.h), and the paths with FMA (the same
    roundings) give the same bits."""
    x = np.concatenate([np.linspace(-800, 800, 401), [-746, -745.2, -710, -709.8, -709.5, -709.1, -708.4,
                        -40, -37, -1e-300, 0, 1e-300, 36, 37, 708.4, 709.1, 709.4, 709.5, 709.78, 709.8,
                        710, 710.5, 745.2, 746]])
    x = np.concatenate([x, np.zeros(-len(x) % 8)]).reshape(-1, 1)
    with np.errstate(over="ignore"):
        want = 1 / (1 + np.exp(-x))
    want[np.abs(want) < np.finfo(np.float64).tiny] = 0.0
    got, fma = [], [path for path in supported_isas() if path != "generic"]
    before = annfast.get_isa()
    try:
        for path in ["generic"] + fma:
            annfast.set_isa(path)
            nn = NeuralNetwork(1, 1, 1)
            nn.weights_input_hidden[...] = 1.0
            nn.weights_hidden_output[...] = 1.0
            with contextlib.redirect_stdout(io.StringIO()):
                nn.train(x, np.zeros_like(x), 1, 0.0)
            got.append(nn.hidden_output.copy())
    finally:
        annfast.set_isa(before)
    for g in got:
        np.testing.assert_allclose(g, want, rtol=3 * 2.0 ** -52, atol=0)
    for g in got[2:]:
        np.testing.assert_array_equal(g, got[1])


def test_threads_bitwise_identical(threads):
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(300, 20)), rng.uniform(size=(300, 4))
    results = []
    for t in (1, 2):
        threads(t)
        np.random.seed(0)
        nn = NeuralNetwork(20, 64, 4)
        run_train(nn, X, y, 20, 0.01)
        results.append([getattr(nn, p).copy() for p in PARAMS])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("sizes,n", [((20, 64, 4), 300), ((64, 256, 10), 1100), ((7, 40, 3), 37)])
def test_epochs_in_one_call_same_bits_as_one_at_a_time(sizes, n, threads):
    """train() runs its epochs in C: all but the last compute H and P in the GEMM epilogue without
    keeping the pre-activations, by blocks of rows on several threads. That gives the same bits
    as epochs run one call at a time (each a full forward pass keeping everything), on 1 and 2
    threads, and the four forward attributes are those of the last epoch."""
    from annfast import _core
    _core._set_busy_check(False)
    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(n, sizes[0])), rng.uniform(size=(n, sizes[2]))
    states = []
    for t in (1, 2):
        threads(t)
        for chunks in ([6], [1] * 6):
            np.random.seed(0)
            nn = NeuralNetwork(*sizes)
            for e in chunks:
                run_train(nn, X, y, e, 0.05)
            states.append([np.array(getattr(nn, p)) for p in PARAMS + (
                "hidden_activation", "hidden_output", "output_activation", "predicted_output")])
    for other in states[1:]:
        for a, b in zip(states[0], other):
            np.testing.assert_array_equal(a, b)


def tanh_sigmoid_class(base):
    class TanhSigmoid(base):
        # the same function, computed another way: a few ulps apart from 1/(1+exp(-x))
        def sigmoid(self, x):
            return 0.5 * (1.0 + np.tanh(0.5 * x))
    return TanhSigmoid


def test_chaotic_training_within_10x_of_one_ulp_sensitivity():
    """A hard problem with a large rate: measure how far a one-ulp change inside the NumPy class moves
    the result, and require our deviation from the NumPy class to be within 10x of that."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(32, 6)) * 3
    y = (rng.uniform(size=(32, 2)) > 0.5).astype(float)
    sizes, epochs, lr = (6, 12, 2), 6000, 3.0
    ours, ref = pair(sizes, seed=9)
    np.random.seed(9)
    ref_ulp = tanh_sigmoid_class(TutorialNeuralNetwork)(*sizes)
    for nn in (ours, ref, ref_ulp):
        run_train(nn, X, y, epochs, lr)
    sensitivity = max(rel_err(getattr(ref_ulp, p), getattr(ref, p)) for p in PARAMS)
    deviation = max(rel_err(getattr(ours, p), getattr(ref, p)) for p in PARAMS)
    assert deviation <= 10 * max(sensitivity, RTOL), (deviation, sensitivity)


def test_step_by_step_feedforward_backward_parity():
    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(10, 3)), rng.uniform(size=(10, 2))
    ours, ref = pair((3, 7, 2), seed=3)
    for _ in range(25):
        a, b = ours.feedforward(X), ref.feedforward(X)
        assert isinstance(a, np.ndarray) and a.dtype == np.float64 and a.shape == (10, 2)
        assert rel_err(a, b) <= 1e-12
        for name in ("hidden_activation", "hidden_output", "output_activation"):
            assert rel_err(getattr(ours, name), getattr(ref, name)) <= 1e-12
        assert ours.backward(X, y, 0.5) is None
        ref.backward(X, y, 0.5)
    assert_same_state(ours, ref, X, rtol=1e-12)


def test_sigmoid_and_derivative_methods():
    nn = NeuralNetwork(2, 2, 1)
    x = np.linspace(-5, 5, 11)
    np.testing.assert_array_equal(nn.sigmoid(x), 1 / (1 + np.exp(-x)))
    np.testing.assert_array_equal(nn.sigmoid_derivative(x), x * (1 - x))


def test_user_assigned_weights_are_used():
    ours, ref = pair((2, 3, 1), seed=1)
    w = np.arange(6, dtype=float).reshape(2, 3) / 10
    ours.weights_input_hidden = w.copy()
    ref.weights_input_hidden = w.copy()
    ours.bias_output[...] = 0.25  # in-place edit
    ref.bias_output[...] = 0.25
    np.testing.assert_allclose(ours.feedforward(XOR_X), ref.feedforward(XOR_X), rtol=1e-14)
    # the tutorial updates weights in place: a user's reference sees the update
    held = ours.weights_hidden_output
    run_train(ours, XOR_X, XOR_Y, 10, 0.1)
    run_train(ref, XOR_X, XOR_Y, 10, 0.1)
    assert held is ours.weights_hidden_output
    assert_same_state(ours, ref, XOR_X, rtol=1e-12)


@pytest.mark.parametrize("convert", [
    lambda a: a.tolist(),
    lambda a: np.asfortranarray(a),
    lambda a: a.astype(np.longdouble),
    lambda a: np.repeat(a, 2, axis=1)[:, ::2],
], ids=["list", "fortran", "longdouble", "strided"])
def test_assigned_weight_forms(convert):
    ours, ref = pair((2, 3, 1), seed=2)
    ours.weights_input_hidden = convert(ref.weights_input_hidden.copy())
    run_train(ours, XOR_X, XOR_Y, 100, 0.1)
    run_train(ref, XOR_X, XOR_Y, 100, 0.1)
    np.testing.assert_allclose(np.asarray(ours.weights_input_hidden, float), ref.weights_input_hidden,
                               rtol=1e-12)
    # an assigned float array keeps its dtype and identity, as the tutorial's in-place += would
    ours.weights_input_hidden = np.asarray(ours.weights_input_hidden, float)
    assert_same_state(ours, ref, XOR_X, rtol=1e-12)


def test_bias_of_shape_n_is_accepted():
    ours, ref = pair((2, 3, 1), seed=2)
    ours.bias_hidden = np.zeros(3)
    np.testing.assert_allclose(ours.feedforward(XOR_X), ref.feedforward(XOR_X), rtol=1e-14)


def test_subclass_overrides_use_numpy_semantics():
    sizes = (2, 4, 1)
    np.random.seed(5)
    ours = tanh_sigmoid_class(NeuralNetwork)(*sizes)
    np.random.seed(5)
    ref = tanh_sigmoid_class(TutorialNeuralNetwork)(*sizes)
    a, b = run_train(ours, XOR_X, XOR_Y, 500, 0.1), run_train(ref, XOR_X, XOR_Y, 500, 0.1)
    assert a == b
    for p in PARAMS:
        np.testing.assert_array_equal(getattr(ours, p), getattr(ref, p))


def test_subclass_feedforward_and_backward_overrides_are_called():
    calls = []

    class Logged(NeuralNetwork):
        def feedforward(self, X):
            calls.append("ff")
            return super().feedforward(X)

        def backward(self, X, y, learning_rate):
            calls.append("bw")
            super().backward(X, y, learning_rate * 0)  # a customisation: freeze the weights

    np.random.seed(0)
    nn = Logged(2, 3, 1)
    before = nn.weights_input_hidden.copy()
    run_train(nn, XOR_X, XOR_Y, 3, 0.1)
    assert calls == ["ff", "bw"] * 3
    np.testing.assert_array_equal(nn.weights_input_hidden, before)


def test_subclass_derivative_override():
    class Scaled(NeuralNetwork):
        def sigmoid_derivative(self, x):
            return 2 * x * (1 - x)

    class ScaledRef(TutorialNeuralNetwork):
        def sigmoid_derivative(self, x):
            return 2 * x * (1 - x)

    np.random.seed(1)
    ours = Scaled(2, 3, 1)
    np.random.seed(1)
    ref = ScaledRef(2, 3, 1)
    run_train(ours, XOR_X, XOR_Y, 200, 0.1)
    run_train(ref, XOR_X, XOR_Y, 200, 0.1)
    assert_same_state(ours, ref, XOR_X, rtol=1e-12)


@pytest.mark.parametrize("form", ["int", "list", "float32", "fortran", "strided", "readonly"])
def test_input_forms(form):
    Xf = XOR_X.astype(np.float64)
    X = {"int": XOR_X, "list": XOR_X.tolist(), "float32": XOR_X.astype(np.float32),
         "fortran": np.asfortranarray(Xf), "strided": np.repeat(Xf, 3, axis=1)[:, ::3],
         "readonly": Xf.copy()}[form]
    if form == "readonly":
        X.setflags(write=False)
    y = XOR_Y.tolist() if form == "list" else XOR_Y
    ours, ref = pair((2, 4, 1), seed=3)
    x_before = np.array(X, copy=True)
    run_train(ours, X, y, 300, 0.1)
    run_train(ref, XOR_X, XOR_Y, 300, 0.1)
    assert_same_state(ours, ref, XOR_X, rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(X), x_before)  # never writes into the caller's input


def test_one_dimensional_y_for_single_output():
    ours, ref = pair((2, 4, 1), seed=3)
    run_train(ours, XOR_X, XOR_Y.ravel(), 300, 0.1)
    run_train(ref, XOR_X, XOR_Y, 300, 0.1)
    assert_same_state(ours, ref, XOR_X, rtol=1e-12)


def test_single_sample_vector_input():
    ours, ref = pair((2, 4, 1), seed=3)
    np.testing.assert_allclose(ours.feedforward(np.array([1, 0])), ref.feedforward(np.array([1, 0])),
                               rtol=1e-14)


def test_zero_epochs_and_empty_batch():
    ours, ref = pair((2, 4, 1), seed=3)
    assert run_train(ours, XOR_X, XOR_Y, 0, 0.1) == ""
    for p in PARAMS:
        np.testing.assert_array_equal(getattr(ours, p), getattr(ref, p))
    assert ours.feedforward(np.zeros((0, 2))).shape == (0, 1)


def snapshot(nn):
    return {p: np.array(getattr(nn, p), copy=True) for p in PARAMS}


BAD_CALLS = [
    # (description, call, expected exception, message fragment)
    ("X wrong columns", lambda nn: nn.train(np.zeros((4, 3)), XOR_Y, 10, 0.1), ValueError, r"2 columns, got shape \(4, 3\)"),
    ("y wrong rows", lambda nn: nn.train(XOR_X, np.zeros((3, 1)), 10, 0.1), ValueError, "same number of rows"),
    ("y wrong columns", lambda nn: nn.train(XOR_X, np.zeros((4, 2)), 10, 0.1), ValueError, "1 columns"),
    ("X 3-D", lambda nn: nn.feedforward(np.zeros((2, 2, 2))), ValueError, "2-D"),
    ("X strings", lambda nn: nn.feedforward([["a", "b"]]), TypeError, "numeric"),
    ("X object", lambda nn: nn.feedforward(np.array([[1, None]], dtype=object)), TypeError, "numbers"),
    ("X complex", lambda nn: nn.feedforward(np.ones((1, 2), complex)), TypeError, "dtype"),
    ("X bool", lambda nn: nn.feedforward(np.ones((1, 2), bool)), TypeError, "dtype"),
    ("X None", lambda nn: nn.feedforward(None), TypeError, "None"),
    ("X NaN", lambda nn: nn.train(np.array([[0, np.nan]]), [[1]], 10, 0.1), ValueError, "NaN"),
    ("y inf", lambda nn: nn.train(XOR_X, np.array([[0], [1], [np.inf], [0]]), 10, 0.1), ValueError, "inf"),
    ("ragged X", lambda nn: nn.feedforward([[1, 2], [3]]), ValueError, "X"),
    ("epochs negative", lambda nn: nn.train(XOR_X, XOR_Y, -1, 0.1), ValueError, "epochs"),
    ("epochs float", lambda nn: nn.train(XOR_X, XOR_Y, 10.5, 0.1), TypeError, "epochs"),
    ("epochs str", lambda nn: nn.train(XOR_X, XOR_Y, "10", 0.1), TypeError, "epochs"),
    ("lr NaN", lambda nn: nn.train(XOR_X, XOR_Y, 10, float("nan")), ValueError, "learning_rate"),
    ("lr inf", lambda nn: nn.backward(XOR_X, XOR_Y, float("inf")), ValueError, "learning_rate"),
    ("lr str", lambda nn: nn.train(XOR_X, XOR_Y, 10, "0.1"), TypeError, "learning_rate"),
    ("backward mismatched rows", lambda nn: (nn.feedforward(XOR_X[:2]), nn.backward(XOR_X, XOR_Y, 0.1)),
     ValueError, "feedforward"),
    ("y 1-D wrong length", lambda nn: nn.train(XOR_X, [0, 1, 1], 10, 0.1), ValueError, "rows"),
]


@pytest.mark.parametrize("desc,call,exc,fragment", BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_bad_input_rejected_and_state_unchanged(desc, call, exc, fragment):
    np.random.seed(0)
    nn = NeuralNetwork(2, 4, 1)
    before = snapshot(nn)
    with pytest.raises(exc, match=fragment):
        call(nn)
    for p, v in before.items():
        np.testing.assert_array_equal(getattr(nn, p), v)


def test_bad_weights_rejected_and_state_unchanged():
    np.random.seed(0)
    nn = NeuralNetwork(2, 4, 1)
    nn.weights_hidden_output = np.zeros((3, 1))
    before = snapshot(nn)
    with pytest.raises(ValueError, match=r"weights_hidden_output must have shape \(4, 1\)"):
        nn.train(XOR_X, XOR_Y, 5, 0.1)
    nn.weights_hidden_output = np.full((4, 1), np.nan)
    with pytest.raises(ValueError, match="NaN"):
        nn.feedforward(XOR_X)
    for p in ("weights_input_hidden", "bias_hidden", "bias_output"):
        np.testing.assert_array_equal(getattr(nn, p), before[p])


@pytest.mark.parametrize("sizes,exc", [((0, 4, 1), ValueError), ((2, -1, 1), ValueError),
                                       ((2, 4, 1.5), TypeError), ((2, "4", 1), TypeError),
                                       ((True, 4, 1), TypeError)])
def test_bad_sizes(sizes, exc):
    with pytest.raises(exc):
        NeuralNetwork(*sizes)


def test_numpy_integer_sizes_accepted():
    nn = NeuralNetwork(np.int64(2), np.int32(3), 1)
    assert nn.feedforward(XOR_X).shape == (4, 1)


def test_backward_before_feedforward_is_attribute_error():
    nn = NeuralNetwork(2, 3, 1)
    with pytest.raises(AttributeError):
        nn.backward(XOR_X, XOR_Y, 0.1)


def test_version_and_config(capsys):
    assert isinstance(annfast.__version__, str)
    annfast.show_config()
    out = capsys.readouterr().out
    for word in ("compiler", "OpenMP", "threads", "CPU features", "kernel path"):
        assert word in out
