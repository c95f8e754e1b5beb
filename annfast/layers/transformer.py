"""Transformer encoder and decoder layers (as torch.nn.TransformerEncoderLayer /
TransformerDecoderLayer), composed of primitive layers.

Calling one adds its parts to the graph as ordinary nodes (MultiHeadAttention, Dense,
LayerNormalization, Add, Dropout), each running its own C kind: the model's layer list, summary,
get_weights, save and load see those parts (named after the block: "enc_self_attn",
"enc_linear1", ...), and a loaded model rebuilds them as such. The block object keeps them as
attributes (self_attn, linear1, linear2, norm1, norm2, and for the decoder cross_attn, norm3),
so weights can be read and set after the model is built. Calling the same block twice shares
its weights.
"""
from .. import activations as _acts
from .._validate import check_float, check_int
from .attention import MultiHeadAttention, _check_bool, _check_rate
from .base import Tensor, _auto_name
from .core import Dense, Dropout
from .layernorm import LayerNormalization
from .merge import Add


class _Block:
    """A group of layers called together (not a graph node itself)."""

    _parts = ()

    def __init__(self, d_model, num_heads, dim_feedforward, dropout, activation, norm_first,
                 layer_norm_eps, name):
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}")
        self.name = name or _auto_name(type(self).__name__.lower())
        self.d_model = check_int(d_model, "d_model", minimum=1)
        self.num_heads = check_int(num_heads, "num_heads", minimum=1)
        if self.d_model % self.num_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by num_heads ({self.num_heads}): "
                             f"each head attends with d_model / num_heads features (key_dim x num_heads "
                             f"= d_model)")
        self.dim_feedforward = check_int(dim_feedforward, "dim_feedforward", minimum=1)
        self.dropout = _check_rate(dropout)
        if activation not in ("relu", "gelu"):
            raise ValueError(f"activation must be 'relu' or 'gelu', got {activation!r}")
        self.activation = _acts.check_name(activation, None)[0]
        self.norm_first = _check_bool(norm_first, "norm_first")
        self.layer_norm_eps = check_float(layer_norm_eps, "layer_norm_eps", minimum=0.0, strict_min=True)
        n, kd = self.name, self.d_model // self.num_heads
        self.self_attn = MultiHeadAttention(num_heads, kd, dropout=self.dropout, name=f"{n}_self_attn")
        self.linear1 = Dense(self.dim_feedforward, activation=self.activation, name=f"{n}_linear1")
        self.linear2 = Dense(self.d_model, name=f"{n}_linear2")
        self.norm1 = LayerNormalization(self.layer_norm_eps, name=f"{n}_norm1")
        self.norm2 = LayerNormalization(self.layer_norm_eps, name=f"{n}_norm2")

    @property
    def layers(self):
        """The parts, in call order."""
        return [getattr(self, p) for p in self._parts]

    def count_params(self):
        return sum(layer.count_params() for layer in self.layers)

    def _drop(self, x):
        return Dropout(self.dropout)(x) if self.dropout > 0 else x

    def _check_seq(self, x, what):
        if not isinstance(x, Tensor):
            raise TypeError(f"{self.name}: {what} must be an annfast tensor, got {type(x).__name__}")
        if x.dtype != "float" or len(x.sample_shape) != 2 or x.sample_shape[1] != self.d_model:
            raise ValueError(f"{self.name} ({type(self).__name__}): the {what} must be a float sequence of "
                             f"per-sample shape (steps, d_model={self.d_model}), got {x.sample_shape}"
                             f"{' of integer ids' if x.dtype != 'float' else ''}")

    def _feed_forward(self, x):
        return self.linear2(self._drop(self.linear1(x)))

    def _residual(self, x, sublayer, norm):
        """Post-norm: norm(x + drop(f(x))); pre-norm: x + drop(f(norm(x)))."""
        if self.norm_first:
            return Add()([x, self._drop(sublayer(norm(x)))])
        return norm(Add()([x, self._drop(sublayer(x))]))

    def get_config(self):
        return {"class_name": type(self).__name__, "d_model": self.d_model, "num_heads": self.num_heads,
                "dim_feedforward": self.dim_feedforward, "dropout": self.dropout,
                "activation": self.activation, "norm_first": self.norm_first,
                "layer_norm_eps": self.layer_norm_eps, "name": self.name}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "class_name")
        return f"{type(self).__name__}({args})"


