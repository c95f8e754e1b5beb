"""The arrays a saved Sequential config describes, computed from the config alone.

A model file's config could describe a model of any size; building it allocates all of it.
Loaders therefore compare what the config needs (this module: layer sizes times each other,
no allocation) with the arrays the file actually holds before building anything.
"""
import math

import numpy as np


class Layout:
    """dtype (NumPy dtype.str), shapes (of get_weights(), in order), n_params (the trainable
    ones, what the optimiser state is a multiple of), slots (optimiser state vectors, None when
    the config is not compiled), n_in and n_out (the model's input and output widths)."""

    def __init__(self, dtype, shapes, n_params, slots, n_in, n_out):
        self.dtype, self.shapes, self.n_params, self.slots = dtype, shapes, n_params, slots
        self.n_in, self.n_out = n_in, n_out


def sequential_layout(config):
    """Layout of Sequential.from_config(config) once built; raises ValueError/TypeError for a
    config from_config would refuse. Mirrors Sequential.build and from_config."""
    from . import optimizers
    from ._validate import check_int
    from .layers import Layer
    from .models import _check_dtype

    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict, got {type(config).__name__}")
    if not isinstance(config.get("layers"), list) or not config["layers"]:
        raise ValueError("config['layers'] must be a non-empty list of layer configs")
    dtype = np.dtype(_check_dtype(config.get("dtype", "float32"))).str
    n_in = width = check_int(config.get("input_dim"), "config['input_dim']", minimum=1)
    shapes, n_params = [], 0
    for c in config["layers"]:
        layer = Layer.from_config(c)  # validates the layer's config; allocates nothing
        layer.n_in = width            # what build() sets through _attach
        trainable = [s for _, s in layer._param_shapes()]
        shapes += trainable + [s for _, s in layer._stat_shapes()]
        n_params += sum(math.prod(s) for s in trainable)
        width = layer.n_out
    slots = None
    if config.get("loss") is not None:
        slots = optimizers.get(config.get("optimizer", "sgd")).state_slots
    return Layout(dtype, shapes, n_params, slots, n_in, width)
