"""Conv2D and Conv1D (C kinds conv2d / conv1d in csrc/layers/conv.c), channels-last as Keras.

Window geometry (shared with the pooling layers): a 2-D sample is (height, width, channels), a
1-D sample (steps, channels). With padding="valid" an axis of n cells gives
floor((n - span) / stride) + 1 outputs, span = (kernel - 1) * dilation + 1; with "same" it gives
ceil(n / stride), the input zero-padded (as TensorFlow, the extra cell of an odd padding at the
bottom / right).
"""
import numbers
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.typing import DTypeLike

from .._settings import Setting, boolean, integer, real
from .base import Layer, param_property
from .base import Shape, Shapes
from ..initializers import InitializerLike
from .core import activation_setting, default_alpha, regularizer

PADDINGS = ("valid", "same")


def int_tuple(value, n, name, allow_none=False):
    """An int or a tuple of n positive ints, as a tuple of n ints (Keras' kernel_size etc.)."""
    if value is None and allow_none:
        return None
    vals = (value,) * n if isinstance(value, numbers.Integral) and not isinstance(value, bool) else value
    if not isinstance(vals, (tuple, list)) or len(vals) != n or any(
            isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral) for v in vals):
        raise TypeError(f"{name} must be an int or a tuple of {n} ints, got {value!r}")
    if any(v < 1 for v in vals):
        raise ValueError(f"{name} must be positive, got {value!r}")
    if any(v > 1 << 20 for v in vals):
        raise ValueError(f"{name} must be at most {1 << 20}, got {value!r}")
    return tuple(int(v) for v in vals)


def window(n, doc):
    """A frozen Setting holding an int or a tuple of n ints (one per spatial axis), stored as a
    tuple; a class with another number of spatial axes declares its own."""
    return Setting(lambda value, label: int_tuple(value, n, label), frozen=True, doc=doc)


def check_padding(padding, label="padding"):
    if not isinstance(padding, str) or padding.lower() not in PADDINGS:
        raise ValueError(f"{label} must be 'valid' or 'same', got {padding!r}")
    return padding.lower()


def filters_setting(value, label):
    value = integer(1)(value, label)
    if value > 1 << 24:
        raise ValueError(f"{label} must be at most {1 << 24}, got {value}")
    return value


def window_out(n, k, s, d, padding):
    """Output cells of one axis (0 when the window does not fit)."""
    if padding == "same":
        return -(-n // s)
    span = (k - 1) * d + 1
    return (n - span) // s + 1 if n >= span else 0


def window_shape(layer, input_shape, kernel, strides, dilation, padding, what="kernel"):
    """Spatial output shape of a sliding window over a channels-last sample; ValueError naming the
    layer when the window does not fit."""
    spatial = tuple(input_shape[:-1])
    out = tuple(window_out(n, k, s, d, padding) for n, k, s, d in zip(spatial, kernel, strides, dilation))
    if 0 in out:
        span = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilation))
        dil = f" with dilation {dilation}" if any(d > 1 for d in dilation) else ""
        raise ValueError(f"{layer.name} ({type(layer).__name__}): {what} {kernel}{dil} spans {span} cells, "
                         f"larger than the input {spatial} (padding='{padding}'); use a smaller "
                         "window or padding='same'")
    return out


def check_rank(layer, input_shape, rank, what):
    if len(input_shape) != rank:
        raise ValueError(f"{layer.name} ({type(layer).__name__}) takes {what} per sample, got "
                         f"per-sample shape {tuple(input_shape)}")


