"""Activation functions on arrays, computed by the engine's C kernels (csrc/act.c).

Each function takes an array-like (any shape; softmax works over the last axis) and returns a new
float array (float32 input stays float32, anything else becomes float64):

>>> import numpy as np
>>> from annfast import activations
>>> activations.relu(np.array([-1.0, 2.0]))
array([0., 2.])
>>> activations.derivative("sigmoid", np.array([0.0]))
array([0.25])

Names (also accepted by ``Dense(activation=...)``; the list is the C engine's table): linear,
sigmoid, tanh, relu, leaky_relu (alpha, default 0.01 -- Keras 3 / PyTorch's 0.01 rather than
tf.keras' 0.3), elu (alpha=1.0), selu, softmax, gelu (exact, with erf, as PyTorch's default) and
swish (x sigmoid(x), also called silu).
"""
from typing import Optional, Tuple

import numpy as np
from numpy.typing import ArrayLike

from . import _core
from ._validate import as_array, check_float, float_dtype

NAMES = tuple(_core.ACTIVATIONS)  # the C engine's table, in its order
ALIASES = {"silu": "swish"}
# Default parameter of the parameterised activations.
DEFAULT_ALPHA = {"leaky_relu": 0.01, "elu": 1.0}


def check_name(name: Optional[str], param: Optional[float] = None,
               argname: str = "activation") -> Tuple[str, float]:
    """Validate an activation name (None means linear) and its parameter; returns (name, param)."""
    if name is None:
        name = "linear"
    if not isinstance(name, str):
        raise TypeError(f"{argname} must be a str (one of {', '.join(NAMES)}) or None, "
                        f"got {type(name).__name__} {name!r}")
    key = ALIASES.get(name.lower(), name.lower())
    if key not in NAMES:
        raise ValueError(f"{argname} must be one of {', '.join(NAMES)}; got {name!r}")
    if param is None:
        param = DEFAULT_ALPHA.get(key, 0.0)
    param = check_float(param, "alpha", minimum=0.0)
    return key, param


def _prepare(x):
    arr = np.asarray(x)
    dtype = float_dtype(arr)  # float32 stays float32 in either byte order
    shape = arr.shape
    arr = as_array(arr, "x", dtype).reshape(shape)
    flat = arr.reshape(1, -1) if arr.ndim < 2 else arr.reshape(-1, shape[-1])
    return np.ascontiguousarray(flat), shape


def _ready(x):
    """x as a 2-D view C can read directly (a native, aligned, C-contiguous float32/float64
    array with values), else None."""
    if type(x) is not np.ndarray or x.dtype not in (np.float32, np.float64) or not x.size or \
            not x.ndim or not (x.dtype.isnative and x.flags.c_contiguous and x.flags.aligned):
        return None
    return x.reshape(1, -1) if x.ndim < 2 else x.reshape(-1, x.shape[-1])


def apply(name: str, x: ArrayLike, alpha: Optional[float] = None) -> np.ndarray:
    """f(x) for the activation `name` (softmax over the last axis)."""
    key, param = check_name(name, alpha)
    flat = _ready(x)
    if flat is not None:
        # NaN/inf looked at in C, a block at a time just before f reads it (no separate pass);
        # when there is one, the general path below raises the usual error
        y = _core.act_forward(key, param, flat, check=True)
        if y is not None:
            return y.reshape(x.shape)
    flat, shape = _prepare(x)
    if key == "softmax" and len(shape) < 2:
        flat = flat.reshape(1, -1)
    return _core.act_forward(key, param, flat).reshape(shape)


def derivative(name: str, x: ArrayLike, dy: Optional[ArrayLike] = None,
               alpha: Optional[float] = None) -> np.ndarray:
    """dy * f'(x) (dy defaults to ones: the elementwise derivative f'(x)); for softmax, the
    Jacobian-vector product y * (dy - sum(dy * y)) over the last axis."""
    key, param = check_name(name, alpha)
    flat, shape = _prepare(x)
    y = _core.act_forward(key, param, flat)
    if dy is None:
        g = np.ones_like(flat)
    else:
        g = as_array(dy, "dy", flat.dtype)
        if g.shape != shape:
            raise ValueError(f"dy must have the shape of x {shape}, got {g.shape}")
        g = np.ascontiguousarray(g.reshape(flat.shape))
    return _core.act_backward(key, param, flat, y, g).reshape(shape)


def linear(x: ArrayLike) -> np.ndarray:
    """Identity: f(x) = x."""
    return apply("linear", x)


def sigmoid(x: ArrayLike) -> np.ndarray:
    """f(x) = 1 / (1 + exp(-x))."""
    return apply("sigmoid", x)


def tanh(x: ArrayLike) -> np.ndarray:
    """f(x) = tanh(x)."""
    return apply("tanh", x)


def relu(x: ArrayLike) -> np.ndarray:
    """f(x) = max(x, 0)."""
    return apply("relu", x)


def leaky_relu(x: ArrayLike, alpha: float = 0.01) -> np.ndarray:
    """f(x) = x for x > 0, alpha x otherwise."""
    return apply("leaky_relu", x, alpha)


def elu(x: ArrayLike, alpha: float = 1.0) -> np.ndarray:
    """f(x) = x for x > 0, alpha (exp(x) - 1) otherwise."""
    return apply("elu", x, alpha)


def selu(x: ArrayLike) -> np.ndarray:
    """f(x) = scale * (x for x > 0, alpha (exp(x) - 1) otherwise), alpha ~ 1.6733, scale ~ 1.0507."""
    return apply("selu", x)


def softmax(x: ArrayLike) -> np.ndarray:
    """f(x)_j = exp(x_j) / sum_k exp(x_k) over the last axis (computed as exp(x_j - max x))."""
    return apply("softmax", x)


def gelu(x: ArrayLike) -> np.ndarray:
    """f(x) = x Phi(x) = x (1 + erf(x / sqrt(2))) / 2 (exact form)."""
    return apply("gelu", x)


def swish(x: ArrayLike) -> np.ndarray:
    """f(x) = x sigmoid(x) (SiLU)."""
    return apply("swish", x)


silu = swish
