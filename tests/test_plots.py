"""Plot functions draw into the ``ax`` they are given and return the Axes; they never show or save."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from primekit import plots
from primekit.plots import (
    plot_image_grid,
    plot_mode_accuracy,
    plot_mode_grid,
    plot_mode_subsets,
    plot_subset_accuracies,
    save_figure,
)

MODES = pd.DataFrame(
    {
        "class": ["bird", "car"],
        "tags": [("night", "snow"), ("fog",)],
        "size": [40, 55],
        "accuracy": [0.2, 0.4],
        "class_accuracy": [0.9, 0.85],
    }
)


def test_plot_mode_grid_divides_the_axes_it_is_given():
    fig, ax = plt.subplots()
    images = [np.zeros((3, 64, 64, 3), np.uint8), np.zeros((6, 64, 64, 3), np.uint8)]
    axes = plot_mode_grid(MODES, images, ncols=4, ax=ax)
    assert axes.shape == (2, 4) and all(a.figure is fig for a in axes.flat)
    assert ax not in fig.axes and len(fig.axes) == 8  # the Axes given is replaced by the grid
    assert "night + snow" in axes[0, 0].get_title(loc="left")
    with pytest.raises(ValueError, match="images"):
        plot_mode_grid(MODES, images[:1])
    # as many Axes as panels are used as they are
    fig, grid = plt.subplots(2, 4)
    assert (plot_mode_grid(MODES, images, ncols=4, ax=grid) == grid).all()
    with pytest.raises(ValueError, match="ax"):
        plot_mode_grid(MODES, images, ncols=4, ax=grid[0])
    plt.close("all")


def test_plot_subset_accuracies_and_mode_accuracy_use_the_axes():
    subsets = pd.DataFrame(
        {"tags": [(), ("night",), ("snow",), ("night", "snow")], "n_tags": [0, 1, 1, 2], "size": [300, 80, 90, 40], "accuracy": [0.9, 0.7, 0.8, 0.2]}
    )
    fig, ax = plt.subplots()
    assert plot_subset_accuracies(subsets, class_accuracy=0.9, ax=ax) is ax
    assert len(ax.patches) == 4
    fig, ax = plt.subplots()
    assert plot_mode_accuracy(MODES, ax=ax) is ax
    with pytest.raises(ValueError, match="subsets"):
        plot_subset_accuracies(pd.DataFrame({"x": [1]}))
    plt.close("all")


def test_plot_image_grid():
    axes = plot_image_grid(np.zeros((5, 64, 64, 3), np.uint8), ["a"] * 5, ncols=3)
    assert axes.shape == (2, 3) and len(axes[0, 0].figure.axes) == 6
    with pytest.raises(ValueError, match="titles"):
        plot_image_grid(np.zeros((2, 8, 8, 3)), ["a"])
    plt.close("all")


def test_plot_mode_subsets_returns_one_axes_per_mode():
    subsets = pd.DataFrame(
        {
            "mode": [0, 0, 1, 1, 2, 2],
            "class": ["bird"] * 2 + ["car"] * 2 + ["cat"] * 2,
            "tags": [(), ("night",), (), ("fog",), (), ("snow",)],
            "n_tags": [0, 1] * 3,
            "accuracy": [0.9, 0.3, 0.8, 0.4, 0.7, 0.2],
        }
    )
    axes = plot_mode_subsets(subsets, ncols=2)
    assert len(axes) == 3 and len(axes[0].figure.axes) == 3  # the unused fourth cell is removed
    assert [a.get_title() for a in axes] == ["bird", "car", "cat"]
    plt.close("all")


def test_every_plot_takes_ax_and_returns_axes():
    import inspect

    for name in plots.__all__:
        if name.startswith("plot_"):
            options = inspect.signature(getattr(plots, name)).parameters
            assert "ax" in options and options["ax"].kind is inspect.Parameter.KEYWORD_ONLY, name
            assert "fig" not in options and "axes" not in options, name


def test_save_figure_writes_png_from_what_a_plot_returns(tmp_path):
    fig, ax = plt.subplots()
    plot_mode_accuracy(MODES, ax=ax)
    path = save_figure(ax, "00_mode_accuracy", tmp_path / "figures")
    assert path == tmp_path / "figures" / "00_mode_accuracy.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    grid = plot_image_grid(np.zeros((2, 8, 8, 3), np.uint8))
    assert save_figure(grid, "grid.pdf", tmp_path).suffix == ".pdf"
    assert save_figure(fig, "again", tmp_path, dpi=50).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.png", "figures", "grid.pdf"]

    class Display:  # a scikit-learn style display
        figure_ = fig

    assert save_figure(Display(), "display", tmp_path).exists()
    with pytest.raises(ValueError, match="name"):
        save_figure(fig, "../up", tmp_path)
    with pytest.raises(TypeError, match="fig_or_display"):
        save_figure("figure", "x", tmp_path)
    plt.close("all")


def test_plot_quality_distribution_draws_one_box_per_method():
    quality = {
        "PRIME": pd.DataFrame({"auroc": [0.9, 0.8, 0.7, np.nan]}),
        "DOMINO": pd.DataFrame({"auroc": [0.6, 0.5]}),
    }
    fig, ax = plt.subplots()
    assert plots.plot_quality_distribution(quality, ax=ax) is ax
    assert [t.get_text() for t in ax.get_xticklabels()] == ["PRIME", "DOMINO"]
    with pytest.raises(ValueError, match="quality"):
        plots.plot_quality_distribution({"PRIME": pd.DataFrame({"mean": [0.1]})})
    plt.close("all")