class _Conv(Layer):
    """Shared by Conv2D and Conv1D (the number of spatial axes is `rank`)."""

    rank = 2
    what = "images (height, width, channels)"
    # Checked whenever assigned; sizes and window geometry are fixed once built (they size the
    # weights and the outputs); activation and penalties may change after training.
    filters = Setting(filters_setting, frozen=True, doc="Output channels (fixed once built).")
    kernel_size = window(2, "Window size per spatial axis (fixed once built).")
    strides = window(2, "Step per spatial axis (fixed once built).")
    dilation_rate = window(2, "Cells between the kernel's taps per spatial axis (fixed once built).")
    padding = Setting(check_padding, frozen=True, doc="'valid' or 'same' (fixed once built).")
    use_bias = Setting(boolean, frozen=True, doc="Whether the layer has a bias (fixed once built).")
    activation = Setting(activation_setting, after=default_alpha,
                         doc="Activation name; assigning it resets alpha to that activation's default.")
    alpha = Setting(real(0.0), doc="leaky_relu slope / elu scale, >= 0.")
    l1 = Setting(real(0.0, none=True, none_value=0.0), doc="L1 penalty on the kernel, >= 0.")
    l2 = Setting(real(0.0, none=True, none_value=0.0), doc="L2 penalty on the kernel, >= 0.")

    def __init__(self, filters: int, kernel_size: Union[int, Sequence[int]],
                 strides: Union[int, Sequence[int]] = 1, padding: str = "valid",
                 dilation_rate: Union[int, Sequence[int]] = 1, activation: Optional[str] = None,
                 use_bias: bool = True, kernel_initializer: Optional[InitializerLike] = None,
                 kernel_regularizer: Optional[Any] = None, l1: Optional[float] = None,
                 l2: Optional[float] = None, alpha: Optional[float] = None,
                 name: Optional[str] = None) -> None:
        super().__init__(name)
        from .. import initializers
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.padding = padding
        self.dilation_rate = dilation_rate
        self.activation = activation
        if alpha is not None:
            self.alpha = alpha
        self.use_bias = use_bias
        self.kernel_initializer = None if kernel_initializer is None else initializers.get(kernel_initializer)
        self.l1, self.l2 = regularizer(kernel_regularizer, l1, l2)

    def check_input(self, input_shape: Shapes, dtype: Union[str, List[str]]) -> List[Shape]:
        super().check_input(input_shape, dtype)
        check_rank(self, input_shape, self.rank + 1, self.what)
        self.output_shape(input_shape)
        return [input_shape]

    def output_shape(self, input_shape: Shapes) -> Shape:
        out = window_shape(self, input_shape, self.kernel_size, self.strides, self.dilation_rate,
                           self.padding)
        return out + (self.filters,)

    @property
    def kernel_shape(self):
        """(*kernel_size, in_channels, filters), once the input is known."""
        if self._input_shape is None:
            return None
        return self.kernel_size + (self._input_shape[-1], self.filters)

    def param_shapes(self, input_shape: Shapes) -> List[Tuple[str, Shape]]:
        shapes = [("kernel", self.kernel_size + (input_shape[-1], self.filters))]
        if self.use_bias:
            shapes.append(("bias", (self.filters,)))
        return shapes

    def c_config(self) -> Dict[str, Any]:
        return {"filters": self.filters, "kernel_size": self.kernel_size, "strides": self.strides,
                "padding": self.padding, "dilation_rate": self.dilation_rate,
                "activation": self.activation, "alpha": self.alpha, "use_bias": self.use_bias,
                "l1": self.l1, "l2": self.l2}

    def init_params(self, rng: np.random.Generator, dtype: DTypeLike) -> None:
        from .. import initializers
        shape = self.kernel_shape
        init = initializers.get(self.kernel_initializer if self.kernel_initializer is not None
                                else initializers.default_for(self.activation))
        if isinstance(init, initializers.Initializer):
            # annfast's fans read (fan_in, fan_out, *receptive field): draw the kernel as
            # (in_channels, filters, *kernel_size), so fan_in = in x window and fan_out =
            # filters x window as in Keras, then move the axes to the kernel layout (the values
            # are independent draws, so the distribution is unchanged)
            w = np.asarray(init((shape[-2], shape[-1]) + self.kernel_size, rng, dtype))
            w = np.transpose(w, tuple(range(2, 2 + self.rank)) + (0, 1))
        else:
            w = np.asarray(init(shape, rng, dtype))
        if w.shape != shape or not np.all(np.isfinite(w)):
            raise ValueError(f"kernel_initializer returned shape {w.shape} (expected {shape}) or "
                             "non-finite values")
        self._views["kernel"][...] = w
        if self.use_bias:
            self._views["bias"][...] = 0

    kernel = param_property(
        "kernel",
        "Kernel, shape (*kernel_size, in_channels, filters): a view into the model's parameters "
        "(None before build).")

    bias = param_property(
        "bias",
        "Bias, shape (filters,) (None without use_bias or before build).",
        optional=True)

    def get_config(self) -> Dict[str, Any]:
        from .. import initializers
        init = None if self.kernel_initializer is None else initializers.serialize(self.kernel_initializer)
        return {"class_name": type(self).__name__, "filters": self.filters,
                "kernel_size": list(self.kernel_size), "strides": list(self.strides),
                "padding": self.padding, "dilation_rate": list(self.dilation_rate),
                "activation": self.activation, "alpha": self.alpha, "use_bias": self.use_bias,
                "kernel_initializer": init, "l1": self.l1, "l2": self.l2, "name": self.name}


class Conv2D(_Conv):
    """2-D convolution over channels-last images: (batch, height, width, channels) ->
    (batch, out_height, out_width, filters), y = activation(conv(x, kernel) + bias).

    Parameters
    ----------
    filters : int >= 1
    kernel_size : int or (kh, kw)
    strides : int or (sh, sw), default 1
    padding : 'valid' (no padding) or 'same' (zero padding, output ceil(input / stride))
    dilation_rate : int or (dh, dw), default 1 (cells between the kernel's taps)
    activation, alpha, use_bias, kernel_initializer, kernel_regularizer, l1, l2 : as in Dense
        (the default initializer follows the activation; fans are in_channels x kh x kw and
        filters x kh x kw, as in Keras). The kernel has shape (kh, kw, in_channels, filters).

    >>> import annfast as af
    >>> x = af.Input(shape=(28, 28, 1))
    >>> af.Conv2D(6, 5, padding="same", activation="relu")(x).shape
    (None, 28, 28, 6)
    """

    kind = "conv2d"
    rank = 2
    what = "images (height, width, channels)"


class Conv1D(_Conv):
    """1-D convolution over channels-last sequences: (batch, steps, channels) ->
    (batch, out_steps, filters). Arguments as Conv2D, each a single int; the kernel has shape
    (kernel_size, in_channels, filters).

    >>> import annfast as af
    >>> x = af.Input(shape=(100, 8))
    >>> af.Conv1D(16, 5, strides=2, padding="same")(x).shape
    (None, 50, 16)
    """

    kind = "conv1d"
    rank = 1
    what = "sequences (steps, channels)"
    kernel_size = window(1, "Window size in steps (fixed once built).")
    strides = window(1, "Step (fixed once built).")
    dilation_rate = window(1, "Steps between the kernel's taps (fixed once built).")
