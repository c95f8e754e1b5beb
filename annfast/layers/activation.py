"""Activation: an activation function as a layer of its own (C kind: csrc/layers/activation.c)."""
from typing import Any, Dict, Optional

from .._settings import Setting, real
from .base import Layer
from .base import Shape, Shapes
from .core import activation_setting, default_alpha, warn_single_softmax


class Activation(Layer):
    """An activation applied as a layer of its own: elementwise, softmax over the last axis.

    >>> import annfast as af
    >>> layer = af.Activation("gelu")
    """

    kind = "activation"
    supports_masking = True
    activation = Setting(activation_setting, after=default_alpha,
                         doc="Activation name; assigning it resets alpha to that activation's default.")
    alpha = Setting(real(0.0), doc="leaky_relu slope / elu scale, >= 0.")

    def __init__(self, activation: Optional[str], alpha: Optional[float] = None,
                 name: Optional[str] = None) -> None:
        super().__init__(name)
        self.activation = activation
        if alpha is not None:
            self.alpha = alpha

    def output_shape(self, input_shape: Shapes) -> Shape:
        warn_single_softmax(self, self.activation, input_shape[-1])
        return input_shape

    def c_config(self) -> Dict[str, Any]:
        return {"activation": self.activation, "alpha": self.alpha}

    def get_config(self) -> Dict[str, Any]:
        return {"class_name": "Activation", "activation": self.activation, "alpha": self.alpha,
                "name": self.name}
