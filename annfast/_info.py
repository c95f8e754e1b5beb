"""show_config(): what this build and machine are."""
import sys

import numpy as np


def config():
    """Dict of version, compiler, OpenMP, threads, CPU features and the selected ISA."""
    from . import __version__, _core
    info = {"version": __version__, "python": sys.version.split()[0], "numpy": np.__version__}
    info.update(_core.build_info())
    return info


def show_config(file=None):
    """Print version, compiler, OpenMP on/off, thread count, CPU features and the kernel path."""
    info = config()
    lines = [
        f"annfast {info['version']} (Python {info['python']}, NumPy {info['numpy']})",
        f"  compiler:      {info['compiler']}",
        f"  OpenMP:        {'on' if info['openmp'] else 'off (built single-threaded)'}",
        f"  threads:       {info['num_threads']} (of {info['num_procs']} processors)",
        f"  CPU features:  {' '.join(info['cpu_features']) or 'none detected'}",
        f"  kernel path:   {info['isa']} (best available: {info['best_isa']}; "
        f"supported: {', '.join(info['supported_isas'])})",
    ]
    print("\n".join(lines), file=file or sys.stdout)
