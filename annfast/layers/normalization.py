"""BatchNormalization (C kind batchnorm, csrc/layers/batchnorm.c)."""
from .._settings import Setting, real
from .._validate import as_array
from .base import Layer


class BatchNormalization(Layer):
    """Batch normalisation over the last axis (the features, or an image's channels):
    y = gamma * (x - mean) / sqrt(var + epsilon) + beta.

    Training uses the batch mean and (biased) variance over every other axis and updates the
    running statistics as running = momentum * running + (1 - momentum) * batch (Keras
    convention; PyTorch's momentum is 1 - this); inference uses the running statistics. gamma
    starts at 1, beta at 0, the running mean at 0 and the running variance at 1.

    >>> import annfast as af
    >>> model = af.Sequential([af.Dense(16), af.BatchNormalization(), af.Dense(1)], input_dim=4)
    """

    kind = "batchnorm"
    momentum = Setting(real(0.0, 1.0), doc="Running-statistics momentum, in [0, 1].")
    epsilon = Setting(real(0.0, lo_open=True), doc="Variance offset, > 0.")

    def __init__(self, momentum=0.99, epsilon=1e-3, name=None):
        super().__init__(name)
        self.momentum = momentum
        self.epsilon = epsilon

    def param_shapes(self, input_shape):
        return [("gamma", (input_shape[-1],)), ("beta", (input_shape[-1],))]

    def stat_shapes(self, input_shape):
        return [("moving_mean", (input_shape[-1],)), ("moving_variance", (input_shape[-1],))]

    def c_config(self):
        return {"momentum": self.momentum, "epsilon": self.epsilon}

    def init_params(self, rng, dtype):
        self._views["gamma"][...] = 1
        self._views["beta"][...] = 0
        self._views["moving_mean"][...] = 0
        self._views["moving_variance"][...] = 1

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
        return {"class_name": "BatchNormalization", "momentum": self.momentum, "epsilon": self.epsilon,
                "name": self.name}
