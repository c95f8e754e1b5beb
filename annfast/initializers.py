"""Weight initialisers: ``f(shape, rng, dtype) -> ndarray``.

``get(name_or_callable)`` returns an initialiser; ``default_for(activation)`` picks one by
activation (He for the ReLU family, LeCun normal for SELU, Glorot uniform otherwise).

Fans follow the Dense kernel layout (n_in, units): ``fan_in = shape[0]``, ``fan_out = shape[1]``
(a 1-D shape uses its length for both; extra trailing axes multiply both by their product).

=================  ===============================================  =========================
name (aliases)     distribution                                     scale
=================  ===============================================  =========================
zeros, ones        constant
random_normal      N(mean, stddev^2)                                mean=0, stddev=0.05
random_uniform     U(minval, maxval)                                -0.05, 0.05
glorot_normal      N(0, s^2)            (xavier_normal)             s = sqrt(2 / (in + out))
glorot_uniform     U(-l, l)             (xavier_uniform)            l = sqrt(6 / (in + out))
he_normal          N(0, s^2)            (kaiming_normal)            s = sqrt(2 / in)
he_uniform         U(-l, l)             (kaiming_uniform)           l = sqrt(6 / in)
lecun_normal       N(0, s^2)                                        s = sqrt(1 / in)
lecun_uniform      U(-l, l)                                         l = sqrt(3 / in)
orthogonal         orthonormal rows or columns (QR of a normal)     gain (default 1)
=================  ===============================================  =========================

The Glorot/He/LeCun initialisers take ``gain`` (default 1), a factor on the standard deviation
and bound, as in torch.nn.init (``GlorotNormal(gain=4.0)`` is Glorot and Bengio's suggestion for
sigmoid layers).

Normal initialisers are plain (untruncated) normals with exactly the standard deviation above,
as torch.nn.init does (Keras truncates at two standard deviations and rescales). Values are drawn
in float64 from the given ``numpy.random.Generator`` and then cast, so one seed gives the same
weights (up to rounding) in float32 and float64.

>>> import numpy as np
>>> from annfast import initializers
>>> w = initializers.get("he_normal")((784, 256), np.random.default_rng(0), np.float32)
>>> w.shape, w.dtype
((784, 256), dtype('float32'))
>>> initializers.default_for("selu").name
'lecun_normal'
"""
import contextlib
import math
import numbers
import threading
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from ._validate import check_float

# A weight shape (an int is a 1-D shape); a random source (a Generator, an int seed or None).
ShapeLike = Union[int, Sequence[int]]
RngLike = Union[np.random.Generator, int, None]

__all__ = ["Initializer", "Zeros", "Ones", "RandomNormal", "RandomUniform", "GlorotNormal",
           "GlorotUniform", "HeNormal", "HeUniform", "LecunNormal", "LecunUniform", "Orthogonal", "get",
           "default_for", "compute_fans", "serialize"]


