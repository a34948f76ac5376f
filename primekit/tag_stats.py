"""Statistics of a tagger's output: what the search gets to work with (notebook 01).

- :func:`tags_per_image`: how many tags an image carries, per class.
- :func:`tag_count_distribution`: the share of images with 0, 1, 2, ... tags, for several taggers.
- :func:`top_tags`: the most frequent tags of every class, with their lift over the whole data.
- :func:`tagger_summary`: micro and macro precision/recall of a tag matrix against ground truth
  (per-tag numbers: :func:`primekit.toyworld.tagger_quality`).
- :func:`threshold_sweep`: the effect of the score threshold on tags per image, on precision and
  recall against ground truth, on the tags the search can use, and on the failure modes it finds.

Tag matrices are boolean DataFrames (index = sample id, one column per tag), as
:func:`primekit.tags.tags_to_matrix` returns; score matrices have the same shape with scores in
[0, 1] (a tag is present when its score is ``>= threshold``, as in ``tags_to_matrix``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from .search import find_failure_modes
from .tags import tag_frequencies

__all__ = [
    "tags_per_image",
    "tag_count_distribution",
    "top_tags",
    "tagger_summary",
    "threshold_sweep",
]

SUMMARY_COLUMNS = ("precision", "recall", "f1", "macro_precision", "macro_recall", "macro_f1")


def _bool_matrix(matrix: Any, argument: str) -> pd.DataFrame:
    if not isinstance(matrix, pd.DataFrame):
        raise TypeError(
            f"{argument}: expected a boolean DataFrame (index = sample id), got "
            f"{type(matrix).__name__}"
        )
    if matrix.index.has_duplicates:
        raise ValueError(f"{argument}: duplicate sample id {matrix.index[matrix.index.duplicated()][0]!r}")
    values = matrix.to_numpy()
    if values.dtype != bool:
        if not (np.issubdtype(values.dtype, np.number) and np.isin(values, (0, 1)).all()):
            raise ValueError(f"{argument}: values must be boolean or 0/1")
        matrix = matrix.astype(bool)
    return matrix


def _score_matrix(scores: Any, argument: str = "scores") -> pd.DataFrame:
    if not isinstance(scores, pd.DataFrame):
        raise TypeError(
            f"{argument}: expected a sample x tag DataFrame of scores, got {type(scores).__name__}"
        )
    values = scores.to_numpy(dtype=float)
    if np.isnan(values).any():
        raise ValueError(f"{argument}: contains missing (NaN) scores")
    if values.size and (values.min() < 0 or values.max() > 1):
        raise ValueError(f"{argument}: scores must lie in [0, 1]")
    return scores


def _labels(labels: Any, index: pd.Index) -> pd.Series:
    if not isinstance(labels, pd.Series):
        labels = pd.Series(np.asarray(labels, dtype=object))
        if len(labels) != len(index):
            raise ValueError(f"labels: expected {len(index)} labels, got {len(labels)}")
        labels.index = index
    elif not labels.index.equals(index):
        missing = index.difference(labels.index)
        if len(missing):
            raise ValueError(f"labels: no label for {len(missing)} id(s), e.g. {missing[0]!r}")
        labels = labels.reindex(index)
    if labels.isna().any():
        raise ValueError("labels: missing (NaN) labels")
    return labels


def tags_per_image(matrix: pd.DataFrame, labels: pd.Series | None = None) -> pd.DataFrame:
    """How many tags each image carries, summarised per class and over all images.

    Parameters
    ----------
    matrix : boolean DataFrame, shape (n_samples, n_tags)
    labels : Series indexed by sample id (or aligned array), optional
        Without it, only the ``"all"`` row is returned.

    Returns
    -------
    DataFrame indexed by class (then ``"all"``) with columns ``n_images``, ``mean``, ``std``
    (ddof=0), ``median``, ``max`` (tags per image) and ``share_untagged`` (share of images with
    no tag at all, which no failure mode can contain).
    """
    matrix = _bool_matrix(matrix, "matrix")
    counts = pd.Series(matrix.to_numpy().sum(axis=1), index=matrix.index)
    groups: dict[Any, pd.Series] = {}
    if labels is not None:
        labels = _labels(labels, matrix.index)
        for cls in sorted(labels.unique(), key=str):
            groups[cls] = counts[labels.to_numpy() == cls]
    groups["all"] = counts
    rows = {}
    for key, values in groups.items():
        arr = values.to_numpy()
        rows[key] = {
            "n_images": int(len(arr)),
            "mean": float(arr.mean()) if len(arr) else float("nan"),
            "std": float(arr.std()) if len(arr) else float("nan"),
            "median": float(np.median(arr)) if len(arr) else float("nan"),
            "max": int(arr.max()) if len(arr) else 0,
            "share_untagged": float((arr == 0).mean()) if len(arr) else float("nan"),
        }
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "class"
    return out


def tag_count_distribution(
    matrices: pd.DataFrame | Mapping[str, pd.DataFrame], *, max_count: int | None = None
) -> pd.DataFrame:
    """Share of images carrying 0, 1, 2, ... tags, for one or several taggers.

    Parameters
    ----------
    matrices : boolean DataFrame, or mapping name -> boolean DataFrame (e.g. ``{"learned": ...,
        "ground truth": ...}``)
    max_count : int, optional
        Counts above it are pooled into the ``max_count`` row ("max_count or more").

    Returns
    -------
    DataFrame indexed by ``n_tags`` = 0, 1, ..., one column per tagger (``"tags"`` for a single
    matrix), values = share of that tagger's images; each column sums to 1.
    """
    tables = {"tags": matrices} if isinstance(matrices, pd.DataFrame) else dict(matrices)
    if not tables:
        raise ValueError("matrices: expected at least one tag matrix")
    if max_count is not None and (isinstance(max_count, bool) or not isinstance(max_count, int) or max_count < 0):
        raise ValueError(f"max_count: expected a non-negative integer, got {max_count!r}")
    counts = {}
    for name, matrix in tables.items():
        arr = _bool_matrix(matrix, f"matrices[{name!r}]").to_numpy().sum(axis=1)
        if max_count is not None:
            arr = np.minimum(arr, max_count)
        counts[name] = arr
    top = max((int(a.max()) if len(a) else 0) for a in counts.values())
    index = pd.RangeIndex(top + 1, name="n_tags")
    out = pd.DataFrame(
        {
            name: np.bincount(arr, minlength=top + 1) / max(len(arr), 1)
            for name, arr in counts.items()
        },
        index=index,
    )
    return out


def top_tags(matrix: pd.DataFrame, labels: pd.Series, *, n: int = 5) -> pd.DataFrame:
    """The ``n`` most frequent tags of every class.

    Parameters
    ----------
    matrix : boolean DataFrame, shape (n_samples, n_tags)
    labels : Series indexed by sample id
    n : int, default 5

    Returns
    -------
    Long DataFrame with columns ``class``, ``rank`` (1 = most frequent), ``tag``, ``count``,
    ``frequency`` (share of the class's images carrying the tag) and ``lift`` (frequency in the
    class / frequency over all images: above 1, the tag is typical of the class). Ties in count are
    broken by tag name. A class lists fewer than ``n`` tags when fewer occur in it.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected a positive integer, got {n!r}")
    matrix = _bool_matrix(matrix, "matrix")
    labels = _labels(labels, matrix.index)
    freqs = tag_frequencies(matrix, labels)
    overall = matrix.to_numpy().mean(axis=0) if len(matrix) else np.zeros(matrix.shape[1])
    overall = pd.Series(overall, index=matrix.columns)
    top = freqs.groupby("class", sort=True, group_keys=False).head(n).copy()
    top.insert(1, "rank", top.groupby("class").cumcount() + 1)
    top["lift"] = top["frequency"].to_numpy() / overall.reindex(top["tag"]).to_numpy()
    return top.reset_index(drop=True)


