"""What the plot modules share: a default Axes, panel grids and saving."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..io import atomic_path

__all__ = ["axes_or_new", "panel_grid", "save_figure"]


def axes_or_new(ax: Axes | None, figsize: tuple[float, float] = (6, 4)) -> Axes:
    """``ax``, or a new Axes of ``figsize``."""
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    elif not isinstance(ax, Axes):
        raise TypeError(f"ax: expected a matplotlib Axes, got {type(ax).__name__}")
    return ax


def panel_grid(
    ax: Axes | Sequence[Axes] | np.ndarray | None,
    nrows: int,
    ncols: int,
    figsize: tuple[float, float],
    **subplots_kw: Any,
) -> tuple[np.ndarray, bool]:
    """An (nrows, ncols) array of Axes for a multi-panel plot, and whether it is a new figure.

    ``ax`` None: a new figure of ``figsize`` (the plot then lays the figure out itself). One
    Axes: its place in its figure is divided into the panels (the Axes is replaced). A sequence
    or array of Axes: used as they are, in order (at least ``nrows * ncols`` of them).
    """
    if ax is None:
        fig = plt.figure(figsize=figsize)
        return fig.subplots(nrows, ncols, squeeze=False, **subplots_kw), True
    if isinstance(ax, Axes):
        spec = ax.get_subplotspec()
        if spec is None:
            raise ValueError("ax: an Axes placed by a grid (plt.subplots) is needed to divide it")
        ax.remove()
        grid = spec.subgridspec(nrows, ncols)
        return grid.subplots(squeeze=False, **subplots_kw), False
    axes = np.asarray(ax, dtype=object).ravel()
    if len(axes) < nrows * ncols or not all(isinstance(a, Axes) for a in axes):
        raise ValueError(f"ax: expected an Axes or at least {nrows * ncols} Axes, got {len(axes)}")
    return axes[: nrows * ncols].reshape(nrows, ncols), False


def _figure_of(drawn: Any) -> Figure:
    if isinstance(drawn, Figure):
        return drawn
    if isinstance(drawn, Axes):
        return drawn.figure
    figure = getattr(drawn, "figure_", None)  # a scikit-learn style Display
    if isinstance(figure, Figure):
        return figure
    if isinstance(drawn, (np.ndarray, list, tuple)):
        axes = np.asarray(drawn, dtype=object).ravel()
        if len(axes) and isinstance(axes[0], Axes):
            return axes[0].figure
    raise TypeError(
        "fig_or_display: expected a Figure, an Axes, an array of Axes or a Display with "
        f"figure_, got {type(drawn).__name__}"
    )


def save_figure(
    fig_or_display: Any,
    name: str,
    fig_dir: str | os.PathLike,
    *,
    dpi: int = 120,
) -> Path:
    """Save a figure the way every notebook does: ``{fig_dir}/{name}.png``, cropped to its content.

    Parameters
    ----------
    fig_or_display : Figure, Axes, array of Axes (what the plot functions return) or a
        scikit-learn style Display (anything with ``figure_``)
    name : str
        File name, by convention starting with the notebook's number (``"02_mode_grid"``);
        ``.png`` is added when it has no suffix.
    fig_dir : folder, created when missing
    dpi : int, default 120

    Returns
    -------
    Path of the file written. The file is written to a temporary name and renamed, so a figure
    on disk is never half written.
    """
    fig = _figure_of(fig_or_display)
    if not isinstance(name, str) or not name or Path(name).name != name:
        raise ValueError(f"name: expected a file name without folders, got {name!r}")
    if isinstance(dpi, bool) or not isinstance(dpi, int) or dpi < 1:
        raise ValueError(f"dpi: expected a positive integer, got {dpi!r}")
    path = Path(fig_dir) / (name if Path(name).suffix else f"{name}.png")
    with atomic_path(path) as tmp:  # creates the folder; a figure on disk is never half written
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=path.suffix[1:])
    return path
