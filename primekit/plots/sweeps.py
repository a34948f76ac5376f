"""Plots of the hyperparameter sweeps (appendix A.5, A.6, Fig. 10), in the convention of
:mod:`primekit.plots`: each takes ``ax=`` and returns the Axes drawn on; none shows or saves."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes

from .._validation import check_columns
from ._base import axes_or_new, panel_grid
from .evaluation import plot_generalization

__all__ = ["plot_sweep_heatmap", "plot_generalization_panels", "plot_search_comparison"]


def plot_sweep_heatmap(
    sweep: pd.DataFrame,
    *,
    value: str = "n_modes",
    fmt: str = "{:.0f}",
    cmap: str = "viridis",
    ax: Axes | None = None,
) -> Axes:
    """A.5: one value of a sweep over s (rows) and a (columns) as an annotated heat map.

    Parameters
    ----------
    sweep : DataFrame from :func:`primekit.metrics.generalization_sweep` (``min_size``,
        ``min_drop`` and ``value``)
    value : column to show, e.g. ``"n_modes"``, ``"corrcoef"``, ``"share_at_least"``
    fmt : format of the numbers written in the cells (NaN cells are left blank)
    """
    check_columns(sweep, "sweep", ["min_size", "min_drop", value])
    ax = axes_or_new(ax, (5, 4))
    table = sweep.pivot_table(index="min_size", columns="min_drop", values=value, dropna=False)
    data = table.to_numpy(dtype=float)
    finite = np.isfinite(data)
    cells = np.array([[fmt.format(v) if ok else "" for v, ok in zip(r, f, strict=True)]
                      for r, f in zip(data, finite, strict=True)]).reshape(data.shape)
    limits = {} if finite.any() else {"vmin": 0.0, "vmax": 1.0}  # all NaN: nothing to scale
    sns.heatmap(table.astype(float), mask=~finite, annot=cells, fmt="", cmap=cmap,
                annot_kws={"fontsize": 9}, cbar_kws={"shrink": 0.8}, ax=ax,
                xticklabels=[f"{a:.0%}" for a in table.columns],
                yticklabels=[str(s) for s in table.index], **limits)
    ax.tick_params(axis="y", rotation=0)
    ax.set_xlabel("a (min_drop)")
    ax.set_ylabel("s (min_size)")
    return ax


def plot_generalization_panels(
    recovered: pd.DataFrame,
    *,
    points: Sequence[tuple[int, float]] | None = None,
    min_test_drop: float | None = 0.25,
    ax: Axes | Sequence[Axes] | None = None,
) -> np.ndarray:
    """Fig. 10: train drop vs test drop with y = x, one panel per (s, a).

    Parameters
    ----------
    recovered : DataFrame from :func:`primekit.sweeps.sweep_recovered`
    points : the (s, a) pairs to draw (default: every pair in ``recovered``)
    min_test_drop : horizontal guide (None: none)
    ax : one Axes (divided into a row of panels), one Axes per point, or None (a new row of
        panels sharing their axes)

    Returns
    -------
    array of the Axes drawn on, one per point.
    """
    check_columns(recovered, "recovered", ["min_size", "min_drop", "drop", "test_drop"])
    if points is None:
        points = list(dict.fromkeys(zip(recovered["min_size"], recovered["min_drop"], strict=False)))
    points = [(int(s), float(a)) for s, a in points]
    if not points:
        raise ValueError("points: nothing to draw (recovered has no rows)")
    axes, _ = panel_grid(ax, 1, len(points), (3.2 * len(points), 3.4), sharex=True, sharey=True)
    axes = axes.ravel()
    for panel, (s, a) in zip(axes, points, strict=True):
        rows = recovered[(recovered["min_size"] == s) & np.isclose(recovered["min_drop"], a)]
        plot_generalization(rows, min_test_drop=min_test_drop, ax=panel)
        shown = rows[rows["test_drop"].notna()]
        r = (np.corrcoef(shown["drop"], shown["test_drop"])[0, 1]
             if len(shown) > 2 and shown["drop"].std() > 0 and shown["test_drop"].std() > 0
             else np.nan)
        corr = f", r = {r:.2f}" if np.isfinite(r) else ""
        panel.set_title(f"s={s}, a={a:.0%}: {len(rows)} mode{'s' if len(rows) != 1 else ''}{corr}",
                        fontsize=9)
        if panel is not axes[0]:
            panel.set_ylabel("")
            legend = panel.get_legend()
            if legend is not None:
                legend.remove()
    return axes


def plot_search_comparison(
    comparison: pd.DataFrame,
    *,
    ax: Axes | None = None,
) -> Axes:
    """A.6: modes found by each search method (bars: recovered exhaustive modes), with the wall
    time on a second axis.

    Parameters
    ----------
    comparison : DataFrame from :func:`primekit.sweeps.compare_search_methods`
    """
    check_columns(comparison, "comparison", ["n_modes", "n_exhaustive", "seconds"])
    ax = axes_or_new(ax, (6, 3.5))
    x = np.arange(len(comparison))
    ax.bar(x, comparison["n_modes"], color="tab:blue", label="modes found")
    if len(comparison):
        ax.axhline(comparison["n_exhaustive"].iloc[0], color="grey", linestyle="--",
                   linewidth=1, label="exhaustive")
    ax.set_xticks(x, [str(m) for m in comparison.index], rotation=15, ha="right")
    ax.set_ylabel("failure modes found")
    timing = ax.twinx()
    timing.plot(x, 1000 * comparison["seconds"], color="tab:red", marker="o", label="time")
    timing.set_ylabel("time (ms)", color="tab:red")
    timing.set_ylim(bottom=0)
    handles = ax.get_legend_handles_labels()
    more = timing.get_legend_handles_labels()
    ax.legend(handles[0] + more[0], handles[1] + more[1], frameon=False, loc="upper center",
              bbox_to_anchor=(0.5, -0.28), ncol=3, fontsize=8)
    return ax
