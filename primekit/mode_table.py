"""The failure-mode table: its columns and its files (CSV with ``" + "``-joined tags, or Parquet).

One row per mode: ``class, tags, n_tags, size, accuracy, class_accuracy, drop, necessity_margin,
description`` (DESIGN.md, "Failure modes"). In memory ``tags`` is a sorted tuple of tag names; in a
CSV file it is joined with ``" + "`` (the paper's style), in Parquet it is a list.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._validation import check_columns
from .io import read_table, write_table

__all__ = [
    "MODE_COLUMNS",
    "LATTICE_COLUMNS",
    "describe",
    "modes_to_csv_frame",
    "modes_from_csv_frame",
    "write_modes",
    "read_modes",
]

MODE_COLUMNS = (
    "class",
    "tags",
    "n_tags",
    "size",
    "accuracy",
    "class_accuracy",
    "drop",
    "necessity_margin",
    "description",
)
LATTICE_COLUMNS = MODE_COLUMNS[:-1] + ("is_failure_mode",)


def describe(cls: Any, tags: Sequence[str]) -> str:
    """Bag-of-words description of a mode (paper 4.3): ``"a photo of {class} {tag} {tag}..."``."""
    return " ".join(["a photo of", str(cls), *tags])


def modes_to_csv_frame(modes: pd.DataFrame) -> pd.DataFrame:
    """Copy of a mode table with ``tags`` joined by ``" + "`` (the paper's style), for CSV."""
    out = modes.copy()
    out["tags"] = [" + ".join(t) for t in out["tags"]]
    return out


def modes_from_csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Inverse of :func:`modes_to_csv_frame`: split ``tags`` on ``" + "`` back into tuples."""
    check_columns(frame, "modes", MODE_COLUMNS)
    out = frame.copy()
    out["tags"] = [
        tuple(str(x) for x in t)
        if isinstance(t, (tuple, list, np.ndarray))
        else tuple(str(t).split(" + "))
        for t in out["tags"]
    ]
    return out


def write_modes(modes: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write a mode table atomically: CSV with tags joined by ``" + "``, or Parquet with lists."""
    if str(path).lower().endswith(".csv"):
        table = modes_to_csv_frame(modes)
    else:
        table = modes.assign(tags=[list(t) for t in modes["tags"]])
    write_table(table, path, argument="out")


def read_modes(path: str | os.PathLike) -> pd.DataFrame:
    """Read a mode table written by :func:`write_modes` (tags back as sorted tuples)."""
    return modes_from_csv_frame(read_table(path, argument="modes"))
