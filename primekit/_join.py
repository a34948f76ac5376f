"""The join of a samples table with a tag table: what did not match, counted and reported.

A tag table is often computed once for a whole image folder while the samples cover one split, a
tagger skips unreadable images, and a class may carry no tag at all. None of this is an error: the
rows that cannot be used are dropped and counted, and the counts are logged as one warning each and
kept with the result. The search on a long tag table (``primekit._bitsets``) builds the report from
its codes; :func:`join_report` builds the same report from plain id arrays for smaller joins (the
study and the CLI).

:func:`id_positions` finds the sample position of every distinct id of a tag table. Tag tables
are written sorted by id, and so are most samples tables; then a merge of the two sorted string
columns (numba over Arrow's buffers: no library merges two sorted string arrays) finds them in one
linear pass, without hashing 1.28 M strings twice (Arrow's ``index_in``, the fallback for
unsorted ids, costs ~0.3 s at ImageNet scale).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from numba import njit

from ._validation import strictly_increasing

__all__ = ["JoinReport", "join_report", "id_positions"]

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


# ---------------------------------------------------------------------------------------------
# sample positions of the tag table's ids: a merge when both sides are sorted
# Written by hand: pyarrow.compute.index_in (the fallback below) hashes every id, 0.32 s for the
# 1.28 M ids of an ImageNet-shaped table, while the ids pyarrow writes and reads back are usually
# sorted, where one linear merge over the Arrow string buffers places them in 0.026 s; neither
# pyarrow nor numpy offers a merge of sorted Arrow strings without converting them to objects.


def id_positions(dictionaries: list, samples: Any) -> np.ndarray:
    """Position in ``samples`` of every id of ``dictionaries`` (concatenated), -1 when none.

    ``dictionaries``: Arrow large-string arrays without nulls (the id dictionaries of a tag
    table's batches, each usually sorted); ``samples``: Arrow large-string array of unique ids.
    When ``samples`` are strictly increasing each dictionary is merged against them; an id the
    merge cannot place for sure (a dictionary out of order) is looked up by hash, as are all
    ids when the samples are not sorted.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    sizes = [len(d) for d in dictionaries]
    out = np.full(sum(sizes), -1, np.int64)
    if not len(out) or not len(samples):
        return out
    unsure = np.ones(len(out), np.bool_)
    if samples.null_count == 0 and strictly_increasing(samples):
        s_offsets, s_data = _buffers(samples)
        start = 0
        for d, size in zip(dictionaries, sizes):
            if size:
                d_offsets, d_data = _buffers(d)
                _merge(d_offsets, d_data, s_offsets, s_data, out[start : start + size],
                       unsure[start : start + size])  # fmt: skip
            start += size
    if unsure.any():  # by hash: every id, or the few the merge could not place
        which = np.flatnonzero(unsure)
        ids = pa.concat_arrays(dictionaries).take(pa.array(which))
        found = pc.index_in(ids, value_set=samples).fill_null(-1).to_numpy(zero_copy_only=False)
        out[which] = found
    return out


def _buffers(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """(int64 offsets, uint8 bytes) of an Arrow large-string array, without copying."""
    _, offsets, data = values.buffers()
    offsets = np.frombuffer(offsets, np.int64)[values.offset : values.offset + len(values) + 1]
    return offsets, np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)


@njit(cache=True, nogil=True, inline="always")
def _compare(a_offsets, a_data, i, b_offsets, b_data, j):
    """-1, 0 or 1 as string ``i`` of a sorts before, equal to or after string ``j`` of b (bytes)."""
    a0, b0 = a_offsets[i], b_offsets[j]
    la, lb = a_offsets[i + 1] - a0, b_offsets[j + 1] - b0
    for k in range(min(la, lb)):
        x, y = a_data[a0 + k], b_data[b0 + k]
        if x != y:
            return -1 if x < y else 1
    return -1 if la < lb else (1 if la > lb else 0)


@njit(cache=True, nogil=True)
def _merge(d_offsets, d_data, s_offsets, s_data, out, unsure):
    """Merge the strings of d against the strictly increasing strings s: ``out[i]`` = the position
    of d's string ``i`` in s. An id the walk passed without a match is absent for sure when it
    lies between two neighbours of s (``unsure`` cleared, ``out`` -1); one out of order stays
    ``unsure``."""
    n_d, n_s = out.shape[0], s_offsets.shape[0] - 1
    lo, hi = 0, n_s  # the first string of s not before d's first: binary search
    while lo < hi:
        mid = (lo + hi) // 2
        if _compare(s_offsets, s_data, mid, d_offsets, d_data, 0) < 0:
            lo = mid + 1
        else:
            hi = mid
    j = lo
    for i in range(n_d):
        c = 1
        while j < n_s:
            c = _compare(s_offsets, s_data, j, d_offsets, d_data, i)
            if c >= 0:
                break
            j += 1
        if j < n_s and c == 0:
            out[i] = j
            unsure[i] = False
            j += 1
        elif j == 0 or _compare(s_offsets, s_data, j - 1, d_offsets, d_data, i) < 0:
            unsure[i] = False  # s[j - 1] < d_i < s[j] (or past either end): no sample has it
