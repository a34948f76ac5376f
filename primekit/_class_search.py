"""The per-class machinery of the search: checked settings, bit packing, the walks, the table.

:mod:`primekit.search` is the public face; this module packs each class's candidate tags T_c
into bitsets, runs the exhaustive walk (:func:`primekit._engine.search_class`) or the beam search
of appendix A.6 over them, and builds one mode (or lattice) table from the raw arrays of every
class.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import _engine
from ._bitsets import LongTags
from ._packing import ClassBits, MatrixBits
from ._tag_major import TagMajorBits
from ._validation import check_fraction, check_int
from .mode_table import LATTICE_COLUMNS, MODE_COLUMNS, describe
from .split import TaggedSplit

__all__ = [
    "DEFAULT_NECESSITY",
    "SearchSettings",
    "search_settings",
    "normalize_necessity",
    "exhaustive_work",
    "greedy_work",
    "search_classes",
]

DEFAULT_NECESSITY: Mapping[int, float] = {2: 0.10, 3: 0.05, 4: 0.025}


def normalize_necessity(necessity: Any, max_tags: int) -> np.ndarray:
    """Turn ``{2: b2, 3: b3, ...}`` (or ``(b2, b3, ...)``) into an array indexed by set size."""
    if isinstance(necessity, Mapping):
        items = dict(necessity)
    elif isinstance(necessity, (Sequence, np.ndarray)) and not isinstance(necessity, str):
        items = {k + 2: v for k, v in enumerate(necessity)}
    else:
        raise TypeError(
            f"necessity: expected a mapping {{2: b2, 3: b3, ...}} or a sequence (b2, b3, ...), "
            f"got {type(necessity).__name__}"
        )
    out = np.zeros(max_tags + 1, dtype=np.float64)
    for size in range(2, max_tags + 1):
        if size not in items:
            raise ValueError(
                f"necessity: no margin for combinations of {size} tags (max_tags={max_tags} "
                f"needs sizes 2..{max_tags}); got sizes {sorted(items)}"
            )
        out[size] = check_fraction(items[size], f"necessity[{size}]")
    return out


@dataclass(frozen=True)
class SearchSettings:
    """Checked search settings (see :func:`find_failure_modes` for their meaning)."""

    min_size: int
    min_drop: float
    necessity: np.ndarray
    max_tags: int
    min_tag_count: int
    n_jobs: int


def search_settings(
    *,
    min_size: Any = 30,
    min_drop: Any = 0.30,
    necessity: Any = DEFAULT_NECESSITY,
    max_tags: Any = 4,
    min_tag_count: Any = None,
    n_jobs: Any = 1,
) -> SearchSettings:
    """Check the settings of a search; a bad one is a TypeError/ValueError naming it."""
    min_size = check_int(min_size, "min_size", 1)
    min_drop = check_fraction(min_drop, "min_drop")
    max_tags = check_int(max_tags, "max_tags", 1)
    if max_tags > 16:
        raise ValueError(f"max_tags: at most 16 tags per combination are supported, got {max_tags}")
    nec = normalize_necessity(necessity, max_tags)
    if min_tag_count is None:
        min_tag_count = min_size
    min_tag_count = check_int(min_tag_count, "min_tag_count", 1)
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, Integral) or n_jobs == 0:
        raise ValueError(f"n_jobs: expected a non-zero integer (-1 = all cores), got {n_jobs!r}")
    if n_jobs < 0:
        n_jobs = max(1, (os.cpu_count() or 1) + 1 + int(n_jobs))
    return SearchSettings(min_size, min_drop, nec, max_tags, min_tag_count, int(n_jobs))


# ---------------------------------------------------------------------------------------------
# per-class work


_ClassData = ClassBits  # one class packed for the kernel (primekit._bitsets)


def _class_data(
    split: TaggedSplit, packer: MatrixBits, params: SearchSettings, k: int, rows: np.ndarray
) -> _ClassData:
    """Pack one class: its candidate tags T_c (sorted by name) as bit rows."""
    return packer.class_bits(
        split.classes[k], rows, split.correct_mask[rows],
        min_count=max(params.min_tag_count, params.min_size),
    )  # fmt: skip


def _min_errors(cd: _ClassData, params: SearchSettings) -> int:
    """A safe lower bound on the misclassified samples of any failure mode of the class.

    A mode has ``n >= s`` samples and accuracy ``<= A_c - a + tol``, so at least
    ``(1 - A_c + a - tol) * s`` errors; rounding is made conservative.
    """
    bound = params.min_size * (1.0 - (cd.accuracy - params.min_drop) - _engine.TOL)
    return max(0, int(np.ceil(bound - 1e-6)))


def exhaustive_work(cd: _ClassData, params: SearchSettings, lattice: bool) -> tuple:
    return _engine.search_class(
        cd.bits,
        cd.ebits,
        cd.walk,
        params.min_size,
        0 if lattice else _min_errors(cd, params),
        params.max_tags,
        cd.accuracy - params.min_drop,
        params.necessity,
        lattice,
    )


def greedy_work(cd: _ClassData, params: SearchSettings, beam_width: int) -> tuple:
    """Beam search (paper appendix A.6): keep the ``beam_width`` least accurate frequent sets."""
    limit = cd.accuracy - params.min_drop + _engine.TOL
    found: dict[tuple, tuple] = {}
    cands = cd.candidates
    beam: list[tuple[int, ...]] = [()]
    for _depth in range(params.max_tags):
        scored: dict[tuple, tuple[int, int]] = {}
        for prefix in beam:
            ext = cands[~np.isin(cands, prefix)]
            prefix_arr = np.asarray(prefix + (0,), np.int64)
            sizes, corr = _engine.extend_all(cd.bits, cd.ebits, prefix_arr, len(prefix), ext)
            keep = sizes >= params.min_size
            for t, n, c in zip(ext[keep], sizes[keep], corr[keep]):
                scored[tuple(sorted(prefix + (int(t),)))] = (int(n), int(c))
        if not scored:
            break
        for items, (n, c) in scored.items():
            acc = c / n
            if acc <= limit:
                ok, margin = _engine.check_mode(
                    cd.bits, cd.ebits, np.asarray(items, np.int64), len(items), acc,
                    params.necessity, False,
                )
                if ok:
                    found[items] = (n, c, margin)
        ranked = sorted(scored, key=lambda s: (scored[s][1] / scored[s][0], s))
        beam = ranked[:beam_width]
    m = len(found)
    items_arr = np.full((m, params.max_tags), -1, np.int64)
    sizes = np.empty(m, np.int64)
    corr = np.empty(m, np.int64)
    margins = np.empty(m, np.float64)
    for i, (items, (n, c, margin)) in enumerate(sorted(found.items())):
        items_arr[i, : len(items)] = items
        sizes[i], corr[i], margins[i] = n, c, margin
    return items_arr, sizes, corr, margins, np.ones(m, bool)


def search_classes(
    split: TaggedSplit | LongTags,
    params: SearchSettings,
    *,
    method: str = "exhaustive",
    beam_width: int = 10,
    lattice: bool = False,
    progress: bool = False,
) -> pd.DataFrame:
    """Search every class of ``split`` (in threads when ``params.n_jobs > 1``); one table.

    ``method`` is ``"exhaustive"`` or ``"greedy"``; ``lattice=True`` (exhaustive only) returns
    every frequent combination with ``is_failure_mode`` instead of the modes alone. A long tag
    table encoded by :func:`primekit._bitsets.encode_long_table` packs each class from its codes;
    its join report goes to the table's ``attrs["join"]``.
    """
    if method == "greedy":

        def work(cd: _ClassData) -> tuple:
            return greedy_work(cd, params, beam_width)
    else:

        def work(cd: _ClassData) -> tuple:
            return exhaustive_work(cd, params, lattice)

    def one(item: tuple[int, np.ndarray | None]) -> _ClassResult:
        k, rows = item
        if rows is None:
            cd = source.class_bits(k, min_count=max(params.min_tag_count, params.min_size))
        else:
            cd = _class_data(split, packer, params, k, rows)
        return _ClassResult(k, cd, *work(cd))

    source: LongTags | TagMajorBits = split  # type: ignore[assignment]
    if isinstance(split, LongTags):
        jobs: list = [(k, None) for k in range(len(split.classes))]
    elif _tag_major(split.matrix):
        # one in-order sweep of every tag's line for all classes (see TagMajorBits)
        rows = split.class_rows()
        source = TagMajorBits(split.matrix, split.tag_names, split.classes, rows, split.correct_mask)
        jobs = [(k, None) for k in range(len(split.classes))]
    else:
        packer = MatrixBits(split.matrix, split.tag_names)
        jobs = list(enumerate(split.class_rows()))
    if params.n_jobs > 1 and len(jobs) > 1:
        with ThreadPoolExecutor(params.n_jobs) as pool:
            results = list(_progress(pool.map(one, jobs), len(jobs), progress))
    else:
        results = list(_progress(map(one, jobs), len(jobs), progress))
    table = _table([r for r in results if len(r.sizes)], lattice)
    if isinstance(split, LongTags):
        table.attrs["join"] = split.report.as_dict()
    return table


def _tag_major(matrix: np.ndarray) -> bool:
    """Whether the matrix is stored tag by tag (Fortran order), with more than one tag and sample."""
    return bool(matrix.flags.f_contiguous and not matrix.flags.c_contiguous)


def _progress(it: Iterable, total: int, enabled: bool) -> Iterable:
    if not enabled:
        return it
    return tqdm(it, total=total, desc="classes", unit="class")


@dataclass(frozen=True)
class _ClassResult:
    rank: int
    cd: _ClassData
    items: np.ndarray
    sizes: np.ndarray
    corr: np.ndarray
    margins: np.ndarray
    is_mode: np.ndarray


def _tag_tuples(ordered: np.ndarray, lengths: np.ndarray, names: np.ndarray) -> list[tuple]:
    """Rows of sorted tag indices (``lengths`` of them used) -> tuples of tag names (vectorised
    per length)."""
    out: list[tuple] = [()] * len(ordered)
    for k in range(1, ordered.shape[1] + 1):
        rows = np.flatnonzero(lengths == k)
        if len(rows):
            for i, t in zip(rows.tolist(), map(tuple, names[ordered[rows, :k]].tolist())):
                out[i] = t
    return out


def _table(results: list[_ClassResult], lattice: bool) -> pd.DataFrame:
    """One DataFrame from the raw arrays of every class, built once (not per class), in order."""
    columns = list(LATTICE_COLUMNS if lattice else MODE_COLUMNS)
    if not results:
        return _empty(columns)
    counts = [len(r.sizes) for r in results]
    items = np.concatenate([r.items for r in results])
    n_tags = (items >= 0).sum(axis=1).astype(np.int64)
    sizes = np.concatenate([r.sizes for r in results]).astype(np.int64)
    acc = np.concatenate([r.corr for r in results]) / sizes
    rank = np.repeat([r.rank for r in results], counts)
    # tags within a class are indices into its names, which are sorted: index order is name order
    ordered = np.sort(np.where(items < 0, np.iinfo(np.int64).max, items), axis=1)
    order = np.lexsort((*ordered.T[::-1], acc, n_tags, rank))
    # one vocabulary for all classes: each class's tag indices shifted past the previous classes'
    shift = np.cumsum([0] + [len(r.cd.names) for r in results[:-1]])
    ordered = ordered[order] + np.repeat(shift, counts)[order, None]
    n_tags, sizes, acc = n_tags[order], sizes[order], acc[order]
    tags = _tag_tuples(ordered, n_tags, np.concatenate([r.cd.names for r in results]))
    class_labels = np.empty(len(results), dtype=object)
    class_labels[:] = [r.cd.label for r in results]
    labels = np.repeat(class_labels, counts)[order]
    class_acc = np.repeat([r.cd.accuracy for r in results], counts)[order]
    frame = {
        "class": labels,
        "tags": tags,
        "n_tags": n_tags,
        "size": sizes,
        "accuracy": acc,
        "class_accuracy": class_acc,
        "drop": class_acc - acc,
        "necessity_margin": np.where(
            n_tags == 1, np.nan, np.concatenate([r.margins for r in results])[order]
        ),
    }
    if lattice:
        frame["is_failure_mode"] = np.concatenate([r.is_mode for r in results]).astype(bool)[order]
    else:
        frame["description"] = list(map(describe, labels.tolist(), tags))
    return pd.DataFrame(frame, columns=columns)


def _empty(columns: list[str]) -> pd.DataFrame:
    dtypes = {
        "class": object,
        "tags": object,
        "n_tags": np.int64,
        "size": np.int64,
        "accuracy": float,
        "class_accuracy": float,
        "drop": float,
        "necessity_margin": float,
        "description": object,
        "is_failure_mode": bool,
    }
    return pd.DataFrame({c: pd.Series(dtype=dtypes[c]) for c in columns})

