"""Plots of failure modes (paper Fig. 1/3 style), in the convention of :mod:`primekit.plots`:
each takes ``ax=`` and returns the Axes drawn on (an array of them for a grid of panels)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from .._validation import check_columns
from ._base import axes_or_new, panel_grid

__all__ = [
    "plot_image_grid",
    "plot_mode_grid",
    "plot_subset_accuracies",
    "plot_mode_accuracy",
    "plot_mode_subsets",
    "plot_lattice",
]


def _tag_text(tags: str | Sequence[str]) -> str:
    return tags if isinstance(tags, str) else " + ".join(tags)


def plot_image_grid(
    images: np.ndarray | Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    *,
    ncols: int = 8,
    fontsize: float = 6,
    ax: Axes | Sequence[Axes] | None = None,
) -> np.ndarray:
    """A grid of images with optional titles (e.g. the toy world's images and their tags).

    Parameters
    ----------
    images : array (n, H, W, 3) or sequence of arrays
    titles : sequence of str, optional
        One title per image (wrapped to the image width).
    ncols : int
        Images per row.
    ax : Axes or Axes array, optional
        Where to draw (see :mod:`primekit.plots`); a new figure by default.

    Returns
    -------
    array of Axes, shape (rows, ncols)
    """
    if ncols < 1:
        raise ValueError(f"ncols: must be >= 1, got {ncols}")
    n = len(images)
    if titles is not None and len(titles) != n:
        raise ValueError(f"titles: expected {n} titles, got {len(titles)}")
    nrows = max(1, -(-n // ncols))
    axes, own = panel_grid(ax, nrows, ncols, (1.4 * ncols, 1.75 * nrows))
    for i, cell in enumerate(axes.flat):
        cell.axis("off")
        if i < n:
            cell.imshow(images[i], interpolation="nearest")
            if titles is not None:
                cell.set_title("\n".join(textwrap.wrap(titles[i], 24)[:3]), fontsize=fontsize)
    if own:
        axes[0, 0].figure.tight_layout()
    return axes


def plot_mode_grid(
    modes: pd.DataFrame,
    images: Sequence[np.ndarray],
    *,
    ncols: int = 6,
    ax: Axes | Sequence[Axes] | None = None,
) -> np.ndarray:
    """Image grids of failure modes: one row per mode, titled with its tags and accuracies (Fig. 1).

    Parameters
    ----------
    modes : DataFrame
        Failure modes (``class, tags, size, accuracy, class_accuracy``), one row per grid row.
    images : sequence of arrays (k, H, W, 3)
        Example images of each mode, in the order of ``modes`` (up to ``ncols`` are shown).
    ncols : int
        Images per row.
    ax : Axes or Axes array, optional
        Where to draw (see :mod:`primekit.plots`); a new figure by default.

    Returns
    -------
    array of Axes, shape (len(modes), ncols)
    """
    check_columns(modes, "modes", ["class", "tags", "size", "accuracy", "class_accuracy"])
    if len(images) != len(modes):
        raise ValueError(f"images: expected one array per mode ({len(modes)}), got {len(images)}")
    if ncols < 1:
        raise ValueError(f"ncols: must be >= 1, got {ncols}")
    nrows = max(1, len(modes))
    axes, own = panel_grid(ax, nrows, ncols, (1.3 * ncols, 1.55 * nrows))
    for r, ((_, row), imgs) in enumerate(zip(modes.iterrows(), images, strict=False)):
        for c in range(ncols):
            cell = axes[r, c]
            cell.set_xticks([])
            cell.set_yticks([])
            for spine in cell.spines.values():
                spine.set_visible(False)
            if c < len(imgs):
                cell.imshow(imgs[c], interpolation="nearest")
        title = axes[r, 0].set_title(
            f"{row['class']}: {_tag_text(row['tags'])}   accuracy {row['accuracy']:.0%} vs "
            f"{row['class_accuracy']:.0%} (n={row['size']})",
            fontsize=8,
            loc="left",
        )
        # a long title must not widen the first column; hspace leaves room for it
        title.set_in_layout(False)
    if own:
        fig = axes[0, 0].figure
        fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1 - 0.3 / fig.get_figheight(),
                            wspace=0.05, hspace=0.35)
    return axes


def plot_subset_accuracies(
    subsets: pd.DataFrame,
    *,
    class_accuracy: float | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Bars of a class's accuracy on every subset of a mode's tags (paper Fig. 3).

    Parameters
    ----------
    subsets : DataFrame
        ``tags`` (tuple or str), ``accuracy`` and optionally ``size``, as returned by
        ``primekit.search.subset_accuracies``; the empty set (if present) is the class accuracy.
    class_accuracy : float, optional
        Drawn as a dashed line.
    title : str, optional
    ax : Axes, optional

    Returns
    -------
    Axes
    """
    check_columns(subsets, "subsets", ["tags", "accuracy"])
    ax = axes_or_new(ax, (5, 0.45 * len(subsets) + 1))
    labels = [_tag_text(t) or "(all images of the class)" for t in subsets["tags"]]
    n_tags = subsets["n_tags"] if "n_tags" in subsets else pd.Series([len(t) for t in subsets["tags"]])
    colours = plt.cm.viridis(np.asarray(n_tags, float) / max(1, int(np.max(n_tags)) + 1))
    y = np.arange(len(subsets))
    ax.barh(y, subsets["accuracy"], color=colours)
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy")
    if "size" in subsets:
        for yi, (acc, size) in enumerate(zip(subsets["accuracy"], subsets["size"], strict=False)):
            ax.text(min(acc, 0.85) + 0.01, yi, f"{acc:.0%} (n={size})", va="center", fontsize=7)
    if class_accuracy is not None:
        ax.axvline(class_accuracy, color="k", ls="--", lw=1)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def plot_mode_accuracy(modes: pd.DataFrame, *, max_modes: int = 20, ax: Axes | None = None) -> Axes:
    """Accuracy of each failure mode next to its class accuracy (horizontal bars)."""
    check_columns(modes, "modes", ["class", "tags", "accuracy", "class_accuracy"])
    modes = modes.head(max_modes)
    ax = axes_or_new(ax, (6, 0.35 * len(modes) + 1))
    labels = [f"{c}: {_tag_text(t)}" for c, t in zip(modes["class"], modes["tags"], strict=False)]
    y = np.arange(len(modes))
    ax.barh(y + 0.2, modes["class_accuracy"], height=0.4, color="0.75", label="class")
    ax.barh(y - 0.2, modes["accuracy"], height=0.4, color="tab:red", label="mode")
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy")
    ax.legend(fontsize=8, loc="lower right")
    return ax


def plot_mode_subsets(
    subsets: pd.DataFrame, *, ncols: int = 4, ax: Axes | Sequence[Axes] | None = None
) -> np.ndarray:
    """One Fig. 3 panel per mode: accuracy on every subset of its tags.

    Parameters
    ----------
    subsets : DataFrame
        Output of ``primekit.search.mode_subsets`` (columns ``mode, class, tags, n_tags,
        accuracy``; the empty subset is the class accuracy).
    ncols : int
        Panels per row.
    ax : Axes or Axes array, optional
        Where to draw (see :mod:`primekit.plots`); a new figure by default.

    Returns
    -------
    array of Axes, one per mode (a grid's unused cells are removed)
    """
    check_columns(subsets, "subsets", ["mode", "class", "tags", "n_tags", "accuracy"])
    if ncols < 1:
        raise ValueError(f"ncols: must be >= 1, got {ncols}")
    groups = list(subsets.groupby("mode", sort=True))
    n = max(len(groups), 1)
    cols = min(ncols, n)
    rows = -(-n // cols)
    axes, own = panel_grid(ax, rows, cols, (4 * cols, 3.2 * rows))
    cells = axes.ravel()
    for cell, (_, table) in zip(cells, groups, strict=False):
        empty = table[table["n_tags"] == 0]
        class_acc = float(empty["accuracy"].iloc[0]) if len(empty) else None
        plot_subset_accuracies(
            table[table["n_tags"] > 0], class_accuracy=class_acc, title=str(table["class"].iloc[0]),
            ax=cell,
        )
    if not groups:  # nothing to show (e.g. no multi-tag mode passed the q-value filter): say so
        cells[0].text(0.5, 0.5, "no multi-tag failure modes", ha="center", va="center",
                      transform=cells[0].transAxes)
        cells[0].set_axis_off()
        return cells[:1]
    for cell in cells[len(groups):]:
        cell.remove()
    if own:
        cells[0].figure.tight_layout()
    return cells[: len(groups)]


def plot_lattice(lattice: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Size and accuracy drop of every frequent tag combination; failure modes highlighted.

    ``lattice`` is the output of ``primekit.tag_lattice``.
    """
    check_columns(lattice, "lattice", ["size", "drop", "n_tags", "is_failure_mode"])
    ax = axes_or_new(ax, (6, 4))
    rest = lattice[~lattice["is_failure_mode"]]
    modes = lattice[lattice["is_failure_mode"]]
    ax.scatter(rest["size"], rest["drop"], s=6, c="0.7", alpha=0.5, label="frequent combination")
    sc = ax.scatter(modes["size"], modes["drop"], s=18, c=modes["n_tags"], cmap="viridis",
                    label="failure mode", edgecolor="k", linewidth=0.3)
    if len(modes):
        ax.figure.colorbar(sc, ax=ax, label="tags in the mode")
    ax.set_xscale("log")
    ax.set_xlabel("images in the group")
    ax.set_ylabel("class accuracy − group accuracy")
    ax.axhline(0, color="0.3", linewidth=0.5)
    ax.legend(fontsize=8, loc="lower right")
    return ax
