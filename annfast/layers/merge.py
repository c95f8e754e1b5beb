"""Add and Concatenate: layers joining several tensors (C kinds add, concatenate)."""
import numbers
from typing import Any, Dict, Optional

from .base import Layer
from .base import Shape, Shapes


class Add(Layer):
    """Elementwise sum of two or more tensors of the same shape (residual connections).

    >>> import annfast as af
    >>> x = af.Input(shape=(8,)); h = af.Dense(8)(x)
    >>> af.Add()([x, h]).shape
    (None, 8)
    """

    kind = "add"
    n_inputs = (2, 8)

    def output_shape(self, input_shape: Shapes) -> Shape:
        first = input_shape[0]
        for i, s in enumerate(input_shape[1:], 1):
            if s != first:
                raise ValueError(f"{self.name} (Add) needs inputs of one shape; input 0 has per-sample "
                                 f"shape {first}, input {i} has {s}")
        return first


class Concatenate(Layer):
    """Joins tensors along `axis` (as Keras counts it: axis 0 is the batch, -1, the default, the
    last); the other axes must match.

    >>> import annfast as af
    >>> a = af.Input(shape=(3,)); b = af.Input(shape=(5,))
    >>> af.Concatenate()([a, b]).shape
    (None, 8)
    """

    kind = "concatenate"
    n_inputs = (2, 8)

    def __init__(self, axis: int = -1, name: Optional[str] = None) -> None:
        super().__init__(name)
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
            raise TypeError(f"axis must be an int, got {type(axis).__name__}")
        if axis == 0:
            raise ValueError("Concatenate cannot join along axis 0, the batch axis")
        self.axis = int(axis)

    def _sample_axis(self):
        return self.axis - 1 if self.axis > 0 else self.axis

    def output_shape(self, input_shape: Shapes) -> Shape:
        rank = len(input_shape[0])
        ax = self._sample_axis() + (rank if self.axis < 0 else 0)
        if not 0 <= ax < rank:
            raise ValueError(f"{self.name} (Concatenate): axis {self.axis} is out of range for per-sample "
                             f"shape {input_shape[0]}")
        for i, s in enumerate(input_shape[1:], 1):
            if len(s) != rank or any(a != b for d, (a, b) in enumerate(zip(s, input_shape[0])) if d != ax):
                raise ValueError(f"{self.name} (Concatenate) joins along axis {self.axis}: the other axes "
                                 f"must match; input 0 has per-sample shape {input_shape[0]}, input {i} "
                                 f"has {s}")
        out = list(input_shape[0])
        out[ax] = sum(s[ax] for s in input_shape)
        return tuple(out)

    def c_config(self) -> Dict[str, Any]:
        return {"axis": self._sample_axis()}

    def get_config(self) -> Dict[str, Any]:
        return {"class_name": "Concatenate", "axis": self.axis, "name": self.name}
