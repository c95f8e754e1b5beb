"""Sequence-to-sequence models: teacher forcing, greedy decoding in C, and model builders.

A sequence-to-sequence Model takes the source tokens and the *shifted* target (the start token,
then the target without its last token: ``shift_right``) and outputs, for every target
position, scores over the target vocabulary; it trains with sparse categorical cross-entropy
against the target itself (teacher forcing). ``greedy_decode`` then generates a target from a
source one token at a time, in C.

>>> import numpy as np, annfast as af
>>> model = af.seq2seq.transformer(src_vocab=12, tgt_vocab=12, src_len=6, tgt_len=6, d_model=16,
...                                num_heads=2, dim_feedforward=32, num_layers=1, seed=0)
>>> X = np.random.default_rng(0).integers(0, 10, (4, 6))
>>> af.seq2seq.greedy_decode(model, X, start_token=10).shape
(4, 6)
"""
import numbers

import numpy as np

from . import _core
from .layers import (AdditiveAttention, Attention, Concatenate, Dense, Embedding, Input,
                     MultiHeadAttention, PositionalEmbedding, SinusoidalPositionalEncoding,
                     TransformerDecoderLayer, TransformerEncoderLayer)

__all__ = ["shift_right", "greedy_decode", "decode_method", "transformer", "lstm_attention"]

_DECODE_CHUNK = 256


def shift_right(y, start_token):
    """The decoder input for teacher forcing: ``[start_token, y_0, ..., y_{T-2}]`` per row.

    >>> shift_right(np.array([[5, 6, 7]]), 9)
    array([[9, 5, 6]], dtype=int32)
    """
    y = np.asarray(y)
    if y.ndim != 2 or y.dtype.kind not in "iu":
        raise ValueError(f"y must be a 2-D integer array (samples, steps), got {y.dtype} {y.shape}")
    out = np.empty(y.shape, dtype=np.int32)
    out[:, 0] = _check_token(start_token, "start_token")
    out[:, 1:] = y[:, :-1]
    return out


