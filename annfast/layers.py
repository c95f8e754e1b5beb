"""Layers for annfast.Sequential: Dense, BatchNormalization, Dropout.

A layer holds its configuration; once its model is built, its parameters are NumPy views into
the model's one flat parameter buffer (what the C engine and the optimiser update in place), so
``layer.weights`` always shows the current values and assigning to it (after validation) copies
into the model (waiting, like every model call, for another thread's call on the model to end).

Settings (Dense activation/alpha/l1/l2, Dropout rate, BatchNormalization momentum/epsilon) are
checked whenever assigned and may change after training: the model's next call uses the new
value. Sizes (Dense units, use_bias) cannot change once the model is built.

>>> import annfast as af
>>> model = af.Sequential([af.Dense(4, activation="relu"), af.Dense(1)], input_dim=3, seed=0)
>>> model.layers[0].weights.shape, model.layers[0].bias.shape
((3, 4), (4,))
"""
import numbers

import numpy as np

from ._busy import exclusive
from ._configurable import build_from_config, config_repr

from . import activations as _acts
from ._settings import Setting, boolean, integer, real
from ._validate import as_array


def _regularizer(kernel_regularizer, l1, l2):
    """(l1, l2) from kernel_regularizer (None, {"l1": a, "l2": b}, ("l1"|"l2", value)) or l1=/l2=.
    Only the structure is checked here; the values are checked by the Dense.l1/l2 settings."""
    if kernel_regularizer is None:
        return l1, l2
    if any(v is not None and not (isinstance(v, numbers.Real) and v == 0) for v in (l1, l2)):
        raise ValueError("give kernel_regularizer or l1=/l2=, not both")
    if isinstance(kernel_regularizer, dict):
        unknown = set(kernel_regularizer) - {"l1", "l2"}
        if unknown:
            raise ValueError(f"kernel_regularizer keys must be 'l1' and/or 'l2', got {sorted(unknown)}")
        return kernel_regularizer.get("l1"), kernel_regularizer.get("l2")
    if (isinstance(kernel_regularizer, tuple) and len(kernel_regularizer) == 2
            and kernel_regularizer[0] in ("l1", "l2")):
        v = kernel_regularizer[1]
        return (v, None) if kernel_regularizer[0] == "l1" else (None, v)
    raise TypeError("kernel_regularizer must be None, a dict {'l1': a, 'l2': b} or ('l1'|'l2', value), "
                    f"got {type(kernel_regularizer).__name__} {kernel_regularizer!r}")


def _activation(value, label):
    return _acts.check_name(value, None, label)[0]


def _default_alpha(layer):
    """A new activation starts with its default parameter, as Dense(activation=...) would."""
    layer.alpha = _acts.DEFAULT_ALPHA.get(layer.activation, 0.0)


class Layer:
    """Base class: configuration, the model it belongs to and its views into the model buffers."""

    kind = None

    def __init__(self):
        self._model = None
        self.n_in = None
        self._views = {}

    @property
    def built(self):
        return self._model is not None

    def _position(self):
        """'layers[i]' once in a model (names the layer in setting errors), else None."""
        model = self.__dict__.get("_model")
        if model is None:
            return None
        return next((f"layers[{i}]" for i, ly in enumerate(model._layers) if ly is self), None)

    @property
    def n_out(self):
        return self.n_in

    def _attach(self, model, n_in):
        if self._model is not None and self._model is not model:
            raise ValueError(f"{type(self).__name__} layer already belongs to another model; "
                             "create a new layer object")
        self.n_in = n_in

    def _param_shapes(self):
        """[(name, shape)] of the trainable parameters, in buffer order."""
        return []

    def _stat_shapes(self):
        return []

    def _spec(self, offsets, stat_offsets):
        raise NotImplementedError

    def _bind_views(self, params, stats):
        """Make the parameter/statistics views slices of the model's flat buffers."""
        views = {}
        for names, buf, offsets in ((self._param_shapes(), params, self._offsets),
                                    (self._stat_shapes(), stats, self._stat_offsets)):
            for name, shape in names:
                o = offsets[name]
                views[name] = buf[o:o + int(np.prod(shape))].reshape(shape)
        self._views = views

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
        if params is not None and "_offsets" in self.__dict__:
            self._bind_views(params, model._stats)

    def _view(self, name):
        if self._model is None:
            return None
        return self._views[name]

    def _set(self, name, value):
        if self._model is None:
            raise ValueError(f"{type(self).__name__}.{name} cannot be set before the model is built "
                             "(give Sequential an input_dim or call build/fit first)")
        with exclusive(self._model):  # not while another thread's call uses the buffers
            view = self._views[name]
            arr = as_array(value, name, view.dtype)
            if arr.shape != view.shape:
                raise ValueError(f"{name} must have shape {view.shape}, got {arr.shape}")
            view[...] = arr

    @property
    def trainable_weights(self):
        """Views of the trainable parameters in the order gradients() returns them."""
        return [self._views[n] for n, _ in self._param_shapes()] if self._model is not None else []

    @property
    def non_trainable_weights(self):
        return [self._views[n] for n, _ in self._stat_shapes()] if self._model is not None else []

    def get_config(self):
        raise NotImplementedError

    @classmethod
    def from_config(cls, config):
        return build_from_config(cls, Layer, config, LAYER_CLASSES, "layer", cls.__name__)

    def __repr__(self):
        return config_repr(self)


