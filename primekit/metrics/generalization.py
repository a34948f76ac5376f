"""Generalization to unseen data (paper 4.1, Fig. 9/10, Table 4, appendix A.5).

A mode is found on one split; :func:`recover_groups` finds its group I'_S on unseen data from its
tags alone, :func:`generalization_summary` says how well the drops carry over, and
:func:`generalization_sweep` repeats both over a grid of (s, a).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from .. import search
from .._validation import check_columns, check_int, check_real
from ..split import TaggedSplit, as_split, require_split
from ._common import tag_tuple

__all__ = ["RECOVERED_COLUMNS", "recover_groups", "generalization_summary", "generalization_sweep"]

logger = logging.getLogger(__name__)

RECOVERED_COLUMNS = (
    "test_size",
    "test_accuracy",
    "test_class_size",
    "test_class_accuracy",
    "test_drop",
)


def recover_groups(
    modes: pd.DataFrame,
    tags_test: pd.DataFrame | TaggedSplit,
    labels_test: pd.Series | None = None,
    correct_test: pd.Series | None = None,
) -> pd.DataFrame:
    """Recover every mode's group on unseen data from its tags alone (paper 4.1: I'_S).

    Parameters
    ----------
    modes : failure-mode table (columns ``class``, ``tags``, ``drop`` at least)
    tags_test, labels_test, correct_test : the unseen data, same contract as
        :func:`primekit.find_failure_modes`, or one :class:`~primekit.split.TaggedSplit` (e.g.
        ``study.test``) as ``tags_test``.

    Returns
    -------
    DataFrame
        A copy of ``modes`` with the columns ``test_size`` (|I'_S|), ``test_accuracy`` (A'_S,
        NaN when the group is empty), ``test_class_size``, ``test_class_accuracy`` (A'_c) and
        ``test_drop`` (A'_c - A'_S). A tag that no unseen sample carries gives an empty group.
    """
    modes = check_columns(modes, "modes", ["class", "tags", "drop"])
    data = as_split(tags_test, labels_test, correct_test, prefix="test data: ")
    out = modes.copy()
    records = []
    absent_tags: set[str] = set()
    for cls, mode_tags in zip(modes["class"], modes["tags"], strict=True):
        mode_tags = tag_tuple(mode_tags, "modes")
        absent_tags.update(t for t in mode_tags if t not in data.column)
        class_n, class_acc = data.group_accuracy(data.class_mask(cls))
        n, acc = data.group_accuracy(data.group_mask(cls, mode_tags))
        records.append((n, acc, class_n, class_acc, class_acc - acc))
    if absent_tags:
        logger.warning("tags never seen on the test data: %s", sorted(absent_tags))
    values = np.array(records, dtype=float).reshape(len(records), 5)
    for j, col in enumerate(RECOVERED_COLUMNS):
        out[col] = values[:, j].astype(np.int64) if col.endswith("size") else values[:, j]
    return out


def generalization_summary(
    recovered: pd.DataFrame,
    *,
    min_test_drop: float = 0.25,
    min_test_size: int = 1,
) -> dict[str, float]:
    """Fig. 9 / Table 4 numbers: how well train drops carry over to unseen data.

    Parameters
    ----------
    recovered : DataFrame from :func:`recover_groups`
    min_test_drop : float, default 0.25
        The share reported is of modes whose test drop is at least this (Fig. 9: 25%).
    min_test_size : int, default 1
        Modes whose unseen group is smaller are counted as ``n_absent`` and left out.

    Returns
    -------
    dict
        ``n_modes``, ``n_evaluated``, ``n_absent``, ``share_at_least`` (share of evaluated modes
        with ``test_drop >= min_test_drop``), ``corrcoef`` (Pearson correlation of train and
        test drop over evaluated modes; NaN for fewer than 2 or no variance), ``spearman``,
        ``mean_train_drop``, ``mean_test_drop``.
    """
    recovered = check_columns(recovered, "recovered", ["drop", "test_drop", "test_size"])
    min_test_drop = check_real(min_test_drop, "min_test_drop", -1.0, 1.0)
    min_test_size = check_int(min_test_size, "min_test_size", 1)
    evaluated = recovered[
        (recovered["test_size"] >= min_test_size) & recovered["test_drop"].notna()
    ]
    train = evaluated["drop"].to_numpy(dtype=float)
    test = evaluated["test_drop"].to_numpy(dtype=float)
    corr = spear = float("nan")
    if len(train) >= 2 and train.std() > 0 and test.std() > 0:
        corr = float(np.corrcoef(train, test)[0, 1])
        spear = float(spearmanr(train, test).statistic)
    n_eval = int(len(evaluated))
    return {
        "n_modes": int(len(recovered)),
        "n_evaluated": n_eval,
        "n_absent": int(len(recovered) - n_eval),
        "share_at_least": float((test >= min_test_drop - 1e-12).mean()) if n_eval else float("nan"),
        "corrcoef": corr,
        "spearman": spear,
        "mean_train_drop": float(train.mean()) if n_eval else float("nan"),
        "mean_test_drop": float(test.mean()) if n_eval else float("nan"),
    }


def generalization_sweep(
    data: Any,
    unseen: Any,
    *,
    grid: Iterable[tuple[int, float]],
    min_test_drop: float = 0.25,
    min_test_size: int = 1,
    **search_options: Any,
) -> pd.DataFrame:
    """Appendix A.5 / Fig. 10 / Table 4: search with several (s, a) and measure generalization.

    Parameters
    ----------
    data : TaggedSplit
        The split the modes are found on, e.g. ``load_study(...).val`` (a
        :class:`~primekit.split.TaggedSplit` with correctness).
    unseen : TaggedSplit
        Unseen data, e.g. ``study.test``.
    grid : iterable of (min_size, min_drop) pairs, e.g. ``[(25, .25), (30, .30), (50, .30)]``
    min_test_drop, min_test_size : passed to :func:`generalization_summary`
    **search_options : other options of :func:`primekit.find_failure_modes` (necessity, ...)

    Returns
    -------
    DataFrame, one row per grid point: ``min_size, min_drop`` and the keys of
    :func:`generalization_summary`.
    """
    data = require_split(data, "data")
    unseen = require_split(unseen, "unseen")
    grid = list(grid)
    if not grid:
        raise ValueError("grid: expected at least one (min_size, min_drop) pair")
    rows = []
    for point in grid:
        if not isinstance(point, (tuple, list)) or len(point) != 2:
            raise TypeError(f"grid: expected (min_size, min_drop) pairs, got {point!r}")
        min_size, min_drop = point
        modes = search.find_failure_modes(
            data, min_size=min_size, min_drop=min_drop, **search_options
        )
        summary = generalization_summary(
            recover_groups(modes, unseen),
            min_test_drop=min_test_drop,
            min_test_size=min_test_size,
        )
        rows.append({"min_size": min_size, "min_drop": min_drop, **summary})
    return pd.DataFrame.from_records(rows)
