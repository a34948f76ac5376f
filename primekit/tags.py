"""The tag table: long ``id, tag, score`` rows and the boolean sample x tag matrix derived from it.

Every tagger writes the long table (DESIGN.md "Data contracts"): one row per (sample, tag) with a
score in [0, 1] (1.0 for hard tags). The search works on a boolean matrix, index = sample id, one
column per tag, obtained by thresholding the scores.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .io import read_metadata, read_table, write_table

__all__ = [
    "TAG_COLUMNS",
    "validate_tag_table",
    "tags_to_matrix",
    "matrix_to_tags",
    "tag_frequencies",
    "read_tags",
    "write_tags",
]

TAG_COLUMNS = ("id", "tag", "score")


def validate_tag_table(tags: pd.DataFrame, *, argument: str = "tags") -> pd.DataFrame:
    """Check a long tag table and return it normalised (str ids/tags, float scores).

    A missing ``score`` column means hard tags (score 1.0). Raises ``ValueError``/``TypeError``
    naming ``argument`` for missing columns, NaN values, scores outside [0, 1] and repeated
    (id, tag) pairs.
    """
    if not isinstance(tags, pd.DataFrame):
        raise TypeError(f"{argument}: expected a pandas DataFrame, got {type(tags).__name__}")
    missing = [c for c in ("id", "tag") if c not in tags.columns]
    if missing:
        raise ValueError(
            f"{argument}: missing column(s) {missing}; a tag table has columns id, tag[, score]"
        )
    out = pd.DataFrame(
        {
            "id": tags["id"],
            "tag": tags["tag"],
            "score": tags["score"] if "score" in tags.columns else 1.0,
        }
    )
    for col in ("id", "tag"):
        if out[col].isna().any():
            raise ValueError(f"{argument}: column {col!r} has missing values")
        out[col] = out[col].astype(str)
    try:
        out["score"] = pd.to_numeric(out["score"], errors="raise").astype(float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{argument}: column 'score' is not numeric ({exc})") from None
    score = out["score"].to_numpy()
    if np.isnan(score).any():
        raise ValueError(f"{argument}: column 'score' has missing (NaN) values")
    if len(score) and (score.min() < 0 or score.max() > 1):
        raise ValueError(
            f"{argument}: scores must lie in [0, 1], found range "
            f"[{score.min():.4g}, {score.max():.4g}]"
        )
    dup = out.duplicated(["id", "tag"])
    if dup.any():
        first = out.loc[dup, ["id", "tag"]].iloc[0]
        raise ValueError(
            f"{argument}: {int(dup.sum())} repeated (id, tag) pair(s), e.g. "
            f"({first['id']!r}, {first['tag']!r})"
        )
    return out.reset_index(drop=True)


def tags_to_matrix(
    tags: pd.DataFrame,
    *,
    threshold: float | Mapping[str, float] = 0.5,
    ids: pd.Index | list | None = None,
) -> pd.DataFrame:
    """Turn a long tag table into a boolean sample x tag matrix.

    Parameters
    ----------
    tags : DataFrame
        Long table with columns ``id, tag[, score]``.
    threshold : float or mapping tag -> float
        A tag is present when its score is ``>= threshold``. A mapping sets one threshold per tag;
        tags it does not name use 0.5.
    ids : sequence, optional
        Row order of the result. Samples without any tag get an all-False row; ids in ``tags``
        that are not in ``ids`` raise a ``ValueError``. Default: the sorted ids of ``tags``.

    Returns
    -------
    DataFrame of bool, shape (n_samples, n_tags)
        Index named ``id``, columns sorted tag names (tags that never pass the threshold are kept
        as all-False columns, so the vocabulary is stable across thresholds).
    """
    table = validate_tag_table(tags)
    if isinstance(threshold, Mapping):
        thr = table["tag"].map(lambda t: float(threshold.get(t, 0.5))).to_numpy(dtype=float)
    else:
        if not isinstance(threshold, (int, float, np.floating)) or isinstance(threshold, bool):
            raise TypeError(f"threshold: expected a number or a mapping, got {threshold!r}")
        if not 0 <= float(threshold) <= 1:
            raise ValueError(f"threshold: must lie in [0, 1], got {threshold}")
        thr = float(threshold)
    if ids is None:
        index = pd.Index(sorted(table["id"].unique()), name="id")
    else:
        index = pd.Index([str(i) for i in ids], name="id")
        if index.has_duplicates:
            raise ValueError("ids: contains duplicate sample ids")
    vocab = pd.Index(sorted(table["tag"].unique()))
    rows = index.get_indexer(table["id"])
    if (rows < 0).any():
        unknown = table.loc[rows < 0, "id"].iloc[0]
        raise ValueError(f"tags: id {unknown!r} is not among the given ids")
    cols = vocab.get_indexer(table["tag"])
    matrix = np.zeros((len(index), len(vocab)), dtype=bool)
    keep = table["score"].to_numpy() >= thr
    matrix[rows[keep], cols[keep]] = True
    return pd.DataFrame(matrix, index=index, columns=vocab)


def matrix_to_tags(matrix: pd.DataFrame, *, scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """Turn a boolean sample x tag matrix (or a score matrix) into the long ``id, tag, score`` table.

    With ``scores`` (same shape and labels as ``matrix``) every True cell keeps its score;
    otherwise scores are 1.0. Rows are sorted by id, then tag.
    """
    if not isinstance(matrix, pd.DataFrame):
        raise TypeError(f"matrix: expected a pandas DataFrame, got {type(matrix).__name__}")
    values = matrix.to_numpy()
    if values.dtype != bool:
        if not np.isin(values, [0, 1]).all():
            raise ValueError("matrix: values must be boolean (or 0/1)")
        values = values.astype(bool)
    rows, cols = np.nonzero(values)
    if scores is not None:
        if scores.shape != matrix.shape:
            raise ValueError(f"scores: shape {scores.shape} differs from matrix {matrix.shape}")
        score = scores.to_numpy(dtype=float)[rows, cols]
    else:
        score = np.ones(len(rows))
    out = pd.DataFrame(
        {
            "id": matrix.index.astype(str).to_numpy()[rows],
            "tag": matrix.columns.astype(str).to_numpy()[cols],
            "score": score,
        }
    )
    return out.sort_values(["id", "tag"], kind="stable").reset_index(drop=True)


def tag_frequencies(matrix: pd.DataFrame, labels: pd.Series) -> pd.DataFrame:
    """Per-class tag counts and frequencies.

    Returns a long DataFrame with columns ``class, tag, count, frequency`` (frequency = share of
    the class's samples carrying the tag), sorted by class then descending count. Tags that never
    occur in a class are omitted.
    """
    if not isinstance(matrix, pd.DataFrame):
        raise TypeError(f"matrix: expected a pandas DataFrame, got {type(matrix).__name__}")
    labels = pd.Series(labels)
    if not labels.index.equals(matrix.index):
        labels = labels.reindex(matrix.index)
        if labels.isna().any():
            raise ValueError("labels: some ids of matrix have no label")
    counts = matrix.astype(np.int64).groupby(labels.to_numpy()).sum()
    sizes = labels.value_counts()
    long = counts.stack().rename("count").reset_index()
    long.columns = ["class", "tag", "count"]
    long = long[long["count"] > 0].copy()
    long["frequency"] = long["count"] / long["class"].map(sizes).to_numpy()
    long = long.sort_values(["class", "count", "tag"], ascending=[True, False, True])
    return long.reset_index(drop=True)


def read_tags(path: str | os.PathLike, *, argument: str = "tags") -> pd.DataFrame:
    """Read and validate a long tag table; its metadata is in ``df.attrs['metadata']``."""
    df = validate_tag_table(read_table(path, argument=argument), argument=argument)
    df.attrs["metadata"] = read_metadata(path)
    return df


def write_tags(
    tags: pd.DataFrame, path: str | os.PathLike, *, metadata: Mapping[str, Any] | None = None
) -> None:
    """Validate and write a long tag table atomically, with tagger metadata (Parquet only)."""
    write_table(validate_tag_table(tags), path, metadata=metadata)
