"""Position information for sequences: PositionalEmbedding (learned) and
SinusoidalPositionalEncoding (fixed). C kinds pos_embedding and sinusoidal
(csrc/layers/positional.c)."""
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
from numpy.typing import DTypeLike

from .._validate import check_float, check_int
from ..initializers import InitializerLike
from .base import Layer
from .base import Shape, Shapes


def _check_sequence(layer, input_shape, dtype):
    if dtype != "float":
        raise ValueError(f"{layer.name} ({type(layer).__name__}) takes an embedded sequence (steps, "
                         "features), got integer token ids (use an Embedding layer first)")
    if len(input_shape) != 2:
        raise ValueError(f"{layer.name} ({type(layer).__name__}) takes sequences of per-sample shape "
                         f"(steps, features), got {input_shape}")


class PositionalEmbedding(Layer):
    """A learned vector per position added to an embedded sequence: y[t] = x[t] + P[t], with P of
    shape (sequence_length, output_dim) (Glorot-uniform start). The input is (steps, output_dim)
    with steps <= sequence_length.

    >>> import annfast as af
    >>> ids = af.Input(shape=(12,), dtype="int32")
    >>> x = af.Embedding(100, 32)(ids)
    >>> af.PositionalEmbedding(sequence_length=12, output_dim=32)(x).shape
    (None, 12, 32)
    """

    kind = "pos_embedding"

    def __init__(self, sequence_length: int, output_dim: int, initializer: InitializerLike = "glorot_uniform",
                 name: Optional[str] = None) -> None:
        super().__init__(name)
        from .. import initializers
        self.sequence_length = check_int(sequence_length, "sequence_length", minimum=1)
        self.output_dim = check_int(output_dim, "output_dim", minimum=1)
        self.initializer = initializers.get(initializer)

    def check_input(self, input_shape: Shapes, dtype: Union[str, List[str]]) -> List[Shape]:
        _check_sequence(self, input_shape, dtype)
        steps, dim = input_shape
        if steps > self.sequence_length:
            raise ValueError(f"{self.name} (PositionalEmbedding): a sequence of {steps} steps is longer "
                             f"than the {self.sequence_length} positions it learns (sequence_length="
                             f"{self.sequence_length})")
        if dim != self.output_dim:
            raise ValueError(f"{self.name} (PositionalEmbedding): output_dim={self.output_dim} but the "
                             f"input has {dim} features per step")
        return [input_shape]

    def param_shapes(self, input_shape: Shapes) -> List[Tuple[str, Shape]]:
        return [("embeddings", (self.sequence_length, self.output_dim))]

    def init_params(self, rng: np.random.Generator, dtype: DTypeLike) -> None:
        self._views["embeddings"][...] = self.initializer((self.sequence_length, self.output_dim), rng, dtype)

    embeddings = property(lambda self: self._view("embeddings"), lambda self, v: self._set("embeddings", v),
                          doc="The position vectors, (sequence_length, output_dim): a view into the "
                              "model's parameters.")

    def c_config(self) -> Dict[str, Any]:
        return {"sequence_length": self.sequence_length}

    def get_config(self) -> Dict[str, Any]:
        from .. import initializers
        return {"class_name": "PositionalEmbedding", "sequence_length": self.sequence_length,
                "output_dim": self.output_dim, "initializer": initializers.serialize(self.initializer),
                "name": self.name}


class SinusoidalPositionalEncoding(Layer):
    """The fixed sinusoidal encoding of Vaswani et al. added to an embedded sequence (steps, D):
    y[t, 2i] = x[t, 2i] + sin(t w_i), y[t, 2i+1] = x[t, 2i+1] + cos(t w_i),
    w_i = max_wavelength^(-2i / D). No weights.

    >>> import annfast as af
    >>> x = af.Input(shape=(12, 32))
    >>> af.SinusoidalPositionalEncoding()(x).shape
    (None, 12, 32)
    """

    kind = "sinusoidal"

    def __init__(self, max_wavelength: float = 10000.0, name: Optional[str] = None) -> None:
        super().__init__(name)
        self.max_wavelength = check_float(max_wavelength, "max_wavelength", minimum=1.0)

    def check_input(self, input_shape: Shapes, dtype: Union[str, List[str]]) -> List[Shape]:
        _check_sequence(self, input_shape, dtype)
        return [input_shape]

    def c_config(self) -> Dict[str, Any]:
        return {"max_wavelength": self.max_wavelength}

    def get_config(self) -> Dict[str, Any]:
        return {"class_name": "SinusoidalPositionalEncoding", "max_wavelength": self.max_wavelength,
                "name": self.name}
