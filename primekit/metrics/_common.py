"""What the metric modules share beyond :mod:`primekit._validation`: row selections, labels lined
up with embedding ids, mode tags read from a table (not public)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["row_mask", "labels_for", "tag_tuple"]


def row_mask(selector: Any, n: int, argument: str) -> np.ndarray:
    """A boolean mask of ``n`` rows from a mask or an array of row positions."""
    arr = np.asarray(selector)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise ValueError(f"{argument}: boolean mask must have shape ({n},), got {arr.shape}")
        return arr
    if arr.size == 0:
        return np.zeros(n, bool)
    if not np.issubdtype(arr.dtype, np.integer) or arr.ndim != 1:
        raise TypeError(f"{argument}: expected a boolean mask or an array of row positions")
    if arr.min() < -n or arr.max() >= n:
        raise ValueError(f"{argument}: row position out of range for {n} images")
    mask = np.zeros(n, bool)
    mask[arr] = True
    return mask


def labels_for(labels: Any, index: pd.Index) -> np.ndarray:
    """Labels of the ids of ``index`` (a Series may hold more ids), as an object array."""
    if isinstance(labels, pd.Series):
        missing = index.difference(labels.index)
        if len(missing):
            raise ValueError(f"labels: no label for {len(missing)} id(s), e.g. {missing[0]!r}")
        return labels.reindex(index).to_numpy(dtype=object)
    arr = np.asarray(labels, dtype=object)
    if arr.ndim != 1 or len(arr) != len(index):
        raise ValueError(f"labels: expected {len(index)} labels aligned with ids, got {arr.shape}")
    return arr


def tag_tuple(value: Any, argument: str) -> tuple[str, ...]:
    """A mode's tags as a sorted tuple, from a tuple/list or the CSV style ``"a + b"``."""
    if isinstance(value, str):
        return tuple(sorted(t.strip() for t in value.split(" + ")))
    if isinstance(value, Iterable):
        return tuple(sorted(str(t) for t in value))
    raise TypeError(f"{argument}: tags must be a tuple of tag names, got {value!r}")
