"""The join of a samples table with a tag table: what did not match, counted and reported.

A tag table is often computed once for a whole image folder while the samples cover one split, a
tagger skips unreadable images, and a class may carry no tag at all. None of this is an error: the
rows that cannot be used are dropped and counted, and the counts are logged as one warning each and
kept with the result. The search on a long tag table (``primekit._bitsets``) builds the report from
its codes; :func:`join_report` builds the same report from plain id arrays for smaller joins (the
study and the CLI).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["JoinReport", "join_report"]

logger = logging.getLogger(__name__)

_EXAMPLES = 3  # ids or classes quoted in a warning


@dataclass(frozen=True)
class JoinReport:
    """Counts of what the join of samples and tags dropped or found missing.

    Attributes
    ----------
    n_samples, n_tag_rows : int
        Rows of the samples table and of the tag table.
    stray_ids, stray_rows : int
        Distinct ids of the tag table that no sample has, and the tag rows they carry (dropped).
    untagged_samples : int
        Samples without any tag row (kept: they carry no tag).
    classes_without_tags : tuple
        Classes none of whose samples has a tag row (they can have no failure mode).
    unknown_classes : tuple
        Classes named by the tag data (a ``class`` partition of a dataset) that no sample has.
    stray_examples : tuple of str
        A few of the stray ids.
    """

    n_samples: int
    n_tag_rows: int
    stray_ids: int = 0
    stray_rows: int = 0
    untagged_samples: int = 0
    classes_without_tags: tuple = ()
    unknown_classes: tuple = ()
    stray_examples: tuple = ()

    def messages(self, *, argument: str = "tags") -> list[str]:
        """One sentence per problem found (empty when everything matched)."""
        out = []
        if self.stray_ids:
            out.append(
                f"{argument}: {self.stray_ids:,} id(s) have no sample (e.g. "
                f"{', '.join(map(repr, self.stray_examples))}); their {self.stray_rows:,} tag "
                "row(s) are ignored"
            )
        if self.untagged_samples:
            out.append(
                f"{argument}: {self.untagged_samples:,} of {self.n_samples:,} sample(s) have no tag "
                "row; they count in their class with no tag"
            )
        if self.classes_without_tags:
            out.append(
                f"{argument}: {len(self.classes_without_tags)} class(es) have no tag row at all "
                f"(e.g. {_quote(self.classes_without_tags)}); they can have no failure mode"
            )
        if self.unknown_classes:
            out.append(
                f"{argument}: {len(self.unknown_classes)} class(es) of the tag data have no sample "
                f"(e.g. {_quote(self.unknown_classes)}); their rows are ignored"
            )
        return out

    def log(self, *, argument: str = "tags", log: logging.Logger | None = None) -> None:
        """Log every message of :meth:`messages` as a warning."""
        for message in self.messages(argument=argument):
            (log or logger).warning(message)

    def as_dict(self) -> dict[str, Any]:
        """Plain dictionary (JSON-serialisable: tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def _quote(values: Sequence) -> str:
    return ", ".join(repr(v) for v in list(values)[:_EXAMPLES])


def join_report(
    sample_ids: Sequence | pd.Index,
    tag_ids: Sequence | pd.Series,
    *,
    labels: Sequence | pd.Series | None = None,
    unknown_classes: Sequence = (),
) -> JoinReport:
    """Report of joining tag rows (their ``id`` column) to samples.

    Parameters
    ----------
    sample_ids : sequence of str, length n_samples
        Ids of the samples table (unique).
    tag_ids : sequence, length n_tag_rows
        The ``id`` column of the tag table (one entry per row; compared as strings).
    labels : sequence, length n_samples, optional
        Class of each sample, to name the classes without any tag row.
    unknown_classes : sequence, optional
        Classes of the tag data known to have no sample (passed through).

    Returns
    -------
    JoinReport
    """
    samples = pd.Index(np.asarray(sample_ids, dtype=object).astype(str))
    ids = pd.Series(np.asarray(tag_ids, dtype=object)).astype(str)
    position = samples.get_indexer(ids)
    stray = position < 0
    stray_unique = pd.unique(ids[stray])
    tagged = np.zeros(len(samples), bool)
    tagged[position[~stray]] = True
    empty: tuple = ()
    if labels is not None:
        label_values = pd.Series(np.asarray(labels, dtype=object))
        if len(label_values) != len(samples):
            raise ValueError(
                f"labels: expected {len(samples)} values (one per sample), got {len(label_values)}"
            )
        has_tag = pd.Series(tagged).groupby(label_values.to_numpy(), sort=True).any()
        empty = tuple(has_tag.index[~has_tag.to_numpy()])
    return JoinReport(
        n_samples=len(samples),
        n_tag_rows=len(ids),
        stray_ids=len(stray_unique),
        stray_rows=int(stray.sum()),
        untagged_samples=int((~tagged).sum()),
        classes_without_tags=empty,
        unknown_classes=tuple(unknown_classes),
        stray_examples=tuple(str(i) for i in stray_unique[:_EXAMPLES]),
    )
