"""The samples table (DESIGN.md "Data contracts") and the join of samples with tags for the search.

Samples: one row per sample with ``id`` (unique), ``label`` and ``pred`` or ``correct``; optional
``split``, ``path``, ``confidence``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import pandas as pd

from ._join import JoinReport, join_report
from ._validation import has_duplicates
from .io import read_table
from .tags import read_tags, tags_to_matrix, validate_tag_table

__all__ = [
    "validate_samples",
    "read_samples",
    "search_inputs",
    "load_search_inputs",
    "align_tags",
    "select_split",
]

logger = logging.getLogger(__name__)


def validate_samples(samples: pd.DataFrame, *, argument: str = "samples") -> pd.DataFrame:
    """Check a samples table and return a copy with str ``id`` and a boolean ``correct`` column.

    ``correct`` is derived from ``pred == label`` when absent. Raises ``ValueError``/``TypeError``
    naming ``argument`` for missing columns, duplicate ids, missing labels and non-0/1 ``correct``.
    """
    if not isinstance(samples, pd.DataFrame):
        raise TypeError(f"{argument}: expected a pandas DataFrame, got {type(samples).__name__}")
    missing = [c for c in ("id", "label") if c not in samples.columns]
    if missing:
        raise ValueError(f"{argument}: missing column(s) {missing}; need id, label and correct or pred")
    if "correct" not in samples.columns and "pred" not in samples.columns:
        raise ValueError(f"{argument}: needs a 'correct' (0/1) or a 'pred' column")
    out = samples.copy()
    if out["id"].isna().any():
        raise ValueError(f"{argument}: column 'id' has missing values")
    out["id"] = out["id"].astype(str)
    if has_duplicates(pd.Index(out["id"])):  # no hash when sorted; else 2-3x faster than duplicated()
        dup = out["id"].duplicated()
        raise ValueError(f"{argument}: duplicate id {out.loc[dup, 'id'].iloc[0]!r}")
    if out["label"].isna().any():
        raise ValueError(f"{argument}: column 'label' has {int(out['label'].isna().sum())} missing values")
    if "correct" in out.columns:
        values = out["correct"]
        if values.isna().any():
            raise ValueError(f"{argument}: column 'correct' has missing values")
        if values.dtype != bool:
            numeric = pd.to_numeric(values, errors="coerce")
            if numeric.isna().any() or not numeric.isin([0, 1]).all():
                raise ValueError(f"{argument}: column 'correct' must hold 0/1 or true/false values")
            values = numeric.astype(bool)
        out["correct"] = values.astype(bool)
    else:
        if out["pred"].isna().any():
            raise ValueError(f"{argument}: column 'pred' has missing values")
        out["correct"] = out["pred"].astype(str).to_numpy() == out["label"].astype(str).to_numpy()
    return out.reset_index(drop=True)


def read_samples(path: str | os.PathLike, *, argument: str = "samples") -> pd.DataFrame:
    """Read and validate a samples table (CSV or Parquet)."""
    return validate_samples(read_table(path, argument=argument), argument=argument)


def search_inputs(
    samples: pd.DataFrame,
    tags: pd.DataFrame,
    *,
    threshold: float | Mapping[str, float] = 0.5,
) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Join a samples table and a long tag table into the three inputs of the search.

    Every tag row must belong to a sample (a ``ValueError`` names the first stray id); samples
    without any tag get an all-False row.

    Returns
    -------
    (matrix, labels, correct)
        Boolean matrix indexed by sample id and the two Series on the same index.
    """
    samples = validate_samples(samples)
    tags = validate_tag_table(tags)
    stray = ~tags["id"].isin(samples["id"])
    if stray.any():
        raise ValueError(
            f"tags: {int(tags.loc[stray, 'id'].nunique())} id(s) are not in samples, e.g. "
            f"{tags.loc[stray, 'id'].iloc[0]!r}"
        )
    matrix = tags_to_matrix(tags, threshold=threshold, ids=samples["id"])
    index = matrix.index
    labels = pd.Series(samples["label"].to_numpy(), index=index, name="label")
    correct = pd.Series(samples["correct"].to_numpy(dtype=bool), index=index, name="correct")
    return matrix, labels, correct


def align_tags(
    samples: pd.DataFrame, tags: pd.DataFrame, *, argument: str = "tags", log: bool = True
) -> tuple[pd.DataFrame, JoinReport]:
    """Keep the tag rows whose id is a sample; count what did not match (logged as warnings).

    The usual case: tags computed once for a whole folder, samples for one split. Tag ids without
    a sample are dropped; samples without any tag row stay (no tag). Bad values (scores outside
    [0, 1], duplicate ids) are still errors, raised by the validators. ``log=False`` leaves the
    warnings to the caller (``report.messages()``).

    Returns
    -------
    (tags, report)
        The kept tag rows and the :class:`primekit._join.JoinReport` of the join.
    """
    samples = validate_samples(samples)
    tags = validate_tag_table(tags, argument=argument)
    report = join_report(samples["id"], tags["id"], labels=samples["label"])
    if log:
        report.log(argument=argument, log=logger)
    return tags[tags["id"].isin(samples["id"])].reset_index(drop=True), report


def select_split(samples: pd.DataFrame, split: str | None, *, argument: str = "split") -> pd.DataFrame:
    """The rows of one split (``None``: all); ``ValueError`` naming ``argument`` if the samples
    have no ``split`` column or no row of that split."""
    if split is None:
        return samples
    if "split" not in samples.columns:
        raise ValueError(f"{argument}: the samples have no 'split' column to select {split!r} from")
    part = samples[samples["split"].astype(str) == split].reset_index(drop=True)
    if part.empty:
        found = sorted(samples["split"].astype(str).unique())
        raise ValueError(f"{argument}: no sample has split == {split!r} (found {found})")
    return part


def load_search_inputs(
    samples_path: str | os.PathLike,
    tags_path: str | os.PathLike,
    *,
    threshold: float | Mapping[str, float] = 0.5,
) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """:func:`search_inputs` from files (CSV or Parquet)."""
    samples = read_samples(samples_path, argument="samples")
    tags = read_tags(tags_path, argument="tags")
    return search_inputs(samples, tags, threshold=threshold)
