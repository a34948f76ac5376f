"""Plots of a tagger's output (notebook 01), in the convention of :mod:`primekit.plots`: each
takes ``ax=`` and returns it; none shows or saves."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes

from .._validation import check_columns
from ._base import axes_or_new

__all__ = [
    "plot_tag_count_distribution",
    "plot_tag_heatmap",
    "plot_threshold_sweep",
    "plot_tag_quality",
]


def plot_tag_count_distribution(distribution: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Bars of the share of images with 0, 1, 2, ... tags, one colour per tagger.

    Parameters
    ----------
    distribution : DataFrame from :func:`primekit.tag_stats.tag_count_distribution`
    """
    if not isinstance(distribution, pd.DataFrame) or distribution.empty:
        raise ValueError("distribution: expected a non-empty DataFrame of shares")
    ax = axes_or_new(ax)
    counts = [str(i) for i in distribution.index]
    long = distribution.set_axis(counts).rename_axis("tags").reset_index().melt(
        id_vars="tags", var_name="tagger", value_name="share")
    long["tagger"] = long["tagger"].astype(str)
    sns.barplot(long, x="tags", y="share", hue="tagger", order=counts,
                hue_order=[str(c) for c in distribution.columns], errorbar=None, saturation=1,
                ax=ax)
    ax.set_xlabel("tags per image")
    ax.set_ylabel("share of images")
    ax.legend(frameon=False)
    return ax


def plot_tag_heatmap(
    frequencies: pd.DataFrame,
    *,
    tags: Sequence[str] | None = None,
    annotate: bool = True,
    ax: Axes | None = None,
) -> Axes:
    """Heat map of tag frequency per class (rows = classes, columns = tags).

    Parameters
    ----------
    frequencies : long DataFrame with ``class``, ``tag``, ``frequency`` (from
        :func:`primekit.tag_frequencies`)
    tags : columns to show, in order; default every tag, most frequent overall first
    annotate : write the percentage in cells of 10% or more
    """
    check_columns(frequencies, "frequencies", ["class", "tag", "frequency"])
    table = frequencies.pivot_table(index="class", columns="tag", values="frequency",
                                    aggfunc="mean", fill_value=0.0)
    if tags is None:
        tags = list(table.mean(axis=0).sort_values(ascending=False, kind="stable").index)
    table = table.reindex(columns=list(tags), fill_value=0.0)
    ax = axes_or_new(ax, (max(6, 0.32 * table.shape[1]), max(2.5, 0.4 * table.shape[0])))
    values = table.to_numpy(dtype=float)
    cells = np.where(values >= 0.1, np.vectorize(lambda v: f"{v:.0%}"[:-1])(values), "")
    sns.heatmap(table, vmin=0, vmax=1, cmap="viridis", annot=cells if annotate else False,
                fmt="", annot_kws={"fontsize": 6}, ax=ax,
                cbar_kws={"fraction": 0.025, "pad": 0.01, "label": "share of class images"})
    ax.set_xticks(np.arange(table.shape[1]) + 0.5, [str(t) for t in table.columns], rotation=60,
                  ha="right", fontsize=8)
    ax.set_yticks(np.arange(table.shape[0]) + 0.5, [str(c) for c in table.index], fontsize=8,
                  rotation=0)
    ax.set_xlabel("")
    ax.set_ylabel("")
    return ax


def plot_threshold_sweep(
    sweep: pd.DataFrame,
    columns: Sequence[str] = ("precision", "recall"),
    *,
    threshold: float | None = None,
    ylabel: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Lines of sweep columns against the tag score threshold.

    Parameters
    ----------
    sweep : DataFrame from :func:`primekit.tag_stats.threshold_sweep`
    columns : the columns to draw (one line each), e.g. ``("precision", "recall")`` or
        ``("tags_per_image",)``
    threshold : mark the threshold in use with a vertical line
    ylabel : label of the y axis (default: the column name when there is one)
    """
    check_columns(sweep, "sweep", ["threshold", *columns])
    ax = axes_or_new(ax)
    for column in columns:
        ax.plot(sweep["threshold"], sweep[column], marker="o", markersize=3,
                label=column.replace("_", " "))
    if threshold is not None:
        ax.axvline(threshold, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("tag score threshold")
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    elif len(columns) == 1:
        ax.set_ylabel(columns[0].replace("_", " "))
    if len(columns) > 1:
        ax.legend(frameon=False)
    return ax


def plot_tag_quality(quality: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Per-tag precision and recall against the ground truth, tags sorted by F1 (best on top).

    Parameters
    ----------
    quality : DataFrame indexed by tag with ``precision`` and ``recall`` (and ``f1``), e.g. from
        :func:`primekit.toyworld.tagger_quality`. Undefined precision (a tag never predicted) is
        drawn as 0 and marked with a cross.
    """
    check_columns(quality, "quality", ["precision", "recall"])
    order = quality["f1"] if "f1" in quality.columns else quality["recall"]
    table = quality.assign(_order=order.fillna(0.0)).sort_values("_order", kind="stable")
    ax = axes_or_new(ax, (5, max(3, 0.22 * len(table))))
    y = np.arange(len(table))
    ax.barh(y + 0.2, table["precision"].fillna(0.0), 0.4, label="precision", color="tab:blue")
    ax.barh(y - 0.2, table["recall"].fillna(0.0), 0.4, label="recall", color="tab:orange")
    undefined = table["precision"].isna().to_numpy()
    if undefined.any():
        ax.scatter(np.full(undefined.sum(), 0.01), y[undefined] + 0.2, marker="x",
                   color="tab:blue", s=14, clip_on=False, label="never predicted")
    ax.set_yticks(y, [str(t) for t in table.index], fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel("against ground truth")
    ax.legend(frameon=False, loc="lower right", fontsize=8)
    return ax
