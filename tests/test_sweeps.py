"""primekit.sweeps: hyperparameter sweeps and greedy vs exhaustive, on a tiny planted data set."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from primekit import find_failure_modes, metrics, plots, sweeps
from primekit.split import TaggedSplit


def planted(n: int = 400, seed: int = 0):
    """Class "a": wrong on every image with tag x; class "b": wrong on images with y and z."""
    rng = np.random.default_rng(seed)
    ids = [f"s{i}" for i in range(n)]
    tags = pd.DataFrame(rng.random((n, 4)) < 0.4, index=ids, columns=["x", "y", "z", "w"])
    labels = pd.Series(np.where(np.arange(n) % 2, "a", "b"), index=ids)
    fail = np.where(labels == "a", tags["x"], tags["y"] & tags["z"])
    correct = pd.Series(~fail, index=ids)
    return tags, labels, correct


def split(tables):
    """The planted tables as a split (the object the sweeps take)."""
    return TaggedSplit(*tables)


def test_sweep_grid_is_the_product_with_s_slowest():
    assert sweeps.sweep_grid([10, 20], [0.2, 0.3]) == [(10, .2), (10, .3), (20, .2), (20, .3)]
    with pytest.raises(ValueError, match="min_sizes"):
        sweeps.sweep_grid([], [0.2])
    with pytest.raises(TypeError, match="min_sizes"):
        sweeps.sweep_grid([10.5], [0.2])
    with pytest.raises(TypeError, match="min_drops"):
        sweeps.sweep_grid([10], "0.2")


def test_paper_search_is_living17_settings_on_the_full_world():
    full = sweeps.paper_search(False)
    assert (full["min_size"], full["min_drop"], full["max_tags"]) == (30, 0.30, 4)
    assert full["necessity"] == {2: 0.10, 3: 0.05, 4: 0.025}
    assert sweeps.paper_search(True)["min_size"] < 30
    assert sweeps.paper_search(False, min_size=40, min_drop=None)["min_size"] == 40
    assert sweeps.paper_search(False, min_size=40, min_drop=None)["min_drop"] == 0.30
    with pytest.raises(ValueError, match="overrides"):
        sweeps.paper_search(False, size=3)


def test_sweep_defaults_differ_by_size_and_take_overrides():
    full, smoke = sweeps.sweep_defaults(False), sweeps.sweep_defaults(True)
    assert set(full) == set(smoke) == {"min_sizes", "min_drops", "panels", "search"}
    assert full["search"]["min_size"] == 25 and full["search"]["min_drop"] == 0.20
    assert smoke["search"]["min_size"] == 5
    assert max(smoke["min_sizes"]) < min(full["min_sizes"])
    assert full["panels"] == list(zip(full["min_sizes"], full["min_drops"], strict=False))
    mine = sweeps.sweep_defaults(False, min_sizes=[7], min_drops=None, panels=[(7, 0.5)])
    assert mine["min_sizes"] == [7] and mine["min_drops"] == full["min_drops"]
    assert mine["panels"] == [(7, 0.5)]
    assert mine["search"]["min_size"] == 7
    assert sweeps.sweep_defaults(False, min_size=40, max_tags=2)["search"]["min_size"] == 40
    with pytest.raises(ValueError, match="overrides"):
        sweeps.sweep_defaults(False, size=3)
    with pytest.raises(TypeError, match="min_sizes"):
        sweeps.sweep_defaults(False, min_sizes=[2.5])


def test_sweep_recovered_matches_one_search_per_point():
    tags, labels, correct = planted()
    test = planted(seed=1)
    grid = [(20, 0.3), (1000, 0.3)]
    out = sweeps.sweep_recovered(split(planted()), split(test), grid=grid, max_tags=2)
    one = metrics.recover_groups(
        find_failure_modes(tags, labels, correct, min_size=20, min_drop=0.3,
                           max_tags=2),
        *test,
    )
    assert set(zip(out["min_size"], out["min_drop"], strict=False)) == {(20, 0.3)}  # s=1000: no mode
    got = out.drop(columns=["min_size", "min_drop"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, one.reset_index(drop=True))
    assert {("a", ("x",)), ("b", ("y", "z"))} <= set(zip(out["class"], out["tags"], strict=False))
    # the planted modes fail on the unseen data too
    assert (out["test_accuracy"] == 0).all()


def test_sweep_recovered_bad_input():
    data = split(planted())
    with pytest.raises(ValueError, match="grid"):
        sweeps.sweep_recovered(data, data, grid=[])
    with pytest.raises(TypeError, match="grid"):
        sweeps.sweep_recovered(data, data, grid=[20])
    with pytest.raises(TypeError, match="min_size"):
        sweeps.sweep_recovered(data, data, grid=[(20, 0.3)], min_size=3)
    # the former six-table call names the new form
    with pytest.raises(TypeError, match="data: expected a split"):
        sweeps.sweep_recovered(planted()[0], data, grid=[(20, 0.3)])
    with pytest.raises(TypeError):
        sweeps.sweep_recovered(*planted(), *planted(), grid=[(20, 0.3)])


def test_compare_search_methods_counts_recovered_exhaustive_modes():
    tags, labels, correct = planted()
    out = sweeps.compare_search_methods(tags, labels, correct, beam_widths=[1, 5], repeat=1,
                                        min_size=20, min_drop=0.3, max_tags=3)
    assert list(out.index) == ["exhaustive", "greedy (beam 1)", "greedy (beam 5)"]
    exhaustive = out.loc["exhaustive"]
    assert exhaustive["n_recovered"] == exhaustive["n_modes"] == exhaustive["n_exhaustive"]
    assert exhaustive["share_recovered"] == 1.0
    assert (out["n_recovered"] == out["n_modes"]).all()  # greedy never invents a mode
    assert (out["n_modes"] <= exhaustive["n_modes"]).all()
    assert (out["seconds"] > 0).all()
    assert sum(exhaustive["n_modes_by_size"].values()) == exhaustive["n_modes"]
    with pytest.raises(ValueError, match="beam_widths"):
        sweeps.compare_search_methods(tags, labels, correct, beam_widths=[0])
    with pytest.raises(ValueError, match="repeat"):
        sweeps.compare_search_methods(tags, labels, correct, repeat=0)
    with pytest.raises(TypeError, match="method"):
        sweeps.compare_search_methods(tags, labels, correct, method="greedy")


def test_plots_take_and_return_axes():
    import matplotlib.pyplot as plt

    data = planted()
    grid = sweeps.sweep_grid([20, 40], [0.2, 0.3])
    summary = metrics.generalization_sweep(split(data), split(planted(seed=1)), grid=grid,
                                          max_tags=2)
    fig, ax = plt.subplots()
    assert plots.plot_sweep_heatmap(summary, value="n_modes", ax=ax) is ax
    recovered = sweeps.sweep_recovered(split(data), split(planted(seed=1)), grid=grid, max_tags=2)
    fig, axes = plt.subplots(1, 2)
    drawn = plots.plot_generalization_panels(recovered, points=grid[:2], ax=axes)
    assert list(drawn) == list(axes)
    comparison = sweeps.compare_search_methods(*data, repeat=1, min_size=20, max_tags=2)
    fig, ax = plt.subplots()
    assert plots.plot_search_comparison(comparison, ax=ax) is ax
    with pytest.raises(ValueError, match="n_modes"):
        plots.plot_sweep_heatmap(summary.drop(columns="n_modes"), value="n_modes")
    plt.close("all")
