"""Dense, Dropout, Flatten and Reshape (C kinds in csrc/layers/)."""
import numbers
from typing import Any, Dict, List, Literal, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.typing import DTypeLike

from .. import activations as _acts
from .._settings import Setting, boolean, integer, real
from ..initializers import InitializerLike
from .base import Layer, _shape_tuple, param_property
from .base import Shape, Shapes


def regularizer(kernel_regularizer, l1, l2):
    """(l1, l2) from kernel_regularizer (None, {"l1": a, "l2": b}, ("l1"|"l2", value)) or l1=/l2=.
    Only the structure is checked here; the values are checked by the l1/l2 settings."""
    if kernel_regularizer is None:
        return l1, l2
    if any(v is not None and not (isinstance(v, numbers.Real) and v == 0) for v in (l1, l2)):
        raise ValueError("give kernel_regularizer or l1=/l2=, not both")
    if isinstance(kernel_regularizer, dict):
        unknown = set(kernel_regularizer) - {"l1", "l2"}
        if unknown:
            raise ValueError(f"kernel_regularizer keys must be 'l1' and/or 'l2', got {sorted(unknown)}")
        return kernel_regularizer.get("l1"), kernel_regularizer.get("l2")
    if (isinstance(kernel_regularizer, tuple) and len(kernel_regularizer) == 2
            and kernel_regularizer[0] in ("l1", "l2")):
        v = kernel_regularizer[1]
        return (v, None) if kernel_regularizer[0] == "l1" else (None, v)
    raise TypeError("kernel_regularizer must be None, a dict {'l1': a, 'l2': b} or ('l1'|'l2', value), "
                    f"got {type(kernel_regularizer).__name__} {kernel_regularizer!r}")


def init_kernel(layer, name, shape, rng, dtype, activation):
    """Fill the view `name` from the layer's kernel_initializer (default by activation)."""
    from .. import initializers
    init = initializers.get(layer.kernel_initializer if layer.kernel_initializer is not None
                            else initializers.default_for(activation))
    w = np.asarray(init(shape, rng, dtype))
    if w.shape != tuple(shape) or not np.all(np.isfinite(w)):
        raise ValueError(f"kernel_initializer returned shape {w.shape} (expected {tuple(shape)}) or "
                         "non-finite values")
    layer._views[name][...] = w


def warn_single_softmax(layer, activation, width):
    """softmax over one unit is 1.0 whatever the input: the model cannot learn (Keras warns too)."""
    if activation == "softmax" and width == 1:
        import warnings
        warnings.warn(f"{layer.name}: softmax over a last axis of size 1 always outputs 1.0, so training "
                      "cannot change the prediction; for one binary output use activation='sigmoid' "
                      "(with binary_crossentropy)", UserWarning, stacklevel=4)


def activation_setting(value, label):
    return _acts.check_name(value, None, label)[0]


def default_alpha(layer):
    """A new activation starts with its default parameter, as Dense(activation=...) would."""
    layer.alpha = _acts.DEFAULT_ALPHA.get(layer.activation, 0.0)


class Dense(Layer):
    """Fully connected layer over the last axis: y = activation(x @ W + b), W of shape
    (n_in, units). On an input of shape (steps, features) it applies to every step (Keras).

    Parameters
    ----------
    units : int >= 1
    activation : None/'linear', 'sigmoid', 'tanh', 'relu', 'leaky_relu', 'elu', 'selu', 'softmax',
        'gelu', 'swish'
    alpha : slope of leaky_relu (default 0.01) / scale of elu (default 1.0); must be >= 0
    use_bias : bool
    kernel_initializer : name, config dict, annfast.initializers object or callable
        f(shape, rng, dtype); default by activation
        (annfast.initializers.default_for: He for the relu family, LeCun normal for selu,
        else Glorot uniform). Biases start at zero.
    kernel_regularizer : None, {'l1': a, 'l2': b} or ('l1'|'l2', value); or l1=, l2= directly.
        Adds l1 * sum|W| + l2 * sum W^2 to the loss.

    >>> import annfast as af
    >>> layer = af.Dense(8, activation="leaky_relu", alpha=0.1, l2=1e-4)
    """

    kind = "dense"
    supports_masking = True     # per step on a sequence: the mask passes on
    # Checked whenever assigned (also after training: the next call uses the new value).
    units = Setting(integer(1), frozen=True, doc="Output width (fixed once built).")
    use_bias = Setting(boolean, frozen=True, doc="Whether the layer has a bias (fixed once built).")
    activation = Setting(activation_setting, after=default_alpha,
                         doc="Activation name; assigning it resets alpha to that activation's default.")
    alpha = Setting(real(0.0), doc="leaky_relu slope / elu scale, >= 0.")
    l1 = Setting(real(0.0, none=True, none_value=0.0), doc="L1 penalty on the kernel, >= 0.")
    l2 = Setting(real(0.0, none=True, none_value=0.0), doc="L2 penalty on the kernel, >= 0.")

    def __init__(self, units: int, activation: Optional[str] = None, use_bias: bool = True,
                 kernel_initializer: Optional[InitializerLike] = None,
                 kernel_regularizer: Union[None, Dict[str, float], Tuple[Literal["l1", "l2"], float]] = None,
                 l1: Optional[float] = None, l2: Optional[float] = None, alpha: Optional[float] = None,
                 name: Optional[str] = None) -> None:
        super().__init__(name)
        self.units = units
        self.activation = activation
        if alpha is not None:
            self.alpha = alpha
        self.use_bias = use_bias
        if kernel_initializer is not None:
            from .. import initializers
            # name, config dict, Initializer or callable; errors (unknown name) raised now
            kernel_initializer = initializers.get(kernel_initializer)
        self.kernel_initializer = kernel_initializer
        self.l1, self.l2 = regularizer(kernel_regularizer, l1, l2)

    @property
    def n_in(self):
        return None if self._input_shape is None else self._input_shape[-1]

    @property
    def n_out(self):
        return self.units

    def output_shape(self, input_shape: Shapes) -> Shape:
        warn_single_softmax(self, self.activation, self.units)
        return tuple(input_shape[:-1]) + (self.units,)

    def param_shapes(self, input_shape: Shapes) -> List[Tuple[str, Shape]]:
        shapes = [("weights", (input_shape[-1], self.units))]
        if self.use_bias:
            shapes.append(("bias", (self.units,)))
        return shapes

    def c_config(self) -> Dict[str, Any]:
        return {"units": self.units, "activation": self.activation, "alpha": self.alpha,
                "use_bias": self.use_bias, "l1": self.l1, "l2": self.l2}

    def init_params(self, rng: np.random.Generator, dtype: DTypeLike) -> None:
        init_kernel(self, "weights", (self.n_in, self.units), rng, dtype, self.activation)
        if self.use_bias:
            self._views["bias"][...] = 0

    kernel = param_property(
        "weights",
        "Kernel W, shape (n_in, units): a view into the model's parameters (None before build); "
        "assigning copies into the model after checks.")

    bias = param_property(
        "bias",
        "Bias b, shape (units,) (None without use_bias or before build).",
        optional=True)

    def get_config(self) -> Dict[str, Any]:
        from .. import initializers
        # a plain callable cannot be serialised (None); the weights are saved anyway
        init = None if self.kernel_initializer is None else initializers.serialize(self.kernel_initializer)
        return {"class_name": "Dense", "units": self.units, "activation": self.activation,
                "alpha": self.alpha, "use_bias": self.use_bias, "kernel_initializer": init,
                "l1": self.l1, "l2": self.l2, "name": self.name}


