"""Attention layers: MultiHeadAttention, Attention (dot-product, Luong) and AdditiveAttention
(Bahdanau). C kinds mha, attention, additive_attention (csrc/layers/); the attention core is
csrc/layers/attn_core.h.

Masks are integer model inputs (af.Input(shape=..., dtype="int32")): 1 (any nonzero) where a
query may attend to a key, 0 where it may not, of per-sample shape (key_steps,) (key padding,
the same for every query) or (query_steps, key_steps). use_causal_mask=True also lets query i
attend only to keys j <= i. A query row with no allowed key at all attends to nothing: its
attention output is 0 (never NaN).
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.typing import DTypeLike

from .._settings import Setting, real
from .._validate import check_float, check_int
from ..initializers import InitializerLike
from .base import Layer, Tensor
from .base import Shape, Shapes


def _check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def _check_rate(value, name="dropout"):
    rate = check_float(value, name, minimum=0.0)
    if rate >= 1:
        raise ValueError(f"{name} must be in [0, 1), got {rate}")
    return rate


def _split_inputs(layer, items):
    """(float tensors, mask tensor or None) from a list of tensors, the integer one (if any)
    being the mask, last."""
    items = list(items)
    if not all(isinstance(t, Tensor) for t in items):
        bad = next(t for t in items if not isinstance(t, Tensor))
        raise TypeError(f"{layer.name}: a layer is called on annfast tensors (af.Input or another "
                        f"layer's output), got {type(bad).__name__}")
    masks = [t for t in items if t.dtype == "int32"]
    floats = [t for t in items if t.dtype != "int32"]
    if len(masks) > 1 or (masks and items[-1] is not masks[0]):
        raise ValueError(f"{layer.name} ({type(layer).__name__}): at most one integer tensor (the "
                         "attention mask), after the query, value and key")
    return floats, (masks[0] if masks else None)


class _AttentionBase(Layer):
    """The call protocol and input checks the attention layers share: inputs [query, value,
    key?, mask?], the key optional (the value serves as key), the mask an integer tensor."""

    n_inputs = (2, 4)
    # Checked when assigned, also after training (the model rebuilds its engine for the next call).
    dropout = Setting(real(0.0, 1.0, hi_open=True),
                      doc="Fraction of attention probabilities dropped in training, in [0, 1); the next call uses a new value.")

    def __init__(self, use_causal_mask: bool = False, name: Optional[str] = None) -> None:
        super().__init__(name)
        self.use_causal_mask = _check_bool(use_causal_mask, "use_causal_mask")
        self._spec = None          # (has_key, has_mask, causal) of the first call
        self._pending = None

    def __getstate__(self):
        state = super().__getstate__()
        state["_pending"] = None
        return state

    def _attention_call(self, tensors, has_key, has_mask, use_causal_mask):
        causal = self.use_causal_mask if use_causal_mask is None else _check_bool(use_causal_mask,
                                                                                  "use_causal_mask")
        spec = (has_key, has_mask, causal)
        if self._spec is not None and self._spec != spec:
            raise ValueError(f"{self.name} is shared: every call must pass the same kinds of inputs "
                             f"(key given, mask given, causal) as the first, {self._spec}; got {spec}")
        self._pending = spec
        try:
            out = Layer.__call__(self, tensors)
        finally:
            self._pending = None
        self._spec = spec
        self.use_causal_mask = causal
        return out

    @property
    def _flags(self):
        return self._pending or self._spec or (False, False, self.use_causal_mask)

    def check_input(self, input_shape: Shapes, dtype: Union[str, List[str]]) -> List[Shape]:
        has_key, has_mask, _ = self._flags
        names = ["query", "value"] + (["key"] if has_key else [])
        kind = type(self).__name__
        for i, what in enumerate(names):
            if dtype[i] != "float":
                raise ValueError(f"{self.name} ({kind}): the {what} must be a float sequence "
                                 "(steps, features), got integer token ids (use an Embedding layer "
                                 "first)")
            if len(input_shape[i]) != 2:
                raise ValueError(f"{self.name} ({kind}): the {what} must have per-sample shape "
                                 f"(steps, features), got {input_shape[i]}")
        q, v = input_shape[0], input_shape[1]
        if has_key and input_shape[2][0] != v[0]:
            raise ValueError(f"{self.name} ({kind}): key and value must have the same number of "
                             f"steps, got key {input_shape[2]} and value {v}")
        self._check_dims(input_shape)
        if has_mask:
            m, mdt = input_shape[len(names)], dtype[len(names)]
            if mdt != "int32":
                raise ValueError(f"{self.name} ({kind}): attention_mask must be an integer tensor "
                                 "(af.Input(shape=..., dtype='int32')) of 1 (attend) / 0 (masked), "
                                 "got a float tensor")
            if tuple(m) not in ((q[0], v[0]), (v[0],)):
                raise ValueError(f"{self.name} ({kind}): attention_mask must have per-sample shape "
                                 f"(query_steps, key_steps) = {(q[0], v[0])} or (key_steps,) = "
                                 f"{(v[0],)}, got {tuple(m)}")
        return input_shape

    def _check_dims(self, input_shape):
        """Per-layer feature-size checks."""

    def _mask_flags(self):
        has_key, has_mask, causal = self._flags
        return {"causal": causal, "has_key": has_key, "has_mask": has_mask}


class MultiHeadAttention(_AttentionBase):
    """Multi-head attention (Vaswani et al.), as Keras's layer: query, key and value are projected
    to num_heads heads of key_dim (value_dim) features, each head attends with scaled dot
    products softmax(Q K^T / sqrt(key_dim)) V, and the heads' outputs are projected to
    output_dim features (default: the query's).

    Called as ``mha(query, value, key=None, attention_mask=None, use_causal_mask=False)`` on
    sequences of per-sample shape (steps, features): self-attention is ``mha(x, x)``,
    cross-attention ``mha(decoder_states, encoder_outputs)``. The key defaults to the value.
    attention_mask: an integer tensor, see annfast.layers.attention. dropout applies to the
    attention probabilities in training.

    Weights (Keras's shapes): query_kernel (Dq, heads, key_dim), query_bias (heads, key_dim),
    key_kernel, key_bias, value_kernel (Dv, heads, value_dim), value_bias, output_kernel
    (heads, value_dim, output_dim), output_bias (output_dim). Kernels start Glorot-uniform,
    biases at 0.

    >>> import annfast as af
    >>> x = af.Input(shape=(10, 32))
    >>> af.MultiHeadAttention(num_heads=4, key_dim=8)(x, x, use_causal_mask=True).shape
    (None, 10, 32)
    """

    kind = "mha"

    def __init__(self, num_heads: int, key_dim: int, value_dim: Optional[int] = None, dropout: float = 0.0,
                 use_bias: bool = True, output_dim: Optional[int] = None,
                 kernel_initializer: InitializerLike = "glorot_uniform", use_causal_mask: bool = False,
                 name: Optional[str] = None) -> None:
        super().__init__(use_causal_mask, name)
        from .. import initializers
        self.num_heads = check_int(num_heads, "num_heads", minimum=1)
        self.key_dim = check_int(key_dim, "key_dim", minimum=1)
        self.value_dim = self.key_dim if value_dim is None else check_int(value_dim, "value_dim", minimum=1)
        self.dropout = _check_rate(dropout)
        self.use_bias = _check_bool(use_bias, "use_bias")
        self.output_dim = None if output_dim is None else check_int(output_dim, "output_dim", minimum=1)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self._scores = "auto"        # keep / recompute the probabilities (tests force each)

    def __call__(self, query: Union[Tensor, Sequence[Tensor]], value: Optional[Tensor] = None,
                 key: Optional[Tensor] = None, attention_mask: Optional[Tensor] = None,
                 use_causal_mask: Optional[bool] = None) -> Tensor:
        if isinstance(query, (list, tuple)) and value is None and key is None and attention_mask is None:
            floats, mask = _split_inputs(self, query)
            if not 2 <= len(floats) <= 3:
                raise ValueError(f"{self.name} (MultiHeadAttention) takes [query, value] or [query, "
                                 f"value, key] (and an integer mask), got {len(floats)} float tensors")
            tensors = floats + ([mask] if mask is not None else [])
            return self._attention_call(tensors, len(floats) == 3, mask is not None, use_causal_mask)
        if value is None:
            raise TypeError(f"{self.name}: MultiHeadAttention is called as mha(query, value, key=None, "
                            "attention_mask=None, use_causal_mask=False)")
        tensors = [query, value] + ([key] if key is not None else []) + (
            [attention_mask] if attention_mask is not None else [])
        return self._attention_call(tensors, key is not None, attention_mask is not None, use_causal_mask)

    def _out_dim(self, input_shape):
        return self.output_dim if self.output_dim is not None else input_shape[0][1]

    def output_shape(self, input_shape: Shapes) -> Shape:
        return (input_shape[0][0], self._out_dim(input_shape))

    def _in_dims(self, input_shape):
        has_key = self._flags[0]
        return input_shape[0][1], input_shape[2 if has_key else 1][1], input_shape[1][1]

    def param_shapes(self, input_shape: Shapes) -> List[Tuple[str, Shape]]:
        dq, dk, dv = self._in_dims(input_shape)
        h, kd, vd, do = self.num_heads, self.key_dim, self.value_dim, self._out_dim(input_shape)
        shapes = []
        for what, fan_in, d in (("query", dq, kd), ("key", dk, kd), ("value", dv, vd)):
            shapes.append((f"{what}_kernel", (fan_in, h, d)))
            if self.use_bias:
                shapes.append((f"{what}_bias", (h, d)))
        shapes.append(("output_kernel", (h, vd, do)))
        if self.use_bias:
            shapes.append(("output_bias", (do,)))
        return shapes

    def c_config(self) -> Dict[str, Any]:
        cfg = {"num_heads": self.num_heads, "key_dim": self.key_dim, "value_dim": self.value_dim,
               "output_dim": self._out_dim(self._input_shape), "use_bias": self.use_bias,
               "dropout": self.dropout, "scores": self._scores}
        cfg.update(self._mask_flags())
        return cfg

    def init_params(self, rng: np.random.Generator, dtype: DTypeLike) -> None:
        for name, shape in self.param_shapes(self._input_shape):
            view = self._views[name]
            if name.endswith("_bias"):
                view[...] = 0
                continue
            rows = shape[0] if name != "output_kernel" else shape[0] * shape[1]
            w = np.asarray(self.kernel_initializer((rows, view.size // rows), rng, dtype))
            view[...] = w.reshape(shape)

    def get_config(self) -> Dict[str, Any]:
        from .. import initializers
        return {"class_name": "MultiHeadAttention", "num_heads": self.num_heads, "key_dim": self.key_dim,
                "value_dim": self.value_dim, "dropout": self.dropout, "use_bias": self.use_bias,
                "output_dim": self.output_dim,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "use_causal_mask": self.use_causal_mask, "name": self.name}


def _weight_property(name, doc):
    return property(lambda self: self._view(name), lambda self, v: self._set(name, v), doc=doc)


for _n in ("query", "key", "value", "output"):
    setattr(MultiHeadAttention, f"{_n}_kernel",
            _weight_property(f"{_n}_kernel", f"The {_n} projection's kernel: a view into the model's parameters."))
    setattr(MultiHeadAttention, f"{_n}_bias",
            _weight_property(f"{_n}_bias", f"The {_n} projection's bias (None without use_bias)."))


class _PairAttention(_AttentionBase):
    """Attention and AdditiveAttention: called on [query, value] or [query, value, key]."""

    def __call__(self, inputs: Sequence[Tensor], attention_mask: Optional[Tensor] = None,
                 use_causal_mask: Optional[bool] = None) -> Tensor:
        if not isinstance(inputs, (list, tuple)):
            raise TypeError(f"{self.name} ({type(self).__name__}) is called on a list [query, value] or "
                            "[query, value, key]")
        floats, mask = _split_inputs(self, inputs)
        if mask is not None and attention_mask is not None:
            raise ValueError(f"{self.name}: give the mask in the list or as attention_mask, not both")
        if attention_mask is not None:
            if not isinstance(attention_mask, Tensor):
                raise TypeError(f"{self.name}: attention_mask must be an annfast tensor, got "
                                f"{type(attention_mask).__name__}")
            mask = attention_mask
        if not 2 <= len(floats) <= 3:
            raise ValueError(f"{self.name} ({type(self).__name__}) takes [query, value] or [query, value, "
                             f"key], got {len(floats)} float tensors")
        tensors = floats + ([mask] if mask is not None else [])
        return self._attention_call(tensors, len(floats) == 3, mask is not None, use_causal_mask)

    def _check_dims(self, input_shape):
        has_key = self._flags[0]
        key = input_shape[2 if has_key else 1]
        if key[1] != input_shape[0][1]:
            raise ValueError(f"{self.name} ({type(self).__name__}): the query and the key must have the "
                             f"same number of features, got query {input_shape[0]} and "
                             f"{'key' if has_key else 'value (the key)'} {key}")

    def output_shape(self, input_shape: Shapes) -> Shape:
        return (input_shape[0][0], input_shape[1][1])


class Attention(_PairAttention):
    """Dot-product attention (Luong), as Keras's Attention layer: scores = scale * query key^T
    (scale a learned scalar starting at 1 with use_scale, else 1), softmax over the keys, then a
    weighted sum of the values. Called on [query, value] or [query, value, key] (the key
    defaults to the value), with optional attention_mask (an integer tensor) and
    use_causal_mask; dropout applies to the attention probabilities in training.

    >>> import annfast as af
    >>> dec = af.Input(shape=(7, 16)); enc = af.Input(shape=(9, 16))
    >>> af.Attention()([dec, enc]).shape
    (None, 7, 16)
    """

    kind = "attention"

    def __init__(self, use_scale: bool = False, score_mode: str = "dot", dropout: float = 0.0,
                 use_causal_mask: bool = False, name: Optional[str] = None) -> None:
        super().__init__(use_causal_mask, name)
        self.use_scale = _check_bool(use_scale, "use_scale")
        if score_mode != "dot":
            raise ValueError(f"score_mode must be 'dot' (use AdditiveAttention for additive scores), got "
                             f"{score_mode!r}")
        self.score_mode = score_mode
        self.dropout = _check_rate(dropout)

    def param_shapes(self, input_shape: Shapes) -> List[Tuple[str, Shape]]:
        return [("scale", (1,))] if self.use_scale else []

    def init_params(self, rng: np.random.Generator, dtype: DTypeLike) -> None:
        if self.use_scale:
            self._views["scale"][...] = 1

    scale = _weight_property("scale", "The learned score scale, shape (1,) (None without use_scale).")

    def c_config(self) -> Dict[str, Any]:
        cfg = {"use_scale": self.use_scale, "dropout": self.dropout}
        cfg.update(self._mask_flags())
        return cfg

    def get_config(self) -> Dict[str, Any]:
        return {"class_name": "Attention", "use_scale": self.use_scale, "score_mode": self.score_mode,
                "dropout": self.dropout, "use_causal_mask": self.use_causal_mask, "name": self.name}


class AdditiveAttention(_PairAttention):
    """Additive attention (Bahdanau), as Keras's AdditiveAttention layer: scores_ij =
    sum_d scale_d tanh(query_id + key_jd) (scale learned, Glorot-uniform start, with use_scale,
    else 1), softmax over the keys, then a weighted sum of the values. Project query and key to a
    common size first (Dense layers) for the classic W1 h + W2 s form. Called like Attention.

    >>> import annfast as af
    >>> dec = af.Input(shape=(7, 16)); enc = af.Input(shape=(9, 16))
    >>> af.AdditiveAttention()([dec, enc]).shape
    (None, 7, 16)
    """

    kind = "additive_attention"

    def __init__(self, use_scale: bool = True, dropout: float = 0.0, use_causal_mask: bool = False,
                 name: Optional[str] = None) -> None:
        super().__init__(use_causal_mask, name)
        self.use_scale = _check_bool(use_scale, "use_scale")
        self.dropout = _check_rate(dropout)

    def param_shapes(self, input_shape: Shapes) -> List[Tuple[str, Shape]]:
        return [("scale", (input_shape[0][1],))] if self.use_scale else []

    def init_params(self, rng: np.random.Generator, dtype: DTypeLike) -> None:
        if self.use_scale:
            from .. import initializers
            n = self._views["scale"].shape[0]
            self._views["scale"][...] = initializers.get("glorot_uniform")((n,), rng, dtype)

    scale = _weight_property("scale", "The learned per-feature score scale (None without use_scale).")

    def c_config(self) -> Dict[str, Any]:
        cfg = {"use_scale": self.use_scale, "dropout": self.dropout}
        cfg.update(self._mask_flags())
        return cfg

    def get_config(self) -> Dict[str, Any]:
        return {"class_name": "AdditiveAttention", "use_scale": self.use_scale, "dropout": self.dropout,
                "use_causal_mask": self.use_causal_mask, "name": self.name}
