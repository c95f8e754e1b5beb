"""annfast: fast neural networks in C and Cython with OpenMP.

>>> from annfast import NeuralNetwork      # the tutorial's class, computed in C
>>> import annfast; annfast.show_config()  # doctest: +SKIP
"""
__version__ = "0.1.0"

from ._core import get_isa, get_num_threads, set_isa, set_num_threads  # noqa: F401
from ._info import show_config  # noqa: F401
from .network import NeuralNetwork  # noqa: F401
from . import optimizers  # noqa: F401,E402
from . import initializers  # noqa: F401,E402
from . import callbacks  # noqa: F401,E402
from .saving import load_model, save_model  # noqa: F401,E402

__all__ = ["NeuralNetwork", "show_config", "set_num_threads", "get_num_threads", "set_isa", "get_isa",
           "__version__"]
from . import activations, losses, metrics  # noqa: F401,E402
from .layers import BatchNormalization, Dense, Dropout  # noqa: F401,E402
from .models import Sequential  # noqa: F401,E402
__all__ += ["Sequential", "Dense", "BatchNormalization", "Dropout", "activations", "losses", "metrics"]
__all__ += ["optimizers", "initializers", "callbacks", "load_model", "save_model"]
from .plotting import plot_history  # noqa: F401,E402
__all__ += ["plot_history"]