class Dense(Layer):
    """Fully connected layer: y = activation(x @ W + b), W of shape (n_in, units).

    Parameters
    ----------
    units : int >= 1
    activation : None/'linear', 'sigmoid', 'tanh', 'relu', 'leaky_relu', 'elu', 'selu', 'softmax'
    alpha : slope of leaky_relu (default 0.01) / scale of elu (default 1.0); must be >= 0
    use_bias : bool
    kernel_initializer : name, config dict, annfast.initializers object or callable
        f(shape, rng, dtype); default by activation
        (annfast.initializers.default_for: He for the relu family, LeCun normal for selu,
        else Glorot uniform). Biases start at zero.
    kernel_regularizer : None, {'l1': a, 'l2': b} or ('l1'|'l2', value); or l1=, l2= directly.
        Adds l1 * sum|W| + l2 * sum W^2 to the loss.

    >>> import annfast as af
    >>> layer = af.Dense(8, activation="leaky_relu", alpha=0.1, l2=1e-4)
    """

    kind = "dense"
    # Checked whenever assigned (also after training: the next call uses the new value).
    units = Setting(integer(1), frozen=True, doc="Output width (fixed once built).")
    use_bias = Setting(boolean, frozen=True, doc="Whether the layer has a bias (fixed once built).")
    activation = Setting(_activation, after=_default_alpha,
                         doc="Activation name; assigning it resets alpha to that activation's default.")
    alpha = Setting(real(0.0), doc="leaky_relu slope / elu scale, >= 0.")
    l1 = Setting(real(0.0, none=True, none_value=0.0), doc="L1 penalty on the kernel, >= 0.")
    l2 = Setting(real(0.0, none=True, none_value=0.0), doc="L2 penalty on the kernel, >= 0.")

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer=None,
                 kernel_regularizer=None, l1=None, l2=None, alpha=None):
        super().__init__()
        self.units = units
        self.activation = activation
        if alpha is not None:
            self.alpha = alpha
        self.use_bias = use_bias
        if kernel_initializer is not None:
            from . import initializers
            # name, config dict, Initializer or callable; errors (unknown name) raised now
            kernel_initializer = initializers.get(kernel_initializer)
        self.kernel_initializer = kernel_initializer
        self.l1, self.l2 = _regularizer(kernel_regularizer, l1, l2)

    @property
    def n_out(self):
        return self.units

    def _param_shapes(self):
        shapes = [("weights", (self.n_in, self.units))]
        if self.use_bias:
            shapes.append(("bias", (self.units,)))
        return shapes

    def _init_params(self, rng, dtype):
        from . import initializers
        init = initializers.get(self.kernel_initializer if self.kernel_initializer is not None
                                else initializers.default_for(self.activation))
        w = np.asarray(init((self.n_in, self.units), rng, dtype))
        if w.shape != (self.n_in, self.units) or not np.all(np.isfinite(w)):
            raise ValueError(f"kernel_initializer returned shape {w.shape} (expected "
                             f"{(self.n_in, self.units)}) or non-finite values")
        self._views["weights"][...] = w
        if self.use_bias:
            self._views["bias"][...] = 0

    def _spec(self, offsets, stat_offsets):
        return {"kind": "dense", "n_in": self.n_in, "n_out": self.units, "act": self.activation,
                "act_param": self.alpha, "use_bias": self.use_bias, "w_off": offsets["weights"],
                "b_off": offsets.get("bias", 0), "l1": self.l1, "l2": self.l2}

    @property
    def weights(self):
        """Kernel W, shape (n_in, units): a view into the model's parameters (None before build)."""
        return self._view("weights")

    @weights.setter
    def weights(self, value):
        self._set("weights", value)

    @property
    def bias(self):
        """Bias b, shape (units,) (None without use_bias or before build)."""
        return self._view("bias") if self.use_bias else None

    @bias.setter
    def bias(self, value):
        if not self.use_bias:
            raise ValueError("this Dense layer has use_bias=False")
        self._set("bias", value)

    def get_config(self):
        from . import initializers
        # a plain callable cannot be serialised (None); the weights are saved anyway
        init = None if self.kernel_initializer is None else initializers.serialize(self.kernel_initializer)
        return {"class_name": "Dense", "units": self.units, "activation": self.activation,
                "alpha": self.alpha, "use_bias": self.use_bias, "kernel_initializer": init,
                "l1": self.l1, "l2": self.l2}