def compute_fans(shape: ShapeLike) -> Tuple[int, int]:
    """(fan_in, fan_out) of a weight shape; see the module docstring.

    >>> compute_fans((784, 256))
    (784, 256)
    """
    shape = _check_shape(shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[0] * receptive, shape[1] * receptive


def _check_shape(shape):
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        shape = tuple(shape)
    except TypeError:
        raise TypeError(f"shape must be a tuple of ints, got {type(shape).__name__}") from None
    for s in shape:
        if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 0:
            raise ValueError(f"shape must contain non-negative ints, got {shape}")
    return tuple(int(s) for s in shape)


def _check_args(shape, rng, dtype):
    shape = _check_shape(shape)
    if rng is None or (isinstance(rng, numbers.Integral) and not isinstance(rng, bool)):
        rng = np.random.default_rng(rng)
    elif not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator (or an int seed / None), "
                        f"got {type(rng).__name__}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return shape, rng, dtype


class Initializer:
    """Base class: ``init(shape, rng, dtype)`` returns a new array. Subclasses implement
    ``_sample(shape, rng)`` (float64) and list their parameters in ``_params``.

    >>> float(Zeros()((2, 3), np.random.default_rng(0), np.float64).sum())
    0.0
    """

    name = None
    _params = ()

    def __call__(self, shape: ShapeLike, rng: RngLike = None, dtype: DTypeLike = np.float64) -> np.ndarray:
        shape, rng, dtype = _check_args(shape, rng, dtype)
        return np.ascontiguousarray(self._sample(shape, rng), dtype=dtype)

    def _sample(self, shape, rng):
        raise NotImplementedError

    def get_config(self) -> Dict[str, Any]:
        """JSON-able dict: ``{"class_name": name, **parameters}``."""
        cfg = {"class_name": self.name}
        cfg.update({p: getattr(self, p) for p in self._params})
        return cfg

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{p}={getattr(self, p)!r}' for p in self._params)})"

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash((type(self), tuple(self.get_config().items())))


# What get() and the layers' initializer arguments take. Defined after Initializer so the alias
# holds the class itself: a string forward reference would be looked up in the module of each
# annotation that uses it, where typing.get_type_hints cannot find it.
InitializerLike = Union[str, Dict[str, Any], Initializer,
                        Callable[[Tuple[int, ...], np.random.Generator, np.dtype], ArrayLike]]


class Zeros(Initializer):
    """All zeros."""
    name = "zeros"

    def _sample(self, shape, rng):
        return np.zeros(shape)


class Ones(Initializer):
    """All ones."""
    name = "ones"

    def _sample(self, shape, rng):
        return np.ones(shape)


class RandomNormal(Initializer):
    """N(mean, stddev^2) (Keras defaults mean=0, stddev=0.05).

    >>> RandomNormal(stddev=1.0)((3,), np.random.default_rng(1)).shape
    (3,)
    """
    name = "random_normal"
    _params = ("mean", "stddev")

    def __init__(self, mean: float = 0.0, stddev: float = 0.05) -> None:
        self.mean = check_float(mean, "mean")
        self.stddev = check_float(stddev, "stddev", minimum=0.0)

    def _sample(self, shape, rng):
        return rng.normal(self.mean, self.stddev, size=shape)


class RandomUniform(Initializer):
    """U(minval, maxval) (Keras defaults -0.05, 0.05).

    >>> float(RandomUniform(0, 1)((1000,), np.random.default_rng(1)).max()) < 1
    True
    """
    name = "random_uniform"
    _params = ("minval", "maxval")

    def __init__(self, minval: float = -0.05, maxval: float = 0.05) -> None:
        self.minval = check_float(minval, "minval")
        self.maxval = check_float(maxval, "maxval")
        if self.maxval < self.minval:
            raise ValueError(f"maxval must be >= minval, got minval={self.minval}, maxval={self.maxval}")

    def _sample(self, shape, rng):
        return rng.uniform(self.minval, self.maxval, size=shape)


class _Scaled(Initializer):
    """Variance scaling: std = gain * sqrt(scale / fan), fan = fan_in or (fan_in + fan_out) / 2.

    gain multiplies the standard deviation (and the uniform bound), as torch.nn.init's gain;
    e.g. Glorot and Bengio (2010) suggest gain 4 for sigmoid layers."""
    scale = 1.0
    mode = "fan_in"
    distribution = "normal"
    _params = ("gain",)

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = check_float(gain, "gain", minimum=0.0, strict_min=True)

    def std(self, shape: ShapeLike) -> float:
        """The standard deviation of the drawn values for this shape."""
        fan_in, fan_out = compute_fans(shape)
        fan = fan_in if self.mode == "fan_in" else (fan_in + fan_out) / 2.0
        return self.gain * math.sqrt(self.scale / max(fan, 1))

    def limit(self, shape: ShapeLike) -> float:
        """Bound of the uniform variant: sqrt(3) std."""
        return math.sqrt(3.0) * self.std(shape)

    def _sample(self, shape, rng):
        if self.distribution == "normal":
            return rng.normal(0.0, self.std(shape), size=shape)
        lim = self.limit(shape)
        return rng.uniform(-lim, lim, size=shape)


class GlorotNormal(_Scaled):
    """Xavier/Glorot normal: std sqrt(2 / (fan_in + fan_out))."""
    name, mode, distribution = "glorot_normal", "fan_avg", "normal"


class GlorotUniform(_Scaled):
    """Xavier/Glorot uniform: U(-l, l), l = sqrt(6 / (fan_in + fan_out))."""
    name, mode, distribution = "glorot_uniform", "fan_avg", "uniform"


class HeNormal(_Scaled):
    """He/Kaiming normal (for ReLU): std sqrt(2 / fan_in)."""
    name, scale, distribution = "he_normal", 2.0, "normal"


class HeUniform(_Scaled):
    """He/Kaiming uniform: U(-l, l), l = sqrt(6 / fan_in)."""
    name, scale, distribution = "he_uniform", 2.0, "uniform"


class LecunNormal(_Scaled):
    """LeCun normal (for SELU): std sqrt(1 / fan_in)."""
    name, distribution = "lecun_normal", "normal"


class LecunUniform(_Scaled):
    """LeCun uniform: U(-l, l), l = sqrt(3 / fan_in)."""
    name, distribution = "lecun_uniform", "uniform"


_BLAS_CONTROLLER: Any = None
_BLAS_LOCK = threading.Lock()


@contextlib.contextmanager
def _one_blas_thread():
    """A context in which NumPy's BLAS runs on the calling thread (threadpoolctl, when it is
    installed; else no change). For the QR of Orthogonal: OpenBLAS's threads made it no faster
    (2 vCPUs: 512x128 15 ms threaded, 6 ms on one thread; 4096x1024 1.12 s and 1.07 s) and then
    spun for about 0.1 s, on the cores annfast's threads use next, after every recurrent layer
    was built. The QR's bits do not depend on OpenBLAS's thread count. One thread at a time:
    the limit is process-wide, and overlapping limits could restore each other's values."""
    global _BLAS_CONTROLLER
    with _BLAS_LOCK:
        if _BLAS_CONTROLLER is None:
            try:
                from threadpoolctl import ThreadpoolController
                _BLAS_CONTROLLER = ThreadpoolController()   # finds the loaded libraries once
            except Exception:  # not installed (an optional peer), or it could not inspect them
                _BLAS_CONTROLLER = False
        if _BLAS_CONTROLLER is False:
            yield
        else:
            with _BLAS_CONTROLLER.limit(limits=1, user_api="blas"):
                yield


class Orthogonal(Initializer):
    """A (semi-)orthogonal matrix times gain (Saxe et al. 2014; the default recurrent kernel of
    the recurrent layers, as in Keras): the shape is seen as (prod(shape[:-1]), shape[-1]); the
    Q factor of the QR decomposition of a standard normal matrix of that shape (transposed when
    it is wide), with the signs of R's diagonal folded in so the result is uniformly distributed.
    Rows are orthonormal when there are fewer rows than columns, else the columns.

    >>> w = Orthogonal()((4, 4), np.random.default_rng(0))
    >>> bool(np.allclose(w @ w.T, np.eye(4)))
    True
    """
    name = "orthogonal"
    _params = ("gain",)

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = check_float(gain, "gain", minimum=0.0, strict_min=True)

    def _sample(self, shape, rng):
        if len(shape) < 2:
            raise ValueError(f"the orthogonal initializer needs a shape of 2 or more axes, got {shape}")
        rows, cols = int(np.prod(shape[:-1])), shape[-1]
        a = rng.normal(size=(rows, cols) if rows >= cols else (cols, rows))
        with _one_blas_thread():
            q, r = np.linalg.qr(a)
        q = q * np.where(np.diag(r) < 0, -1.0, 1.0)
        return self.gain * (q if rows >= cols else q.T).reshape(shape)


_CLASSES = {c.name: c for c in (Zeros, Ones, RandomNormal, RandomUniform, GlorotNormal,
                                GlorotUniform, HeNormal, HeUniform, LecunNormal, LecunUniform,
                                Orthogonal)}
_ALIASES = {"xavier_normal": "glorot_normal", "xavier_uniform": "glorot_uniform",
            "kaiming_normal": "he_normal", "kaiming_uniform": "he_uniform", "normal": "random_normal",
            "uniform": "random_uniform", "zero": "zeros", "one": "ones"}


def get(identifier: InitializerLike) -> Union[Initializer, Callable[..., ArrayLike]]:
    """An initialiser from a name (aliases: xavier_*, kaiming_*), a ``get_config()`` dict, an
    Initializer (returned as is) or any callable ``f(shape, rng, dtype)`` (returned as is).

    >>> get("xavier_uniform")
    GlorotUniform(gain=1.0)
    """
    if isinstance(identifier, str):
        key = identifier.lower()
        key = _ALIASES.get(key, key)
        if key not in _CLASSES:
            raise ValueError(f"unknown initializer {identifier!r}; expected one of "
                             f"{sorted(set(_CLASSES) | set(_ALIASES))}")
        return _CLASSES[key]()
    if isinstance(identifier, dict):
        cfg = dict(identifier)
        name = cfg.pop("class_name", None)
        key = _ALIASES.get(str(name).lower(), str(name).lower())
        if key not in _CLASSES:
            raise ValueError(f"initializer config class_name must be one of {sorted(_CLASSES)}, got {name!r}")
        try:
            return _CLASSES[key](**cfg)
        except TypeError as exc:
            raise ValueError(f"bad config for initializer {name!r}: {exc}") from None
    if callable(identifier):
        return identifier
    raise TypeError(f"initializer must be a name, a config dict or a callable f(shape, rng, dtype), "
                    f"got {type(identifier).__name__}")


def serialize(init: Union[Initializer, Callable[..., ArrayLike]]) -> Optional[Dict[str, Any]]:
    """JSON-able form of an initialiser: its config dict; None for a plain callable (which
    cannot be saved)."""
    if isinstance(init, Initializer):
        return init.get_config()
    return None


_RELU_FAMILY = {"relu", "leaky_relu", "elu"}


def default_for(activation: Optional[str]) -> Initializer:
    """Sensible kernel initialiser for an activation: He normal for relu/leaky_relu/elu,
    LeCun normal for selu, Glorot uniform otherwise (None, linear, sigmoid, tanh, softmax).

    >>> default_for("relu").name, default_for(None).name
    ('he_normal', 'glorot_uniform')
    """
    name = activation.lower() if isinstance(activation, str) else None
    if name in _RELU_FAMILY:
        return HeNormal()
    if name == "selu":
        return LecunNormal()
    return GlorotUniform()
