"""The paper's evaluation of failure modes (PRIME, ICLR 2024, sections 4-5).

- Description quality (4.3, Fig. 5): :func:`mode_similarity_stats`, :func:`description_quality`,
  :func:`summarize_description_quality`. One function serves PRIME's modes and the baselines'
  slices alike: a *slice* is a row with ``class``, ``description`` and either ``members`` (sample
  ids) or ``tags`` (members recovered from a tag matrix).
- Generalization to unseen data (4.1, Fig. 9/10, Table 4): :func:`recover_groups`,
  :func:`generalization_summary`, :func:`generalization_sweep`.
- Tag combinations (5.1, Tables 1/2): :func:`tag_combination_accuracies`,
  :func:`tag_combination_summary`.
- Latent vs semantic space (5.2, Tables 3/6): :func:`distance_by_shared_tags`,
  :func:`neighbour_shared_tags`.
- Generated images (4.2, Fig. 4, A.10): :func:`success_modes`, :func:`select_generation_modes`,
  :func:`generated_validation`, :func:`generation_gap`.

Embeddings are plain arrays of shape (n, d) whose rows are aligned with a sequence of sample ids;
tag matrices, labels and correctness follow the contract of :func:`primekit.find_failure_modes`.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd

from . import search

__all__ = [
    "mode_similarity_stats",
    "mode_members",
    "description_quality",
    "summarize_description_quality",
    "recover_groups",
    "generalization_summary",
    "generalization_sweep",
    "tag_combination_accuracies",
    "tag_combination_summary",
    "distance_by_shared_tags",
    "neighbour_shared_tags",
    "success_modes",
    "select_generation_modes",
    "generated_validation",
    "generation_gap",
]

logger = logging.getLogger(__name__)

QUALITY_COLUMNS = ("class", "description", "n_inside", "n_outside", "mean", "std", "auroc")
RECOVERED_COLUMNS = (
    "test_size",
    "test_accuracy",
    "test_class_size",
    "test_class_accuracy",
    "test_drop",
)


# ---------------------------------------------------------------------------------------------
# validation helpers


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


# ---------------------------------------------------------------------------------------------
# description quality (paper 4.3)


def _auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counted 1/2 (the Mann-Whitney AUROC)."""
    if len(positive) == 0 or len(negative) == 0:
        return float("nan")
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([positive, negative]))
    n_pos, n_neg = len(positive), len(negative)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def mode_similarity_stats(
    image_embeddings: np.ndarray,
    text_embedding: np.ndarray,
    inside: np.ndarray | Sequence[int],
    outside: np.ndarray | Sequence[int],
) -> dict[str, float]:
    """Similarity of one description to the images of its mode (paper 4.3).

    ``sim(x, t) = <f_vision(x), f_text(t)>`` with both embeddings L2-normalized here.

    Parameters
    ----------
    image_embeddings : array, shape (n, d)
        Image embeddings (any norm).
    text_embedding : array, shape (d,)
        Embedding of the mode's description.
    inside, outside : boolean mask of shape (n,) or array of row positions
        Images of the mode, and the images it is compared with (in the paper: images of the same
        class that are not in the mode). They must not overlap.

    Returns
    -------
    dict
        ``mean`` and ``std`` (population, ddof=0) of the similarity over inside images, ``auroc``
        of inside vs outside similarities (NaN when either side is empty; ties count 1/2), and
        the counts ``n_inside``, ``n_outside``.
    """
    images = _embeddings(image_embeddings, "image_embeddings")
    text = _embeddings(text_embedding, "text_embedding", ndim=1)
    if text.shape[0] != images.shape[1]:
        raise ValueError(
            f"text_embedding: dimension {text.shape[0]} does not match image_embeddings "
            f"dimension {images.shape[1]}"
        )
    n = images.shape[0]
    inside_mask = _row_mask(inside, n, "inside")
    outside_mask = _row_mask(outside, n, "outside")
    if (inside_mask & outside_mask).any():
        raise ValueError("outside: overlaps inside; an image cannot be both in and out of a mode")
    return _similarity_stats(
        _l2_normalize(images, "image_embeddings"),
        _l2_normalize(text, "text_embedding"),
        inside_mask,
        outside_mask,
    )


