"""PRIME's search for failure modes: minimal tag combinations on which a classifier underperforms.

The definition (paper section 3, made exact in DESIGN.md). For each class ``c``: ``D_c`` are the
samples labelled ``c`` and ``A_c`` their accuracy; ``T_c`` are the tags carried by at least
``min_tag_count`` samples of ``D_c``. A set ``S`` of 1 to ``max_tags`` (l) tags of ``T_c`` is a
failure mode when

1. ``|I_S| >= min_size`` (s), where ``I_S`` are the samples of ``D_c`` carrying every tag of ``S``;
2. ``A_S <= A_c - min_drop`` (a);
3. ``|S| = 1`` or, for every ``t`` in ``S``, ``A_{S\\t} >= A_S + necessity[|S|]`` (b_|S|).

Comparisons are inclusive with a tolerance of 1e-9 in favour of inclusion.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from . import statistics
from ._bitsets import LongTags, encode_long_table, is_long_table
from ._class_search import (
    DEFAULT_NECESSITY,
    SearchSettings,
    normalize_necessity,
    search_classes,
    search_settings,
)
from ._validation import check_choice, check_columns, check_int
from .mode_table import (
    LATTICE_COLUMNS,
    MODE_COLUMNS,
    describe,
    modes_from_csv_frame,
    modes_to_csv_frame,
    read_modes,
    write_modes,
)
from .split import TaggedSplit, as_split

__all__ = [
    "MODE_COLUMNS",
    "LATTICE_COLUMNS",
    "DEFAULT_NECESSITY",
    "TOYWORLD_SEARCH",
    "SearchSettings",
    "search_settings",
    "search_defaults",
    "paper_search",
    "normalize_necessity",
    "find_failure_modes",
    "tag_lattice",
    "subset_accuracies",
    "describe",
    "modes_by_class",
    "mode_subsets",
    # the mode table's files live in primekit.mode_table; re-exported here for old callers
    "modes_to_csv_frame",
    "modes_from_csv_frame",
    "write_modes",
    "read_modes",
]

logger = logging.getLogger(__name__)

METHODS = ("exhaustive", "greedy")

#: Search settings of the full toy world (the demo's): groups of 50 of its ~650 val images per
#: class, the paper's drop a=0.30 and necessity margins, l=4.
TOYWORLD_SEARCH: dict[str, Any] = {
    "min_size": 50,
    "min_drop": 0.30,
    "necessity": dict(DEFAULT_NECESSITY),
    "max_tags": 4,
}
#: The smoke world has about 100 val images per class and a weak classifier.
_SMOKE_SEARCH = {"min_size": 10, "min_drop": 0.2}
#: The paper's settings for Living17 (s=30, a=30%, l=4; Fig. 9).
_PAPER_SEARCH = {"min_size": 30, "min_drop": 0.30, "max_tags": 4}


# ---------------------------------------------------------------------------------------------
# settings


def search_defaults(smoke: bool = False, **overrides: Any) -> dict[str, Any]:
    """Search settings that suit the toy world, with the caller's non-None ``overrides`` applied.

    The full world uses :data:`TOYWORLD_SEARCH` (``min_size=50, min_drop=0.30``, the paper's
    necessity margins, ``max_tags=4``). The smoke world has about 100 val images per class and a
    weak classifier, so it uses ``min_size=10, min_drop=0.20``. Notebooks pass their parameters
    as overrides, where ``None`` means "the default for this world"::

        search = search_defaults(smoke, min_size=min_size, min_drop=min_drop)
    """
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in TOYWORLD_SEARCH.items()}
    if smoke:
        out.update(_SMOKE_SEARCH)
    unknown = set(overrides) - set(out)
    if unknown:
        raise ValueError(f"overrides: unknown search setting(s) {sorted(unknown)}")
    out.update({k: v for k, v in overrides.items() if v is not None})
    return out


def paper_search(smoke: bool = False, **overrides: Any) -> dict[str, Any]:
    """The paper's search settings for Living17 (s=30, a=0.30, l=4, b = .10/.05/.025; Fig. 9),
    with the caller's non-None ``overrides`` applied.

    The smoke world (about 100 val images per class) cannot hold groups of 30 and gets
    :func:`search_defaults` ``(smoke=True)`` instead. Notebooks pass their parameters, where
    ``None`` means "the default for this world"::

        search = paper_search(smoke, min_size=min_size, min_drop=min_drop, max_tags=max_tags)
    """
    settings = {} if smoke else dict(_PAPER_SEARCH)
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return search_defaults(smoke, **settings)


# ---------------------------------------------------------------------------------------------
# public API


def _as_input(
    tags: Any, labels: Any, correct: Any, threshold: Any
) -> TaggedSplit | LongTags:
    """The split of a boolean matrix, or a long tag table encoded by class (no dense matrix)."""
    if isinstance(tags, LongTags):  # encoded already (a Ray task searches its partition twice)
        return tags
    if is_long_table(tags):
        return encode_long_table(tags, labels, correct, threshold=threshold)
    return as_split(tags, labels, correct)


def find_failure_modes(
    tags: pd.DataFrame | TaggedSplit | Any,
    labels: pd.Series | None = None,
    correct: pd.Series | None = None,
    *,
    threshold: float | Mapping[str, float] = 0.5,
    min_size: int = 30,
    min_drop: float = 0.30,
    necessity: Mapping[int, float] | Sequence[float] = DEFAULT_NECESSITY,
    max_tags: int = 4,
    min_tag_count: int | None = None,
    method: str = "exhaustive",
    beam_width: int = 10,
    n_jobs: int = 1,
    progress: bool = False,
    max_q: float | None = None,
) -> pd.DataFrame:
    """Find minimal tag combinations on which the classifier underperforms (PRIME, section 3).

    Parameters
    ----------
    tags : DataFrame of bool (or 0/1), shape (n_samples, n_tags), TaggedSplit, or long tag table
        Index = sample id (unique), one column per tag. A :class:`~primekit.split.TaggedSplit`
        (e.g. a study's ``val``) stands for all three tables; then leave out ``labels`` and
        ``correct``. Or the long table ``id, tag[, score]`` as a DataFrame, a pyarrow Table or
        Dataset, or the path of a Parquet file, Parquet dataset folder or CSV file: each class's
        bitsets are then packed straight from its codes, without the dense matrix (the way to
        search millions of images). Tag rows whose id has no label, samples without tags and
        classes without tags are counted, logged as warnings and kept in ``attrs["join"]`` of the
        result (:class:`primekit._join.JoinReport`).
    labels : Series, length n_samples
        Class of each sample, indexed by sample id (same ids as ``tags``, any order).
    correct : Series of bool (or 0/1), length n_samples
        Whether the classifier's prediction is right, indexed by sample id.
    threshold : float or mapping tag -> float, default 0.5
        Long table only: a tag is present when its score is ``>= threshold`` (a mapping sets one
        threshold per tag; tags it does not name use 0.5).
    min_size : int, default 30
        s: smallest number of samples in a failure mode.
    min_drop : float, default 0.30
        a: least drop of accuracy below the class accuracy.
    necessity : mapping size -> float or sequence (b2, b3, ...), default {2: .10, 3: .05, 4: .025}
        b_k: for a mode of k tags, removing any tag must raise accuracy by at least b_k.
        Must cover every size 2..max_tags.
    max_tags : int, default 4
        l: most tags in a combination.
    min_tag_count : int, optional
        A tag enters a class's vocabulary T_c when at least this many of the class's samples carry
        it. Default: ``min_size`` (a rarer tag can never reach ``min_size``).
    method : {"exhaustive", "greedy"}
        Exhaustive search (default) or the beam search of appendix A.6, whose every output is
        also an exhaustive output (it may miss modes, never invents one).
    beam_width : int, default 10
        Beam width of the greedy search.
    n_jobs : int, default 1
        Classes searched in parallel threads (-1: all cores).
    progress : bool, default False
        Show a tqdm bar over classes.
    max_q : float in (0, 1], optional
        Keep only the modes whose q-value (false discovery rate over every combination the search
        evaluated, all classes pooled; see :mod:`primekit.statistics`) is at most this, and add the
        statistics columns. None (default): exactly the paper's definition and columns.

    Returns
    -------
    DataFrame
        One row per failure mode with columns ``class, tags, n_tags, size, accuracy,
        class_accuracy, drop, necessity_margin, description``: ``tags`` is a sorted tuple of tag
        names, ``drop = class_accuracy - accuracy``, ``necessity_margin = min_t A_{S\\t} - A_S``
        (NaN for one tag). Rows are ordered by class, number of tags, accuracy, then tags.
        With ``max_q`` also the columns of :data:`primekit.statistics.STATISTIC_COLUMNS`.

    Raises
    ------
    TypeError, ValueError
        On bad input, before any work, naming the argument.
    """
    check_choice(method, "method", METHODS)
    beam_width = check_int(beam_width, "beam_width", 1)
    max_q = statistics.check_max_q(max_q)
    params = search_settings(
        min_size=min_size, min_drop=min_drop, necessity=necessity, max_tags=max_tags,
        min_tag_count=min_tag_count, n_jobs=n_jobs,
    )
    split = _as_input(tags, labels, correct, threshold)
    modes = search_classes(split, params, method=method, beam_width=beam_width, progress=progress)
    if max_q is None:
        return modes
    lattice = _lattice(split, params)
    annotated = statistics.attach(modes, lattice, lattice[list(statistics.STATISTIC_COLUMNS)], max_q=max_q)
    annotated.attrs = dict(modes.attrs)  # the long table's join report (the join drops attrs)
    return annotated


def _lattice(split: TaggedSplit | LongTags, params: SearchSettings) -> pd.DataFrame:
    """The frequent lattice of every class with the statistics of :mod:`primekit.statistics`."""
    lattice = search_classes(split, params, lattice=True)
    counts = statistics.class_counts(split.codes, split.correct_mask, split.classes)
    found = statistics.lattice_statistics(lattice, counts, min_drop=params.min_drop, necessity=params.necessity)
    out = pd.concat([lattice, found], axis=1)
    out.attrs = dict(lattice.attrs)  # the long table's join report (concat drops attrs)
    return out


def tag_lattice(
    tags: pd.DataFrame | TaggedSplit | Any,
    labels: pd.Series | None = None,
    correct: pd.Series | None = None,
    *,
    threshold: float | Mapping[str, float] = 0.5,
    min_size: int = 30,
    min_drop: float = 0.30,
    necessity: Mapping[int, float] | Sequence[float] = DEFAULT_NECESSITY,
    max_tags: int = 4,
    min_tag_count: int | None = None,
    n_jobs: int = 1,
) -> pd.DataFrame:
    """Every frequent tag combination of every class, with its size and accuracy.

    The whole lattice the exhaustive search walks (combinations of 1..``max_tags`` tags of T_c
    carried by at least ``min_size`` samples), for inspection. Same arguments as
    :func:`find_failure_modes` (``tags`` may be a long tag table).

    Returns
    -------
    DataFrame
        Columns ``class, tags, n_tags, size, accuracy, class_accuracy, drop, necessity_margin,
        is_failure_mode`` and the statistics of :data:`primekit.statistics.STATISTIC_COLUMNS` (the
        q-values over all these rows); the rows with ``is_failure_mode`` are exactly the output of
        :func:`find_failure_modes`. ``necessity_margin`` is computed for every row of 2+ tags.
    """
    params = search_settings(
        min_size=min_size, min_drop=min_drop, necessity=necessity, max_tags=max_tags,
        min_tag_count=min_tag_count, n_jobs=n_jobs,
    )
    split = _as_input(tags, labels, correct, threshold)
    return _lattice(split, params)


def subset_accuracies(
    tags: pd.DataFrame | TaggedSplit,
    labels: pd.Series | None = None,
    correct: pd.Series | None = None,
    *,
    cls: Any,
    mode_tags: Sequence[str],
) -> pd.DataFrame:
    """Accuracy of class ``cls`` on every subset of ``mode_tags`` (paper Fig. 3 / Table 1).

    Returns
    -------
    DataFrame
        One row per subset, from the empty set (the whole class) to the full mode: columns
        ``tags`` (sorted tuple), ``n_tags``, ``size``, ``accuracy`` (NaN when size is 0).
    """
    split = as_split(tags, labels, correct)
    if isinstance(mode_tags, str):
        raise TypeError("mode_tags: expected a sequence of tag names, got a single string")
    mode_tags = tuple(sorted(str(t) for t in mode_tags))
    col = split.column
    unknown = [t for t in mode_tags if t not in col]
    if unknown:
        raise ValueError(f"mode_tags: unknown tag(s) {unknown}")
    if cls not in split.classes:
        raise ValueError(f"cls: no sample has label {cls!r}")
    rows = split.codes == split.classes.index(cls)
    sub = split.matrix[rows]
    ok = split.correct_mask[rows]
    records = []
    for k in range(len(mode_tags) + 1):
        for subset in itertools.combinations(mode_tags, k):
            inside = np.ones(len(sub), bool)
            for t in subset:
                inside &= sub[:, col[t]]
            n = int(inside.sum())
            records.append(
                {
                    "tags": subset,
                    "n_tags": k,
                    "size": n,
                    "accuracy": float(ok[inside].mean()) if n else float("nan"),
                }
            )
    return pd.DataFrame.from_records(records)


def modes_by_class(modes: pd.DataFrame, *, max_modes: int | None = 10) -> pd.DataFrame:
    """One row per class in the style of the paper's appendix A.3.

    Returns
    -------
    DataFrame
        ``class, class_accuracy, n_modes, n_1_tag, n_2_tags, ...`` and ``modes``, the text
        ``"dry + grass (47.80%); snow (30.12%); ..."`` listing up to ``max_modes`` modes of the
        class, least accurate first.
    """
    check_columns(modes, "modes", ("class", "tags", "accuracy", "class_accuracy"))
    sizes = range(1, int(modes["n_tags"].max()) + 1) if len(modes) else range(1, 1)
    rows = []
    for cls, group in modes.groupby("class", sort=True):
        ranked = group.sort_values(["accuracy", "n_tags"], kind="stable")
        shown = ranked if max_modes is None else ranked.head(max_modes)
        row = {"class": cls, "class_accuracy": float(group["class_accuracy"].iloc[0]),
               "n_modes": len(group)}
        for k in sizes:
            row[f"n_{k}_tag" + ("s" if k > 1 else "")] = int((group["n_tags"] == k).sum())
        row["modes"] = "; ".join(
            f"{' + '.join(t)} ({100 * a:.2f}%)" for t, a in zip(shown["tags"], shown["accuracy"])
        )
        rows.append(row)
    return pd.DataFrame(rows)


def mode_subsets(
    tags: pd.DataFrame | TaggedSplit,
    labels: pd.Series | None = None,
    correct: pd.Series | None = None,
    modes: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """:func:`subset_accuracies` of every mode of ``modes``, stacked.

    Returns
    -------
    DataFrame
        ``mode`` (row position in ``modes``), ``class``, ``mode_tags`` and the columns of
        :func:`subset_accuracies` (``tags, n_tags, size, accuracy``).
    """
    split = as_split(tags, labels, correct)
    modes = check_columns(modes, "modes", ("class", "tags"))
    frames = []
    for position, (cls, mode_tags) in enumerate(zip(modes["class"], modes["tags"])):
        table = subset_accuracies(split, cls=cls, mode_tags=mode_tags)
        table.insert(0, "mode_tags", [tuple(mode_tags)] * len(table))
        table.insert(0, "class", cls)
        table.insert(0, "mode", position)
        frames.append(table)
    if not frames:
        return pd.DataFrame(columns=["mode", "class", "mode_tags", "tags", "n_tags", "size", "accuracy"])
    return pd.concat(frames, ignore_index=True)
