"""The layer protocol, symbolic tensors and Input.

A layer describes itself by shape: ``output_shape(input_shape)``, ``param_shapes(input_shape)``
and ``stat_shapes(input_shape)`` (per-sample shapes; the batch axis is implicit), plus the
settings of its C kind (``c_config()``). Calling a layer on a symbolic tensor records a node of a
graph (``y = af.Dense(64)(x)``); ``af.Model(inputs, outputs)`` turns the graph into C nodes.
Once its model is built, a layer's parameters are NumPy views into the model's one flat parameter
buffer (what the C engine and the optimiser update in place).
"""
import collections
import itertools
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from .._busy import exclusive
from .._configurable import build_from_config, config_repr
from .._settings import Setting
from .._validate import as_array

# A per-sample shape (no batch axis), or one per input for a layer taking several tensors.
Shape = Tuple[int, ...]
Shapes = Union[Tuple[int, ...], List[Tuple[int, ...]]]

# Every concrete layer class, by class name (filled by Layer.__init_subclass__), for from_config.
LAYER_CLASSES = {}
# Automatic layer names: a counter per class ("dense_1", "dense_2", ..., "add_1", ...).
_counters = collections.defaultdict(lambda: itertools.count(1))


def _auto_name(base):
    return f"{base}_{next(_counters[base])}"


def _shape_tuple(shape, what):
    """A per-sample shape as a tuple of positive ints."""
    import numbers
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)) or not shape or any(
            isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 1 for d in shape):
        raise ValueError(f"{what} must be a tuple of positive ints (the per-sample shape, without the "
                         f"batch axis), got {shape!r}")
    if len(shape) > 4:
        raise ValueError(f"{what} may have at most 4 axes per sample, got {tuple(shape)}")
    return tuple(int(d) for d in shape)


def param_property(view: str, doc: str, optional: bool = False) -> property:
    """A layer attribute for one of its parameters: reading gives the view into the model's
    buffer (None before build, or when `optional` and the layer has use_bias=False); assigning
    copies into the model after checks (Layer._set)."""
    def get(self):
        return None if optional and not self.use_bias else self._view(view)

    def put(self, value):
        if optional and not self.use_bias:
            raise ValueError(f"{self.name} ({type(self).__name__}) has use_bias=False")
        self._set(view, value)
    return property(get, put, doc=doc)


class Tensor:
    """A symbolic tensor: the output of a layer call (or an Input), with a per-sample shape.

    ``shape`` is Keras-style, batch axis first as None: ``(None, 28, 28, 1)``."""

    def __init__(self, sample_shape: Sequence[int], dtype: str, layer: "Layer",
                 inputs: Sequence["Tensor"]) -> None:
        self.sample_shape = tuple(sample_shape)
        self.dtype = dtype            # "float" (the model's float type) or "int32"
        self._layer = layer
        self._inputs = list(inputs)
        # Masking: a float tensor of per-sample shape (steps,), 1 for a step that counts and 0
        # for padding, that mask-aware layers (recurrent ones) take as an extra input.
        self._mask = None
        # The call's data tensors are _inputs[:_n_data]; the rest are extras the layer's C kind
        # takes (a mask, initial states), listed by keyword in _call_kwargs when given
        # explicitly (get_config records those).
        self._n_data = len(self._inputs)
        self._call_kwargs = {}

    @property
    def shape(self):
        return (None,) + self.sample_shape

    @property
    def name(self):
        return self._layer.name

    def __repr__(self):
        return f"<annfast.Tensor shape={self.shape} dtype={self.dtype} from {self._layer.name}>"


