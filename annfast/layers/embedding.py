"""Embedding: integer token ids to learned vectors (C kind: csrc/layers/embedding.c)."""
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
from numpy.typing import DTypeLike

from .._validate import check_int
from ..initializers import InitializerLike
from .base import Layer, Tensor
from .base import Shape, Shapes


class Embedding(Layer):
    """A learned vector per token id: (batch, *ids) int -> (batch, *ids, output_dim).

    Feed it from an integer ``af.Input(shape=..., dtype="int32")`` (arrays of any integer dtype
    are accepted); ids must lie in [0, input_dim). embeddings_initializer defaults to
    U(-0.05, 0.05) as in Keras. With mask_zero=True, id 0 is padding: the output carries a
    (steps,) mask that recurrent layers use to skip padded steps (annfast.layers.masking).

    >>> import annfast as af
    >>> ids = af.Input(shape=(10,), dtype="int32")
    >>> af.Embedding(100, 16)(ids).shape
    (None, 10, 16)
    """

    kind = "embedding"
    input_dtype = "int32"

    def __init__(self, input_dim: int, output_dim: int,
                 embeddings_initializer: InitializerLike = "random_uniform", mask_zero: bool = False,
                 name: Optional[str] = None) -> None:
        super().__init__(name)
        from .. import initializers
        self.input_dim = check_int(input_dim, "input_dim", minimum=1)
        self.output_dim = check_int(output_dim, "output_dim", minimum=1)
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        if not isinstance(mask_zero, (bool, np.bool_)):
            raise TypeError(f"mask_zero must be a bool, got {type(mask_zero).__name__}")
        self.mask_zero = bool(mask_zero)

    def check_input(self, input_shape: Shapes, dtype: Union[str, List[str]]) -> List[Shape]:
        if dtype != "int32":
            raise ValueError(f"{self.name} (Embedding) takes integer token ids: feed it from "
                             "af.Input(shape=..., dtype='int32'), got a float tensor")
        if len(input_shape) > 3:
            raise ValueError(f"{self.name} (Embedding): ids of per-sample shape {input_shape} would give "
                             "more than 4 axes per sample")
        return [input_shape]

    def output_shape(self, input_shape: Shapes) -> Shape:
        return tuple(input_shape) + (self.output_dim,)

    def compute_mask(self, inputs: List[Tensor], mask: Optional[Tensor]) -> Optional[Tensor]:
        """With mask_zero, the (steps,) mask of the ids (a step counts if any id is nonzero)."""
        if not self.mask_zero:
            return None
        from .masking import SequenceMask, owned
        return owned(SequenceMask("ids"), self)(inputs[0])

    def param_shapes(self, input_shape: Shapes) -> List[Tuple[str, Shape]]:
        return [("embeddings", (self.input_dim, self.output_dim))]

    def c_config(self) -> Dict[str, Any]:
        return {"input_dim": self.input_dim, "output_dim": self.output_dim}

    def init_params(self, rng: np.random.Generator, dtype: DTypeLike) -> None:
        w = np.asarray(self.embeddings_initializer((self.input_dim, self.output_dim), rng, dtype))
        self._views["embeddings"][...] = w

    def check_ids(self, ids: np.ndarray, name: str) -> None:
        """Raise ValueError naming the input when an id is outside [0, input_dim)."""
        if ids.size and (ids.min() < 0 or ids.max() >= self.input_dim):
            raise ValueError(f"{name} holds token ids in [{ids.min()}, {ids.max()}] but {self.name} "
                             f"(Embedding) has input_dim={self.input_dim}: ids must lie in "
                             f"[0, {self.input_dim})")

    @property
    def embeddings(self):
        """The table, shape (input_dim, output_dim): a view into the model's parameters."""
        return self._view("embeddings")

    @embeddings.setter
    def embeddings(self, value):
        self._set("embeddings", value)

    def get_config(self) -> Dict[str, Any]:
        from .. import initializers
        return {"class_name": "Embedding", "input_dim": self.input_dim, "output_dim": self.output_dim,
                "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
                "mask_zero": self.mask_zero, "name": self.name}