def _summary(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    tp = (pred & true).sum(axis=0).astype(float)
    n_pred = pred.sum(axis=0).astype(float)
    n_true = true.sum(axis=0).astype(float)
    precision = tp.sum() / n_pred.sum() if n_pred.sum() else float("nan")
    recall = tp.sum() / n_true.sum() if n_true.sum() else float("nan")
    if not (np.isfinite(precision) and np.isfinite(recall)):
        f1 = float("nan")
    elif precision + recall == 0:
        f1 = 0.0
    else:
        f1 = 2 * precision * recall / (precision + recall)
    with np.errstate(divide="ignore", invalid="ignore"):
        tag_precision = np.where(n_pred > 0, tp / n_pred, np.nan)
        tag_recall = np.where(n_true > 0, tp / n_true, np.nan)
        denom = tag_precision + tag_recall
        tag_f1 = np.where(denom > 0, 2 * tag_precision * tag_recall / denom, 0.0)
    # macro averages over the tags that occur in the ground truth; a tag never predicted has
    # precision undefined (left out of macro precision) and recall 0
    present = n_true > 0
    macro = {
        "macro_precision": float(np.nanmean(tag_precision[present & (n_pred > 0)]))
        if (present & (n_pred > 0)).any()
        else float("nan"),
        "macro_recall": float(np.nanmean(tag_recall[present])) if present.any() else float("nan"),
        "macro_f1": float(np.mean(np.nan_to_num(tag_f1[present]))) if present.any() else float("nan"),
    }
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1), **macro}


