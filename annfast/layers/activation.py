"""Activation: an activation function as a layer of its own (C kind: csrc/layers/activation.c)."""
from .. import activations as _acts
from .base import Layer


class Activation(Layer):
    """An activation applied as a layer of its own: elementwise, softmax over the last axis.

    >>> import annfast as af
    >>> layer = af.Activation("gelu")
    """

    kind = "activation"
    supports_masking = True

    def __init__(self, activation, alpha=None, name=None):
        super().__init__(name)
        self.activation, self.alpha = _acts.check_name(activation, alpha)

    def c_config(self):
        return {"activation": self.activation, "alpha": self.alpha}

    def get_config(self):
        return {"class_name": "Activation", "activation": self.activation, "alpha": self.alpha,
                "name": self.name}
