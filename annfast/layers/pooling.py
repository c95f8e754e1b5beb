"""Pooling layers (C kinds in csrc/layers/pool.c and global_pool.c), channels-last as Keras.

Max pooling: among equal maxima the first in row-major window order wins (and gets the
gradient); a NaN wins over numbers, so NaN propagates. With padding="same" the padded cells
never win a max and are not counted in an average (Keras; PyTorch's count_include_pad=False).
"""
from typing import Any, Dict, List, Optional, Sequence, Union

from .._settings import Setting
from .base import Layer
from .base import Shape, Shapes
from .conv import check_padding, check_rank, window, window_shape


class _Pool(Layer):
    """Shared by the windowed pooling layers (rank spatial axes)."""

    rank = 2
    what = "images (height, width, channels)"
    # window geometry, checked whenever assigned and fixed once built (it sizes the outputs)
    pool_size = window(2, "Window size per spatial axis (fixed once built).")
    strides = window(2, "Step per spatial axis (default pool_size; fixed once built).")
    padding = Setting(check_padding, frozen=True, doc="'valid' or 'same' (fixed once built).")

    def __init__(self, pool_size: Union[int, Sequence[int]] = 2,
                 strides: Optional[Union[int, Sequence[int]]] = None, padding: str = "valid",
                 name: Optional[str] = None) -> None:
        super().__init__(name)
        self.pool_size = pool_size
        self.strides = self.pool_size if strides is None else strides
        self.padding = padding

    def check_input(self, input_shape: Shapes, dtype: Union[str, List[str]]) -> List[Shape]:
        super().check_input(input_shape, dtype)
        check_rank(self, input_shape, self.rank + 1, self.what)
        self.output_shape(input_shape)
        return [input_shape]

    def output_shape(self, input_shape: Shapes) -> Shape:
        out = window_shape(self, input_shape, self.pool_size, self.strides, (1,) * self.rank,
                           self.padding, what="pool_size")
        return out + (input_shape[-1],)

    def c_config(self) -> Dict[str, Any]:
        return {"pool_size": self.pool_size, "strides": self.strides, "padding": self.padding}

    def get_config(self) -> Dict[str, Any]:
        return {"class_name": type(self).__name__, "pool_size": list(self.pool_size),
                "strides": list(self.strides), "padding": self.padding, "name": self.name}


class MaxPooling2D(_Pool):
    """The maximum over pool_size windows of each channel: (batch, h, w, c) -> (batch, h', w', c).

    pool_size : int or (ph, pw), default 2;  strides : default pool_size;
    padding : 'valid' or 'same' (padded cells never win).

    >>> import annfast as af
    >>> x = af.Input(shape=(28, 28, 6))
    >>> af.MaxPooling2D(2)(x).shape
    (None, 14, 14, 6)
    """

    kind = "max_pool2d"


class AveragePooling2D(_Pool):
    """The mean over pool_size windows of each channel (padded cells are not counted).

    >>> import annfast as af
    >>> af.AveragePooling2D(2, padding="same")(af.Input(shape=(5, 5, 3))).shape
    (None, 3, 3, 3)
    """

    kind = "avg_pool2d"


class _Pool1D(_Pool):
    rank = 1
    what = "sequences (steps, channels)"
    pool_size = window(1, "Window size in steps (fixed once built).")
    strides = window(1, "Step (default pool_size; fixed once built).")


class MaxPooling1D(_Pool1D):
    """The maximum over windows of pool_size steps: (batch, steps, c) -> (batch, steps', c).

    >>> import annfast as af
    >>> af.MaxPooling1D(2)(af.Input(shape=(10, 4))).shape
    (None, 5, 4)
    """

    kind = "max_pool1d"


class AveragePooling1D(_Pool1D):
    """The mean over windows of pool_size steps.

    >>> import annfast as af
    >>> af.AveragePooling1D(3, strides=1)(af.Input(shape=(10, 4))).shape
    (None, 8, 4)
    """

    kind = "avg_pool1d"


class _GlobalPool(Layer):
    rank = 1
    what = "sequences (steps, features)"

    def check_input(self, input_shape: Shapes, dtype: Union[str, List[str]]) -> List[Shape]:
        super().check_input(input_shape, dtype)
        check_rank(self, input_shape, self.rank + 1, self.what)
        return [input_shape]

    def output_shape(self, input_shape: Shapes) -> Shape:
        return (input_shape[-1],)


class GlobalAveragePooling1D(_GlobalPool):
    """The mean over the steps of a sequence: (batch, steps, features) -> (batch, features).

    >>> import annfast as af
    >>> x = af.Input(shape=(10, 8))
    >>> af.GlobalAveragePooling1D()(x).shape
    (None, 8)
    """

    kind = "global_avg_pool1d"


class GlobalMaxPooling1D(_GlobalPool):
    """The maximum over the steps of each feature: (batch, steps, features) -> (batch, features).

    >>> import annfast as af
    >>> af.GlobalMaxPooling1D()(af.Input(shape=(10, 8))).shape
    (None, 8)
    """

    kind = "global_max_pool1d"


class GlobalAveragePooling2D(_GlobalPool):
    """The mean over height and width of each channel: (batch, h, w, c) -> (batch, c).

    >>> import annfast as af
    >>> af.GlobalAveragePooling2D()(af.Input(shape=(7, 7, 32))).shape
    (None, 32)
    """

    kind = "global_avg_pool2d"
    rank = 2
    what = "images (height, width, channels)"


class GlobalMaxPooling2D(_GlobalPool):
    """The maximum over height and width of each channel: (batch, h, w, c) -> (batch, c).

    >>> import annfast as af
    >>> af.GlobalMaxPooling2D()(af.Input(shape=(7, 7, 32))).shape
    (None, 32)
    """

    kind = "global_max_pool2d"
    rank = 2
    what = "images (height, width, channels)"


# Keras' short names
MaxPool2D, AvgPool2D, MaxPool1D, AvgPool1D = MaxPooling2D, AveragePooling2D, MaxPooling1D, AveragePooling1D
