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


def _slots(config):
    from . import optimizers
    if config.get("loss") is None:
        return None
    return optimizers.get(config.get("optimizer", "sgd")).state_slots


def sequential_layout(config):
    """Layout of Sequential.from_config(config) once built; raises ValueError/TypeError for a
    config from_config would refuse. Mirrors Sequential.build: each layer's output shape and
    parameter shapes from its input shape alone (the layers are built from their configs, and
    nothing is allocated)."""
    from ._validate import check_int
    from .layers import Layer
    from .layers.base import _shape_tuple
    from .models import _check_dtype

    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict, got {type(config).__name__}")
    if not isinstance(config.get("layers"), list) or not config["layers"]:
        raise ValueError("config['layers'] must be a non-empty list of layer configs")
    dtype = np.dtype(_check_dtype(config.get("dtype", "float32"))).str
    if config.get("input_shape") is not None:
        shape = _shape_tuple(config["input_shape"], "config['input_shape']")
    else:
        shape = (check_int(config.get("input_dim"), "config['input_dim']", minimum=1),)
    n_in = shape[0] if len(shape) == 1 else None
    shapes, n_params = [], 0
    for c in config["layers"]:
        layer = Layer.from_config(c)  # validates the layer's config; allocates nothing
        layer.check_input(shape, "float")
        trainable = [s for _, s in layer.param_shapes(shape)]
        shapes += trainable + [s for _, s in layer.stat_shapes(shape)]
        n_params += sum(math.prod(s) for s in trainable)
        shape = _shape_tuple(layer.output_shape(shape), "a layer's output shape")
    n_out = shape[-1] if len(shape) == 1 else None
    return Layout(dtype, shapes, n_params, _slots(config), n_in, n_out)


def model_layout(config):
    """Layout of Model.from_config(config): the graph is rebuilt from symbolic tensors (layer
    calls compute shapes only), then each layer's parameter shapes, nothing allocated."""
    from ._graph_config import tensors_from_config
    from ._topology import collect, unique_layers
    from .models import _check_dtype

    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict, got {type(config).__name__}")
    dtype = np.dtype(_check_dtype(config.get("dtype", "float32"))).str
    inputs, outputs = tensors_from_config(config)
    _, _, nodes, _ = collect(inputs, outputs)
    shapes, n_params = [], 0
    for layer in unique_layers(nodes):
        trainable = [s for _, s in layer.param_shapes(layer._input_shape)]
        shapes += trainable + [s for _, s in layer.stat_shapes(layer._input_shape)]
        n_params += sum(math.prod(s) for s in trainable)
    return Layout(dtype, shapes, n_params, _slots(config), None, None)


def layout(cls, config):
    """The layout of cls.from_config(config) for annfast's model classes."""
    from .models import Sequential
    if issubclass(cls, Sequential) or (isinstance(config, dict) and config.get("class_name") == "Sequential"):
        return sequential_layout(config)
    return model_layout(config)
