"""annfast.plot_history / plot_benchmark: curves are drawn with the right data; input checks."""
import numpy as np
import pytest

import annfast
from annfast.plotting import _history_dict, plot_benchmark


class FakeHistory:
    def __init__(self, history):
        self.history = history


def test_history_dict_accepts_all_forms():
    d = {"loss": [3.0, 2.0], "val_loss": [3.5, 2.5], "accuracy": [0.5, 0.7]}
    for h in (d, FakeHistory(d)):
        out = _history_dict(h)
        assert set(out) == set(d)
        np.testing.assert_array_equal(out["loss"], [3.0, 2.0])
    assert list(_history_dict([1.0, 0.5])) == ["loss"]

    class Est:
        loss_curve_ = [1.0, 0.4]
        validation_scores_ = None
    assert list(_history_dict(Est())) == ["loss"]
    with pytest.raises(TypeError, match="history must be"):
        _history_dict(42)
    with pytest.raises(ValueError, match="no per-epoch values"):
        _history_dict({"loss": []})


def test_plot_history_draws_lines_and_saves(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt
    d = {"loss": [3.0, 2.0, 1.0], "val_loss": [3.5, 2.5, 2.0], "accuracy": [0.5, 0.7, 0.9]}
    path = tmp_path / "curve.png"
    ax = annfast.plot_history(FakeHistory(d), str(path))
    assert path.stat().st_size > 1000
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert set(lines) == {"loss", "val_loss"}
    np.testing.assert_array_equal(lines["loss"].get_ydata(), [3.0, 2.0, 1.0])
    np.testing.assert_array_equal(lines["loss"].get_xdata(), [1, 2, 3])
    twin = [a for a in ax.figure.axes if a is not ax]
    assert [ln.get_label() for ln in twin[0].get_lines()] == ["accuracy"]
    ax2 = annfast.plot_history(d, metrics="loss", logy=True)
    assert [ln.get_label() for ln in ax2.get_lines()] == ["loss"]
    assert ax2.get_yscale() == "log"
    with pytest.raises(ValueError, match="not in history"):
        annfast.plot_history(d, metrics=["nope"])
    plt.close("all")


def test_plot_benchmark(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt
    path = tmp_path / "b.png"
    ax = plot_benchmark([("a", 2.0), ("b", 0.5), ("skip", float("nan"))], str(path))
    assert path.exists()
    widths = sorted(p.get_width() for p in ax.patches)
    assert widths == [0.5, 2.0]
    with pytest.raises(ValueError, match="no benchmark ratios"):
        plot_benchmark([], str(path))
    plt.close("all")


def test_history_plot_method(tmp_path):
    pytest.importorskip("matplotlib")
    import annfast as af
    m = af.Sequential([af.Dense(3, activation="relu"), af.Dense(1)], input_dim=2, seed=0)
    m.compile("mse", "adam")
    h = m.fit(np.random.default_rng(0).random((16, 2)), np.zeros((16, 1)), epochs=2, verbose=0)
    out = tmp_path / "curve.png"
    h.plot(str(out))
    assert out.stat().st_size > 0


def test_legend_does_not_cover_curves(tmp_path):
    """The legend goes where it hides the fewest points (loc="best"), not at a fixed
    "center right" over curves that cross the middle of the plot."""
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt
    flat = np.ones(29)  # both curves run through the middle of the plot, right edge included
    d = {"loss": np.r_[2.0, flat], "val_loss": np.r_[0.0, flat + 0.01]}
    ax = annfast.plot_history(d, str(tmp_path / "c.png"))
    fig = ax.figure
    fig.canvas.draw()
    box = ax.get_legend().get_window_extent()
    for line in ax.get_lines():
        pts = line.get_transform().transform(line.get_xydata())
        inside = [(x, y) for x, y in pts if box.contains(x, y)]
        assert not inside, f"legend covers {line.get_label()} at {inside[:3]}"
    plt.close("all")
