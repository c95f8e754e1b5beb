"""Layers: each maps to a C kind in csrc/layers/ and describes itself by shape.

A layer holds its configuration; once its model is built, its parameters are NumPy views into
the model's one flat parameter buffer (what the C engine and the optimiser update in place), so
``layer.kernel`` always shows the current values and assigning to it (after validation) copies
into the model. ``layer.weights`` lists every weight of the layer, as Keras does.

>>> import annfast as af
>>> model = af.Sequential([af.Dense(4, activation="relu"), af.Dense(1)], input_dim=3, seed=0)
>>> model.layers[0].kernel.shape, model.layers[0].bias.shape
((3, 4), (4,))
>>> [w.shape for w in model.layers[0].weights]
[(3, 4), (4,)]
"""
from .base import LAYER_CLASSES, Input, InputLayer, Layer, Tensor  # noqa: F401
from .activation import Activation  # noqa: F401
from .core import Dense, Dropout, Flatten, Reshape  # noqa: F401
from .conv import Conv1D, Conv2D  # noqa: F401
from .embedding import Embedding  # noqa: F401
from .merge import Add, Concatenate  # noqa: F401
from .normalization import BatchNormalization  # noqa: F401
from .pooling import GlobalAveragePooling1D  # noqa: F401
from .pooling import (AveragePooling1D, AveragePooling2D, AvgPool1D, AvgPool2D,  # noqa: F401
                      GlobalAveragePooling2D, GlobalMaxPooling1D, GlobalMaxPooling2D, MaxPool1D,
                      MaxPool2D, MaxPooling1D, MaxPooling2D)
from .layernorm import LayerNormalization  # noqa: F401
from .attention import AdditiveAttention, Attention, MultiHeadAttention  # noqa: F401
from .positional import PositionalEmbedding, SinusoidalPositionalEncoding  # noqa: F401
from .transformer import TransformerDecoderLayer, TransformerEncoderLayer  # noqa: F401
from .masking import Masking  # noqa: F401
from .recurrent import GRU, LSTM, Bidirectional, SimpleRNN  # noqa: F401
