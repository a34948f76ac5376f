"""A deliberately naive PRIME search, straight from the paper's definition (tests only)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

TOL = 1e-9


def brute_force_modes(
    tags: pd.DataFrame,
    labels: pd.Series,
    correct: pd.Series,
    *,
    min_size: int,
    min_drop: float,
    necessity: dict[int, float],
    max_tags: int,
    min_tag_count: int | None = None,
) -> dict[tuple, dict]:
    """Return {(class, sorted tag tuple): {size, accuracy, class_accuracy, margin}}."""
    min_tag_count = min_size if min_tag_count is None else min_tag_count
    labels = labels.reindex(tags.index)
    correct = correct.reindex(tags.index).astype(bool)
    cols = sorted(str(c) for c in tags.columns)
    tags = tags.copy()
    tags.columns = [str(c) for c in tags.columns]
    out = {}
    for cls in pd.unique(labels):
        mask = (labels == cls).to_numpy()
        sub = tags[mask].astype(bool)
        ok = correct[mask].to_numpy()
        class_acc = ok.mean()
        vocab = [t for t in cols if sub[t].sum() >= min_tag_count]

        def stats(subset, sub=sub, ok=ok):
            inside = np.ones(len(sub), bool)
            for t in subset:
                inside &= sub[t].to_numpy()
            n = int(inside.sum())
            return n, (ok[inside].mean() if n else np.nan)

        for k in range(1, max_tags + 1):
            for subset in itertools.combinations(vocab, k):
                n, acc = stats(subset)
                if n < min_size or not acc <= class_acc - min_drop + TOL:
                    continue
                margin = np.nan
                if k > 1:
                    diffs = [stats(tuple(x for x in subset if x != t))[1] - acc for t in subset]
                    margin = min(diffs)
                    if margin < necessity[k] - TOL:
                        continue
                out[(cls, tuple(subset))] = {
                    "size": n,
                    "accuracy": acc,
                    "class_accuracy": class_acc,
                    "margin": margin,
                }
    return out