def _check_token(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return int(value)


def _target_input(model, target_input):
    ints = [k for k, layer in enumerate(model._input_layers) if layer.is_int and len(layer.shape) == 1]
    if target_input is None:
        if not ints:
            raise ValueError("greedy_decode needs a model with an integer decoder input of per-sample shape "
                             "(steps,) (the shifted target)")
        return ints[-1]
    if isinstance(target_input, bool) or not isinstance(target_input, numbers.Integral) or not \
            0 <= target_input < len(model._input_layers):
        raise ValueError(f"target_input must be an input index in [0, {len(model._input_layers)}), got "
                         f"{target_input!r}")
    if target_input not in ints:
        raise ValueError(f"target_input {target_input} ({model._input_layers[target_input].name}) is not an "
                         "integer input of per-sample shape (steps,)")
    return int(target_input)


def _decoder_nodes(model, tin):
    """Indices of the nodes that depend on the decoder input."""
    node = model._nodes.index(next(nd for nd in model._nodes if nd.layer is model._input_layers[tin]))
    dep = set()
    for i, nd in enumerate(model._nodes):
        if i == node or any(j in dep for j in nd.inputs):
            dep.add(i)
    return dep


def _check_model(model, target_input, output):
    from .models import Model
    if not isinstance(model, Model) or not model.built or model._nodes is None:
        raise TypeError(f"model must be a built annfast Model, got {type(model).__name__}")
    tin = _target_input(model, target_input)
    if isinstance(output, bool) or not isinstance(output, numbers.Integral) or not \
            0 <= output < len(model._outputs):
        raise ValueError(f"output must be an output index in [0, {len(model._outputs)}), got {output!r}")
    steps = model._input_layers[tin].shape[0]
    shape = model._outputs[output].sample_shape
    if len(shape) != 2 or shape[0] != steps:
        raise ValueError(f"the model's output {output} must score each of the {steps} target positions: "
                         f"per-sample shape ({steps}, vocabulary), got {shape}")
    return tin, steps, shape[1]


def _self_attention_not_causal(model, dec):
    for i, nd in enumerate(model._nodes):
        if i in dec and isinstance(nd.layer, MultiHeadAttention):
            query_dec = nd.inputs[0] in dec
            key_dec = any(j in dec for j in nd.inputs[1:] if model._nodes[j].tensor.dtype != "int32")
            if query_dec and key_dec and not nd.layer.use_causal_mask:
                return True
    return False


def decode_method(model, target_input=None, output=0):
    """'incremental' if greedy_decode runs the decoder one position at a time (every decoder
    layer supports it: embeddings, positional encodings, causal self-attention with a key/value
    cache, cross-attention to the encoder output, dense, layer norm, residual adds, dropout),
    else 'recompute' (the decoder runs over the whole prefix at every step)."""
    tin, _, _ = _check_model(model, target_input, output)
    if _self_attention_not_causal(model, _decoder_nodes(model, tin)):
        return "recompute"
    inc = _core.graph_decode_incremental(model._get_engine(), tin, output)
    return "incremental" if inc else "recompute"


def greedy_decode(model, source, start_token, max_length=None, end_token=None, target_input=None,
                  output=0, batch_size=None, method="auto", return_scores=False):
    """Generate targets for the source sequences, greedily, in C.

    model: a sequence-to-sequence Model (see the module docstring) whose input `target_input`
    (default: the last integer input of per-sample shape (steps,)) takes the shifted target and
    whose output `output` scores the target vocabulary at each position.
    source: the arrays of the other inputs (one array, or a list in input order); for a model
    whose only input is the decoder's, the number of sequences to generate.
    Position 0 of the decoder input gets start_token; the highest-scoring token at position t
    is the output at t and the decoder input at t + 1. With end_token, once a sequence emits it
    every later token is end_token. max_length: positions to generate (default: all steps).
    method: 'auto' (incremental decoding with cached attention keys and values when the model
    allows it, see decode_method), 'incremental' (an error if not possible) or 'recompute'.
    Inference mode (no dropout). Returns an int32 array (samples, max_length), and with
    return_scores=True also the output's values at each decoded position (samples, max_length,
    vocabulary): the probabilities for a softmax output.
    """
    tin, steps, vocab = _check_model(model, target_input, output)
    start = _check_token(start_token, "start_token")
    end = -1 if end_token is None else _check_token(end_token, "end_token")
    if end >= vocab:
        raise ValueError(f"end_token must be < {vocab} (the output's vocabulary), got {end}")
    if max_length is None:
        max_length = steps
    if isinstance(max_length, bool) or not isinstance(max_length, numbers.Integral) or not \
            1 <= max_length <= steps:
        raise ValueError(f"max_length must be an int in [1, {steps}] (the decoder input's steps), got "
                         f"{max_length!r}")
    if method not in ("auto", "incremental", "recompute"):
        raise ValueError(f"method must be 'auto', 'incremental' or 'recompute', got {method!r}")
    # the decoder input's vocabulary: the start token and every scored token must fit it
    for nd in model._nodes:
        check = getattr(nd.layer, "check_ids", None)
        if check is not None and nd.inputs and model._nodes[nd.inputs[0]].layer is model._input_layers[tin]:
            check(np.array([start]), "start_token")
            if isinstance(nd.layer, Embedding) and vocab > nd.layer.input_dim:
                raise ValueError(f"the output scores {vocab} tokens but {nd.layer.name} embeds only "
                                 f"{nd.layer.input_dim}: decoded tokens would not fit it")
    others = [k for k in range(len(model._input_layers)) if k != tin]
    if not others:
        # a decoder alone: source is the number of sequences to generate
        if isinstance(source, bool) or not isinstance(source, numbers.Integral) or source < 0:
            raise ValueError("the model has no input besides the decoder's: give source as the number of "
                             f"sequences to generate, got {type(source).__name__}")
        srcs, n = [], int(source)
    else:
        srcs = [source] if len(others) == 1 and not (isinstance(source, (list, tuple)) and len(source) == 1
                                                     and isinstance(source[0], np.ndarray)) else source
        if not isinstance(srcs, (list, tuple)) or len(srcs) != len(others):
            raise ValueError(f"source must give the model's {len(others)} other input(s) "
                             f"({', '.join(model._input_layers[k].name for k in others)})")
        srcs = list(srcs)
        n = np.asarray(srcs[0]).shape[0] if np.ndim(srcs[0]) else 0
    X = []
    for k in range(len(model._input_layers)):
        X.append(np.zeros((n, steps), dtype=np.int32) if k == tin else srcs[others.index(k)])
    xs = model._xs(X, "source")
    if method == "incremental" and decode_method(model, tin, output) != "incremental":
        raise ValueError("this model cannot decode incrementally (see annfast.seq2seq.decode_method); use "
                         "method='auto' or 'recompute'")
    recompute = method == "recompute" or (
        method == "auto" and _self_attention_not_causal(model, _decoder_nodes(model, tin)))
    chunk = _DECODE_CHUNK if batch_size is None else batch_size
    if isinstance(chunk, bool) or not isinstance(chunk, numbers.Integral) or chunk < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    chunk = max(1, min(int(chunk), max(n, 1)))
    if not isinstance(return_scores, (bool, np.bool_)):
        raise TypeError(f"return_scores must be a bool, got {type(return_scores).__name__}")
    tokens, scores, _ = _core.graph_greedy_decode(model._get_engine(), xs, tin, output, start, end,
                                                  max_length, chunk, recompute, bool(return_scores))
    return (tokens, scores) if return_scores else tokens


def transformer(src_vocab, tgt_vocab, src_len, tgt_len, d_model=64, num_heads=4, dim_feedforward=256,
                num_layers=2, num_decoder_layers=None, dropout=0.1, activation="relu", norm_first=False,
                positional="learned", dtype="float32", seed=None, name="transformer"):
    """An encoder-decoder transformer (Vaswani et al.) as a functional Model with inputs
    [source ids (src_len,), shifted target ids (tgt_len,)] and output the softmax over
    tgt_vocab at each target position (tgt_len, tgt_vocab). Token embeddings of d_model,
    positions learned ('learned') or sinusoidal ('sinusoidal'), num_layers encoder and
    num_decoder_layers (default num_layers) decoder layers. Compile it with
    loss='sparse_categorical_crossentropy'."""
    if positional not in ("learned", "sinusoidal"):
        raise ValueError(f"positional must be 'learned' or 'sinusoidal', got {positional!r}")
    from .models import Model
    num_decoder_layers = num_layers if num_decoder_layers is None else num_decoder_layers

    def embed(ids, vocab, steps, what):
        x = Embedding(vocab, d_model, name=f"{name}_{what}_embedding")(ids)
        if positional == "learned":
            return PositionalEmbedding(steps, d_model, name=f"{name}_{what}_positions")(x)
        return SinusoidalPositionalEncoding(name=f"{name}_{what}_positions")(x)

    src = Input(shape=(src_len,), dtype="int32", name=f"{name}_source")
    tgt = Input(shape=(tgt_len,), dtype="int32", name=f"{name}_target")
    kw = dict(dim_feedforward=dim_feedforward, dropout=dropout, activation=activation, norm_first=norm_first)
    memory = embed(src, src_vocab, src_len, "source")
    for i in range(num_layers):
        memory = TransformerEncoderLayer(d_model, num_heads, name=f"{name}_encoder{i}", **kw)(memory)
    x = embed(tgt, tgt_vocab, tgt_len, "target")
    for i in range(num_decoder_layers):
        x = TransformerDecoderLayer(d_model, num_heads, name=f"{name}_decoder{i}", **kw)([x, memory])
    out = Dense(tgt_vocab, activation="softmax", name=f"{name}_scores")(x)
    return Model([src, tgt], out, dtype=dtype, seed=seed, name=name)


def lstm_attention(src_vocab, tgt_vocab, src_len, tgt_len, embed_dim=32, units=64, attention="dot",
                   dtype="float32", seed=None, name="lstm_attention"):
    """An LSTM encoder-decoder with attention (Luong et al. 2015) as a functional Model with inputs
    [source ids (src_len,), shifted target ids (tgt_len,)] and output the softmax over tgt_vocab
    at each target position::

        encoder: Embedding -> LSTM(units, return_sequences, return_state)
        decoder: Embedding -> LSTM(units, return_sequences) started from the encoder's final
                 (h, c); at each position attention over the encoder outputs ('dot':
                 Attention, scores h_t . s_j; 'additive': AdditiveAttention on Dense(units)
                 projections of both, Bahdanau's scores); then [h_t, context] -> Dense(units,
                 tanh) -> Dense(tgt_vocab, softmax).

    Greedy decoding recomputes the decoder over the prefix at each step (the LSTM runs whole
    sequences). Compile it with loss='sparse_categorical_crossentropy'."""
    if attention not in ("dot", "additive"):
        raise ValueError(f"attention must be 'dot' or 'additive', got {attention!r}")
    from . import layers as _layers
    if not hasattr(_layers, "LSTM"):
        raise ValueError("lstm_attention needs annfast's recurrent layers (LSTM)")
    from .models import Model
    src = Input(shape=(src_len,), dtype="int32", name=f"{name}_source")
    tgt = Input(shape=(tgt_len,), dtype="int32", name=f"{name}_target")
    enc = Embedding(src_vocab, embed_dim, name=f"{name}_source_embedding")(src)
    enc_seq, h, c = _layers.LSTM(units, return_sequences=True, return_state=True, name=f"{name}_encoder")(enc)
    dec = Embedding(tgt_vocab, embed_dim, name=f"{name}_target_embedding")(tgt)
    dec_seq = _layers.LSTM(units, return_sequences=True, name=f"{name}_decoder")(dec, initial_state=[h, c])
    if attention == "dot":
        ctx = Attention(name=f"{name}_attention")([dec_seq, enc_seq])
    else:
        q = Dense(units, use_bias=False, name=f"{name}_query")(dec_seq)
        k = Dense(units, use_bias=False, name=f"{name}_key")(enc_seq)
        ctx = AdditiveAttention(name=f"{name}_attention")([q, enc_seq, k])
    h_att = Dense(units, activation="tanh", name=f"{name}_combine")(
        Concatenate(name=f"{name}_concat")([dec_seq, ctx]))
    out = Dense(tgt_vocab, activation="softmax", name=f"{name}_scores")(h_att)
    return Model([src, tgt], out, dtype=dtype, seed=seed, name=name)