class TransformerEncoderLayer(_Block):
    """One transformer encoder layer, as torch.nn.TransformerEncoderLayer(batch_first=True):
    self-attention then a feed-forward network (Dense dim_feedforward with activation, Dense
    d_model), each with dropout, a residual connection and layer normalisation, after the
    residual (norm_first=False, the original) or before the sublayer (norm_first=True).

    Called as ``enc(x, attention_mask=None, use_causal_mask=False)`` on a float sequence of
    per-sample shape (steps, d_model); attention_mask is an integer tensor of shape (steps,)
    (padding: 0 for keys to ignore) or (steps, steps), see annfast.layers.attention.

    >>> import annfast as af
    >>> ids = af.Input(shape=(16,), dtype="int32")
    >>> x = af.PositionalEmbedding(16, 64)(af.Embedding(1000, 64)(ids))
    >>> h = af.TransformerEncoderLayer(d_model=64, num_heads=4, dim_feedforward=128)(x)
    >>> h.shape
    (None, 16, 64)
    """

    _parts = ("self_attn", "linear1", "linear2", "norm1", "norm2")

    def __init__(self, d_model, num_heads, dim_feedforward=2048, dropout=0.1, activation="relu",
                 norm_first=False, layer_norm_eps=1e-5, name=None):
        super().__init__(d_model, num_heads, dim_feedforward, dropout, activation, norm_first,
                         layer_norm_eps, name)

    def __call__(self, x, attention_mask=None, use_causal_mask=False):
        self._check_seq(x, "input")
        x = self._residual(x, lambda h: self.self_attn(h, h, attention_mask=attention_mask,
                                                       use_causal_mask=use_causal_mask), self.norm1)
        return self._residual(x, self._feed_forward, self.norm2)


class TransformerDecoderLayer(_Block):
    """One transformer decoder layer, as torch.nn.TransformerDecoderLayer(batch_first=True):
    causal self-attention over the target, cross-attention to the encoder's output (memory),
    then the feed-forward network, each with dropout, a residual connection and layer
    normalisation (post-norm, or pre-norm with norm_first=True).

    Called as ``dec([target, memory], attention_mask=None, memory_mask=None,
    use_causal_mask=True)``: target (steps, d_model) and memory (source_steps, d_model) float
    sequences; attention_mask masks the self-attention (shape (steps,) or (steps, steps)) on top
    of the causal mask, memory_mask the cross-attention (shape (source_steps,) for source
    padding, or (steps, source_steps)).

    >>> import annfast as af
    >>> tgt = af.Input(shape=(9, 32)); mem = af.Input(shape=(11, 32))
    >>> af.TransformerDecoderLayer(32, 4, 64)([tgt, mem]).shape
    (None, 9, 32)
    """

    _parts = ("self_attn", "cross_attn", "linear1", "linear2", "norm1", "norm2", "norm3")

    def __init__(self, d_model, num_heads, dim_feedforward=2048, dropout=0.1, activation="relu",
                 norm_first=False, layer_norm_eps=1e-5, name=None):
        super().__init__(d_model, num_heads, dim_feedforward, dropout, activation, norm_first,
                         layer_norm_eps, name)
        n = self.name
        self.cross_attn = MultiHeadAttention(self.num_heads, self.d_model // self.num_heads,
                                             dropout=self.dropout, name=f"{n}_cross_attn")
        self.norm3 = LayerNormalization(self.layer_norm_eps, name=f"{n}_norm3")

    def __call__(self, inputs, attention_mask=None, memory_mask=None, use_causal_mask=True):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise TypeError(f"{self.name} (TransformerDecoderLayer) is called on [target, memory]")
        x, memory = inputs
        self._check_seq(x, "target")
        self._check_seq(memory, "memory")
        x = self._residual(x, lambda h: self.self_attn(h, h, attention_mask=attention_mask,
                                                       use_causal_mask=use_causal_mask), self.norm1)
        x = self._residual(x, lambda h: self.cross_attn(h, memory, attention_mask=memory_mask), self.norm2)
        return self._residual(x, self._feed_forward, self.norm3)