class Layer:
    """Base class of every layer.

    Subclasses set ``kind`` (the C kind that runs them) and ``n_inputs`` ((min, max) tensors a
    call takes), and override the shape methods, ``c_config``, ``init_params`` and
    ``get_config``. Layers defined in Python alone are not supported: the C engine runs every
    layer, so a subclass must map to a C kind."""

    kind = None
    n_inputs = (1, 1)
    input_dtype = "float"       # what a first layer of a Sequential takes ("int32": token ids)
    supports_masking = False    # a per-step layer that passes its input's mask on unchanged

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        LAYER_CLASSES[cls.__name__] = cls

    def __init__(self, name: Optional[str] = None) -> None:
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}")
        self.name = name or _auto_name(type(self).__name__.lower())
        self._model = None
        self._views = {}
        self._input_shape = None      # per-sample input shape(s) of the first call, once built

    def __setattr__(self, name: str, value: Any) -> None:
        # A configuration value of a built layer that is not a checked Setting (the sizes and modes
        # of most kinds) cannot change: the C engine was built from it, and a model whose
        # get_config() and save() disagree with what it computes is a silent wrong result.
        if (not name.startswith("_") and name != "name" and self.__dict__.get("_model") is not None
                and not isinstance(getattr(type(self), name, None), (Setting, property))
                and name in self.get_config()):
            where = self._position()
            raise ValueError(f"{type(self).__name__}.{name}{f' ({where})' if where else ''} cannot "
                             "change once the model is built (the engine was built from it); build a "
                             "new model with the new value")
        object.__setattr__(self, name, value)

    # Copies and pickles: the views are not stored (they would become independent arrays); they
    # are re-made into the copied model's buffers by whichever of the layer and its model is
    # restored last (pickle restores them in either order, depending on which was the root).
    def __getstate__(self):
        state = self.__dict__.copy()
        state["_views"] = {}
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._rebind_views()

    def _rebind_views(self):
        model = self.__dict__.get("_model")
        params = getattr(model, "__dict__", {}).get("_params")
        if params is not None and "_param_off" in self.__dict__:
            self._bind_views(params, model._stats)

    def _bind_views(self, params, stats):
        """Make the parameter / statistics views slices of the model's flat buffers, from the
        offsets the model gave this layer and its shapes."""
        views = {}
        for buf, off, shapes in ((params, self._param_off, self.param_shapes(self._input_shape)),
                                 (stats, self._stat_off, self.stat_shapes(self._input_shape))):
            for name, shape in shapes:
                n = int(np.prod(shape))
                views[name] = buf[off:off + n].reshape(shape)
                off += n
        self._views = views

    def _position(self):
        """'layers[i]' once in a model (names the layer in setting errors), else None."""
        model = self.__dict__.get("_model")
        if model is None:
            return None
        layers = model.__dict__.get("_layers") or model.__dict__.get("_all_layers") or []
        return next((f"layers[{i}]" for i, ly in enumerate(layers) if ly is self), None)

    # ---- the shape protocol (override) ---------------------------------------------------------
    def output_shape(self, input_shape: Shapes) -> Shape:
        """Per-sample output shape for a per-sample input shape (a list of them for layers with
        several inputs)."""
        return input_shape

    def param_shapes(self, input_shape: Shapes) -> List[Tuple[str, Shape]]:
        """[(name, shape)] of the trainable parameters, in buffer order."""
        return []

    def stat_shapes(self, input_shape: Shapes) -> List[Tuple[str, Shape]]:
        """[(name, shape)] of the non-trainable statistics, in buffer order."""
        return []

    def c_config(self) -> Dict[str, Any]:
        """The settings of the C kind, by field name (see annfast._core.layer_fields(kind))."""
        return {}

    def init_params(self, rng: np.random.Generator, dtype: DTypeLike) -> None:
        """Fill the parameter and statistic views (self._views) for a fresh model."""

    def check_input(self, input_shape: Shapes, dtype: Union[str, List[str]]) -> List[Shape]:
        """Raise ValueError when the layer cannot take this input (shape, or 'int32' dtype)."""
        shapes = input_shape if self.n_inputs[1] > 1 else [input_shape]
        dtypes = dtype if self.n_inputs[1] > 1 else [dtype]
        if any(d != "float" for d in dtypes):
            raise ValueError(f"{self.name} ({type(self).__name__}) takes float inputs, got integer "
                             "token ids (use an Embedding layer first)")
        return shapes

    def check_supported(self) -> None:
        """TypeError unless the layer maps to a kind of the C engine (every layer runs in C)."""
        from .. import _core
        if self.kind not in _core.LAYER_KINDS:
            raise TypeError(f"{type(self).__name__} ({self.name}) has kind={self.kind!r}, which is not a "
                            f"layer kind of annfast's C engine ({', '.join(_core.LAYER_KINDS)}): layers "
                            "written in Python (forward/backward in NumPy) are not supported; a new kind "
                            "is written in C (docs/adding-a-layer.md), or compose existing layers with the "
                            "functional af.Model")

    # ---- calling ------------------------------------------------------------------------------
    def __call__(self, inputs: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        self.check_supported()
        lo, hi = self.n_inputs
        many = isinstance(inputs, (list, tuple))
        tensors = list(inputs) if many else [inputs]
        if not all(isinstance(t, Tensor) for t in tensors):
            bad = next(t for t in tensors if not isinstance(t, Tensor))
            raise TypeError(f"{self.name}: a layer is called on annfast tensors (af.Input or another "
                            f"layer's output), got {type(bad).__name__}")
        if hi > 1 and not many:
            raise TypeError(f"{self.name} ({type(self).__name__}) is called on a list of {lo} or more "
                            "tensors")
        if not lo <= len(tensors) <= hi or (hi == 1 and many and len(tensors) != 1):
            raise ValueError(f"{self.name} ({type(self).__name__}) takes {lo}"
                             f"{'' if lo == hi else f' to {hi}'} input tensors, got {len(tensors)}")
        if self._model is not None:
            raise ValueError(f"{self.name} already belongs to a built model; create a new layer object")
        shape = [t.sample_shape for t in tensors] if hi > 1 else tensors[0].sample_shape
        dtype = [t.dtype for t in tensors] if hi > 1 else tensors[0].dtype
        self.check_input(shape, dtype)
        out = _shape_tuple(self.output_shape(shape), f"{self.name} output shape")
        if self._input_shape is not None and self._input_shape != shape:
            raise ValueError(f"{self.name} is shared and was first called on per-sample shape "
                             f"{self._input_shape}; a shared layer needs the same input shape, got {shape}")
        self._input_shape = shape
        t = Tensor(out, self.output_dtype(dtype), self, tensors + self._extra_inputs())
        t._n_data = len(tensors)
        t._mask = self.compute_mask(tensors, tensors[0]._mask)
        return t

    def output_dtype(self, dtype: Union[str, List[str]]) -> str:
        return "float"

    def compute_mask(self, inputs: List[Tensor], mask: Optional[Tensor]) -> Optional[Tensor]:
        """The mask of this call's output (a Tensor or None) given its first input's mask: passed
        on by per-step layers (supports_masking), made by Embedding(mask_zero=True) and Masking,
        dropped by default."""
        return mask if self.supports_masking else None

    def _extra_inputs(self):
        """Tensors the C kind takes after the data inputs of the call being recorded (a mask,
        initial states)."""
        return []

    # ---- state --------------------------------------------------------------------------------
    @property
    def n_in(self):
        """Width (last axis) of the input once called (None before; a list for several inputs)."""
        shape = self._input_shape
        if shape is None:
            return None
        return [s[-1] for s in shape] if isinstance(shape, list) else shape[-1]

    @property
    def n_out(self):
        """Width (last axis) of the output once called (None before)."""
        return None if self._input_shape is None else tuple(self.output_shape(self._input_shape))[-1]

    @property
    def built(self):
        return self._model is not None

    def _view(self, name):
        return None if self._model is None else self._views.get(name)

    def _set(self, name, value):
        if self._model is None:
            raise ValueError(f"{type(self).__name__}.{name} cannot be set before the model is built "
                             "(give the model its input shape or call build/fit first)")
        with exclusive(self._model):  # not while another thread's call uses the buffers
            view = self._views[name]
            arr = as_array(value, name, view.dtype)
            if arr.shape != view.shape:
                raise ValueError(f"{name} must have shape {view.shape}, got {arr.shape}")
            view[...] = arr

    @property
    def trainable_weights(self):
        """Views of the trainable parameters in the order gradients() returns them."""
        if self._model is None:
            return []
        return [self._views[n] for n, _ in self.param_shapes(self._input_shape)]

    @property
    def weights(self):
        """All the layer's weights as Keras lists them: the trainable ones, then the statistics
        (Dense: [kernel, bias]; BatchNormalization: [gamma, beta, moving_mean, moving_variance]),
        as views into the model's buffers ([] before build). Set them with set_weights."""
        return self.trainable_weights + self.non_trainable_weights

    @weights.setter
    def weights(self, value):
        raise AttributeError(f"{type(self).__name__}.weights is the list of the layer's weights (as in "
                             "Keras): assign one array through its name (Dense.kernel, .bias, ...) or "
                             "all of them with layer.set_weights([...])")

    def get_weights(self) -> List[np.ndarray]:
        """Copies of the layer's weights, in the order of `weights`."""
        return [w.copy() for w in self.weights]

    def set_weights(self, weights: Sequence[ArrayLike]) -> None:
        """Set the layer's weights from a list shaped like get_weights() (all checked first)."""
        if self._model is None:
            raise ValueError(f"{self.name}.set_weights needs a built model")
        targets = self.weights
        if not isinstance(weights, (list, tuple)) or len(weights) != len(targets):
            got = len(weights) if isinstance(weights, (list, tuple)) else type(weights).__name__
            raise ValueError(f"{self.name}.set_weights takes a list of {len(targets)} arrays, got {got}")
        arrays = []
        for i, (w, t) in enumerate(zip(weights, targets)):
            a = as_array(w, f"weights[{i}]", t.dtype)
            if a.shape != t.shape:
                raise ValueError(f"weights[{i}] must have shape {t.shape}, got {a.shape}")
            arrays.append(a)
        with exclusive(self._model):
            for a, t in zip(arrays, targets):
                t[...] = a

    @property
    def non_trainable_weights(self):
        if self._model is None:
            return []
        return [self._views[n] for n, _ in self.stat_shapes(self._input_shape)]

    def count_params(self) -> int:
        if self._input_shape is None:
            return 0
        return sum(int(np.prod(s)) for _, s in self.param_shapes(self._input_shape))

    def get_config(self) -> Dict[str, Any]:
        return {"class_name": type(self).__name__, "name": self.name}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Layer":
        return build_from_config(cls, Layer, config, LAYER_CLASSES, "layer", cls.__name__)

    def __repr__(self):
        return config_repr(self)


class InputLayer(Layer):
    """The layer behind af.Input: declares a model input's per-sample shape and dtype."""

    kind = "input"
    n_inputs = (0, 0)

    def __init__(self, shape: Union[int, Sequence[int]], dtype: DTypeLike = "float32",
                 name: Optional[str] = None) -> None:
        super().__init__(name=name or _auto_name("input"))
        self.shape = _shape_tuple(shape, "Input shape")
        dt = np.dtype(dtype) if not isinstance(dtype, str) or dtype not in ("float", "int") else None
        if dtype in ("float", "int"):
            self.dtype = "float32" if dtype == "float" else "int32"
        elif dt.kind == "f":
            self.dtype = dt.name
        elif dt.kind in "iu":
            self.dtype = "int32"          # token ids: any integer array is accepted
        else:
            raise ValueError(f"Input dtype must be a float or integer dtype, got {dtype!r}")
        self._input_shape = self.shape

    @property
    def is_int(self):
        return self.dtype == "int32"

    def c_config(self) -> Dict[str, Any]:
        return {"shape": self.shape, "dtype": "int32" if self.is_int else "float"}

    def get_config(self) -> Dict[str, Any]:
        return {"class_name": "InputLayer", "shape": list(self.shape), "dtype": self.dtype,
                "name": self.name}


def Input(shape: Union[int, Sequence[int]], dtype: DTypeLike = "float32",
          name: Optional[str] = None) -> Tensor:
    """A model input: a symbolic tensor of per-sample `shape` (without the batch axis).

    dtype: a float dtype (the model's float type is used) or an integer dtype for token ids
    (arrays of any integer dtype are then accepted and passed to C as int32).

    >>> import annfast as af
    >>> x = af.Input(shape=(28, 28, 1))
    >>> x.shape
    (None, 28, 28, 1)
    """
    layer = InputLayer(shape, dtype, name)
    return Tensor(layer.shape, "int32" if layer.is_int else "float", layer, [])
