"""The one container of a set of tagged samples: tags, labels and correctness lined up by id.

The search, the metrics, the study and the explorer all take a :class:`TaggedSplit` (or the three
tables it is built from). It is checked once, when it is built, so the functions that take it do
not check again; :class:`primekit.study.Split` is one, with the study's samples table beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from ._validation import check_correct, check_labels, check_tag_matrix, class_codes, class_order

__all__ = ["TaggedSplit", "as_split", "require_split"]


class TaggedSplit:
    """Samples with their tags, class labels and (optionally) whether the classifier is right.

    Parameters
    ----------
    tags : DataFrame of bool (or 0/1), shape (n_samples, n_tags)
        Index = sample id (unique), one column per tag (unique, non-empty names).
    labels : Series, length n_samples
        Class of each sample, indexed by sample id (any order; reordered to ``tags``), or an
        array with one value per row of ``tags``.
    correct : Series of bool (or 0/1), optional
        Whether the classifier is right on each sample, lined up like ``labels``.
    prefix : str, default ""
        Put before the argument names in error messages (e.g. ``"test data: "``).

    Attributes
    ----------
    tags : DataFrame of bool
        The tag table (converted to bool when it held 0/1 values).
    labels : Series
        Labels on ``tags.index``.
    correct : Series of bool or None
        Correctness on ``tags.index``.
    ids : Index
        The sample ids (``tags.index``).

    Treat it as read-only: the derived arrays (``matrix``, ``codes``, ...) are computed once.
    """

    def __init__(
        self, tags: Any, labels: Any, correct: Any | None = None, *, prefix: str = ""
    ) -> None:
        matrix, names = check_tag_matrix(tags, f"{prefix}tags")
        if not all(dtype == np.bool_ for dtype in tags.dtypes):
            tags = pd.DataFrame(matrix, index=tags.index, columns=tags.columns)
        self.tags: pd.DataFrame = tags
        self.labels: pd.Series = check_labels(labels, tags.index, f"{prefix}labels")
        self.correct: pd.Series | None = (
            None if correct is None else check_correct(correct, tags.index, f"{prefix}correct")
        )
        self.__dict__["matrix"] = matrix
        self.__dict__["tag_names"] = np.asarray(names, dtype=object)

    @property
    def ids(self) -> pd.Index:
        """Sample ids, the index of every table."""
        return self.tags.index

    def __len__(self) -> int:
        return len(self.tags)

    @cached_property
    def matrix(self) -> np.ndarray:
        """Bool array (n_samples, n_tags), columns in the order of ``tags``."""
        return self.tags.to_numpy(dtype=bool)

    @cached_property
    def tag_names(self) -> np.ndarray:
        """Tag names as str (object array), in the order of ``tags``' columns."""
        return np.asarray([str(c) for c in self.tags.columns], dtype=object)

    @cached_property
    def column(self) -> dict[str, int]:
        """Tag name -> column position in ``matrix``."""
        return {name: i for i, name in enumerate(self.tag_names)}

    @cached_property
    def correct_mask(self) -> np.ndarray:
        """Bool array (n_samples,) of ``correct``; a ValueError when the split has none."""
        if self.correct is None:
            raise ValueError("correct: this split has no correctness (pass correct=...)")
        return self.correct.to_numpy(dtype=bool)

    @cached_property
    def _class_codes(self) -> tuple[np.ndarray, list]:
        return class_codes(self.labels)

    @property
    def classes(self) -> list:
        """Sorted unique labels (by their string form when they do not compare)."""
        return self._class_codes[1]

    @property
    def codes(self) -> np.ndarray:
        """Int64 array (n_samples,): position of each sample's label in ``classes``."""
        return self._class_codes[0]

    def class_rows(self) -> list[np.ndarray]:
        """Row positions of every class, in the order of ``classes`` (each in row order)."""
        codes, n_classes = self.codes, len(self.classes)
        order = class_order(codes, n_classes)
        bounds = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=n_classes))])
        return [order[bounds[k] : bounds[k + 1]] for k in range(n_classes)]

    def class_mask(self, cls: Any) -> np.ndarray:
        """Bool array (n_samples,): the samples labelled ``cls``."""
        return self.labels.to_numpy(dtype=object) == cls

    def group_mask(self, cls: Any, tags: Sequence[str], *, any_of: int | None = None) -> np.ndarray:
        """Samples of ``cls`` carrying every tag of ``tags`` (with ``any_of=j``: at least j).

        A tag the table does not have is carried by no sample.
        """
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

    def group_accuracy(self, mask: np.ndarray) -> tuple[int, float]:
        """Size and accuracy of the samples in ``mask`` (NaN accuracy when it is empty)."""
        n = int(np.count_nonzero(mask))
        return n, (float(self.correct_mask[mask].mean()) if n else float("nan"))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({len(self)} samples, {self.tags.shape[1]} tags, "
            f"{len(self.classes)} classes)"
        )


def as_split(
    tags: Any,
    labels: Any = None,
    correct: Any = None,
    *,
    need_correct: bool = True,
    prefix: str = "",
) -> TaggedSplit:
    """``tags`` itself when it is a :class:`TaggedSplit`, else one built from the three tables.

    The entry points call this so that they take either ``(split)`` or ``(tags, labels, correct)``.
    """
    if isinstance(tags, TaggedSplit):
        for name, value in (("labels", labels), ("correct", correct)):
            if value is not None:
                raise TypeError(
                    f"{name}: pass either a TaggedSplit or tags, labels and correct, not both"
                )
        split = tags
    else:
        split = TaggedSplit(tags, labels, correct, prefix=prefix)
    if need_correct and split.correct is None:
        raise TypeError(f"{prefix}correct: expected a pandas Series of bool, got None")
    return split


def require_split(split: Any, argument: str) -> TaggedSplit:
    """``split`` if it is a :class:`TaggedSplit` with correctness (for functions that take two
    splits, where the three-table form would be six positional tables)."""
    if not isinstance(split, TaggedSplit):
        raise TypeError(
            f"{argument}: expected a split (a TaggedSplit, e.g. load_study(...).val),"
            f" got {type(split).__name__}; the six-table form (tags, labels, correct, tags_test, "
            "...) is now (data, unseen)"
        )
    if split.correct is None:
        raise ValueError(f"{argument}: the split has no correctness (correct=...)")
    return split
