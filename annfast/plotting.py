"""Training-curve and benchmark plots (matplotlib is optional: ``pip install annfast[plot]``).

>>> import annfast                                      # doctest: +SKIP
>>> history = model.fit(X, y, epochs=20, validation_split=0.1)
>>> annfast.plot_history(history, "curve.png")          # loss and val_loss per epoch
"""
from __future__ import annotations

import numbers
import os
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np


def _pyplot():
    """Import matplotlib with a file-only backend; ImportError with an install hint otherwise."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install matplotlib "
                          "(or pip install annfast[plot])") from None
    import matplotlib.pyplot as plt
    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "ps", "cairo") and \
            not _interactive_display():
        plt.switch_backend("Agg")
    return plt


def _interactive_display():
    import os
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _history_dict(history):
    """Accept a History (anything with a `.history` dict), a dict of lists, an estimator with
    `loss_curve_`, or a plain sequence of losses; return {name: 1-D float array}."""
    if hasattr(history, "loss_curve_"):
        curves = {"loss": history.loss_curve_}
        if getattr(history, "validation_scores_", None) is not None:
            curves["val_score"] = history.validation_scores_
    elif hasattr(history, "history") and isinstance(history.history, dict):
        curves = history.history
    elif isinstance(history, dict):
        curves = history
    elif isinstance(history, (list, tuple, np.ndarray)):
        curves = {"loss": history}
    else:
        raise TypeError("history must be a History, a dict of per-epoch lists, an estimator with "
                        f"loss_curve_, or a list of losses; got {type(history).__name__}")
    out = {}
    for name, values in curves.items():
        values = np.asarray(values, dtype=np.float64).ravel()
        if values.size:
            out[str(name)] = values
    if not out:
        raise ValueError("history holds no per-epoch values to plot")
    return out


def plot_history(history: Any, path: Optional[Union[str, "os.PathLike[str]"]] = None, ax: Any = None,
                 metrics: Optional[Union[str, Sequence[str]]] = None, title: Optional[str] = None,
                 logy: bool = False) -> Any:
    """Plot per-epoch curves of a training run; return the matplotlib Axes.

    history: a History from Sequential.fit, its ``.history`` dict, an MLP estimator
    (``loss_curve_``) or a list of losses. path: save the figure there (format from the extension).
    ax: draw into this Axes. metrics: names to draw (default all); losses on the left axis, other
    metrics (accuracy, scores) on a right-hand axis. logy: log-scale the loss axis.

    >>> ax = plot_history({"loss": [1.0, 0.5, 0.3], "val_loss": [1.1, 0.7, 0.6]})  # doctest: +SKIP
    """
    curves = _history_dict(history)
    if metrics is not None:
        metrics = [metrics] if isinstance(metrics, str) else list(metrics)
        missing = [m for m in metrics if m not in curves]
        if missing:
            raise ValueError(f"metrics {missing} not in history (available: {sorted(curves)})")
        curves = {m: curves[m] for m in metrics}
    plt = _pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 4.0))
    else:
        fig = ax.figure
    loss_like = {k: v for k, v in curves.items() if "loss" in k or "error" in k}
    other = {k: v for k, v in curves.items() if k not in loss_like}
    # one colour per quantity (train solid / validation dashed share it)
    bases = list(dict.fromkeys(k[4:] if k.startswith("val_") else k for k in curves))
    colour = {k: f"C{bases.index(k[4:] if k.startswith('val_') else k) % 10}" for k in curves}

    def draw(axis, name, v, marker=None):
        axis.plot(np.arange(1, v.size + 1), v, label=name, color=colour[name], marker=marker,
                  linestyle="--" if name.startswith("val_") else "-", markersize=3)

    for name, v in loss_like.items():
        draw(ax, name, v)
    ax.set_xlabel("epoch")
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if loss_like:
        ax.set_ylabel("loss")
        if logy:
            ax.set_yscale("log")
    handles, labels = ax.get_legend_handles_labels()
    if other:
        ax2 = ax.twinx() if loss_like else ax
        for name, v in other.items():
            draw(ax2, name, v, marker=".")
        ax2.set_ylabel("metric")
        if ax2 is not ax:
            h2, l2 = ax2.get_legend_handles_labels()
            handles, labels = handles + h2, labels + l2
        else:
            handles, labels = ax.get_legend_handles_labels()
    # "best": matplotlib picks the corner that covers the fewest points (a fixed corner hid curves)
    ax.legend(handles, labels, loc="best", fontsize="small", framealpha=0.85)
    ax.set_title(title or "training history")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
    return ax


def plot_benchmark(rows: Sequence[Tuple[str, float]], path: Union[str, "os.PathLike[str]"],
                   title: str = "annfast vs peers (same run)") -> Any:
    """Horizontal bar chart of speed-ups: rows are (label, ratio) with ratio = peer time / our time
    (> 1 means annfast is faster). Saves to `path`; returns the Axes."""
    rows = [(str(label), float(r)) for label, r in rows
            if isinstance(r, numbers.Real) and np.isfinite(r)]
    if not rows:
        raise ValueError("no benchmark ratios to plot")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9.0, 0.45 * len(rows) + 1.6))
    labels = [r[0] for r in rows]
    values = [r[1] for r in rows]
    y = np.arange(len(rows))
    ax.barh(y, values, color=["tab:green" if v >= 1 else "tab:red" for v in values])
    ax.set_yticks(y)
    ax.set_yticklabels(labels)
    ax.invert_yaxis()
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    lo, hi = min(values + [1.0]), max(values + [1.0])
    ax.set_xlim(lo / 2.0, hi * 4.0)  # room for the value labels
    ax.set_xlabel("speed-up: peer time / annfast time (log scale; > 1 = annfast faster)")
    for yi, v in zip(y, values):
        ax.text(v, yi, f" {v:.2f}x", va="center")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return ax
