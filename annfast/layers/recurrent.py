"""Recurrent layers: SimpleRNN, LSTM, GRU and the Bidirectional wrapper, on (batch, steps,
features) sequences (one C kind, csrc/layers/rnn.c).

The cells and their gate order are PyTorch's (LSTM i, f, g, o; GRU r, z, n in the "reset after"
form), and the weights are laid out as Keras lays them out:

==================  ====================  ===============================================
weight              shape                 from torch.nn.RNN / LSTM / GRU
==================  ====================  ===============================================
kernel              (features, G units)   weight_ih_l0.T
recurrent_kernel    (units, G units)      weight_hh_l0.T
bias (RNN, LSTM)    (G units,)            bias_ih_l0 + bias_hh_l0
bias (GRU)          (2, G units)          [bias_ih_l0, bias_hh_l0]
==================  ====================  ===============================================

with G = 1 (SimpleRNN), 4 (LSTM), 3 (GRU). Bidirectional holds the forward layer's weights then
the backward layer's (``forward_kernel``, ..., ``backward_bias``), as PyTorch's ``*_l0`` and
``*_l0_reverse``.

Masking: a mask from Embedding(mask_zero=True), Masking, or the ``mask=`` argument (a float
(steps,) tensor, nonzero = keep) skips steps: the state is carried through a masked step
unchanged and the step's output is 0. So padded sequences give the same outputs and final
states as each sequence run alone (padding at the end or the start).
"""
import numbers
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.typing import DTypeLike

from .. import activations as _acts
from .._settings import Setting, real
from .._validate import check_float, check_int
from ..initializers import InitializerLike
from .base import Layer, Tensor, param_property
from .base import Shape, Shapes
from .masking import Slice, owned

_ACTS = ("linear", "sigmoid", "tanh", "relu")
_MERGES = ("concat", "sum", "mul", "ave")