def _similarity_stats(
    images: np.ndarray, text: np.ndarray, inside: np.ndarray, outside: np.ndarray
) -> dict[str, float]:
    sim_in = images[inside] @ text
    sim_out = images[outside] @ text
    return {
        "mean": float(sim_in.mean()) if len(sim_in) else float("nan"),
        "std": float(sim_in.std()) if len(sim_in) else float("nan"),
        "auroc": _auroc(sim_in, sim_out),
        "n_inside": int(len(sim_in)),
        "n_outside": int(len(sim_out)),
    }


def mode_members(modes: pd.DataFrame, tags: pd.DataFrame, labels: pd.Series) -> pd.Series:
    """Sample ids of each mode's group I_S: samples of the mode's class carrying all its tags.

    Parameters
    ----------
    modes : DataFrame with columns ``class`` and ``tags`` (tuples of tag names)
    tags : boolean DataFrame, index = sample id, one column per tag
    labels : Series indexed by sample id

    Returns
    -------
    Series (index = ``modes.index``) of tuples of sample ids. A tag absent from ``tags`` gives an
    empty group.
    """
    modes = _mode_table(modes, "modes", ["class", "tags"])
    data = _Tagged(tags, labels, None)
    ids = data.index.to_numpy(dtype=object)
    out = [
        tuple(ids[data.group_mask(cls, _tag_tuple(t, "modes"))])
        for cls, t in zip(modes["class"], modes["tags"], strict=True)
    ]
    return pd.Series(out, index=modes.index, name="members", dtype=object)


