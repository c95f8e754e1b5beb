"""annfast: fast neural networks in C and Cython with OpenMP.

>>> from annfast import NeuralNetwork      # the tutorial's class, computed in C
>>> import annfast; annfast.show_config()  # doctest: +SKIP
"""
__version__ = "0.1.0"

from ._core import get_isa, get_num_threads, set_isa, set_num_threads  # noqa: F401
from ._info import show_config  # noqa: F401
from .network import NeuralNetwork  # noqa: F401
from .linalg import matmul  # noqa: F401

__all__ = ["NeuralNetwork", "show_config", "set_num_threads", "get_num_threads", "set_isa", "get_isa",
           "__version__"]
__all__ += ["matmul"]
