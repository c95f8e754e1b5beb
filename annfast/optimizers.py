"""Optimisers and learning-rate schedules.

The update loops run in C (csrc/optim.c), fused over a model's flat parameter vector; the classes
here only hold hyperparameters, turn them into the dict the C boundary takes (``c_config``) and
serialise them (``get_config`` / ``from_config``). The model owns the optimiser *state* (moment
buffers, step count), so saving a model saves it.

Formulas and defaults follow ``torch.optim`` (which the tests check against):

==========  =======================================================================  ===========
class       update (g' = g + weight_decay p unless decoupled)                        defaults
==========  =======================================================================  ===========
SGD         v = momentum v + g';  p -= lr (nesterov ? g' + momentum v : v)           lr=0.01
Adagrad     G += g'^2;  p -= lr g' / (sqrt(G) + eps)                                 lr=0.01,
                                                                                     eps=1e-10
RMSprop     E = rho E + (1-rho) g'^2;  p -= lr g' / (sqrt(E) + eps)  (+momentum)     lr=0.01,
                                                                                     rho=0.99
Adadelta    E = rho E + (1-rho) g'^2;  d = sqrt(D+eps)/sqrt(E+eps) g';               lr=1.0,
            D = rho D + (1-rho) d^2;  p -= lr d                                      rho=0.9
Adam        m, v moving averages of g', g'^2;  p -= lr mhat / (sqrt(vhat) + eps)     lr=0.001
AdamW       Adam with decoupled decay: p = p (1 - lr weight_decay) first             wd=0.01
==========  =======================================================================  ===========

(SGD's default learning rate 0.01 is the Keras one and older torch's; torch 2.x uses 1e-3.
Keras uses other defaults for Adagrad/RMSprop/Adadelta and puts eps inside the square root for
Adagrad; we follow PyTorch throughout. Hyperparameter *names* follow Keras: ``learning_rate``,
``beta_1``, ``epsilon``.)

Every optimiser also takes ``clipnorm`` (rescale the whole gradient so its global L2 norm is at
most this) and ``clipvalue`` (clip each gradient entry to [-clipvalue, clipvalue]); clipping is
applied before weight decay and the update, norm first, then value (as Keras and the C training
step do). Both are checked when assigned and may change after training: a model using the
optimiser applies the new value from its next call.

``epsilon`` must be representable in the model's dtype: a value below the dtype's smallest
normal number (float32: 1.1754944e-38, float64: 2.2250738585072014e-308), e.g.
``Adam(epsilon=1e-50)`` in a float32 model, raises ValueError when the model is compiled or fit
(or ``update`` gets arrays of that dtype). PyTorch and Keras store such an eps as 0 and turn every
weight whose gradient is exactly zero into 0 / 0 = NaN on the first step; refusing it keeps the
float32 kernels and their agreement with torch.optim unchanged for every usable value.

``learning_rate`` may be a float, a schedule (:class:`StepDecay`, :class:`ExponentialDecay`) or
any callable ``epoch -> lr`` (epochs count from 0).

>>> from annfast import optimizers
>>> opt = optimizers.Adam(learning_rate=optimizers.StepDecay(1e-3, drop=0.5, every=10))
>>> opt.c_config(epoch=10)["lr"]
0.0005
>>> optimizers.get("sgd").get_config()["learning_rate"]
0.01
"""
import math
import numbers
import warnings

import numpy as np

from ._configurable import build_from_config, config_repr
from ._settings import Setting, real

from ._validate import check_float, check_int

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "AdamW",
           "LearningRateSchedule", "StepDecay", "ExponentialDecay", "get"]


