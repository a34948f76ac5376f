"""Ground truth of the toy world: noisy ground-truth tags, a tagger's quality against them and
PRIME's recovery of the true modes.

The *true* failure modes are those of the same definition (paper section 3) measured on the oracle
split (>= 10x val). Recovery of the modes found on val (issue 3):

- precision: share of val modes that are real on the oracle, with margins: there
  ``A_S <= A_c - min_drop + drop_margin`` and, for every tag t, ``A_{S-t} >= A_S + b_|S| -
  necessity_margin`` (defaults 0.05 and 0.02);
- recall: share of the oracle's *clear* modes (``min_drop + drop_margin``, the same necessity, and
  large enough to reach ``min_size`` on val in expectation, i.e. oracle size >= ``min_size`` x
  n_oracle / n_val) that are found on val;
- strict precision/recall: the same without margins (oracle modes of the exact definition with the
  scaled size).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..tags import matrix_to_tags
from .world import SPLITS, ToyWorld

__all__ = ["ground_truth_tags", "tagger_quality", "mode_accuracy_on", "oracle_modes", "recovery", "evaluate_recovery"]

_TOL = 1e-9


def ground_truth_tags(
    world: ToyWorld,
    split: str,
    *,
    drop_rate: float = 0.0,
    add_rate: float = 0.0,
    seed: int = 0,
) -> pd.DataFrame:
    """The ground-truth tagger, with optional flip noise: the long tag table ``id, tag, score``.

    Parameters
    ----------
    world : ToyWorld
    split : str
        One of the world's splits.
    drop_rate : float
        Probability that a true attribute is missed (false negative), per (sample, tag).
    add_rate : float
        Probability that an absent attribute is reported (false positive), per (sample, tag).
    seed : int
        Seed of the noise.

    Returns
    -------
    DataFrame
        ``id, tag, score`` with score 1.0 (hard tags), sorted by id then tag.
    """
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
    for name, value in (("drop_rate", drop_rate), ("add_rate", add_rate)):
        if not 0 <= value <= 1:
            raise ValueError(f"{name}: must lie in [0, 1], got {value}")
    truth = world.attributes(split)
    values = truth.to_numpy(bool)
    if drop_rate or add_rate:
        rng = np.random.default_rng([seed, SPLITS.index(split)])
        r = rng.random(values.shape)
        values = np.where(values, r >= drop_rate, r < add_rate)
    return matrix_to_tags(pd.DataFrame(values, index=truth.index, columns=truth.columns))


def _necessity_of(necessity: Mapping[int, float] | Sequence[float] | None, n: int) -> float:
    from ..search import normalize_necessity

    b = normalize_necessity(necessity, max(n, 2)) if necessity is not None else normalize_necessity({2: 0.10, 3: 0.05, 4: 0.025}, max(n, 2))
    return float(b[n]) if n < len(b) else float(b[-1])


def mode_accuracy_on(
    tags: pd.DataFrame, labels: pd.Series, correct: pd.Series, cls, mode_tags: Sequence[str]
) -> tuple[float, int, float, list[float]]:
    """Accuracy of ``cls`` on a tag set and on each of its leave-one-out subsets.

    Returns ``(A_S, |I_S|, A_c, [A_{S-t} for t in mode_tags])`` (NaN for empty groups).
    """
    in_class = (labels == cls).to_numpy()
    ok = correct.to_numpy(bool)
    cols = {t: tags[t].to_numpy(bool) if t in tags.columns else np.zeros(len(tags), bool) for t in mode_tags}

    def acc(subset):
        m = in_class.copy()
        for t in subset:
            m &= cols[t]
        n = int(m.sum())
        return (ok[m].mean() if n else np.nan), n

    a_s, n_s = acc(mode_tags)
    a_c, _ = acc(())
    leave = [acc([u for u in mode_tags if u != t])[0] for t in mode_tags] if len(mode_tags) > 1 else []
    return float(a_s), n_s, float(a_c), [float(v) for v in leave]


def _key(cls, tags) -> tuple:
    return (str(cls), tuple(sorted(tags)))


def oracle_modes(
    tags: pd.DataFrame,
    labels: pd.Series,
    correct: pd.Series,
    *,
    min_size: int,
    min_drop: float,
    necessity: Mapping[int, float] | Sequence[float] | None = None,
    max_tags: int = 4,
) -> pd.DataFrame:
    """The failure modes of the oracle split (``primekit.find_failure_modes`` with these settings)."""
    from ..search import find_failure_modes

    kwargs = {} if necessity is None else {"necessity": necessity}
    return find_failure_modes(tags, labels, correct, min_size=int(min_size), min_drop=min_drop, max_tags=max_tags, **kwargs)


def recovery(
    modes: pd.DataFrame,
    oracle_tags: pd.DataFrame,
    oracle_labels: pd.Series,
    oracle_correct: pd.Series,
    *,
    size_ratio: float,
    min_size: int = 30,
    min_drop: float = 0.30,
    necessity: Mapping[int, float] | Sequence[float] | None = None,
    max_tags: int = 4,
    drop_margin: float = 0.05,
    necessity_margin: float = 0.02,
) -> dict:
    """Precision and recall of ``modes`` (found on val) against the oracle split's true modes.

    Parameters
    ----------
    modes : DataFrame
        Output of ``find_failure_modes`` on val (columns ``class, tags``).
    oracle_tags : DataFrame of bool
        Ground-truth attribute matrix of the oracle split (index id).
    oracle_labels, oracle_correct : Series
        Labels and correctness on the oracle split, indexed like ``oracle_tags``.
    size_ratio : float
        n_oracle / n_val: an oracle mode is "large enough" when its size >= min_size x size_ratio.
    min_size, min_drop, necessity, max_tags :
        The search settings used on val.
    drop_margin, necessity_margin : float
        The margins of the definition above.

    Returns
    -------
    dict
        ``precision, recall, strict_precision, strict_recall, n_found, n_true_clear, n_true_strict``
        and two DataFrames: ``per_mode`` (the val modes with their oracle accuracy and ``real``)
        and ``missed`` (clear oracle modes not found on val).
    """
    if size_ratio <= 0:
        raise ValueError(f"size_ratio: must be positive, got {size_ratio}")
    oracle_size = int(math.ceil(min_size * size_ratio - _TOL))
    clear = oracle_modes(
        oracle_tags, oracle_labels, oracle_correct, min_size=oracle_size, min_drop=min(min_drop + drop_margin, 1.0), necessity=necessity, max_tags=max_tags
    )
    strict = oracle_modes(oracle_tags, oracle_labels, oracle_correct, min_size=oracle_size, min_drop=min_drop, necessity=necessity, max_tags=max_tags)
    clear_keys = {_key(c, t) for c, t in zip(clear["class"], clear["tags"], strict=False)}
    strict_keys = {_key(c, t) for c, t in zip(strict["class"], strict["tags"], strict=False)}
    rows = []
    for cls, tags in zip(modes["class"], modes["tags"], strict=False):
        tags = tuple(tags)
        a_s, n_s, a_c, leave = mode_accuracy_on(oracle_tags, oracle_labels, oracle_correct, cls, tags)
        b = _necessity_of(necessity, len(tags)) if len(tags) > 1 else 0.0
        real = n_s > 0 and a_s <= a_c - min_drop + drop_margin + _TOL and all(
            v >= a_s + b - necessity_margin - _TOL for v in leave
        )
        rows.append(
            {
                "class": cls,
                "tags": tags,
                "oracle_size": n_s,
                "oracle_accuracy": a_s,
                "oracle_class_accuracy": a_c,
                "oracle_necessity_margin": (min(leave) - a_s) if leave else np.nan,
                "real": bool(real),
                "strict": _key(cls, tags) in strict_keys,
            }
        )
    per_mode = pd.DataFrame(rows, columns=["class", "tags", "oracle_size", "oracle_accuracy", "oracle_class_accuracy", "oracle_necessity_margin", "real", "strict"])
    found = {_key(c, t) for c, t in zip(modes["class"], modes["tags"], strict=False)}
    n = len(per_mode)
    missed = clear[[_key(c, t) not in found for c, t in zip(clear["class"], clear["tags"], strict=False)]].reset_index(drop=True)
    return {
        "precision": float(per_mode["real"].mean()) if n else float("nan"),
        "recall": float(len(clear_keys & found) / len(clear_keys)) if clear_keys else float("nan"),
        "strict_precision": float(per_mode["strict"].mean()) if n else float("nan"),
        "strict_recall": float(len(strict_keys & found) / len(strict_keys)) if strict_keys else float("nan"),
        "n_found": n,
        "n_true_clear": len(clear_keys),
        "n_true_strict": len(strict_keys),
        "oracle_min_size": oracle_size,
        "per_mode": per_mode,
        "missed": missed,
    }


def evaluate_recovery(
    modes: pd.DataFrame,
    world: ToyWorld,
    *,
    min_size: int = 30,
    min_drop: float = 0.30,
    necessity: Mapping[int, float] | Sequence[float] | None = None,
    max_tags: int = 4,
    drop_margin: float = 0.05,
    necessity_margin: float = 0.02,
    classifier=None,
    predictions: pd.DataFrame | None = None,
) -> dict:
    """:func:`recovery` of modes found on the world's val split, against its oracle split.

    ``predictions`` are the classifier's predictions on the oracle split (``id, label, correct``;
    default: :func:`~primekit.toyworld.predict` with ``classifier``, the
    :class:`~primekit.toyworld.ClassifierConfig` whose predictions are evaluated).
    """
    from .train import predict

    if predictions is None:
        predictions = predict(world, "oracle", config=classifier)
    missing = {"id", "label", "correct"} - set(predictions.columns)
    if missing:
        raise ValueError(f"predictions: missing column(s) {sorted(missing)}")
    oracle = predictions.set_index("id")
    tags = world.attributes("oracle")
    return recovery(
        modes,
        tags,
        oracle["label"],
        oracle["correct"],
        size_ratio=world.config.n_oracle / world.config.n_val,
        min_size=min_size,
        min_drop=min_drop,
        necessity=necessity,
        max_tags=max_tags,
        drop_margin=drop_margin,
        necessity_margin=necessity_margin,
    )


def tagger_quality(predicted: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Per-tag precision and recall of a boolean tag matrix against the ground truth.

    Parameters
    ----------
    predicted, truth : DataFrame of bool
        Sample x tag matrices (index id); ``predicted`` is aligned to ``truth``.

    Returns
    -------
    DataFrame
        Index tag; columns ``precision, recall, f1, support`` (support = true count).
    """
    pred = predicted.reindex(index=truth.index, columns=truth.columns, fill_value=False).to_numpy(bool)
    true = truth.to_numpy(bool)
    tp = (pred & true).sum(0)
    precision = np.divide(tp, pred.sum(0), out=np.full(tp.shape, np.nan), where=pred.sum(0) > 0)
    recall = np.divide(tp, true.sum(0), out=np.full(tp.shape, np.nan), where=true.sum(0) > 0)
    with np.errstate(invalid="ignore"):  # 0/0 for a tag never predicted right: NaN
        f1 = 2 * precision * recall / (precision + recall)
    return pd.DataFrame(
        {"precision": precision, "recall": recall, "f1": f1, "support": true.sum(0)},
        index=pd.Index(truth.columns, name="tag"),
    )
