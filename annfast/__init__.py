"""annfast: fast neural networks in C and Cython with OpenMP.

>>> from annfast import NeuralNetwork      # the tutorial's class, computed in C
>>> import annfast as af                    # the general library: af.Sequential, af.Dense, ...
>>> af.show_config()                        # doctest: +SKIP
"""
__version__ = "0.1.0"

from ._omp_env import bounded_openmp_spin as _bounded_openmp_spin

with _bounded_openmp_spin():  # libgomp reads its spin settings once, when _core loads it
    from ._core import get_isa, get_num_threads, set_isa, set_num_threads  # noqa: F401
from ._core import thread_policy  # noqa: F401
from ._info import show_config  # noqa: F401
from .network import NeuralNetwork  # noqa: F401
from .linalg import matmul  # noqa: F401
from . import activations, callbacks, datasets, initializers, losses, metrics, optimizers  # noqa: F401
from . import distributed  # noqa: F401
from .layers import (Activation, Add, BatchNormalization, Concatenate, Dense, Dropout,  # noqa: F401
                     Embedding, Flatten, GlobalAveragePooling1D, Input, Reshape)
from .layers import Conv1D, Conv2D  # noqa: F401
from .layers import (AveragePooling1D, AveragePooling2D, AvgPool1D, AvgPool2D,  # noqa: F401
                     GlobalAveragePooling2D, GlobalMaxPooling1D, GlobalMaxPooling2D, MaxPool1D,
                     MaxPool2D, MaxPooling1D, MaxPooling2D)
from .layers import (AdditiveAttention, Attention, LayerNormalization,  # noqa: F401
                     MultiHeadAttention, PositionalEmbedding, SinusoidalPositionalEncoding,
                     TransformerDecoderLayer, TransformerEncoderLayer)
from .layers import GRU, LSTM, Bidirectional, Masking, SimpleRNN  # noqa: F401
from .models import Model, Sequential  # noqa: F401
from . import seq2seq  # noqa: F401
from .saving import load_model, save_model  # noqa: F401
from .plotting import plot_history  # noqa: F401

__all__ = [
    "__version__", "show_config", "set_num_threads", "get_num_threads", "set_isa", "get_isa",
    "thread_policy",
    "NeuralNetwork", "matmul", "Model", "Sequential", "Input", "Dense", "BatchNormalization",
    "Dropout", "Activation", "Add", "Concatenate", "Flatten", "Reshape", "Embedding",
    "GlobalAveragePooling1D",
    "Conv1D", "Conv2D",
    "MaxPooling2D", "AveragePooling2D", "MaxPooling1D", "AveragePooling1D", "MaxPool2D", "AvgPool2D",
    "MaxPool1D", "AvgPool1D", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "GlobalMaxPooling1D",
    "LayerNormalization", "MultiHeadAttention", "Attention", "AdditiveAttention",
    "PositionalEmbedding", "SinusoidalPositionalEncoding", "TransformerEncoderLayer",
    "TransformerDecoderLayer", "seq2seq",
    "SimpleRNN", "LSTM", "GRU", "Bidirectional", "Masking",
    "activations", "callbacks", "datasets", "initializers", "losses", "metrics", "optimizers",
    "distributed",
    "load_model", "save_model", "plot_history",
]