def _flag(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


def _act(value, name):
    key, _ = _acts.check_name(value, None, name)
    if key not in _ACTS:
        raise ValueError(f"{name} of a recurrent layer must be one of {', '.join(_ACTS)}, got {value!r}")
    return key


def _rate(value, name):
    v = check_float(value, name, minimum=0.0)
    if v >= 1:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return v


def _init(value, default):
    from .. import initializers
    return initializers.get(default if value is None else value)


class _Recurrent(Layer):
    """What SimpleRNN, LSTM, GRU and Bidirectional share (see the module docstring)."""

    kind = "rnn"
    cell = None                 # the C cell: "simple", "lstm", "gru"
    gates = 1
    _directions = 1
    merge_mode = "concat"
    # Checked when assigned, also after training (the model rebuilds its engine for the next call).
    dropout = Setting(real(0.0, 1.0, hi_open=True),
                      doc="Fraction of input features dropped in training, in [0, 1); the next call uses a new value.")
    recurrent_dropout = Setting(real(0.0, 1.0, hi_open=True),
                      doc="Fraction of state features dropped in training, in [0, 1); the next call uses a new value.")
    unit_forget_bias = False

    def __init__(self, units: int, activation: str = "tanh", recurrent_activation: str = "sigmoid",
                 use_bias: bool = True, kernel_initializer: InitializerLike = "glorot_uniform",
                 recurrent_initializer: InitializerLike = "orthogonal",
                 bias_initializer: InitializerLike = "zeros", dropout: float = 0.0,
                 recurrent_dropout: float = 0.0, return_sequences: bool = False, return_state: bool = False,
                 go_backwards: bool = False, name: Optional[str] = None) -> None:
        super().__init__(name)
        self.units = check_int(units, "units", minimum=1)
        self.activation = _act(activation, "activation")
        self.recurrent_activation = _act(recurrent_activation, "recurrent_activation")
        self.use_bias = _flag(use_bias, "use_bias")
        self.kernel_initializer = _init(kernel_initializer, "glorot_uniform")
        self.recurrent_initializer = _init(recurrent_initializer, "orthogonal")
        self.bias_initializer = _init(bias_initializer, "zeros")
        self.dropout = _rate(dropout, "dropout")
        self.recurrent_dropout = _rate(recurrent_dropout, "recurrent_dropout")
        self.return_sequences = _flag(return_sequences, "return_sequences")
        self.return_state = _flag(return_state, "return_state")
        self.go_backwards = _flag(go_backwards, "go_backwards")
        self._call_sig = None       # (has mask, has initial states) of the first call
        self._extra = []            # the extra inputs of the call being recorded
        self._call_mask = None

    # ---- structure ------------------------------------------------------------------------
    @property
    def _states(self):
        """States per direction: h and c for an LSTM, h otherwise."""
        return 2 if self.cell == "lstm" else 1

    def _seq_shape(self, steps):
        hout = 2 * self.units if self._directions == 2 and self.merge_mode == "concat" else self.units
        return (steps, hout) if self.return_sequences else (hout,)

    def check_input(self, input_shape: Shapes, dtype: Union[str, List[str]]) -> List[Shape]:
        super().check_input(input_shape, dtype)
        if len(input_shape) != 2:
            hint = (" (a 2-D array (batch, features) is not a sequence: reshape it to (batch, steps, "
                    "features))") if len(input_shape) == 1 else ""
            raise ValueError(f"{self.name} ({type(self).__name__}) takes sequences of shape (batch, steps, "
                             f"features), i.e. per-sample shape (steps, features); got per-sample shape "
                             f"{tuple(input_shape)}{hint}")
        return [input_shape]

    def output_shape(self, input_shape: Shapes) -> Shape:
        seq = self._seq_shape(input_shape[0])
        if not self.return_state:
            return seq
        # packed: the output, then the final states (sliced apart by __call__)
        return (int(np.prod(seq)) + self._directions * self._states * self.units,)

    def param_shapes(self, input_shape: Shapes) -> List[Tuple[str, Shape]]:
        f, h, gh = input_shape[1], self.units, self.gates * self.units
        one = [("kernel", (f, gh)), ("recurrent_kernel", (h, gh))]
        if self.use_bias:
            one.append(("bias", (2, gh) if self.cell == "gru" else (gh,)))
        if self._directions == 1:
            return one
        return [(f"{p}_{n}", s) for p in ("forward", "backward") for n, s in one]

    def c_config(self) -> Dict[str, Any]:
        has_mask, has_state = self._call_sig or (False, False)
        return {"cell": self.cell, "units": self.units, "activation": self.activation,
                "recurrent_activation": self.recurrent_activation, "use_bias": self.use_bias,
                "return_sequences": self.return_sequences, "return_state": self.return_state,
                "go_backwards": self.go_backwards, "bidirectional": self._directions == 2,
                "merge_mode": self.merge_mode, "mask": has_mask, "initial_state": has_state,
                "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout}

    def _draw(self, init, shape, rng, dtype, what):
        w = np.asarray(init(shape, rng, dtype))
        if w.shape != tuple(shape) or not np.all(np.isfinite(w)):
            raise ValueError(f"{what} returned shape {w.shape} (expected {tuple(shape)}) or non-finite values")
        return w

    def init_params(self, rng: np.random.Generator, dtype: DTypeLike) -> None:
        f, h, gh = self._input_shape[1], self.units, self.gates * self.units
        for p in [""] if self._directions == 1 else ["forward_", "backward_"]:
            self._views[p + "kernel"][...] = self._draw(self.kernel_initializer, (f, gh), rng, dtype,
                                                        "kernel_initializer")
            self._views[p + "recurrent_kernel"][...] = self._draw(self.recurrent_initializer, (h, gh), rng, dtype,
                                                                  "recurrent_initializer")
            if self.use_bias:
                shape = self._views[p + "bias"].shape
                b = self._draw(self.bias_initializer, shape, rng, dtype, "bias_initializer")
                if self.unit_forget_bias:
                    b[h:2 * h] = 1        # the forget gate starts open (Jozefowicz et al. 2015, Keras)
                self._views[p + "bias"][...] = b

    # ---- calling ---------------------------------------------------------------------------
    def __call__(self, inputs: Union[Tensor, Sequence[Tensor]], mask: Optional[Tensor] = None,
                 initial_state: Optional[Union[Tensor, Sequence[Tensor]]] = None
                 ) -> Union[Tensor, List[Tensor]]:
        """Call on a (batch, steps, features) tensor. mask: a float (steps,) tensor (nonzero =
        keep the step); by default the input's own mask (Embedding(mask_zero=True), Masking).
        initial_state: the initial states, a tensor or a list ([h] or, for an LSTM, [h, c]; a
        Bidirectional layer takes the forward direction's then the backward one's), each of
        per-sample shape (units,); zeros by default. Keras's form layer([x, *states]) works too.
        Returns a tensor, or with return_state=True a list [output, *final states] in the
        order of initial_state."""
        if isinstance(inputs, (list, tuple)):
            if not inputs:
                raise ValueError(f"{self.name}: called on an empty list")
            if initial_state is not None:
                raise ValueError(f"{self.name}: give the initial states in the list or as initial_state=, not both")
            inputs, initial_state = inputs[0], (list(inputs[1:]) or None)
        if not isinstance(inputs, Tensor):
            raise TypeError(f"{self.name}: a layer is called on annfast tensors (af.Input or another "
                            f"layer's output), got {type(inputs).__name__}")
        explicit = mask is not None
        mask = mask if explicit else inputs._mask
        if mask is not None:
            self._check_mask(mask, inputs)
        states = self._check_states(initial_state)
        sig = (mask is not None, bool(states))
        if self._call_sig is not None and sig != self._call_sig:
            raise ValueError(f"{self.name} is shared: every call needs the same structure (with or without a "
                             f"mask, with or without initial states) as the first, got (mask, "
                             f"initial_state) = {sig}, first {self._call_sig}")
        before = self._call_sig
        self._call_sig, self._extra, self._call_mask = sig, ([mask] if mask is not None else []) + states, mask
        try:
            packed = super().__call__(inputs)
        except Exception:
            self._call_sig = before
            raise
        finally:
            self._extra, self._call_mask = [], None
        packed._call_kwargs = dict(([("mask", mask)] if explicit else []) +
                                   ([("initial_state", states)] if states else []))
        if not self.return_state:
            return packed
        return self._split(packed, inputs.sample_shape[0], mask)

    def _check_mask(self, mask, x):
        if not isinstance(mask, Tensor):
            raise TypeError(f"{self.name}: mask must be an annfast tensor of per-sample shape (steps,), got "
                            f"{type(mask).__name__}")
        if len(x.sample_shape) != 2:
            return                         # check_input names the input's shape
        steps = x.sample_shape[0]
        if mask.dtype != "float" or mask.sample_shape != (steps,):
            raise ValueError(f"{self.name}: the mask must be a float tensor of per-sample shape (steps,) = "
                             f"({steps},), matching the input's {steps} steps; got per-sample shape "
                             f"{mask.sample_shape} ({mask.dtype})")

    def _check_states(self, initial_state):
        if initial_state is None:
            return []
        states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        want = self._directions * self._states
        if len(states) != want:
            raise ValueError(f"{self.name} ({type(self).__name__}) takes {want} initial state tensor"
                             f"{'s' if want > 1 else ''}, got {len(states)}")
        for i, s in enumerate(states):
            if not isinstance(s, Tensor) or s.dtype != "float" or s.sample_shape != (self.units,):
                got = s.sample_shape if isinstance(s, Tensor) else type(s).__name__
                raise ValueError(f"{self.name}: initial_state[{i}] must be a float tensor of per-sample shape "
                                 f"({self.units},), got {got}")
        return states

    def _extra_inputs(self):
        return list(self._extra)

    def compute_mask(self, inputs: List[Tensor], mask: Optional[Tensor]) -> Optional[Tensor]:
        # a returned sequence keeps the mask of its steps; a packed output carries none (its
        # sequence slice does)
        return self._call_mask if self.return_sequences and not self.return_state else None

    def _split(self, packed, steps, mask):
        """[output, *final states] as slices of the packed output."""
        seq = self._seq_shape(steps)
        start = int(np.prod(seq))
        parts = [(0, seq)] + [(start + k * self.units, (self.units,))
                              for k in range(self._directions * self._states)]
        outs = [owned(Slice(s, shape), self, j)(packed) for j, (s, shape) in enumerate(parts)]
        if self.return_sequences:
            outs[0]._mask = mask
        return outs

    # ---- weights and configuration -----------------------------------------------------------
    kernel = param_property(
        "kernel",
        "W, shape (features, G units): a view into the model's parameters (None before build).")

    recurrent_kernel = param_property('recurrent_kernel', 'U, shape (units, G units).')

    bias = param_property(
        "bias",
        "b, shape (G units,) ((2, G units) for a GRU: input then recurrent bias).",
        optional=True)

    def _base_config(self):
        from .. import initializers
        return {"class_name": type(self).__name__, "units": self.units, "activation": self.activation,
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout,
                "return_sequences": self.return_sequences, "return_state": self.return_state,
                "go_backwards": self.go_backwards, "name": self.name}


class SimpleRNN(_Recurrent):
    """Fully connected recurrence: h_t = activation(x_t W + h_{t-1} U + b), as torch.nn.RNN.

    Parameters
    ----------
    units : int >= 1, the state size
    activation : 'tanh' (default), 'relu', 'sigmoid' or 'linear'
    use_bias : bool
    kernel_initializer, recurrent_initializer, bias_initializer : initialisers of W (default
        Glorot uniform), U (orthogonal) and b (zeros); names, config dicts or callables
    dropout : fraction of the input features dropped in training (one mask per sample for all
        steps, as Keras); recurrent_dropout likewise for h_{t-1} in the recurrent product
    return_sequences : output every step (batch, steps, units) instead of the last (batch, units)
    return_state : also return the final state: the call returns [output, h]
    go_backwards : process the steps last to first (the returned sequence is in that order)

    >>> import annfast as af
    >>> x = af.Input(shape=(20, 3))
    >>> af.SimpleRNN(8, return_sequences=True)(x).shape
    (None, 20, 8)
    """

    cell, gates = "simple", 1

    def __init__(self, units: int, activation: str = "tanh", use_bias: bool = True,
                 kernel_initializer: InitializerLike = "glorot_uniform",
                 recurrent_initializer: InitializerLike = "orthogonal",
                 bias_initializer: InitializerLike = "zeros", dropout: float = 0.0,
                 recurrent_dropout: float = 0.0, return_sequences: bool = False, return_state: bool = False,
                 go_backwards: bool = False, name: Optional[str] = None) -> None:
        super().__init__(units, activation, "sigmoid", use_bias, kernel_initializer, recurrent_initializer,
                         bias_initializer, dropout, recurrent_dropout, return_sequences, return_state,
                         go_backwards, name)

    def get_config(self) -> Dict[str, Any]:
        return self._base_config()


class LSTM(_Recurrent):
    """Long short-term memory (Hochreiter and Schmidhuber 1997), as torch.nn.LSTM:

        i, f, g, o = sigma(a_i), sigma(a_f), tanh(a_g), sigma(a_o),   a = x_t W + h_{t-1} U + b
        c_t = f c_{t-1} + i g,   h_t = o tanh(c_t)

    (sigma is recurrent_activation, tanh is activation). Parameters as SimpleRNN, plus
    recurrent_activation ('sigmoid') and unit_forget_bias (True: the forget gate's bias starts
    at 1, as Keras). return_state=True makes the call return [output, h, c].

    >>> import annfast as af
    >>> ids = af.Input(shape=(30,), dtype="int32")
    >>> h = af.LSTM(32)(af.Embedding(1000, 16, mask_zero=True)(ids))   # padding id 0 skipped
    >>> h.shape
    (None, 32)
    """

    cell, gates = "lstm", 4

    def __init__(self, units: int, activation: str = "tanh", recurrent_activation: str = "sigmoid",
                 use_bias: bool = True, kernel_initializer: InitializerLike = "glorot_uniform",
                 recurrent_initializer: InitializerLike = "orthogonal",
                 bias_initializer: InitializerLike = "zeros", unit_forget_bias: bool = True,
                 dropout: float = 0.0, recurrent_dropout: float = 0.0, return_sequences: bool = False,
                 return_state: bool = False, go_backwards: bool = False, name: Optional[str] = None) -> None:
        super().__init__(units, activation, recurrent_activation, use_bias, kernel_initializer,
                         recurrent_initializer, bias_initializer, dropout, recurrent_dropout,
                         return_sequences, return_state, go_backwards, name)
        self.unit_forget_bias = _flag(unit_forget_bias, "unit_forget_bias")

    def get_config(self) -> Dict[str, Any]:
        cfg = self._base_config()
        cfg.update(recurrent_activation=self.recurrent_activation, unit_forget_bias=self.unit_forget_bias)
        return cfg


class GRU(_Recurrent):
    """Gated recurrent unit (Cho et al. 2014) in PyTorch's form (Keras's reset_after=True):

        r, z = sigma(x W_r + b_ir + h U_r + b_hr), sigma(x W_z + b_iz + h U_z + b_hz)
        n = tanh(x W_n + b_in + r (h U_n + b_hn)),   h_t = (1 - z) n + z h_{t-1}

    Parameters as SimpleRNN, plus recurrent_activation ('sigmoid'). The bias is (2, 3 units):
    the input bias b_i then the recurrent bias b_h. return_state=True returns [output, h].

    >>> import annfast as af
    >>> af.GRU(16)(af.Input(shape=(40, 1))).shape
    (None, 16)
    """

    cell, gates = "gru", 3

    def __init__(self, units: int, activation: str = "tanh", recurrent_activation: str = "sigmoid",
                 use_bias: bool = True, kernel_initializer: InitializerLike = "glorot_uniform",
                 recurrent_initializer: InitializerLike = "orthogonal",
                 bias_initializer: InitializerLike = "zeros", dropout: float = 0.0,
                 recurrent_dropout: float = 0.0, return_sequences: bool = False, return_state: bool = False,
                 go_backwards: bool = False, reset_after: bool = True, name: Optional[str] = None) -> None:
        super().__init__(units, activation, recurrent_activation, use_bias, kernel_initializer,
                         recurrent_initializer, bias_initializer, dropout, recurrent_dropout,
                         return_sequences, return_state, go_backwards, name)
        if _flag(reset_after, "reset_after") is not True:
            raise ValueError("GRU supports reset_after=True only (PyTorch's form: the reset gate applies "
                             "to h U_n + b_hn)")
        self.reset_after = True

    def get_config(self) -> Dict[str, Any]:
        cfg = self._base_config()
        cfg.update(recurrent_activation=self.recurrent_activation, reset_after=True)
        return cfg


class Bidirectional(_Recurrent):
    """Runs a recurrent layer over the sequence in both directions and merges the two outputs:
    'concat' (default; 2 units wide), 'sum', 'mul' or 'ave'. The backward copy processes the
    steps last to first; with return_sequences both outputs are aligned to the input steps (as
    Keras and torch.nn.LSTM(bidirectional=True)). The two directions run as independent work (on
    two threads when there are two). Weights: the forward layer's then the backward layer's
    (forward_kernel, forward_recurrent_kernel, forward_bias, backward_...). With return_state the
    call returns [output, *forward states, *backward states].

    >>> import annfast as af
    >>> x = af.Input(shape=(32, 64))
    >>> af.Bidirectional(af.LSTM(128))(x).shape
    (None, 256)
    """

    def __init__(self, layer: Union["_Recurrent", Dict[str, Any]], merge_mode: str = "concat",
                 name: Optional[str] = None) -> None:
        if isinstance(layer, dict):
            layer = Layer.from_config(layer)
        if not isinstance(layer, _Recurrent) or isinstance(layer, Bidirectional):
            raise TypeError(f"Bidirectional wraps a recurrent layer (SimpleRNN, LSTM or GRU), got "
                            f"{type(layer).__name__}")
        if layer._input_shape is not None or layer.built:
            raise ValueError(f"Bidirectional needs a recurrent layer that has not been called yet; "
                             f"{layer.name} already has been")
        if merge_mode not in _MERGES:
            raise ValueError(f"merge_mode must be one of {', '.join(_MERGES)}, got {merge_mode!r}")
        Layer.__init__(self, name)
        keep = ("units", "activation", "recurrent_activation", "use_bias", "kernel_initializer",
                "recurrent_initializer", "bias_initializer", "dropout", "recurrent_dropout",
                "return_sequences", "return_state", "go_backwards", "unit_forget_bias")
        for k in keep:
            setattr(self, k, getattr(layer, k))
        self.cell, self.gates = layer.cell, layer.gates
        self.layer = layer
        self._directions = 2
        self.merge_mode = merge_mode
        self._call_sig, self._extra, self._call_mask = None, [], None

    def get_config(self) -> Dict[str, Any]:
        return {"class_name": "Bidirectional", "layer": self.layer.get_config(), "merge_mode": self.merge_mode,
                "name": self.name}