class BatchNormalization(Layer):
    """Batch normalisation over the features: y = gamma * (x - mean) / sqrt(var + epsilon) + beta.

    Training uses the batch mean and (biased) variance and updates the running statistics as
    running = momentum * running + (1 - momentum) * batch (Keras convention; PyTorch's momentum
    is 1 - this); inference uses the running statistics. gamma starts at 1, beta at 0, the
    running mean at 0 and the running variance at 1.

    >>> import annfast as af
    >>> model = af.Sequential([af.Dense(16), af.BatchNormalization(), af.Dense(1)], input_dim=4)
    """

    kind = "batchnorm"
    momentum = Setting(real(0.0, 1.0), doc="Running-statistics momentum, in [0, 1].")
    epsilon = Setting(real(0.0, lo_open=True), doc="Variance offset, > 0.")

    def __init__(self, momentum=0.99, epsilon=1e-3):
        super().__init__()
        self.momentum = momentum
        self.epsilon = epsilon

    def _param_shapes(self):
        return [("gamma", (self.n_in,)), ("beta", (self.n_in,))]

    def _stat_shapes(self):
        return [("moving_mean", (self.n_in,)), ("moving_variance", (self.n_in,))]

    def _init_params(self, rng, dtype):
        self._views["gamma"][...] = 1
        self._views["beta"][...] = 0
        self._views["moving_mean"][...] = 0
        self._views["moving_variance"][...] = 1

    def _spec(self, offsets, stat_offsets):
        return {"kind": "batchnorm", "n_in": self.n_in, "n_out": self.n_in, "w_off": offsets["gamma"],
                "b_off": offsets["beta"], "s_off": stat_offsets["moving_mean"],
                "momentum": self.momentum, "eps": self.epsilon}

    gamma = property(lambda self: self._view("gamma"), lambda self, v: self._set("gamma", v),
                     doc="Scale, shape (n,): a view into the model's parameters.")
    beta = property(lambda self: self._view("beta"), lambda self, v: self._set("beta", v),
                    doc="Shift, shape (n,): a view into the model's parameters.")
    moving_mean = property(lambda self: self._view("moving_mean"),
                           lambda self, v: self._set("moving_mean", v), doc="Running mean.")
    moving_variance = property(lambda self: self._view("moving_variance"),
                               lambda self, v: self._set("moving_variance", v), doc="Running variance.")

    def _set(self, name, value):
        if name == "moving_variance":
            arr = as_array(value, name)
            if arr.size and arr.min() < 0:
                raise ValueError(f"moving_variance must be >= 0, got min {arr.min()}")
        super()._set(name, value)

    def get_config(self):
        return {"class_name": "BatchNormalization", "momentum": self.momentum, "epsilon": self.epsilon}


class Dropout(Layer):
    """Inverted dropout: in training each input is zeroed with probability `rate` and the others
    are scaled by 1 / (1 - rate); at inference the layer is the identity. Masks come from a
    counter-based generator keyed by the model seed, the step and the element index, so they are
    reproducible and independent of the thread count.

    >>> import annfast as af
    >>> layer = af.Dropout(0.5)
    """

    kind = "dropout"
    rate = Setting(real(0.0, 1.0, hi_open=True), doc="Fraction of inputs dropped in training, in [0, 1).")

    def __init__(self, rate):
        super().__init__()
        self.rate = rate

    def _init_params(self, rng, dtype):
        pass

    def _spec(self, offsets, stat_offsets):
        return {"kind": "dropout", "n_in": self.n_in, "n_out": self.n_in, "rate": self.rate}

    def get_config(self):
        return {"class_name": "Dropout", "rate": self.rate}


LAYER_CLASSES = {"Dense": Dense, "BatchNormalization": BatchNormalization, "Dropout": Dropout}
