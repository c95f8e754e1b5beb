"""LayerNormalization (C kind layernorm, csrc/layers/layernorm.c)."""
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from numpy.typing import DTypeLike

from .._validate import check_float
from .base import Layer
from .base import Shape, Shapes


def _check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


class LayerNormalization(Layer):
    """Layer normalisation over the last axis, each sample and position on its own:
    y = gamma * (x - mean) / sqrt(var + epsilon) + beta, with the mean and (biased) variance of
    the last axis. The same in training and inference (no running statistics).

    Parameters
    ----------
    epsilon : float > 0 (Keras's default 1e-3; PyTorch's LayerNorm uses 1e-5)
    center : bool, learn beta (starts at 0)
    scale : bool, learn gamma (starts at 1)

    >>> import annfast as af
    >>> x = af.Input(shape=(10, 16))
    >>> af.LayerNormalization(epsilon=1e-5)(x).shape
    (None, 10, 16)
    """

    kind = "layernorm"

    def __init__(self, epsilon: float = 1e-3, center: bool = True, scale: bool = True,
                 name: Optional[str] = None) -> None:
        super().__init__(name)
        self.epsilon = check_float(epsilon, "epsilon", minimum=0.0, strict_min=True)
        self.center = _check_bool(center, "center")
        self.scale = _check_bool(scale, "scale")

    def param_shapes(self, input_shape: Shapes) -> List[Tuple[str, Shape]]:
        n = input_shape[-1]
        return ([("gamma", (n,))] if self.scale else []) + ([("beta", (n,))] if self.center else [])

    def c_config(self) -> Dict[str, Any]:
        return {"epsilon": self.epsilon, "center": self.center, "scale": self.scale}

    def init_params(self, rng: np.random.Generator, dtype: DTypeLike) -> None:
        if self.scale:
            self._views["gamma"][...] = 1
        if self.center:
            self._views["beta"][...] = 0

    gamma = property(lambda self: self._view("gamma"), lambda self, v: self._set("gamma", v),
                     doc="Scale, shape (n,): a view into the model's parameters (None without scale).")
    beta = property(lambda self: self._view("beta"), lambda self, v: self._set("beta", v),
                    doc="Shift, shape (n,): a view into the model's parameters (None without center).")

    def get_config(self) -> Dict[str, Any]:
        return {"class_name": "LayerNormalization", "epsilon": self.epsilon, "center": self.center,
                "scale": self.scale, "name": self.name}
