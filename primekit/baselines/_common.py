"""What the two baselines share: input checks, the slice table and PRIME's budget.

:data:`SLICE_COLUMNS` is the table every baseline writes (shaped like PRIME's mode table, so that
:func:`primekit.metrics.description_quality` scores both alike); :func:`phrase_vocabulary` makes
candidate descriptions from words; :func:`prime_budget` reads how many (and how large) modes
PRIME found per class, so that the baselines can be asked for the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._validation import as_bool, check_columns, check_embeddings, check_ids, check_int

__all__ = [
    "SLICE_COLUMNS",
    "phrase_vocabulary",
    "prime_budget",
    "bool_vector",
    "aligned",
    "per_class",
    "checked_phrases",
    "slice_row",
]

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


def bool_vector(values: Any, argument: str, n: int) -> np.ndarray:
    """``n`` boolean (or 0/1) values as a bool array."""
    arr = np.asarray(values)
    if arr.shape != (n,):
        raise ValueError(f"{argument}: expected {n} values, got shape {arr.shape}")
    return as_bool(arr, argument)


def aligned(
    embeddings: Any, ids: Any, labels: Any, correct: Any
) -> tuple[np.ndarray, pd.Index, np.ndarray, np.ndarray]:
    """Embeddings (n, d), their ids, and labels and correctness lined up with the ids."""
    emb = check_embeddings(embeddings, "embeddings")
    n = emb.shape[0]
    index = check_ids(ids, n)
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
    return emb, index, out[0], bool_vector(out[1], "correct", n)


def per_class(value: Any, argument: str, classes: Sequence, minimum: int) -> dict:
    """An int for every class, or a mapping class -> int (classes it lacks are skipped)."""
    if isinstance(value, Mapping):
        return {
            c: check_int(value[c], f"{argument}[{c!r}]", minimum) for c in classes if c in value
        }
    if isinstance(value, pd.Series):
        return per_class(value.to_dict(), argument, classes, minimum)
    value = check_int(value, argument, minimum)
    return dict.fromkeys(classes, value)


def checked_phrases(phrases: Any, phrase_embeddings: Any, dim: int) -> tuple[list[str], np.ndarray]:
    if isinstance(phrases, str) or not isinstance(phrases, (Sequence, np.ndarray, pd.Series)):
        raise TypeError("phrases: expected a sequence of strings")
    phrases = [str(p) for p in phrases]
    emb = check_embeddings(phrase_embeddings, "phrase_embeddings", n=len(phrases))
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
    check_columns(modes, "modes", ["class", "size"])
    grouped = modes.groupby("class", sort=True)["size"]
    out = pd.DataFrame(
        {
            "n_modes": grouped.size().astype(np.int64),
            "median_size": grouped.median().round().astype(np.int64),
        }
    )
    return out


def slice_row(
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