# ---------------------------------------------------------------------------------------------
# learning-rate schedules
# ---------------------------------------------------------------------------------------------
class LearningRateSchedule:
    """Base class: ``schedule(epoch) -> learning rate`` (epoch counts from 0), JSON-serialisable.

    Subclasses implement ``__call__`` and ``get_config``.
    """

    def __call__(self, epoch):
        raise NotImplementedError

    def get_config(self):
        raise NotImplementedError

    @classmethod
    def from_config(cls, config):
        """Rebuild a schedule from ``get_config()`` output."""
        cfg = dict(config)
        name = cfg.pop("class_name", cls.__name__)
        target = _SCHEDULES.get(name)
        if target is None or (cls is not LearningRateSchedule and target is not cls):
            raise ValueError(f"unknown learning-rate schedule class_name {name!r}; "
                             f"expected one of {sorted(_SCHEDULES)}")
        try:
            return target(**cfg)
        except TypeError as exc:
            raise ValueError(f"bad config for {name}: {exc}") from None

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "class_name")
        return f"{type(self).__name__}({args})"


class StepDecay(LearningRateSchedule):
    """lr = initial * drop ** floor(epoch / every).

    >>> StepDecay(0.1, drop=0.5, every=2)(3)
    0.05
    """

    def __init__(self, initial, drop=0.5, every=10):
        self.initial = check_float(initial, "initial", minimum=0.0)
        self.drop = check_float(drop, "drop", minimum=0.0, maximum=1.0)
        self.every = check_int(every, "every", minimum=1)

    def __call__(self, epoch):
        return self.initial * self.drop ** (int(epoch) // self.every)

    def get_config(self):
        return {"class_name": "StepDecay", "initial": self.initial, "drop": self.drop,
                "every": self.every}


class ExponentialDecay(LearningRateSchedule):
    """lr = initial * rate ** (epoch / steps), or rate ** floor(epoch / steps) with staircase=True.

    >>> ExponentialDecay(1.0, rate=0.5, steps=2)(2)
    0.5
    """

    def __init__(self, initial, rate=0.96, steps=1, staircase=False):
        self.initial = check_float(initial, "initial", minimum=0.0)
        self.rate = check_float(rate, "rate", minimum=0.0, maximum=1.0, strict_min=True)
        self.steps = check_int(steps, "steps", minimum=1)
        if not isinstance(staircase, (bool, np.bool_)):
            raise TypeError(f"staircase must be a bool, got {type(staircase).__name__}")
        self.staircase = bool(staircase)

    def __call__(self, epoch):
        e = int(epoch) / self.steps
        if self.staircase:
            e = math.floor(e)
        return self.initial * self.rate ** e

    def get_config(self):
        return {"class_name": "ExponentialDecay", "initial": self.initial, "rate": self.rate,
                "steps": self.steps, "staircase": self.staircase}


_SCHEDULES = {"StepDecay": StepDecay, "ExponentialDecay": ExponentialDecay}


def _check_lr(lr):
    """A learning rate argument: float >= 0, a LearningRateSchedule, or a callable epoch -> lr."""
    if isinstance(lr, LearningRateSchedule):
        return lr
    if isinstance(lr, dict):
        return LearningRateSchedule.from_config(lr)
    if callable(lr) and not isinstance(lr, numbers.Real):
        return lr
    return check_float(lr, "learning_rate", minimum=0.0)


def _opt_float(value, name, lo, hi=None, lo_open=False, hi_open=False):
    value = check_float(value, name)
    if (value <= lo if lo_open else value < lo) or (hi is not None and (value >= hi if hi_open else value > hi)):
        raise ValueError(f"{name} must be in {'(' if lo_open else '['}{lo}, "
                         f"{hi if hi is not None else 'inf'}{')' if hi_open or hi is None else ']'}, "
                         f"got {value}")
    return value


def _opt_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


# ---------------------------------------------------------------------------------------------
# optimisers
# ---------------------------------------------------------------------------------------------
def _c_vector(a, written=False):
    """A float ndarray as one C can use: itself when it is a 1-D, C-contiguous, aligned,
    native-byte-order float32/float64 array, else such a copy. Anything else (and read-only
    arrays that would be written) is passed through for _core to reject with its message."""
    if not isinstance(a, np.ndarray) or a.dtype.kind != "f" or a.dtype.itemsize not in (4, 8) \
            or a.ndim != 1 or (written and not a.flags.writeable):
        return a
    if a.flags.c_contiguous and a.flags.aligned and a.dtype.isnative:
        return a
    return np.array(a, dtype=a.dtype.newbyteorder("="), order="C")


class Optimizer:
    """Base class. Subclasses set ``kind`` (the C optimiser) and their hyperparameters.

    Attributes used by the training engine: ``c_config(epoch)``, ``state_slots``, ``clipnorm``,
    ``clipvalue``. ``update(param, grad, state, t)`` applies one step to flat arrays directly.
    """

    kind = None
    _hyper = ()  # names of subclass hyperparameters, in constructor order
    # Checked whenever assigned; a model using this optimiser applies a change at its next call.
    clipnorm = Setting(real(0.0, lo_open=True, none=True), doc="Global gradient-norm bound or None.")
    clipvalue = Setting(real(0.0, lo_open=True, none=True), doc="Per-entry gradient bound or None.")

    def __init__(self, learning_rate, weight_decay=0.0, clipnorm=None, clipvalue=None):
        self.learning_rate = _check_lr(learning_rate)
        self.weight_decay = _opt_float(weight_decay, "weight_decay", 0.0)
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self._last_epoch = 0

    decoupled_wd = False

    def lr_at(self, epoch):
        """Learning rate at ``epoch`` (0-based) from the float, schedule or callable."""
        epoch = check_int(epoch, "epoch", minimum=0)
        lr = self.learning_rate
        if callable(lr):
            value = lr(epoch)
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) \
                    or not math.isfinite(value) or value < 0:
                raise ValueError(f"learning_rate schedule returned {value!r} at epoch {epoch}; "
                                 f"expected a finite number >= 0")
            return float(value)
        return lr

    def _c_extra(self):
        return {}

    def check_dtype(self, dtype):
        """Raise ValueError if ``epsilon`` underflows in ``dtype`` (below its smallest normal
        number, so it would be stored as 0 or a flushable subnormal); see the module notes."""
        eps = getattr(self, "epsilon", None)
        if eps is None:
            return
        dtype = np.dtype(dtype)
        tiny = np.finfo(dtype).tiny
        if eps < tiny:
            tiny = str(tiny)  # NumPy's shortest repr in that dtype: 1.1754944e-38 for float32
            raise ValueError(f"{type(self).__name__}: epsilon={eps!r} underflows in {dtype.name} "
                             f"(its smallest normal number is {tiny}); use epsilon >= {tiny} or a "
                             f"float64 model")

    def c_config(self, epoch=0):
        """The dict the C boundary takes (``_core.optim_step`` / ``fill_optim``), lr at ``epoch``.

        >>> SGD(0.1, momentum=0.9).c_config(0)["momentum"]
        0.9
        """
        lr = self.lr_at(epoch)
        self._last_epoch = int(epoch)
        cfg = {"kind": self.kind, "lr": lr, "momentum": 0.0, "nesterov": False, "rho": 0.9,
               "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "initial_accumulator": 0.0,
               "weight_decay": self.weight_decay, "decoupled_wd": self.decoupled_wd}
        cfg.update(self._c_extra())
        return cfg

    @property
    def state_slots(self):
        """How many state vectors (each as long as the parameters) this optimiser keeps."""
        from . import _core
        return _core.optim_slots(self.c_config(self._last_epoch))

    def update(self, param, grad, state, t, epoch=0):
        """Apply one step in place to flat arrays: clip ``grad`` (a copy), then update ``param``
        and ``state`` (``state_slots * param.size`` zeros before step ``t=1``). The three are 1-D
        arrays of one float dtype in any layout or byte order (C steps a native copy of a strided,
        misaligned or byte-swapped ``param``/``state`` and the result is written back).

        >>> p = np.ones(4); s = np.zeros(0)
        >>> SGD(0.5).update(p, np.ones(4), s, t=1); p
        array([0.5, 0.5, 0.5, 0.5])
        """
        from . import _core
        cfg = self.c_config(epoch)
        if isinstance(param, np.ndarray) and param.dtype.kind == "f" and param.dtype.itemsize in (4, 8):
            self.check_dtype(param.dtype.newbyteorder("="))
        # C updates aligned, contiguous, native-byte-order vectors; other layouts of param and
        # state are updated through a copy and written back, as a NumPy in-place operation would
        p, s = _c_vector(param, written=True), _c_vector(state, written=True)
        if (p is not param or s is not state) and any(
                isinstance(x, np.ndarray) and isinstance(y, np.ndarray) and x.size and np.shares_memory(x, y)
                for x, y in ((param, grad), (param, state), (state, grad))):
            raise ValueError("param, grad and state must not overlap in memory")
        grad = _c_vector(grad)
        if (self.clipvalue is not None or self.clipnorm is not None) and isinstance(grad, np.ndarray):
            grad = grad.copy()
            if self.clipnorm is not None:
                _core.clip_norm(grad, self.clipnorm)
            if self.clipvalue is not None:
                _core.clip_value(grad, self.clipvalue)
        _core.optim_step(cfg, p, grad, s, t)
        for mine, theirs in ((p, param), (s, state)):
            if mine is not theirs:
                theirs[...] = mine

    def get_config(self):
        """JSON-able dict: ``class_name`` plus every constructor argument."""
        lr = self.learning_rate
        if isinstance(lr, LearningRateSchedule):
            lr = lr.get_config()
        elif callable(lr):
            value = self.lr_at(self._last_epoch)
            warnings.warn(f"learning_rate is a plain callable and cannot be serialised; saving the "
                          f"value at epoch {self._last_epoch} ({value}) instead", UserWarning, stacklevel=2)
            lr = value
        cfg = {"class_name": type(self).__name__, "learning_rate": lr}
        for name in self._hyper:
            cfg[name] = getattr(self, name)
        cfg.update(weight_decay=self.weight_decay, clipnorm=self.clipnorm, clipvalue=self.clipvalue)
        return cfg

    @classmethod
    def from_config(cls, config):
        """Rebuild an optimiser from ``get_config()`` output (on the base class it dispatches on
        ``class_name``)."""
        return build_from_config(cls, Optimizer, config, _CLASSES, "optimizer config",
                                 None if cls is Optimizer else cls.__name__)

    def __repr__(self):
        return config_repr(self)


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, as torch.optim.SGD
    (dampening 0).

    >>> opt = SGD(learning_rate=0.1, momentum=0.9, nesterov=True)
    """

    kind = "sgd"
    _hyper = ("momentum", "nesterov")

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=0.0,
                 clipnorm=None, clipvalue=None):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue)
        self.momentum = _opt_float(momentum, "momentum", 0.0, 1.0, hi_open=True)
        self.nesterov = _opt_bool(nesterov, "nesterov")
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0, got momentum=0.0")

    def _c_extra(self):
        return {"momentum": self.momentum, "nesterov": self.nesterov}


class Adagrad(Optimizer):
    """Adagrad as torch.optim.Adagrad: per-parameter step lr / (sqrt(sum of g^2) + epsilon).

    >>> opt = Adagrad(learning_rate=0.05, initial_accumulator_value=0.1)
    """

    kind = "adagrad"
    _hyper = ("initial_accumulator_value", "epsilon")

    def __init__(self, learning_rate=0.01, initial_accumulator_value=0.0, epsilon=1e-10,
                 weight_decay=0.0, clipnorm=None, clipvalue=None):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue)
        self.initial_accumulator_value = _opt_float(initial_accumulator_value,
                                                    "initial_accumulator_value", 0.0)
        self.epsilon = _opt_float(epsilon, "epsilon", 0.0, lo_open=True)

    def _c_extra(self):
        return {"initial_accumulator": self.initial_accumulator_value, "eps": self.epsilon}


class RMSprop(Optimizer):
    """RMSprop as torch.optim.RMSprop (rho is torch's alpha; epsilon outside the square root;
    optional momentum; not centred).

    >>> opt = RMSprop(learning_rate=0.001, rho=0.9)
    """

    kind = "rmsprop"
    _hyper = ("rho", "momentum", "epsilon")

    def __init__(self, learning_rate=0.01, rho=0.99, momentum=0.0, epsilon=1e-8, weight_decay=0.0,
                 clipnorm=None, clipvalue=None):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue)
        self.rho = _opt_float(rho, "rho", 0.0, 1.0, hi_open=True)
        self.momentum = _opt_float(momentum, "momentum", 0.0, 1.0, hi_open=True)
        self.epsilon = _opt_float(epsilon, "epsilon", 0.0, lo_open=True)

    def _c_extra(self):
        return {"rho": self.rho, "momentum": self.momentum, "eps": self.epsilon}


class Adadelta(Optimizer):
    """Adadelta as torch.optim.Adadelta (learning_rate scales the Adadelta step; 1.0 is the
    original method).

    >>> opt = Adadelta(rho=0.95)
    """

    kind = "adadelta"
    _hyper = ("rho", "epsilon")

    def __init__(self, learning_rate=1.0, rho=0.9, epsilon=1e-6, weight_decay=0.0, clipnorm=None,
                 clipvalue=None):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue)
        self.rho = _opt_float(rho, "rho", 0.0, 1.0, hi_open=True)
        self.epsilon = _opt_float(epsilon, "epsilon", 0.0, lo_open=True)

    def _c_extra(self):
        return {"rho": self.rho, "eps": self.epsilon}


class Adam(Optimizer):
    """Adam with bias correction, as torch.optim.Adam (weight_decay is L2 added to the gradient;
    use :class:`AdamW` for decoupled decay).

    >>> opt = Adam(learning_rate=1e-3, beta_1=0.9, beta_2=0.999)
    """

    kind = "adam"
    _hyper = ("beta_1", "beta_2", "epsilon")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8, weight_decay=0.0,
                 clipnorm=None, clipvalue=None):
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue)
        self.beta_1 = _opt_float(beta_1, "beta_1", 0.0, 1.0, hi_open=True)
        self.beta_2 = _opt_float(beta_2, "beta_2", 0.0, 1.0, hi_open=True)
        self.epsilon = _opt_float(epsilon, "epsilon", 0.0, lo_open=True)

    def _c_extra(self):
        return {"beta1": self.beta_1, "beta2": self.beta_2, "eps": self.epsilon}


class AdamW(Adam):
    """Adam with decoupled weight decay, as torch.optim.AdamW: ``p *= 1 - lr * weight_decay``,
    then the Adam step.

    >>> opt = AdamW(learning_rate=1e-3, weight_decay=0.01)
    """

    decoupled_wd = True

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8, weight_decay=0.01,
                 clipnorm=None, clipvalue=None):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, weight_decay, clipnorm, clipvalue)


_CLASSES = {"SGD": SGD, "Adagrad": Adagrad, "RMSprop": RMSprop, "Adadelta": Adadelta, "Adam": Adam,
            "AdamW": AdamW}
_BY_NAME = {k.lower(): v for k, v in _CLASSES.items()}


def names():
    """The optimiser names get() accepts (lower case)."""
    return tuple(_BY_NAME)


def get(identifier):
    """An optimiser from a name ('sgd', 'adam', ... case-insensitive, with defaults), an
    instance (returned as is) or a ``get_config()`` dict.

    >>> get("adam").learning_rate
    0.001
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower())
        if cls is None:
            raise ValueError(f"unknown optimizer {identifier!r}; expected one of {sorted(_BY_NAME)}")
        return cls()
    if isinstance(identifier, dict):
        return Optimizer.from_config(identifier)
    raise TypeError(f"optimizer must be a name, an annfast.optimizers.Optimizer or a config dict, "
                    f"got {type(identifier).__name__}")
