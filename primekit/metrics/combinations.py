"""Tag combinations (paper 5.1, Tables 1/2): is the whole combination needed for the drop?

:func:`tag_combination_accuracies` measures every subset of each mode's tags (Table 1);
:func:`tag_combination_summary` averages the drop over groups of k, k-1, ..., 1 tags (Table 2).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from .._validation import check_columns, check_int
from ..split import TaggedSplit, as_split
from ._common import tag_tuple

__all__ = ["tag_combination_accuracies", "tag_combination_summary"]


def tag_combination_accuracies(
    modes: pd.DataFrame,
    tags: pd.DataFrame | TaggedSplit,
    labels: pd.Series | None = None,
    correct: pd.Series | None = None,
    *,
    n_tags: int | None = None,
) -> pd.DataFrame:
    """Table 1: accuracy on the images carrying every non-empty subset of each mode's tags.

    Usually run on unseen data (the paper's Tables 1/2 are on D'). The group of a subset S' is
    I_{S'} (images of the class carrying at least the tags of S', whatever the others).

    Parameters
    ----------
    modes : failure-mode table (``class``, ``tags``)
    tags, labels, correct : the data to measure on (contract of ``find_failure_modes``), or
        one :class:`~primekit.split.TaggedSplit` as ``tags``
    n_tags : int, optional
        Only modes with this many tags.

    Returns
    -------
    DataFrame, one row per (mode, non-empty subset), the full set first: ``mode`` (index label of
    the mode in ``modes``), ``class``, ``mode_tags``, ``subset``, ``subset_size``, ``size``,
    ``accuracy`` (NaN for an empty group), ``class_accuracy``, ``drop``.
    """
    modes = check_columns(modes, "modes", ["class", "tags"])
    if n_tags is not None:
        n_tags = check_int(n_tags, "n_tags", 1)
    data = as_split(tags, labels, correct)
    records = []
    for key, cls, mode_tags in zip(modes.index, modes["class"], modes["tags"], strict=True):
        mode_tags = tag_tuple(mode_tags, "modes")
        if n_tags is not None and len(mode_tags) != n_tags:
            continue
        _, class_acc = data.group_accuracy(data.class_mask(cls))
        for k in range(len(mode_tags), 0, -1):
            for subset in itertools.combinations(mode_tags, k):
                n, acc = data.group_accuracy(data.group_mask(cls, subset))
                records.append(
                    {
                        "mode": key,
                        "class": cls,
                        "mode_tags": mode_tags,
                        "subset": subset,
                        "subset_size": k,
                        "size": n,
                        "accuracy": acc,
                        "class_accuracy": class_acc,
                        "drop": class_acc - acc,
                    }
                )
    columns = ["mode", "class", "mode_tags", "subset", "subset_size", "size", "accuracy"]
    return pd.DataFrame.from_records(records, columns=columns + ["class_accuracy", "drop"])


def tag_combination_summary(
    modes: pd.DataFrame,
    tags: pd.DataFrame | TaggedSplit,
    labels: pd.Series | None = None,
    correct: pd.Series | None = None,
    *,
    n_tags: int = 3,
    how: str = "subsets",
) -> pd.DataFrame:
    """Table 2: average accuracy drop on groups of k, k-1, ..., 1 of the tags of k-tag modes.

    Parameters
    ----------
    modes : failure-mode table; only modes with ``n_tags`` tags are used
    tags, labels, correct : data to measure on (the paper uses unseen data D'), or one
        :class:`~primekit.split.TaggedSplit` as ``tags``
    n_tags : int, default 3
        k.
    how : {"subsets", "at_least"}
        ``"subsets"`` (default, the text of 5.1: "groups identified by subsets of two tags or a
        single tag"): for each mode, average the drop of I_{S'} over the subsets S' of size j,
        then average over modes. ``"at_least"`` (the caption of Table 2: "images that have at
        least 2 of those tags or at least one of them"): the drop on the union of those groups,
        i.e. on the images of the class carrying at least j of the k tags.

    Returns
    -------
    DataFrame indexed by ``n_tags`` = k, ..., 1 with columns ``drop`` and ``accuracy``
    (averages over modes, NaN skipped) and ``n_modes`` (modes with a non-empty group).
    """
    n_tags = check_int(n_tags, "n_tags", 1)
    if how not in ("subsets", "at_least"):
        raise ValueError(f"how: expected 'subsets' or 'at_least', got {how!r}")
    modes = check_columns(modes, "modes", ["class", "tags"])
    per_mode: dict[int, list[tuple[float, float]]] = {j: [] for j in range(n_tags, 0, -1)}
    if how == "subsets":
        data = as_split(tags, labels, correct)
        combos = tag_combination_accuracies(modes, data, n_tags=n_tags)
        if len(combos):
            grouped = combos.groupby(["mode", "subset_size"])[["drop", "accuracy"]].mean()
            for (_, j), row in grouped.iterrows():
                per_mode[int(j)].append((row["drop"], row["accuracy"]))
    else:
        data = as_split(tags, labels, correct)
        for cls, mode_tags in zip(modes["class"], modes["tags"], strict=True):
            mode_tags = tag_tuple(mode_tags, "modes")
            if len(mode_tags) != n_tags:
                continue
            _, class_acc = data.group_accuracy(data.class_mask(cls))
            for j in range(n_tags, 0, -1):
                _, acc = data.group_accuracy(data.group_mask(cls, mode_tags, any_of=j))
                per_mode[j].append((class_acc - acc, acc))
    rows = {}
    for j, values in per_mode.items():
        arr = np.array(values, dtype=float).reshape(-1, 2)
        finite = arr[np.isfinite(arr[:, 0])]
        rows[j] = {
            "drop": float(finite[:, 0].mean()) if len(finite) else float("nan"),
            "accuracy": float(finite[:, 1].mean()) if len(finite) else float("nan"),
            "n_modes": int(len(finite)),
        }
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "n_tags"
    return out
