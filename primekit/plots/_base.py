"""Helpers shared by the plot modules: a default Axes/Figure and the column check."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd


def _axes(ax, figsize: tuple[float, float] = (6, 4)):
    """``ax``, or a new Axes of ``figsize``."""
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=figsize)
    return ax


def _figure(fig, figsize: tuple[float, float]):
    """``fig``, or a new Figure of ``figsize``."""
    if fig is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=figsize)
    return fig


def _require(table: pd.DataFrame, argument: str, columns: Sequence[str]) -> None:
    """Raise a clear error when ``table`` is not a DataFrame with ``columns``."""
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"{argument}: expected a DataFrame, got {type(table).__name__}")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{argument}: missing column(s) {missing}")
