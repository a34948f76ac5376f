"""Plots of failure modes (paper Fig. 1/3 style). Functions take ``ax=``/``fig=`` and return it;
they never show or save (the caller, usually a notebook, saves with its own file name)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ._base import _figure

__all__ = [
    "plot_image_grid",
    "plot_mode_grid",
    "plot_subset_accuracies",
    "plot_mode_accuracy",
    "plot_mode_subsets",
    "plot_lattice",
]


def plot_image_grid(
    images: np.ndarray | Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    *,
    ncols: int = 8,
    fig=None,
    fontsize: float = 6,
):
    """A grid of images with optional titles (e.g. the toy world's images and their tags).

    Parameters
    ----------
    images : array (n, H, W, 3) or sequence of arrays
    titles : sequence of str, optional
        One title per image (wrapped to the image width).
    ncols : int
        Images per row.
    fig : matplotlib Figure, optional
        Figure to draw into (cleared); a new one by default.

    Returns
    -------
    Figure
    """
    import textwrap

    if ncols < 1:
        raise ValueError(f"ncols: must be >= 1, got {ncols}")
    n = len(images)
    if titles is not None and len(titles) != n:
        raise ValueError(f"titles: expected {n} titles, got {len(titles)}")
    nrows = max(1, -(-n // ncols))
    fig = _figure(fig, (1.4 * ncols, 1.75 * nrows))
    fig.clear()
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i], interpolation="nearest")
            if titles is not None:
                ax.set_title("\n".join(textwrap.wrap(titles[i], 24)[:3]), fontsize=fontsize)
    fig.tight_layout()
    return fig


def plot_mode_grid(
    modes: pd.DataFrame,
    images: Sequence[np.ndarray],
    *,
    ncols: int = 6,
    fig=None,
):
    """Image grids of failure modes: one row per mode, titled with its tags and accuracies (Fig. 1).

    Parameters
    ----------
    modes : DataFrame
        Failure modes (``class, tags, size, accuracy, class_accuracy``), one row per grid row.
    images : sequence of arrays (k, H, W, 3)
        Example images of each mode, in the order of ``modes`` (up to ``ncols`` are shown).
    ncols : int
        Images per row.
    fig : Figure, optional

    Returns
    -------
    Figure
    """
    if len(images) != len(modes):
        raise ValueError(f"images: expected one array per mode ({len(modes)}), got {len(images)}")
    if ncols < 1:
        raise ValueError(f"ncols: must be >= 1, got {ncols}")
    nrows = max(1, len(modes))
    fig = _figure(fig, (1.3 * ncols, 1.55 * nrows))
    fig.clear()
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for r, ((_, row), imgs) in enumerate(zip(modes.iterrows(), images, strict=False)):
        tags = row["tags"] if isinstance(row["tags"], str) else " + ".join(row["tags"])
        for c in range(ncols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(imgs):
                ax.imshow(imgs[c], interpolation="nearest")
        title = axes[r, 0].set_title(
            f"{row['class']}: {tags}   accuracy {row['accuracy']:.0%} vs {row['class_accuracy']:.0%} (n={row['size']})",
            fontsize=8,
            loc="left",
        )
        # a long title must not widen the first column; hspace leaves room for it
        title.set_in_layout(False)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1 - 0.3 / fig.get_figheight(),
                        wspace=0.05, hspace=0.35)
    return fig


def plot_subset_accuracies(
    subsets: pd.DataFrame,
    *,
    class_accuracy: float | None = None,
    title: str | None = None,
    ax=None,
):
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
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 0.45 * len(subsets) + 1))
    for col in ("tags", "accuracy"):
        if col not in subsets.columns:
            raise ValueError(f"subsets: missing column {col!r}")
    labels = [
        (t if isinstance(t, str) else " + ".join(t)) or "(all images of the class)" for t in subsets["tags"]
    ]
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


def plot_mode_accuracy(modes: pd.DataFrame, *, ax=None, max_modes: int = 20):
    """Accuracy of each failure mode next to its class accuracy (horizontal bars)."""
    import matplotlib.pyplot as plt

    modes = modes.head(max_modes)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 0.35 * len(modes) + 1))
    labels = [
        f"{c}: {t if isinstance(t, str) else ' + '.join(t)}" for c, t in zip(modes["class"], modes["tags"], strict=False)
    ]
    y = np.arange(len(modes))
    ax.barh(y + 0.2, modes["class_accuracy"], height=0.4, color="0.75", label="class")
    ax.barh(y - 0.2, modes["accuracy"], height=0.4, color="tab:red", label="mode")
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy")
    ax.legend(fontsize=8, loc="lower right")
    return ax


def plot_mode_subsets(subsets: pd.DataFrame, *, fig=None, ncols: int = 4):
    """One Fig. 3 panel per mode: accuracy on every subset of its tags.

    Parameters
    ----------
    subsets : DataFrame
        Output of ``primekit.search.mode_subsets`` (columns ``mode, class, tags, accuracy``; the
        empty subset is the class accuracy).
    fig : Figure, optional
    ncols : int
        Panels per row.

    Returns
    -------
    Figure
    """
    import matplotlib.pyplot as plt

    groups = list(subsets.groupby("mode", sort=True))
    n = max(len(groups), 1)
    cols = min(ncols, n)
    rows = -(-n // cols)
    if fig is None:
        fig = plt.figure(figsize=(4 * cols, 3.2 * rows))
    else:
        fig.clear()
    for i, (_, table) in enumerate(groups):
        ax = fig.add_subplot(rows, cols, i + 1)
        empty = table[table["n_tags"] == 0]
        class_acc = float(empty["accuracy"].iloc[0]) if len(empty) else None
        plot_subset_accuracies(
            table[table["n_tags"] > 0], class_accuracy=class_acc, title=str(table["class"].iloc[0]), ax=ax
        )
    fig.tight_layout()
    return fig


def plot_lattice(lattice: pd.DataFrame, *, ax=None):
    """Size and accuracy drop of every frequent tag combination; failure modes highlighted.

    ``lattice`` is the output of ``primekit.tag_lattice``.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
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