def _aligned(predicted: pd.DataFrame, truth: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    missing = truth.index.difference(predicted.index)
    if len(missing):
        raise ValueError(f"predicted: no row for {len(missing)} id(s) of truth, e.g. {missing[0]!r}")
    pred = predicted.reindex(index=truth.index, columns=truth.columns, fill_value=False)
    return pred.to_numpy(dtype=bool), truth.to_numpy(dtype=bool)


def tagger_summary(predicted: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float]:
    """Precision and recall of a tag matrix against the ground truth, pooled over tags.

    Parameters
    ----------
    predicted, truth : boolean DataFrames (index = sample id, columns = tags). ``predicted`` is
        aligned to ``truth``'s rows and columns; a tag it lacks counts as never predicted, a tag
        ``truth`` lacks is ignored (it cannot be checked).

    Returns
    -------
    dict
        ``precision``, ``recall``, ``f1``: micro averages (every (image, tag) decision counts
        once); ``macro_precision`` (mean over tags the tagger ever predicts), ``macro_recall`` and
        ``macro_f1`` (means over tags that occur in the truth; F1 of a never-predicted tag is 0).
        Per-tag numbers: :func:`primekit.toyworld.tagger_quality`.
    """
    predicted = _bool_matrix(predicted, "predicted")
    truth = _bool_matrix(truth, "truth")
    return _summary(*_aligned(predicted, truth))


def threshold_sweep(
    scores: pd.DataFrame,
    *,
    thresholds: Iterable[float] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
    truth: pd.DataFrame | None = None,
    labels: pd.Series | None = None,
    correct: pd.Series | None = None,
    min_count: int = 30,
    search: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """The effect of the tag score threshold on the tags and on the search.

    Parameters
    ----------
    scores : DataFrame, shape (n_samples, n_tags), scores in [0, 1] (index = sample id)
    thresholds : the thresholds to try; a tag is present when ``score >= threshold``
    truth : boolean DataFrame, optional
        Ground-truth tags (same ids); adds the columns of :func:`tagger_summary`.
    labels : Series indexed by sample id, optional
        Adds ``searchable_tags``: the mean over classes of the number of tags carried by at least
        ``min_count`` images of the class (the candidate set T_c of the search).
    correct : Series indexed by sample id, optional
        With ``labels``, runs :func:`primekit.find_failure_modes` at each threshold with the
        options ``search`` and adds ``n_failure_modes``.
    min_count : int, default 30
        See ``labels``; pass the search's ``min_size``.
    search : mapping, optional
        Options of :func:`primekit.find_failure_modes` (min_size, min_drop, max_tags, ...).

    Returns
    -------
    DataFrame, one row per threshold: ``threshold``, ``tags_per_image`` (mean),
    ``share_untagged``, ``tags_used`` (tags present on at least one image), then the optional
    columns above.
    """
    scores = _score_matrix(scores)
    thresholds = [float(t) for t in thresholds]
    if not thresholds:
        raise ValueError("thresholds: expected at least one threshold")
    if any(not 0 <= t <= 1 for t in thresholds):
        raise ValueError(f"thresholds: must lie in [0, 1], got {thresholds}")
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        raise ValueError(f"min_count: expected a positive integer, got {min_count!r}")
    if correct is not None and labels is None:
        raise ValueError("correct: counting failure modes needs labels as well")
    if truth is not None:
        truth = _bool_matrix(truth, "truth")
    if labels is not None:
        labels = _labels(labels, scores.index)
    if correct is not None:
        if isinstance(correct, pd.Series):
            correct = correct.reindex(scores.index)
        correct = pd.Series(np.asarray(correct, dtype=bool), index=scores.index)
    values = scores.to_numpy(dtype=float)
    rows = []
    for threshold in thresholds:
        present = values >= threshold
        per_image = present.sum(axis=1)
        row: dict[str, Any] = {
            "threshold": threshold,
            "tags_per_image": float(per_image.mean()) if len(per_image) else float("nan"),
            "share_untagged": float((per_image == 0).mean()) if len(per_image) else float("nan"),
            "tags_used": int(present.any(axis=0).sum()),
        }
        matrix = pd.DataFrame(present, index=scores.index, columns=scores.columns)
        if truth is not None:
            row.update(_summary(*_aligned(matrix, truth)))
        if labels is not None:
            per_class = matrix.groupby(labels.to_numpy()).sum()
            row["searchable_tags"] = float((per_class >= min_count).sum(axis=1).mean())
        if correct is not None:
            modes = find_failure_modes(matrix, labels, correct, **dict(search or {}))
            row["n_failure_modes"] = int(len(modes))
        rows.append(row)
    return pd.DataFrame.from_records(rows)
