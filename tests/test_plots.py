"""Plot functions draw into the given axes/figure and return it; they never show or save."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from primekit.plots import (
    plot_image_grid,
    plot_mode_accuracy,
    plot_mode_grid,
    plot_subset_accuracies,
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


def test_plot_mode_grid_returns_the_figure():
    fig = plt.figure()
    images = [np.zeros((3, 64, 64, 3), np.uint8), np.zeros((6, 64, 64, 3), np.uint8)]
    assert plot_mode_grid(MODES, images, ncols=4, fig=fig) is fig
    assert "night + snow" in fig.axes[0].get_title(loc="left")
    with pytest.raises(ValueError, match="images"):
        plot_mode_grid(MODES, images[:1])
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
    fig = plot_image_grid(np.zeros((5, 64, 64, 3), np.uint8), ["a"] * 5, ncols=3)
    assert len(fig.axes) == 6
    with pytest.raises(ValueError, match="titles"):
        plot_image_grid(np.zeros((2, 8, 8, 3)), ["a"])
    plt.close("all")
