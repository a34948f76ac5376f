"""Input checks and the tag-matrix lookup shared by the metric modules (not public)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd


def _check_int(value: Any, argument: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{argument}: expected an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{argument}: must be >= {minimum}, got {value}")
    return int(value)


def _check_real(value: Any, argument: str, low: float = -math.inf, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{argument}: expected a number, got {value!r}")
    value = float(value)
    if not low <= value <= high or math.isnan(value):
        raise ValueError(f"{argument}: must lie in [{low}, {high}], got {value}")
    return value


def _embeddings(values: Any, argument: str, *, ndim: int = 2) -> np.ndarray:
    if isinstance(values, (pd.DataFrame, pd.Series)):
        values = values.to_numpy()
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{argument}: expected a numeric array, got {type(values).__name__}"
        ) from err
    if arr.ndim != ndim:
        shape = "(n, d)" if ndim == 2 else "(d,)"
        raise ValueError(f"{argument}: expected an array of shape {shape}, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{argument}: contains NaN or infinite values")
    return arr


def _l2_normalize(arr: np.ndarray, argument: str) -> np.ndarray:
    norms = np.linalg.norm(arr, axis=-1, keepdims=True)
    if (norms == 0).any():
        raise ValueError(f"{argument}: contains a zero vector, which cannot be L2-normalized")
    return arr / norms


def _row_mask(selector: Any, n: int, argument: str) -> np.ndarray:
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


def _ids(ids: Any, n: int) -> pd.Index:
    index = ids if isinstance(ids, pd.Index) else pd.Index(list(ids))
    if len(index) != n:
        raise ValueError(
            f"ids: expected {n} ids (one per row of image_embeddings), got {len(index)}"
        )
    if index.has_duplicates:
        raise ValueError(f"ids: duplicate sample id {index[index.duplicated()][0]!r}")
    return index


def _labels_for(labels: Any, index: pd.Index) -> np.ndarray:
    if isinstance(labels, pd.Series):
        missing = index.difference(labels.index)
        if len(missing):
            raise ValueError(f"labels: no label for {len(missing)} id(s), e.g. {missing[0]!r}")
        return labels.reindex(index).to_numpy(dtype=object)
    arr = np.asarray(labels, dtype=object)
    if arr.ndim != 1 or len(arr) != len(index):
        raise ValueError(f"labels: expected {len(index)} labels aligned with ids, got {arr.shape}")
    return arr


def _mode_table(modes: Any, argument: str, required: Sequence[str]) -> pd.DataFrame:
    if not isinstance(modes, pd.DataFrame):
        raise TypeError(f"{argument}: expected a DataFrame, got {type(modes).__name__}")
    missing = [c for c in required if c not in modes.columns]
    if missing:
        raise ValueError(f"{argument}: missing column(s) {missing}")
    return modes


def _tag_tuple(value: Any, argument: str) -> tuple[str, ...]:
    if isinstance(value, str):
        # CSV style "a + b"
        return tuple(sorted(t.strip() for t in value.split(" + ")))
    if isinstance(value, Iterable):
        return tuple(sorted(str(t) for t in value))
    raise TypeError(f"{argument}: tags must be a tuple of tag names, got {value!r}")


def _as_bool(values: Any, argument: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype == bool:
        return arr
    if arr.dtype == object:
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{argument}: values must be boolean or 0/1") from err
    if not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"{argument}: values must be boolean or 0/1, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating) and np.isnan(arr).any():
        raise ValueError(f"{argument}: contains missing (NaN) values")
    if not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{argument}: values must be boolean or 0/1")
    return arr.astype(bool)


def _aligned_series(values: Any, index: pd.Index, argument: str) -> np.ndarray:
    if isinstance(values, pd.Series):
        if values.index.has_duplicates:
            raise ValueError(
                f"{argument}: duplicate sample id {values.index[values.index.duplicated()][0]!r}"
            )
        missing = index.difference(values.index)
        if len(missing):
            raise ValueError(
                f"{argument}: no value for {len(missing)} id(s) of tags, e.g. {missing[0]!r}"
            )
        return values.reindex(index).to_numpy(dtype=object)
    if isinstance(values, (np.ndarray, list, tuple)):
        arr = np.asarray(values, dtype=object)
        if arr.shape != (len(index),):
            raise ValueError(
                f"{argument}: expected {len(index)} values (one per row of tags), got shape {arr.shape}"
            )
        return arr
    raise TypeError(f"{argument}: expected a pandas Series, got {type(values).__name__}")


class _Tagged:
    """A validated tag matrix with labels and (optionally) correctness, for group lookups."""

    def __init__(self, tags: Any, labels: Any, correct: Any | None, prefix: str = "") -> None:
        if not isinstance(tags, pd.DataFrame):
            raise TypeError(
                f"{prefix}tags: expected a boolean DataFrame (index = sample id), got {type(tags).__name__}"
            )
        if tags.index.has_duplicates:
            raise ValueError(
                f"{prefix}tags: duplicate sample id {tags.index[tags.index.duplicated()][0]!r}"
            )
        self.index: pd.Index = tags.index
        self.matrix = (
            _as_bool(tags.to_numpy(), f"{prefix}tags")
            if tags.shape[1]
            else np.zeros(tags.shape, bool)
        )
        self.column = {str(name): i for i, name in enumerate(tags.columns)}
        self.labels = _aligned_series(labels, tags.index, f"{prefix}labels")
        if pd.isna(self.labels).any():
            raise ValueError(f"{prefix}labels: missing (NaN) labels")
        self.correct = None
        if correct is not None:
            self.correct = _as_bool(
                _aligned_series(correct, tags.index, f"{prefix}correct"), f"{prefix}correct"
            )

    def class_mask(self, cls: Any) -> np.ndarray:
        return self.labels == cls

    def group_mask(self, cls: Any, tags: Sequence[str], *, any_of: int | None = None) -> np.ndarray:
        """Samples of ``cls`` with every tag (or, with ``any_of=j``, at least j of the tags)."""
        mask = self.class_mask(cls)
        if any_of is None:
            for tag in tags:
                col = self.column.get(tag)
                if col is None:
                    return np.zeros_like(mask)
                mask = mask & self.matrix[:, col]
            return mask
        count = np.zeros(len(mask), np.int64)
        for tag in tags:
            col = self.column.get(tag)
            if col is not None:
                count += self.matrix[:, col]
        return mask & (count >= any_of)

    def accuracy(self, mask: np.ndarray) -> tuple[int, float]:
        n = int(mask.sum())
        return n, (float(self.correct[mask].mean()) if n else float("nan"))


def _split_tables(split: Any, argument: str) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """The tag matrix, labels and correctness of a split (anything with those attributes)."""
    if isinstance(split, (pd.DataFrame, pd.Series)) or not all(
        hasattr(split, name) for name in ("tags", "labels", "correct")
    ):
        raise TypeError(
            f"{argument}: expected a split with .tags, .labels and .correct (e.g. "
            f"load_study(...).val), got {type(split).__name__}; the six-table form "
            "(tags, labels, correct, tags_test, ...) is now (data, unseen)"
        )
    return split.tags, split.labels, split.correct
