"""Generated images (paper 4.2, Fig. 4, appendix A.10): do new images of a mode fail too?

:func:`success_modes` finds the mirror image of failure modes, :func:`select_generation_modes`
picks the top ones of each kind per class, :func:`generated_validation` renders and classifies
new images of every mode, and :func:`generation_gap` gives A.10's per-class gap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .. import search
from .._validation import check_columns, check_int, check_real
from ..split import TaggedSplit, as_split
from ._common import tag_tuple

__all__ = ["success_modes", "select_generation_modes", "generated_validation", "generation_gap"]


def success_modes(
    tags: pd.DataFrame | TaggedSplit,
    labels: pd.Series | None = None,
    correct: pd.Series | None = None,
    *,
    min_gain: float = 0.05,
    **search_options: Any,
) -> pd.DataFrame:
    """Success modes: minimal tag combinations on which the classifier does *better* (paper 4.2).

    The mirror image of a failure mode: |I_S| >= s, A_S >= A_c + ``min_gain``, and every tag is
    necessary (for all t in S: A_{S\\t} <= A_S - b_|S|). Running
    :func:`primekit.find_failure_modes` on the inverted correctness gives exactly this, since
    accuracy A turns into 1 - A: "1 - A_S <= 1 - A_c - g" is "A_S >= A_c + g", and
    "1 - A_{S\\t} >= 1 - A_S + b" is "A_{S\\t} <= A_S - b"; sizes and the tolerance in favour of
    inclusion are unchanged.

    Parameters
    ----------
    tags, labels, correct : as for :func:`primekit.find_failure_modes` (or one
        :class:`~primekit.split.TaggedSplit` as ``tags``)
    min_gain : float, default 0.05
        Least rise of accuracy above the class accuracy.
    **search_options : min_size, necessity, max_tags, min_tag_count, method, ...

    Returns
    -------
    DataFrame with the failure-mode columns; ``accuracy`` and ``class_accuracy`` are the real
    accuracies, ``drop`` = class_accuracy - accuracy is negative, ``necessity_margin`` =
    min_t (A_S - A_{S\\t}). Rows are ordered by class then largest gain.
    """
    if "min_drop" in search_options:
        raise TypeError("min_drop: not an option of success_modes; use min_gain")
    min_gain = check_real(min_gain, "min_gain", 0.0, 1.0)
    data = as_split(tags, labels, correct)
    inverted = TaggedSplit(data.tags, data.labels, ~data.correct)
    modes = search.find_failure_modes(inverted, min_drop=min_gain, **search_options)
    out = modes.copy()
    out["accuracy"] = 1.0 - modes["accuracy"]
    out["class_accuracy"] = 1.0 - modes["class_accuracy"]
    out["drop"] = out["class_accuracy"] - out["accuracy"]
    if len(out):
        out = out.sort_values(["class", "drop"], kind="stable").reset_index(drop=True)
    return out


def select_generation_modes(
    failure_modes: pd.DataFrame,
    success: pd.DataFrame,
    *,
    per_class: int = 2,
) -> pd.DataFrame:
    """Pick, for every class, its top failure modes (largest drop) and top success modes
    (largest gain), as the paper does for Fig. 4 (two of each per class).

    Returns
    -------
    DataFrame with the mode columns plus ``kind`` in {"failure", "success"}; a class keeps
    whatever it has (fewer than ``per_class`` when the search found fewer).
    """
    per_class = check_int(per_class, "per_class", 1)
    failure_modes = check_columns(failure_modes, "failure_modes", ["class", "tags", "drop", "size"])
    success = check_columns(success, "success", ["class", "tags", "drop", "size"])
    parts = []
    for kind, table, ascending in (("failure", failure_modes, False), ("success", success, True)):
        ranked = table.sort_values(["drop", "size"], ascending=[ascending, False], kind="stable")
        top = ranked.groupby("class", sort=True, group_keys=False).head(per_class).copy()
        top.insert(0, "kind", kind)
        parts.append(top)
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["class", "kind"], kind="stable").reset_index(drop=True)


def generated_validation(
    modes: pd.DataFrame,
    render_fn: Callable[[Any, tuple[str, ...], int, int], Any],
    predict_fn: Callable[[Any], Sequence],
    *,
    n_per_mode: int = 50,
    seed: int = 0,
) -> pd.DataFrame:
    """Accuracy of the classifier on newly generated images of every mode (paper 4.2, Fig. 4).

    Parameters
    ----------
    modes : DataFrame with ``class`` and ``tags`` (e.g. from :func:`select_generation_modes`)
    render_fn : callable ``render_fn(cls, tags, n, seed=...) -> images``
        Generates ``n`` images of class ``cls`` showing every tag (the toy world's
        ``primekit.toyworld.render_matching``; on real data a text-to-image hook). ``seed`` is
        passed by keyword. A returned tuple is read as ``(images, metadata)``.
    predict_fn : callable ``predict_fn(images) -> predicted labels`` (length n), or a DataFrame
        with a ``pred`` column (e.g. ``functools.partial(toyworld.predict_images, model)``)
    n_per_mode : int, default 50
    seed : int
        Mode number i (row position) is rendered with seed ``seed + i``.

    Returns
    -------
    DataFrame: a copy of ``modes`` with ``n_generated`` and ``generated_accuracy`` (share of
    generated images predicted as the mode's class).
    """
    modes = check_columns(modes, "modes", ["class", "tags"])
    if not callable(render_fn):
        raise TypeError("render_fn: expected a callable (cls, tags, n, seed) -> images")
    if not callable(predict_fn):
        raise TypeError("predict_fn: expected a callable images -> predicted labels")
    n_per_mode = check_int(n_per_mode, "n_per_mode", 1)
    seed = check_int(seed, "seed", 0)
    accuracies, counts = [], []
    for i, (cls, mode_tags) in enumerate(zip(modes["class"], modes["tags"], strict=True)):
        images = render_fn(cls, tag_tuple(mode_tags, "modes"), n_per_mode, seed=seed + i)
        if isinstance(images, tuple):  # (images, metadata), as the toy world's renderer returns
            images = images[0]
        predicted = predict_fn(images)
        if isinstance(predicted, pd.DataFrame):  # a samples-like table, e.g. toyworld's
            if "pred" not in predicted.columns:
                raise ValueError("predict_fn: a returned DataFrame needs a 'pred' column")
            predicted = predicted["pred"]
        predicted = np.asarray(predicted, dtype=object).ravel()
        if len(predicted) != n_per_mode:
            raise ValueError(
                f"predict_fn: returned {len(predicted)} predictions for {n_per_mode} images"
            )
        accuracies.append(float(np.mean([p == cls for p in predicted])))
        counts.append(len(predicted))
    out = modes.copy()
    out["n_generated"] = np.asarray(counts, dtype=np.int64)
    out["generated_accuracy"] = np.asarray(accuracies, dtype=float)
    return out


def generation_gap(validated: pd.DataFrame) -> pd.DataFrame:
    """Appendix A.10: per class, accuracy on generated success-mode images minus failure-mode
    images.

    Parameters
    ----------
    validated : DataFrame from :func:`generated_validation` with a ``kind`` column.

    Returns
    -------
    DataFrame indexed by class with ``failure_accuracy``, ``success_accuracy`` (means over the
    class's modes of each kind) and ``gap`` = success - failure (NaN when a kind is missing).
    The paper's headline is ``gap.mean()``.
    """
    validated = check_columns(validated, "validated", ["class", "kind", "generated_accuracy"])
    table = validated.pivot_table(
        index="class", columns="kind", values="generated_accuracy", aggfunc="mean"
    )
    out = pd.DataFrame(index=table.index)
    out["failure_accuracy"] = table["failure"] if "failure" in table else np.nan
    out["success_accuracy"] = table["success"] if "success" in table else np.nan
    out["gap"] = out["success_accuracy"] - out["failure_accuracy"]
    return out
