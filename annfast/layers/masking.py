"""Masks of padded sequences, and the pieces of a layer call with several results.

A mask is a float tensor of per-sample shape (steps,): 1.0 for a step that counts, 0.0 for
padding. It rides along with the data: ``tensor._mask`` (see Tensor). Embedding(mask_zero=True)
and Masking make one (a small C node, kind ``sequence_mask``, on the ids or values); per-step
layers (Dense, Dropout, Activation) pass it on; recurrent layers take it as an extra input of
their C node and skip the masked steps; a recurrent layer that returns sequences passes it on.
So ``LSTM(8)(Embedding(100, 16, mask_zero=True)(ids))`` ignores the padding ids.

The layers that make masks and the slices of a packed output are owned by the layer whose call
made them (``_owner``): a model's config records the owner's call only, and rebuilding it makes
them again.
"""
import numbers
from typing import Any, Dict, List, Optional, Union

from .base import Layer, Tensor
from .base import Shape, Shapes


class SequenceMask(Layer):
    """The (steps,) mask of a sequence (C kind sequence_mask): from token ids (a step counts if
    any of its ids is nonzero) or from values (if any feature differs from mask_value). Made by
    Embedding(mask_zero=True) and Masking; not usually built by hand."""

    kind = "sequence_mask"

    def __init__(self, mode="ids", mask_value=0.0, name=None):
        super().__init__(name)
        if mode not in ("ids", "values"):
            raise ValueError(f"mode must be 'ids' or 'values', got {mode!r}")
        self.mode = mode
        self.mask_value = _check_value(mask_value)
        self._owner = None

    def check_input(self, input_shape, dtype):
        want = "int32" if self.mode == "ids" else "float"
        if dtype != want:
            raise ValueError(f"{self.name} (SequenceMask, mode={self.mode!r}) takes {want} input, got {dtype}")
        return [input_shape]

    def output_shape(self, input_shape):
        return (input_shape[0],)

    def c_config(self):
        return {"mode": self.mode, "mask_value": self.mask_value}

    def get_config(self):
        return {"class_name": "SequenceMask", "mode": self.mode, "mask_value": self.mask_value,
                "name": self.name}


def _check_value(value):
    import math
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"mask_value must be a finite number, got {value!r}")
    return float(value)


def owned(layer, owner, index=None):
    """Mark `layer` as made by `owner`'s call (part `index` of its results)."""
    layer._owner = owner
    layer._part_index = index
    return layer


class Masking(Layer):
    """Skips padded steps of (batch, steps, features) sequences: a step whose features all equal
    mask_value is masked for the layers that follow (recurrent layers ignore it), and its values
    become 0 (Keras). Padding must be at steps, not features.

    >>> import annfast as af
    >>> x = af.Input(shape=(10, 3))
    >>> af.LSTM(4)(af.Masking(0.0)(x)).shape
    (None, 4)
    """

    kind = "masking"

    def __init__(self, mask_value: float = 0.0, name: Optional[str] = None) -> None:
        super().__init__(name)
        self.mask_value = _check_value(mask_value)

    def check_input(self, input_shape: Shapes, dtype: Union[str, List[str]]) -> List[Shape]:
        super().check_input(input_shape, dtype)
        if len(input_shape) < 2:
            raise ValueError(f"{self.name} (Masking) takes sequences (steps, features), got per-sample shape "
                             f"{input_shape}")
        return [input_shape]

    def compute_mask(self, inputs: List[Tensor], mask: Optional[Tensor]) -> Optional[Tensor]:
        return owned(SequenceMask("values", self.mask_value, name=f"{self.name}_mask"), self)(inputs[0])

    def c_config(self) -> Dict[str, Any]:
        return {"mask_value": self.mask_value}

    def get_config(self) -> Dict[str, Any]:
        return {"class_name": "Masking", "mask_value": self.mask_value, "name": self.name}


class Slice(Layer):
    """Values [start, start + size) of each sample, viewed with per-sample `shape` (C kind slice):
    how a layer call with several results (a recurrent layer's output and final states) hands
    them out as separate tensors. Not usually built by hand."""

    kind = "slice"

    def __init__(self, start, shape, name=None):
        super().__init__(name)
        from .._validate import check_int
        from .base import _shape_tuple
        self.start = check_int(start, "start", minimum=0)
        self.shape = _shape_tuple(shape, "shape")
        self._owner = None

    def output_shape(self, input_shape):
        import numpy as np
        if self.start + int(np.prod(self.shape)) > int(np.prod(input_shape)):
            raise ValueError(f"{self.name} (Slice): values [{self.start}, {self.start + int(np.prod(self.shape))}) "
                             f"are past the input's {int(np.prod(input_shape))} per sample")
        return self.shape

    def c_config(self):
        return {"start": self.start, "shape": self.shape}

    def get_config(self):
        return {"class_name": "Slice", "start": self.start, "shape": list(self.shape), "name": self.name}