def description_quality(
    slices: pd.DataFrame,
    image_embeddings: np.ndarray,
    ids: Sequence | pd.Index,
    labels: pd.Series | Sequence,
    *,
    encode_text: Callable[[list[str]], np.ndarray] | None = None,
    text_embeddings: np.ndarray | None = None,
    tags: pd.DataFrame | None = None,
    n_outside: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Mean, std and AUROC of image-description similarity for every mode or slice (paper 4.3).

    Parameters
    ----------
    slices : DataFrame
        One row per mode/slice with columns ``class``, ``description`` and either ``members``
        (iterable of sample ids, as the baselines write) or ``tags`` (PRIME's modes; then pass
        the tag matrix ``tags=`` and the members are recovered with :func:`mode_members`).
    image_embeddings : array, shape (n, d)
        Image embeddings, rows aligned with ``ids``; L2-normalized here.
    ids : sequence or Index of n unique sample ids
    labels : Series indexed by sample id, or array of n labels aligned with ``ids``
    encode_text : callable, optional
        ``encode_text(list_of_descriptions) -> array (m, d)``.
    text_embeddings : array, shape (len(slices), d), optional
        Precomputed embeddings of the descriptions, one row per row of ``slices``. Give exactly
        one of ``encode_text`` and ``text_embeddings``.
    tags : boolean DataFrame, optional
        Sample x tag matrix; required when ``slices`` has no ``members`` column.
    n_outside : int, optional
        Compare with this many randomly drawn outside images (paper: "randomly sampled images
        outside of the failure mode with the same label"); default all of them.
    seed : int
        Seed of that draw.

    Returns
    -------
    DataFrame, index = ``slices.index``
        Columns ``class, description, n_inside, n_outside, mean, std, auroc``. Outside images are
        the images of the same class that are not members. Member ids without an embedding are
        ignored (logged); a slice with no embedded member has NaN statistics.
    """
    slices = _mode_table(slices, "slices", ["class", "description"])
    images = _embeddings(image_embeddings, "image_embeddings")
    index = _ids(ids, images.shape[0])
    label_values = _labels_for(labels, index)
    if (encode_text is None) == (text_embeddings is None):
        raise ValueError("encode_text, text_embeddings: give exactly one of them")
    if n_outside is not None:
        n_outside = _check_int(n_outside, "n_outside", 1)
    if "members" in slices.columns:
        members = slices["members"]
    elif tags is not None:
        if "tags" not in slices.columns:
            raise ValueError("slices: needs a 'members' or a 'tags' column")
        tag_labels = pd.Series(label_values, index=index)
        if isinstance(labels, pd.Series):
            tag_labels = labels
        members = mode_members(slices, tags, tag_labels)
    else:
        raise ValueError("tags: required when slices has no 'members' column")
    descriptions = [str(d) for d in slices["description"]]
    if encode_text is not None:
        if not callable(encode_text):
            raise TypeError("encode_text: expected a callable list[str] -> array (m, d)")
        texts = _embeddings(encode_text(descriptions), "encode_text(...) result")
    else:
        texts = _embeddings(text_embeddings, "text_embeddings")
    if texts.shape[0] != len(slices):
        raise ValueError(
            f"text_embeddings: expected {len(slices)} rows (one per slice), got {texts.shape[0]}"
        )
    if texts.shape[1] != images.shape[1]:
        raise ValueError(
            f"text_embeddings: dimension {texts.shape[1]} does not match image_embeddings "
            f"dimension {images.shape[1]}"
        )
    images = _l2_normalize(images, "image_embeddings")
    texts = _l2_normalize(texts, "text_embeddings")
    position = pd.Series(np.arange(len(index)), index=index)
    rng = np.random.default_rng(seed)
    records = []
    for row, (cls, member_ids) in enumerate(zip(slices["class"], members, strict=True)):
        if isinstance(member_ids, str) or not isinstance(member_ids, Iterable):
            member_ids = []  # a missing value (NaN/None), e.g. after concatenating tables
        member_ids = list(member_ids)
        found = position.reindex(member_ids)
        if found.isna().any():
            logger.info("slice %r: %d member id(s) have no embedding", row, int(found.isna().sum()))
        inside = np.zeros(len(index), bool)
        inside[found.dropna().to_numpy(dtype=np.int64)] = True
        outside = (label_values == cls) & ~inside
        if n_outside is not None and outside.sum() > n_outside:
            keep = rng.choice(np.flatnonzero(outside), size=n_outside, replace=False)
            outside = np.zeros(len(index), bool)
            outside[keep] = True
        stats = _similarity_stats(images, texts[row], inside, outside)
        records.append(
            {
                "class": cls,
                "description": descriptions[row],
                "n_inside": stats["n_inside"],
                "n_outside": stats["n_outside"],
                "mean": stats["mean"],
                "std": stats["std"],
                "auroc": stats["auroc"],
            }
        )
    out = pd.DataFrame.from_records(records, columns=list(QUALITY_COLUMNS))
    out.index = slices.index
    return out


def summarize_description_quality(
    quality: pd.DataFrame | Mapping[str, pd.DataFrame],
    *,
    how: str = "modes",
) -> pd.DataFrame:
    """Fig. 5: the similarity mean, std and AUROC of each method's modes, summarized.

    Parameters
    ----------
    quality : DataFrame from :func:`description_quality`, or a mapping method name -> such a
        DataFrame (e.g. ``{"PRIME": ..., "DOMINO": ..., "Failure directions": ...}``).
    how : {"modes", "pooled"}
        ``"modes"`` (default): average the per-mode mean, std and AUROC over modes.
        ``"pooled"``: the mean and std of sim(x, T_j) over all pairs (mode j, image x in I_j),
        a literal reading of paper 4.3 (larger modes weigh more; the std then includes the
        spread between modes); AUROC is still averaged over modes.

    Returns
    -------
    DataFrame indexed by method (``"all"`` for a single table) with columns ``n_modes`` (modes
    with at least one member), ``mean``, ``std``, ``auroc`` (NaN skipped) and the standard
    errors over modes ``mean_sem``, ``std_sem``, ``auroc_sem``.
    """
    if how not in ("modes", "pooled"):
        raise ValueError(f"how: expected 'modes' or 'pooled', got {how!r}")
    tables = {"all": quality} if isinstance(quality, pd.DataFrame) else dict(quality)
    if not tables:
        raise ValueError("quality: no table given")
    rows = {}
    for name, table in tables.items():
        needed = ["mean", "std", "auroc"] + (["n_inside"] if how == "pooled" else [])
        table = _mode_table(table, f"quality[{name!r}]", needed)
        valid = table[table["mean"].notna()]
        row: dict[str, float] = {"n_modes": int(len(valid))}
        for col in ("mean", "std", "auroc"):
            values = valid[col].dropna().to_numpy(dtype=float)
            row[col] = float(values.mean()) if len(values) else float("nan")
            row[f"{col}_sem"] = (
                float(values.std(ddof=1) / np.sqrt(len(values)))
                if len(values) > 1
                else float("nan")
            )
        if how == "pooled" and len(valid):
            weights = valid["n_inside"].to_numpy(dtype=float)
            means = valid["mean"].to_numpy(dtype=float)
            stds = valid["std"].to_numpy(dtype=float)
            pooled = float(np.average(means, weights=weights))
            row["mean"] = pooled
            row["std"] = float(
                np.sqrt(np.average(stds**2 + (means - pooled) ** 2, weights=weights))
            )
        rows[name] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "method"
    return out[["n_modes", "mean", "std", "auroc", "mean_sem", "std_sem", "auroc_sem"]]


# ---------------------------------------------------------------------------------------------
# generalization to unseen data (4.1)


def recover_groups(
    modes: pd.DataFrame,
    tags_test: pd.DataFrame,
    labels_test: pd.Series,
    correct_test: pd.Series,
) -> pd.DataFrame:
    """Recover every mode's group on unseen data from its tags alone (paper 4.1: I'_S).

    Parameters
    ----------
    modes : failure-mode table (columns ``class``, ``tags``, ``drop`` at least)
    tags_test, labels_test, correct_test : the unseen data, same contract as
        :func:`primekit.find_failure_modes`.

    Returns
    -------
    DataFrame
        A copy of ``modes`` with the columns ``test_size`` (|I'_S|), ``test_accuracy`` (A'_S,
        NaN when the group is empty), ``test_class_size``, ``test_class_accuracy`` (A'_c) and
        ``test_drop`` (A'_c - A'_S). A tag that no unseen sample carries gives an empty group.
    """
    modes = _mode_table(modes, "modes", ["class", "tags", "drop"])
    data = _Tagged(tags_test, labels_test, correct_test, prefix="test data: ")
    out = modes.copy()
    records = []
    absent_tags: set[str] = set()
    for cls, mode_tags in zip(modes["class"], modes["tags"], strict=True):
        mode_tags = _tag_tuple(mode_tags, "modes")
        absent_tags.update(t for t in mode_tags if t not in data.column)
        class_n, class_acc = data.accuracy(data.class_mask(cls))
        n, acc = data.accuracy(data.group_mask(cls, mode_tags))
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
    recovered = _mode_table(recovered, "recovered", ["drop", "test_drop", "test_size"])
    min_test_drop = _check_real(min_test_drop, "min_test_drop", -1.0, 1.0)
    min_test_size = _check_int(min_test_size, "min_test_size", 1)
    evaluated = recovered[
        (recovered["test_size"] >= min_test_size) & recovered["test_drop"].notna()
    ]
    train = evaluated["drop"].to_numpy(dtype=float)
    test = evaluated["test_drop"].to_numpy(dtype=float)
    corr = spear = float("nan")
    if len(train) >= 2 and train.std() > 0 and test.std() > 0:
        from scipy.stats import spearmanr

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
    tags: pd.DataFrame,
    labels: pd.Series,
    correct: pd.Series,
    tags_test: pd.DataFrame,
    labels_test: pd.Series,
    correct_test: pd.Series,
    *,
    grid: Iterable[tuple[int, float]],
    min_test_drop: float = 0.25,
    min_test_size: int = 1,
    **search_options: Any,
) -> pd.DataFrame:
    """Appendix A.5 / Fig. 10 / Table 4: search with several (s, a) and measure generalization.

    Parameters
    ----------
    tags, labels, correct : data the modes are found on
    tags_test, labels_test, correct_test : unseen data
    grid : iterable of (min_size, min_drop) pairs, e.g. ``[(25, .25), (30, .30), (50, .30)]``
    min_test_drop, min_test_size : passed to :func:`generalization_summary`
    **search_options : other options of :func:`primekit.find_failure_modes` (necessity, ...)

    Returns
    -------
    DataFrame, one row per grid point: ``min_size, min_drop`` and the keys of
    :func:`generalization_summary`.
    """
    grid = list(grid)
    if not grid:
        raise ValueError("grid: expected at least one (min_size, min_drop) pair")
    rows = []
    for point in grid:
        if not isinstance(point, (tuple, list)) or len(point) != 2:
            raise TypeError(f"grid: expected (min_size, min_drop) pairs, got {point!r}")
        min_size, min_drop = point
        modes = search.find_failure_modes(
            tags, labels, correct, min_size=min_size, min_drop=min_drop, **search_options
        )
        summary = generalization_summary(
            recover_groups(modes, tags_test, labels_test, correct_test),
            min_test_drop=min_test_drop,
            min_test_size=min_test_size,
        )
        rows.append({"min_size": min_size, "min_drop": min_drop, **summary})
    return pd.DataFrame.from_records(rows)


# ---------------------------------------------------------------------------------------------
# tag combinations (5.1)


def tag_combination_accuracies(
    modes: pd.DataFrame,
    tags: pd.DataFrame,
    labels: pd.Series,
    correct: pd.Series,
    *,
    n_tags: int | None = None,
) -> pd.DataFrame:
    """Table 1: accuracy on the images carrying every non-empty subset of each mode's tags.

    Usually run on unseen data (the paper's Tables 1/2 are on D'). The group of a subset S' is
    I_{S'} (images of the class carrying at least the tags of S', whatever the others).

    Parameters
    ----------
    modes : failure-mode table (``class``, ``tags``)
    tags, labels, correct : the data to measure on (contract of ``find_failure_modes``)
    n_tags : int, optional
        Only modes with this many tags.

    Returns
    -------
    DataFrame, one row per (mode, non-empty subset), the full set first: ``mode`` (index label of
    the mode in ``modes``), ``class``, ``mode_tags``, ``subset``, ``subset_size``, ``size``,
    ``accuracy`` (NaN for an empty group), ``class_accuracy``, ``drop``.
    """
    modes = _mode_table(modes, "modes", ["class", "tags"])
    if n_tags is not None:
        n_tags = _check_int(n_tags, "n_tags", 1)
    data = _Tagged(tags, labels, correct)
    records = []
    for key, cls, mode_tags in zip(modes.index, modes["class"], modes["tags"], strict=True):
        mode_tags = _tag_tuple(mode_tags, "modes")
        if n_tags is not None and len(mode_tags) != n_tags:
            continue
        _, class_acc = data.accuracy(data.class_mask(cls))
        for k in range(len(mode_tags), 0, -1):
            for subset in itertools.combinations(mode_tags, k):
                n, acc = data.accuracy(data.group_mask(cls, subset))
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
    tags: pd.DataFrame,
    labels: pd.Series,
    correct: pd.Series,
    *,
    n_tags: int = 3,
    how: str = "subsets",
) -> pd.DataFrame:
    """Table 2: average accuracy drop on groups of k, k-1, ..., 1 of the tags of k-tag modes.

    Parameters
    ----------
    modes : failure-mode table; only modes with ``n_tags`` tags are used
    tags, labels, correct : data to measure on (the paper uses unseen data D')
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
    n_tags = _check_int(n_tags, "n_tags", 1)
    if how not in ("subsets", "at_least"):
        raise ValueError(f"how: expected 'subsets' or 'at_least', got {how!r}")
    modes = _mode_table(modes, "modes", ["class", "tags"])
    per_mode: dict[int, list[tuple[float, float]]] = {j: [] for j in range(n_tags, 0, -1)}
    if how == "subsets":
        combos = tag_combination_accuracies(modes, tags, labels, correct, n_tags=n_tags)
        if len(combos):
            grouped = combos.groupby(["mode", "subset_size"])[["drop", "accuracy"]].mean()
            for (_, j), row in grouped.iterrows():
                per_mode[int(j)].append((row["drop"], row["accuracy"]))
    else:
        data = _Tagged(tags, labels, correct)
        for cls, mode_tags in zip(modes["class"], modes["tags"], strict=True):
            mode_tags = _tag_tuple(mode_tags, "modes")
            if len(mode_tags) != n_tags:
                continue
            _, class_acc = data.accuracy(data.class_mask(cls))
            for j in range(n_tags, 0, -1):
                _, acc = data.accuracy(data.group_mask(cls, mode_tags, any_of=j))
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


# ---------------------------------------------------------------------------------------------
# latent vs semantic space (5.2)


def _tag_matrix(tags: Any, n: int, argument: str = "tags") -> np.ndarray:
    if isinstance(tags, pd.DataFrame):
        values = tags.to_numpy()
    else:
        values = np.asarray(tags)
    if values.ndim != 2 or values.shape[0] != n:
        raise ValueError(
            f"{argument}: expected a sample x tag matrix with {n} rows, got {values.shape}"
        )
    return _as_bool(values, argument)


def _pair_distances(emb: np.ndarray, i: np.ndarray, j: np.ndarray, chunk: int = 8192) -> np.ndarray:
    out = np.empty(len(i))
    for start in range(0, len(i), chunk):
        sl = slice(start, start + chunk)
        out[sl] = np.linalg.norm(emb[i[sl]] - emb[j[sl]], axis=1)
    return out


def distance_by_shared_tags(
    embeddings: np.ndarray,
    tags: pd.DataFrame | np.ndarray,
    *,
    thresholds: Sequence[int] = (0, 1, 3, 5, 7),
    n_pairs: int = 20_000,
    max_draws: int = 2_000_000,
    normalize: bool = False,
    seed: int = 0,
) -> pd.DataFrame:
    """Table 3: distance between two images conditioned on sharing at least d tags.

    Pairs of distinct images are drawn uniformly at random; "sharing" a tag means both images
    carry it. For every d, the distances of pairs with at least d shared tags are compared with
    those of independent random pairs.

    Parameters
    ----------
    embeddings : array, shape (n, d)
        Image embeddings, rows aligned with ``tags`` (the paper: CLIP ViT-B/16, raw features,
        Euclidean distance; ``normalize=True`` L2-normalizes first).
    tags : boolean DataFrame or array, shape (n, n_tags)
    thresholds : the values of d
    n_pairs : int
        Pairs wanted per threshold (and random reference pairs); draws stop when every threshold
        has them or after ``max_draws`` pairs.
    seed : int

    Returns
    -------
    DataFrame indexed by ``min_shared`` = d with columns ``n_pairs``, ``mean``, ``std`` (of the
    distance) and ``probability``: P(distance of a pair sharing >= d tags > distance of a random
    pair), ties counted 1/2. Rows with no pair are NaN.
    """
    emb = _embeddings(embeddings, "embeddings")
    n = emb.shape[0]
    if n < 2:
        raise ValueError("embeddings: need at least 2 images")
    matrix = _tag_matrix(tags, n)
    thresholds = [_check_int(d, "thresholds", 0) for d in thresholds]
    if not thresholds:
        raise ValueError("thresholds: expected at least one value of d")
    n_pairs = _check_int(n_pairs, "n_pairs", 1)
    max_draws = _check_int(max_draws, "max_draws", n_pairs)
    if normalize:
        emb = _l2_normalize(emb, "embeddings")
    rng = np.random.default_rng(seed)
    reference = None
    collected: dict[int, list[np.ndarray]] = {d: [] for d in thresholds}
    counts = dict.fromkeys(thresholds, 0)
    drawn = 0
    batch = max(n_pairs, 10_000)
    while drawn < max_draws:
        size = min(batch, max_draws - drawn)
        i = rng.integers(0, n, size)
        j = rng.integers(0, n - 1, size)
        j = j + (j >= i)  # distinct pairs, uniform
        drawn += size
        shared = (matrix[i] & matrix[j]).sum(axis=1)
        dist = _pair_distances(emb, i, j)
        if reference is None:
            reference = dist[:n_pairs]
        for d in thresholds:
            if counts[d] < n_pairs:
                take = dist[shared >= d][: n_pairs - counts[d]]
                collected[d].append(take)
                counts[d] += len(take)
        if all(c >= n_pairs for c in counts.values()):
            break
    ref_sorted = np.sort(reference)
    rows = {}
    for d in thresholds:
        values = np.concatenate(collected[d]) if collected[d] else np.empty(0)
        if len(values) == 0:
            rows[d] = {"n_pairs": 0, "mean": np.nan, "std": np.nan, "probability": np.nan}
            logger.warning("distance_by_shared_tags: no pair shares %d or more tags", d)
            continue
        below = np.searchsorted(ref_sorted, values, side="left")
        not_above = np.searchsorted(ref_sorted, values, side="right")
        prob = float(((below + not_above) / 2).mean() / len(ref_sorted))
        rows[d] = {
            "n_pairs": int(len(values)),
            "mean": float(values.mean()),
            "std": float(values.std()),
            "probability": prob,
        }
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "min_shared"
    return out


def _max_shared_tagset(bitsets: list[int], min_support: int, max_nodes: int) -> tuple[int, bool]:
    """Largest number of the given tag columns (Python-int bitsets over samples) that at least
    ``min_support`` samples carry together. Depth-first with support and size bounds."""
    items = [b for b in bitsets if b.bit_count() >= min_support]
    items.sort(key=lambda b: -b.bit_count())
    best = 0
    nodes = 0
    exhausted = True

    def dfs(current: int | None, size: int, start: int) -> None:
        nonlocal best, nodes, exhausted
        if size > best:
            best = size
        for k in range(start, len(items)):
            if size + (len(items) - k) <= best:
                return
            nodes += 1
            if nodes > max_nodes:
                exhausted = False
                return
            nxt = items[k] if current is None else current & items[k]
            if nxt.bit_count() >= min_support:
                dfs(nxt, size + 1, k + 1)
                if not exhausted:
                    return

    dfs(None, 0, 0)
    return best, exhausted


def neighbour_shared_tags(
    embeddings: np.ndarray,
    tags: pd.DataFrame | np.ndarray,
    *,
    n_neighbours: Sequence[int] = (10, 20, 50),
    fraction: float = 0.9,
    n_queries: int = 200,
    normalize: bool = False,
    max_nodes: int = 200_000,
    seed: int = 0,
) -> pd.DataFrame:
    """Table 6: shared tags among nearest neighbours in embedding space vs in tag space.

    For a random image x: C = its N nearest neighbours in embedding space (x excluded,
    Euclidean). *Latent*: the number of tags carried by at least ``fraction`` * N images of C.
    *Semantic*: the largest number of tags of x that at least N other images carry together
    (x's N neighbours in tag space). Averaged over ``n_queries`` random images x.

    Parameters
    ----------
    embeddings : array, shape (n, d)
    tags : boolean DataFrame or array, shape (n, n_tags)
    n_neighbours : values of N
    fraction : float in (0, 1], default 0.9
        alpha of the paper ("tags that appear in at least alpha*N images of C").
    n_queries : int
        Number of random images x.
    normalize : bool
        L2-normalize embeddings before the neighbour search (cosine neighbours).
    max_nodes : int
        Bound on the search for the largest shared tag set per query; when hit, the best set
        found so far is used (a lower bound) and a warning is logged.
    seed : int

    Returns
    -------
    DataFrame indexed by ``n_neighbours`` = N with columns ``latent_mean``, ``latent_std``,
    ``semantic_mean``, ``semantic_std``, ``n_queries``.
    """
    emb = _embeddings(embeddings, "embeddings")
    n = emb.shape[0]
    matrix = _tag_matrix(tags, n)
    sizes = [_check_int(v, "n_neighbours", 1) for v in n_neighbours]
    if not sizes:
        raise ValueError("n_neighbours: expected at least one value of N")
    if max(sizes) >= n:
        raise ValueError(
            f"n_neighbours: N must be below the number of images ({n}), got {max(sizes)}"
        )
    fraction = _check_real(fraction, "fraction", 0.0, 1.0)
    if fraction == 0.0:
        raise ValueError("fraction: must be > 0")
    n_queries = min(_check_int(n_queries, "n_queries", 1), n)
    max_nodes = _check_int(max_nodes, "max_nodes", 1)
    if normalize:
        emb = _l2_normalize(emb, "embeddings")
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(seed)
    queries = rng.choice(n, size=n_queries, replace=False)
    knn = NearestNeighbors(n_neighbors=max(sizes) + 1).fit(emb)
    _, neighbours = knn.kneighbors(emb[queries])
    # Python ints as bitsets over samples, one per tag
    packed = np.packbits(matrix, axis=0)  # (ceil(n/8), n_tags), big-endian bits
    columns = [int.from_bytes(packed[:, t].tobytes(), "big") for t in range(matrix.shape[1])]
    shift = packed.shape[0] * 8 - n  # bit of sample s is at position (n - 1 - s) + shift
    latent: dict[int, list[int]] = {N: [] for N in sizes}
    semantic: dict[int, list[int]] = {N: [] for N in sizes}
    truncated = 0
    for q, row in zip(queries, neighbours, strict=True):
        row = row[row != q][: max(sizes)]
        own = np.flatnonzero(matrix[q])
        others_mask = ~(1 << (n - 1 - int(q) + shift))
        own_bits = [columns[t] & others_mask for t in own]
        for N in sizes:
            counts = matrix[row[:N]].sum(axis=0)
            latent[N].append(int((counts >= fraction * N - 1e-9).sum()))
            best, exact = _max_shared_tagset(own_bits, N, max_nodes)
            truncated += not exact
            semantic[N].append(best)
    if truncated:
        logger.warning("neighbour_shared_tags: %d searches hit max_nodes (lower bounds)", truncated)
    rows = {
        N: {
            "latent_mean": float(np.mean(latent[N])),
            "latent_std": float(np.std(latent[N])),
            "semantic_mean": float(np.mean(semantic[N])),
            "semantic_std": float(np.std(semantic[N])),
            "n_queries": n_queries,
        }
        for N in sizes
    }
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "n_neighbours"
    return out


# ---------------------------------------------------------------------------------------------
# generated images (4.2)


def success_modes(
    tags: pd.DataFrame,
    labels: pd.Series,
    correct: pd.Series,
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
    tags, labels, correct : as for :func:`primekit.find_failure_modes`
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
    min_gain = _check_real(min_gain, "min_gain", 0.0, 1.0)
    if not isinstance(correct, pd.Series):
        correct = pd.Series(np.asarray(correct), index=getattr(tags, "index", None))
    inverted = ~_as_bool(correct.to_numpy(), "correct")
    modes = search.find_failure_modes(
        tags, labels, pd.Series(inverted, index=correct.index), min_drop=min_gain, **search_options
    )
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
    per_class = _check_int(per_class, "per_class", 1)
    failure_modes = _mode_table(failure_modes, "failure_modes", ["class", "tags", "drop", "size"])
    success = _mode_table(success, "success", ["class", "tags", "drop", "size"])
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
    modes = _mode_table(modes, "modes", ["class", "tags"])
    if not callable(render_fn):
        raise TypeError("render_fn: expected a callable (cls, tags, n, seed) -> images")
    if not callable(predict_fn):
        raise TypeError("predict_fn: expected a callable images -> predicted labels")
    n_per_mode = _check_int(n_per_mode, "n_per_mode", 1)
    seed = _check_int(seed, "seed", 0)
    accuracies, counts = [], []
    for i, (cls, mode_tags) in enumerate(zip(modes["class"], modes["tags"], strict=True)):
        images = render_fn(cls, _tag_tuple(mode_tags, "modes"), n_per_mode, seed=seed + i)
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
    validated = _mode_table(validated, "validated", ["class", "kind", "generated_accuracy"])
    table = validated.pivot_table(
        index="class", columns="kind", values="generated_accuracy", aggfunc="mean"
    )
    out = pd.DataFrame(index=table.index)
    out["failure_accuracy"] = table["failure"] if "failure" in table else np.nan
    out["success_accuracy"] = table["success"] if "success" in table else np.nan
    out["gap"] = out["success_accuracy"] - out["failure_accuracy"]
    return out
