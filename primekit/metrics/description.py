"""Description quality (paper 4.3, Fig. 5): how well a mode's description matches its images.

:func:`mode_similarity_stats` scores one description against one group of images;
:func:`description_quality` scores every mode or slice of a table (PRIME's modes and the
baselines' slices alike); :func:`summarize_description_quality` gives Fig. 5's numbers per method.
:func:`mode_members` recovers a mode's group I_S from its tags.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from .._validation import check_columns, check_embeddings, check_ids, check_int, l2_normalize
from ..split import as_split
from ._common import labels_for, row_mask, tag_tuple

__all__ = [
    "QUALITY_COLUMNS",
    "mode_similarity_stats",
    "mode_members",
    "description_quality",
    "summarize_description_quality",
]

logger = logging.getLogger(__name__)

QUALITY_COLUMNS = ("class", "description", "n_inside", "n_outside", "mean", "std", "auroc")


def _auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counted 1/2 (the Mann-Whitney AUROC).

    scikit-learn's ROC area is this statistic (its trapezoidal rule counts a tie 1/2); it
    refuses a single class, which here is an empty side and gives NaN.
    """
    if len(positive) == 0 or len(negative) == 0:
        return float("nan")
    truth = np.concatenate([np.ones(len(positive), bool), np.zeros(len(negative), bool)])
    return float(roc_auc_score(truth, np.concatenate([positive, negative])))


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
    images = check_embeddings(image_embeddings, "image_embeddings")
    text = check_embeddings(text_embedding, "text_embedding", ndim=1)
    if text.shape[0] != images.shape[1]:
        raise ValueError(
            f"text_embedding: dimension {text.shape[0]} does not match image_embeddings "
            f"dimension {images.shape[1]}"
        )
    n = images.shape[0]
    inside_mask = row_mask(inside, n, "inside")
    outside_mask = row_mask(outside, n, "outside")
    if (inside_mask & outside_mask).any():
        raise ValueError("outside: overlaps inside; an image cannot be both in and out of a mode")
    return _similarity_stats(
        l2_normalize(images, "image_embeddings"),
        l2_normalize(text, "text_embedding"),
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


def mode_members(
    modes: pd.DataFrame,
    tags: pd.DataFrame,
    labels: pd.Series,
    *,
    strict: bool = False,
) -> pd.Series:
    """Sample ids of each mode's group I_S: samples of the mode's class carrying all its tags.

    Parameters
    ----------
    modes : DataFrame with columns ``class`` and ``tags`` (tuples of tag names, or the CSV
        style ``"a + b"``); an empty tuple selects the whole class.
    tags : boolean DataFrame, index = sample id, one column per tag
    labels : Series indexed by sample id
    strict : bool, default False
        Raise ``ValueError`` for a tag that is not a column of ``tags`` (a mode table that does
        not belong to this tag matrix). By default such a mode has an empty group, as on
        unseen data that never shows the tag.

    Returns
    -------
    Series (index = ``modes.index``, name ``members``) of tuples of sample ids, in the order of
    ``tags``. One mode's ids as an Index: ``pd.Index(mode_members(...).loc[key])``.
    """
    modes = check_columns(modes, "modes", ["class", "tags"])
    data = as_split(tags, labels, need_correct=False)
    mode_tags = [tag_tuple(t, "modes") for t in modes["tags"]]
    if strict:
        unknown = sorted({t for ts in mode_tags for t in ts if t not in data.column})
        if unknown:
            raise ValueError(f"modes: tag(s) {unknown} are not columns of tags")
    ids = data.ids.to_numpy(dtype=object)
    out = [
        tuple(ids[data.group_mask(cls, t)])
        for cls, t in zip(modes["class"], mode_tags, strict=True)
    ]
    return pd.Series(out, index=modes.index, name="members", dtype=object)


def _slice_members(
    slices: pd.DataFrame, tags: pd.DataFrame | None, labels: Any, label_values: np.ndarray, index: pd.Index
) -> pd.Series:
    """The ``members`` column of ``slices``, or the groups of their tags in ``tags``."""
    if "members" in slices.columns:
        return slices["members"]
    if tags is None:
        raise ValueError("tags: required when slices has no 'members' column")
    if "tags" not in slices.columns:
        raise ValueError("slices: needs a 'members' or a 'tags' column")
    tag_labels = labels if isinstance(labels, pd.Series) else pd.Series(label_values, index=index)
    return mode_members(slices, tags, tag_labels)


def _description_embeddings(
    descriptions: list[str],
    encode_text: Callable[[list[str]], np.ndarray] | None,
    text_embeddings: np.ndarray | None,
    dim: int,
) -> np.ndarray:
    """One L2-normalized text embedding per description, checked against the image dimension."""
    if encode_text is not None:
        if not callable(encode_text):
            raise TypeError("encode_text: expected a callable list[str] -> array (m, d)")
        texts = check_embeddings(encode_text(descriptions), "encode_text(...) result")
    else:
        texts = check_embeddings(text_embeddings, "text_embeddings")
    if texts.shape[0] != len(descriptions):
        raise ValueError(
            f"text_embeddings: expected {len(descriptions)} rows (one per slice), got {texts.shape[0]}"
        )
    if texts.shape[1] != dim:
        raise ValueError(
            f"text_embeddings: dimension {texts.shape[1]} does not match image_embeddings "
            f"dimension {dim}"
        )
    return l2_normalize(texts, "text_embeddings")


def _inside_outside(
    member_ids: Any,
    row: int,
    cls: Any,
    position: pd.Series,
    label_values: np.ndarray,
    n_outside: int | None,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Masks of a slice's embedded members and of the same-class images it is compared with."""
    if isinstance(member_ids, str) or not isinstance(member_ids, Iterable):
        member_ids = []  # a missing value (NaN/None), e.g. after concatenating tables
    found = position.reindex(list(member_ids))
    if found.isna().any():
        logger.info("slice %r: %d member id(s) have no embedding", row, int(found.isna().sum()))
    inside = np.zeros(len(position), bool)
    inside[found.dropna().to_numpy(dtype=np.int64)] = True
    outside = (label_values == cls) & ~inside
    if n_outside is not None and outside.sum() > n_outside:
        keep = rng.choice(np.flatnonzero(outside), size=n_outside, replace=False)
        outside = np.zeros(len(position), bool)
        outside[keep] = True
    return inside, outside


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
    slices = check_columns(slices, "slices", ["class", "description"])
    images = check_embeddings(image_embeddings, "image_embeddings")
    index = check_ids(ids, images.shape[0], "image_embeddings")
    label_values = labels_for(labels, index)
    if (encode_text is None) == (text_embeddings is None):
        raise ValueError("encode_text, text_embeddings: give exactly one of them")
    if n_outside is not None:
        n_outside = check_int(n_outside, "n_outside", 1)
    members = _slice_members(slices, tags, labels, label_values, index)
    descriptions = [str(d) for d in slices["description"]]
    texts = _description_embeddings(descriptions, encode_text, text_embeddings, images.shape[1])
    images = l2_normalize(images, "image_embeddings")
    position = pd.Series(np.arange(len(index)), index=index)
    rng = np.random.default_rng(seed)
    records = []
    for row, (cls, member_ids) in enumerate(zip(slices["class"], members, strict=True)):
        inside, outside = _inside_outside(
            member_ids, row, cls, position, label_values, n_outside, rng
        )
        stats = _similarity_stats(images, texts[row], inside, outside)
        records.append({"class": cls, "description": descriptions[row], **stats})
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
        table = check_columns(table, f"quality[{name!r}]", needed)
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