class Dropout(Layer):
    """Inverted dropout: in training each input is zeroed with probability `rate` and the others
    are scaled by 1 / (1 - rate); at inference the layer is the identity. Masks come from a
    counter-based generator keyed by the model seed, the step and the element index, so they are
    reproducible and independent of the thread count.

    >>> import annfast as af
    >>> layer = af.Dropout(0.5)
    """

    kind = "dropout"
    supports_masking = True
    rate = Setting(real(0.0, 1.0, hi_open=True), doc="Fraction of inputs dropped in training, in [0, 1).")

    def __init__(self, rate: float, name: Optional[str] = None) -> None:
        super().__init__(name)
        self.rate = rate

    def c_config(self) -> Dict[str, Any]:
        return {"rate": self.rate}

    def get_config(self) -> Dict[str, Any]:
        return {"class_name": "Dropout", "rate": self.rate, "name": self.name}


class Flatten(Layer):
    """A sample of any shape as one vector: (batch, d1, d2, ...) -> (batch, d1 * d2 * ...).
    Free: the data is already laid out that way.

    >>> import annfast as af
    >>> x = af.Input(shape=(4, 5)); af.Flatten()(x).shape
    (None, 20)
    """

    kind = "flatten"

    def output_shape(self, input_shape: Shapes) -> Shape:
        return (int(np.prod(input_shape)),)


class Reshape(Layer):
    """A sample seen with another per-sample shape of the same size (one entry may be -1).

    >>> import annfast as af
    >>> x = af.Input(shape=(12,)); af.Reshape((3, -1))(x).shape
    (None, 3, 4)
    """

    kind = "reshape"

    def __init__(self, target_shape: Union[int, Sequence[int]], name: Optional[str] = None) -> None:
        super().__init__(name)
        if isinstance(target_shape, numbers.Integral) and not isinstance(target_shape, bool):
            target_shape = (target_shape,)
        if not isinstance(target_shape, (tuple, list)) or not 1 <= len(target_shape) <= 4 or any(
                isinstance(d, bool) or not isinstance(d, numbers.Integral) or (d < 1 and d != -1)
                for d in target_shape) or list(target_shape).count(-1) > 1:
            raise ValueError("target_shape must be a tuple of 1 to 4 positive ints (one may be -1), "
                             f"got {target_shape!r}")
        self.target_shape = tuple(int(d) for d in target_shape)

    def output_shape(self, input_shape: Shapes) -> Shape:
        total = int(np.prod(input_shape))
        known = int(np.prod([d for d in self.target_shape if d != -1]))
        if -1 in self.target_shape:
            if total % known:
                raise ValueError(f"{self.name}: cannot reshape a sample of shape {input_shape} "
                                 f"({total} values) to {self.target_shape}")
            return tuple(total // known if d == -1 else d for d in self.target_shape)
        if known != total:
            raise ValueError(f"{self.name}: cannot reshape a sample of shape {input_shape} ({total} "
                             f"values) to {self.target_shape} ({known} values)")
        return _shape_tuple(self.target_shape, "target_shape")

    def c_config(self) -> Dict[str, Any]:
        return {"target_shape": self.target_shape}

    def get_config(self) -> Dict[str, Any]:
        return {"class_name": "Reshape", "target_shape": list(self.target_shape), "name": self.name}
