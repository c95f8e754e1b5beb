"""Pooling layers (C kinds in csrc/layers/)."""
from typing import List, Union

from .base import Layer
from .base import Shape, Shapes


class GlobalAveragePooling1D(Layer):
    """The mean over the steps of a sequence: (batch, steps, features) -> (batch, features).

    >>> import annfast as af
    >>> x = af.Input(shape=(10, 8))
    >>> af.GlobalAveragePooling1D()(x).shape
    (None, 8)
    """

    kind = "global_avg_pool1d"

    def check_input(self, input_shape: Shapes, dtype: Union[str, List[str]]) -> List[Shape]:
        super().check_input(input_shape, dtype)
        if len(input_shape) != 2:
            raise ValueError(f"{self.name} (GlobalAveragePooling1D) takes sequences (steps, features), got "
                             f"per-sample shape {input_shape}")
        return [input_shape]

    def output_shape(self, input_shape: Shapes) -> Shape:
        return (input_shape[1],)
