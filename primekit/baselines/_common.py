"""What the two baselines share: input checks, the slice table and PRIME's budget.

:data:`SLICE_COLUMNS` is the table every baseline writes (shaped like PRIME's mode table, so that
:func:`primekit.metrics.description_quality` scores both alike); :func:`phrase_vocabulary` makes
candidate descriptions from words; :func:`prime_budget` reads how many (and how large) modes
PRIME found per class, so that the baselines can be asked for the same.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["SLICE_COLUMNS", "phrase_vocabulary", "prime_budget"]

SLICE_COLUMNS = (
    "class",
    "slice",
    "members",
    "size",
    "accuracy",
    "class_accuracy",
    "drop",
    "score",
    "description",
    "candidates",
)


def _check_int(value: Any, argument: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{argument}: expected an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{argument}: must be >= {minimum}, got {value}")
    return int(value)


def _check_real(value: Any, argument: str, low: float, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{argument}: expected a number, got {value!r}")
    if not low <= float(value) <= high:
        raise ValueError(f"{argument}: must lie in [{low}, {high}], got {value}")
    return float(value)


def _matrix(values: Any, argument: str, *, n: int | None = None) -> np.ndarray:
    if isinstance(values, (pd.DataFrame, pd.Series)):
        values = values.to_numpy()
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{argument}: expected a numeric array, got {type(values).__name__}"
        ) from err
    if arr.ndim != 2:
        raise ValueError(f"{argument}: expected shape (n, d), got {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{argument}: expected {n} rows, got {arr.shape[0]}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{argument}: contains NaN or infinite values")
    return arr


def _normalize_rows(arr: np.ndarray, argument: str) -> np.ndarray:
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError(f"{argument}: contains a zero vector, which cannot be L2-normalized")
    return arr / norms


def _bool_vector(values: Any, argument: str, n: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.shape != (n,):
        raise ValueError(f"{argument}: expected {n} values, got shape {arr.shape}")
    if arr.dtype != bool:
        if not np.issubdtype(arr.dtype, np.number) or not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{argument}: values must be boolean or 0/1")
        arr = arr.astype(bool)
    return arr


def _aligned(
    embeddings: Any, ids: Any, labels: Any, correct: Any
) -> tuple[np.ndarray, pd.Index, np.ndarray, np.ndarray]:
    emb = _matrix(embeddings, "embeddings")
    n = emb.shape[0]
    index = ids if isinstance(ids, pd.Index) else pd.Index(list(ids))
    if len(index) != n:
        raise ValueError(f"ids: expected {n} ids (one per row of embeddings), got {len(index)}")
    if index.has_duplicates:
        raise ValueError(f"ids: duplicate sample id {index[index.duplicated()][0]!r}")
    out = []
    for name, values in (("labels", labels), ("correct", correct)):
        if isinstance(values, pd.Series):
            missing = index.difference(values.index)
            if len(missing):
                raise ValueError(f"{name}: no value for {len(missing)} id(s), e.g. {missing[0]!r}")
            values = values.reindex(index).to_numpy()
        arr = np.asarray(values, dtype=object if name == "labels" else None)
        if arr.shape != (n,):
            raise ValueError(f"{name}: expected {n} values aligned with ids, got shape {arr.shape}")
        out.append(arr)
    return emb, index, out[0], _bool_vector(out[1], "correct", n)


def _per_class(value: Any, argument: str, classes: Sequence, minimum: int) -> dict:
    """An int for every class, or a mapping class -> int (classes it lacks are skipped)."""
    if isinstance(value, Mapping):
        return {
            c: _check_int(value[c], f"{argument}[{c!r}]", minimum) for c in classes if c in value
        }
    if isinstance(value, pd.Series):
        return _per_class(value.to_dict(), argument, classes, minimum)
    value = _check_int(value, argument, minimum)
    return dict.fromkeys(classes, value)


def _sorted_unique(values: np.ndarray) -> list:
    uniq = list(pd.unique(values))
    try:
        return sorted(uniq)
    except TypeError:
        return sorted(uniq, key=str)


def _phrases(phrases: Any, phrase_embeddings: Any, dim: int) -> tuple[list[str], np.ndarray]:
    if isinstance(phrases, str) or not isinstance(phrases, (Sequence, np.ndarray, pd.Series)):
        raise TypeError("phrases: expected a sequence of strings")
    phrases = [str(p) for p in phrases]
    emb = _matrix(phrase_embeddings, "phrase_embeddings", n=len(phrases))
    if emb.shape[1] != dim:
        raise ValueError(
            f"phrase_embeddings: dimension {emb.shape[1]} does not match embeddings dimension {dim}"
        )
    if not phrases:
        raise ValueError("phrases: expected at least one candidate phrase")
    return phrases, emb


def phrase_vocabulary(words: Sequence[str], *, template: str = "a photo of {}.") -> list[str]:
    """Candidate phrases for the baselines' descriptions: one per word, in a prompt template
    (domino describes slices with phrases like "a photo of a coyote."). Duplicates are dropped,
    order kept.

    Parameters
    ----------
    words : sequence of str, e.g. a tagger's vocabulary
    template : str with one ``{}``
    """
    if isinstance(words, str):
        raise TypeError("words: expected a sequence of strings, got a single string")
    if not isinstance(template, str) or template.count("{}") != 1:
        raise ValueError(f"template: expected a string with exactly one '{{}}', got {template!r}")
    return list(dict.fromkeys(template.format(str(w)) for w in words))


def prime_budget(modes: pd.DataFrame) -> pd.DataFrame:
    """How many failure modes PRIME found per class, and how large they are.

    Pass ``n_slices=budget["n_modes"]`` to :func:`domino_slices` and
    ``top_k=budget["median_size"]`` to :func:`failure_direction_slices` to ask the baselines for
    as many (and as large) slices as PRIME found, as the paper did (4.3, A.7).

    Returns
    -------
    DataFrame indexed by class with ``n_modes`` and ``median_size`` (ints); classes without a
    mode are absent.
    """
    if not isinstance(modes, pd.DataFrame):
        raise TypeError(f"modes: expected a DataFrame, got {type(modes).__name__}")
    missing = [c for c in ("class", "size") if c not in modes.columns]
    if missing:
        raise ValueError(f"modes: missing column(s) {missing}")
    grouped = modes.groupby("class", sort=True)["size"]
    out = pd.DataFrame(
        {
            "n_modes": grouped.size().astype(np.int64),
            "median_size": grouped.median().round().astype(np.int64),
        }
    )
    return out


def _slice_row(
    cls: Any,
    rank: int,
    member_ids: np.ndarray,
    ok: np.ndarray,
    class_accuracy: float,
    score: float,
    ranked: pd.DataFrame,
    n_candidates: int,
) -> dict:
    n = int(len(member_ids))
    acc = float(ok.mean()) if n else float("nan")
    return {
        "class": cls,
        "slice": rank,
        "members": tuple(member_ids),
        "size": n,
        "accuracy": acc,
        "class_accuracy": class_accuracy,
        "drop": class_accuracy - acc,
        "score": float(score),
        "description": ranked["phrase"].iloc[0]
        if n and np.isfinite(ranked["score"].iloc[0])
        else "",
        "candidates": tuple(ranked["phrase"].iloc[:n_candidates]) if n else (),
    }
