"""The tutorial's NeuralNetwork class, computed in C.

A drop-in for the NumPy class in the classic tutorial: same constructor, attributes, methods, printed
lines and numbers (float64, same formulas and update order), with feedforward/backward/train running
in C with the GIL released.
"""
import numpy as np
from numpy.typing import ArrayLike

from . import _core
from ._busy import exclusive_method
from ._validate import as_2d, check_float, check_int
from .reference import TutorialNeuralNetwork

PRINT_EVERY = 4000  # the tutorial prints the loss every 4000 epochs
# Overriding any of these switches the instance to the tutorial's own NumPy code (bit for bit).
_CUSTOMISABLE = ("sigmoid", "sigmoid_derivative", "feedforward", "backward")


class NeuralNetwork:
    """Two-layer sigmoid network trained with MSE by plain gradient descent, as in the tutorial.

    Example
    -------
    >>> import numpy as np
    >>> from annfast import NeuralNetwork
    >>> np.random.seed(0)
    >>> X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    >>> y = np.array([[0], [1], [1], [0]])
    >>> nn = NeuralNetwork(input_size=2, hidden_size=4, output_size=1)
    >>> nn.train(X, y, epochs=10000, learning_rate=0.1)    # doctest: +ELLIPSIS
    Epoch 0, Loss:...
    >>> nn.feedforward(X).shape
    (4, 1)

    Weights are ordinary float64 arrays (`weights_input_hidden`, `weights_hidden_output`,
    `bias_hidden`, `bias_output`): read them, change them in place or assign new ones. A subclass
    that overrides `sigmoid`, `sigmoid_derivative`, `feedforward` or `backward` runs the tutorial's
    NumPy code with its overrides, exactly as the tutorial class would.

    Threads: feedforward, backward and train hold the network for the whole call; another thread
    calling the same network waits until that call returns (so concurrent calls give the results
    of running them one after the other). Different networks train in parallel.
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int) -> None:
        for name, v in (("input_size", input_size), ("hidden_size", hidden_size),
                        ("output_size", output_size)):
            check_int(v, name, minimum=1)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.output_size = output_size

        # Drawn in the tutorial's order so np.random.seed(k) gives the tutorial's weights.
        self.weights_input_hidden = np.random.randn(self.input_size, self.hidden_size)
        self.weights_hidden_output = np.random.randn(self.hidden_size, self.output_size)

        self.bias_hidden = np.zeros((1, self.hidden_size))
        self.bias_output = np.zeros((1, self.output_size))

    # ---- the tutorial's element functions (used by the NumPy path for subclasses) ----
    def sigmoid(self, x: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-x))

    def sigmoid_derivative(self, x: np.ndarray) -> np.ndarray:
        return x * (1 - x)

    # ---- public methods ----
    # Each holds the instance for the whole call (annfast._busy): a second thread using the same
    # network waits for the running call to finish; different networks run in parallel.
    @exclusive_method
    def feedforward(self, X: ArrayLike) -> np.ndarray:
        """Forward pass; sets hidden_activation, hidden_output, output_activation,
        predicted_output and returns predicted_output (n_samples, output_size)."""
        if self._overridden(*_CUSTOMISABLE):
            return self._numpy_feedforward(self._X(X))
        X = self._X(X)
        with _Params(self) as p:
            n = X.shape[0]
            ha = np.empty((n, self.hidden_size))
            ho = np.empty_like(ha)
            oa = np.empty((n, self.output_size))
            pred = np.empty_like(oa)
            _core.tut_forward(*p.arrays, X, ha, ho, oa, pred)
        self.hidden_activation, self.hidden_output = ha, ho
        self.output_activation, self.predicted_output = oa, pred
        return pred

    @exclusive_method
    def backward(self, X: ArrayLike, y: ArrayLike, learning_rate: float) -> None:
        """One gradient step from the last feedforward's outputs (tutorial semantics)."""
        X, y = self._X(X), self._y(y)
        lr = check_float(learning_rate, "learning_rate")
        self._check_rows(X, y)
        if self._overridden(*_CUSTOMISABLE):
            return self._numpy_backward(X, y, lr)
        ho = self._cached("hidden_output", X.shape[0], self.hidden_size)
        pred = self._cached("predicted_output", X.shape[0], self.output_size)
        work = np.empty(X.shape[0] * (self.hidden_size + self.output_size))
        with _Params(self) as p:
            _core.tut_backward(*p.arrays, X, y, ho, pred, lr, work)

    @exclusive_method
    def train(self, X: ArrayLike, y: ArrayLike, epochs: int, learning_rate: float) -> None:
        """Train for `epochs` full-batch epochs, printing the MSE every 4000 epochs.

        The epoch loop runs in C; Python is re-entered only to print. Ctrl-C stops at an epoch
        boundary with the weights of the last completed epoch."""
        X, y = self._X(X), self._y(y)
        epochs = check_int(epochs, "epochs", minimum=0)
        lr = check_float(learning_rate, "learning_rate")
        self._check_rows(X, y)
        if self._overridden(*_CUSTOMISABLE):
            return self._numpy_train(X, y, epochs, lr)
        n = X.shape[0]
        ha = np.empty((n, self.hidden_size))
        ho = np.empty_like(ha)
        oa = np.empty((n, self.output_size))
        pred = np.empty_like(oa)
        work = np.empty(_core.tut_work_size(self.input_size, self.hidden_size, self.output_size, n))
        with _Params(self) as p:
            try:
                epoch = 0
                while epoch < epochs:
                    # one epoch on print epochs, else run in C up to the next print epoch
                    stop = epoch + 1 if epoch % PRINT_EVERY == 0 else \
                        min(epochs, (epoch // PRINT_EVERY + 1) * PRINT_EVERY)
                    _core.tut_train(*p.arrays, X, y, stop - epoch, lr, ha, ho, oa, pred, work)
                    if epoch % PRINT_EVERY == 0:
                        loss = np.mean(np.square(y - pred))
                        print(f"Epoch {epoch}, Loss:{loss}")
                    epoch = stop
            finally:
                if epochs and n:
                    self.hidden_activation, self.hidden_output = ha, ho
                    self.output_activation, self.predicted_output = oa, pred

    # ---- the tutorial's own NumPy code, for subclasses that override pieces of it ----
    _numpy_feedforward = TutorialNeuralNetwork.feedforward
    _numpy_backward = TutorialNeuralNetwork.backward
    _numpy_train = TutorialNeuralNetwork.train

    # ---- helpers ----
    def _overridden(self, *names):
        cls = type(self)
        return any(getattr(cls, n) is not getattr(NeuralNetwork, n) or n in self.__dict__ for n in names)

    def _X(self, X):
        return as_2d(X, "X", self.input_size)

    def _y(self, y):
        arr = as_2d(y, "y") if np.ndim(y) != 1 else None
        if arr is None:  # a 1-D y of length n is one target per sample
            if self.output_size != 1:
                raise ValueError(f"y must have shape (n_samples, {self.output_size}), got 1-D "
                                 f"shape {np.shape(y)}")
            arr = as_2d(np.reshape(y, (-1, 1)), "y")
        if arr.shape[1] != self.output_size:
            raise ValueError(f"y must have {self.output_size} columns (output_size), got shape {arr.shape}")
        return arr

    @staticmethod
    def _check_rows(X, y):
        if X.shape[0] != y.shape[0]:
            raise ValueError(f"X and y must have the same number of rows, got X {X.shape} and y {y.shape}")

    def _cached(self, name, n, w):
        arr = as_2d(getattr(self, name), name)
        if arr.shape != (n, w):
            raise ValueError(f"{name} from the last feedforward has shape {arr.shape}, expected ({n}, {w}):"
                             " call feedforward(X) with the same X before backward")
        return arr


class _Params:
    """The four parameter attributes as float64 C-contiguous arrays for the C calls.

    Arrays that already qualify are used in place (so updates land where the tutorial's `+=` would).
    Anything else the user assigned (lists, other dtypes or byte orders, Fortran order, misaligned
    buffers, (n,) biases) is validated, copied, and written back after the call: in place into a
    writable float array, else reassigned.
    """
    _SPECS = (("weights_input_hidden", "input_size", "hidden_size"),
              ("bias_hidden", None, "hidden_size"),
              ("weights_hidden_output", "hidden_size", "output_size"),
              ("bias_output", None, "output_size"))

    def __init__(self, net):
        self.net = net
        self.arrays, self._writeback = [], []
        for name, rows_attr, cols_attr in self._SPECS:
            orig = getattr(net, name)
            cols = getattr(net, cols_attr)
            shape = (getattr(net, rows_attr), cols) if rows_attr else (1, cols)
            arr = as_2d(orig, name) if np.ndim(orig) == 2 or rows_attr else as_2d(
                np.reshape(orig, (1, -1)) if np.ndim(orig) == 1 else orig, name)
            if arr.shape != shape:
                raise ValueError(f"{name} must have shape {shape}, got {np.shape(orig)}")
            # native float64 ('>f8' compares unequal), aligned, contiguous, writable
            direct = (isinstance(orig, np.ndarray) and orig.dtype == np.float64
                      and orig.flags.c_contiguous and orig.flags.aligned and orig.flags.writeable
                      and orig.ndim == 2)
            if direct:
                arr = orig
            else:
                arr = arr.copy()
                self._writeback.append((name, orig, arr))
            self.arrays.append(arr if rows_attr else arr.reshape(-1))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for name, orig, arr in self._writeback:
            if isinstance(orig, np.ndarray) and orig.flags.writeable and orig.dtype.kind == "f":
                orig[...] = arr.reshape(orig.shape)
            else:
                setattr(self.net, name, arr)
        return False
