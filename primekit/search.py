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
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd

from . import _engine

__all__ = [
    "MODE_COLUMNS",
    "LATTICE_COLUMNS",
    "DEFAULT_NECESSITY",
    "find_failure_modes",
    "tag_lattice",
    "subset_accuracies",
    "describe",
    "modes_to_csv_frame",
    "modes_from_csv_frame",
    "write_modes",
    "read_modes",
    "modes_by_class",
    "mode_subsets",
]

logger = logging.getLogger(__name__)

MODE_COLUMNS = (
    "class",
    "tags",
    "n_tags",
    "size",
    "accuracy",
    "class_accuracy",
    "drop",
    "necessity_margin",
    "description",
)
LATTICE_COLUMNS = MODE_COLUMNS[:-1] + ("is_failure_mode",)
DEFAULT_NECESSITY: Mapping[int, float] = {2: 0.10, 3: 0.05, 4: 0.025}
METHODS = ("exhaustive", "greedy")


# ---------------------------------------------------------------------------------------------
# validation at the boundary


@dataclass(frozen=True)
class _Problem:
    matrix: np.ndarray  # bool (n, n_tags), columns in the caller's order
    tag_names: np.ndarray  # str (n_tags,), the caller's order
    name_order: np.ndarray  # int (n_tags,): column indices sorted by tag name
    codes: np.ndarray  # int (n,): index into classes
    correct: np.ndarray  # bool (n,)
    classes: list  # sorted unique labels


def _as_bool(values: np.ndarray, argument: str) -> np.ndarray:
    if values.dtype == bool:
        return values
    if values.dtype == object:
        if any(v is None or (isinstance(v, float) and np.isnan(v)) for v in values.ravel()):
            raise ValueError(f"{argument}: contains missing (NaN/None) values")
        ok = all(isinstance(v, (bool, np.bool_, Integral, Real)) for v in values.ravel())
        if not ok:
            raise TypeError(f"{argument}: values must be boolean or 0/1, found non-numeric values")
        values = values.astype(float)
    if not np.issubdtype(values.dtype, np.number):
        raise TypeError(f"{argument}: values must be boolean or 0/1, got dtype {values.dtype}")
    if np.issubdtype(values.dtype, np.floating) and np.isnan(values).any():
        raise ValueError(f"{argument}: contains missing (NaN) values")
    if not np.isin(values, (0, 1)).all():
        bad = values[~np.isin(values, (0, 1))].ravel()[0]
        raise ValueError(f"{argument}: values must be boolean or 0/1, found {bad!r}")
    return values.astype(bool)


def _align(series: Any, index: pd.Index, argument: str) -> pd.Series:
    if isinstance(series, pd.Series):
        if series.index.has_duplicates:
            dup = series.index[series.index.duplicated()][0]
            raise ValueError(f"{argument}: duplicate sample id {dup!r} in the index")
        if not series.index.equals(index):
            missing = index.difference(series.index)
            extra = series.index.difference(index)
            if len(missing) or len(extra):
                what = (
                    f"{len(missing)} id(s) of tags are missing, e.g. {missing[0]!r}"
                    if len(missing)
                    else f"{len(extra)} id(s) are not in tags, e.g. {extra[0]!r}"
                )
                raise ValueError(f"{argument}: index does not match the ids of tags: {what}")
            series = series.reindex(index)
        return series
    if isinstance(series, (np.ndarray, list, tuple)):
        arr = np.asarray(series)
        if arr.ndim != 1 or len(arr) != len(index):
            raise ValueError(
                f"{argument}: expected {len(index)} values (one per row of tags), got shape "
                f"{arr.shape}"
            )
        return pd.Series(arr, index=index)
    raise TypeError(f"{argument}: expected a pandas Series, got {type(series).__name__}")


def _validate_data(tags: Any, labels: Any, correct: Any) -> _Problem:
    if not isinstance(tags, pd.DataFrame):
        raise TypeError(
            f"tags: expected a boolean pandas DataFrame (index = sample id, one column per tag), "
            f"got {type(tags).__name__}"
        )
    if tags.index.has_duplicates:
        dup = tags.index[tags.index.duplicated()][0]
        raise ValueError(f"tags: duplicate sample id {dup!r} in the index")
    names = [str(c) for c in tags.columns]
    if len(set(names)) != len(names):
        seen: set[str] = set()
        dup_name = next(n for n in names if n in seen or seen.add(n))  # type: ignore[func-returns-value]
        raise ValueError(f"tags: duplicate tag name {dup_name!r}")
    if any(n.strip() == "" for n in names):
        raise ValueError("tags: tag names must be non-empty strings")
    matrix = _as_bool(tags.to_numpy(), "tags") if tags.shape[1] else np.zeros(tags.shape, bool)
    labels = _align(labels, tags.index, "labels")
    if labels.isna().any():
        raise ValueError(f"labels: {int(labels.isna().sum())} missing (NaN) label(s)")
    correct = _align(correct, tags.index, "correct")
    correct_values = _as_bool(correct.to_numpy(), "correct")
    names_arr = np.asarray(names, dtype=object)
    codes, uniques = pd.factorize(labels.to_numpy(dtype=object), sort=False)
    classes = _sorted_classes(uniques)
    rank = np.empty(len(uniques), dtype=np.int64)
    rank[[list(uniques).index(c) for c in classes]] = np.arange(len(classes))
    return _Problem(
        matrix=matrix,
        tag_names=names_arr,
        name_order=np.argsort(names_arr, kind="stable"),
        codes=rank[codes] if len(codes) else codes.astype(np.int64),
        correct=correct_values,
        classes=classes,
    )


def _sorted_classes(values: Iterable) -> list:
    values = list(values)
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


def _check_int(value: Any, argument: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{argument}: expected an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{argument}: must be >= {minimum}, got {value}")
    return int(value)


def _check_fraction(value: Any, argument: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{argument}: expected a number in [0, 1], got {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{argument}: must lie in [0, 1], got {value}")
    return float(value)


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
        out[size] = _check_fraction(items[size], f"necessity[{size}]")
    return out


@dataclass(frozen=True)
class _Params:
    min_size: int
    min_drop: float
    necessity: np.ndarray
    max_tags: int
    min_tag_count: int
    n_jobs: int


def _validate_params(
    min_size: Any,
    min_drop: Any,
    necessity: Any,
    max_tags: Any,
    min_tag_count: Any,
    n_jobs: Any,
) -> _Params:
    min_size = _check_int(min_size, "min_size", 1)
    min_drop = _check_fraction(min_drop, "min_drop")
    max_tags = _check_int(max_tags, "max_tags", 1)
    if max_tags > 16:
        raise ValueError(f"max_tags: at most 16 tags per combination are supported, got {max_tags}")
    nec = normalize_necessity(necessity, max_tags)
    if min_tag_count is None:
        min_tag_count = min_size
    min_tag_count = _check_int(min_tag_count, "min_tag_count", 1)
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, Integral) or n_jobs == 0:
        raise ValueError(f"n_jobs: expected a non-zero integer (-1 = all cores), got {n_jobs!r}")
    if n_jobs < 0:
        n_jobs = max(1, (os.cpu_count() or 1) + 1 + int(n_jobs))
    return _Params(min_size, min_drop, nec, max_tags, min_tag_count, int(n_jobs))


# ---------------------------------------------------------------------------------------------
# per-class work


@dataclass(frozen=True)
class _ClassData:
    label: Any
    names: np.ndarray  # names of the class's candidate tags T_c, sorted
    bits: np.ndarray  # uint64 (len(names), n_words): tags over the class's samples
    ebits: np.ndarray  # uint64 (len(names), n_error_words): tags over its misclassified samples
    candidates: np.ndarray  # arange(len(names))
    walk: np.ndarray  # candidates by increasing error count: the exhaustive walk's order
    n: int
    accuracy: float


def _class_rows(problem: _Problem) -> list[np.ndarray]:
    """Row indices of every class, in the order of ``problem.classes``."""
    order = np.argsort(problem.codes, kind="stable")
    bounds = np.searchsorted(problem.codes[order], np.arange(len(problem.classes) + 1))
    return [order[bounds[k] : bounds[k + 1]] for k in range(len(problem.classes))]


def _class_data(problem: _Problem, params: _Params, k: int, rows: np.ndarray) -> _ClassData:
    """Pack one class: its candidate tags T_c (sorted by name) as bit rows."""
    sub = problem.matrix[rows]
    counts = sub.view(np.uint8).sum(axis=0, dtype=np.int64)
    cols = problem.name_order[counts[problem.name_order] >= max(params.min_tag_count, params.min_size)]
    ok = problem.correct[rows]
    wrong = sub[~ok][:, cols]
    return _ClassData(
        label=problem.classes[k],
        names=problem.tag_names[cols],
        bits=_engine.pack_columns(sub[:, cols]),
        ebits=_engine.pack_columns(wrong),
        candidates=np.arange(len(cols), dtype=np.int64),
        # rarest errors first: deep levels then see few siblings with many errors
        walk=np.argsort(np.count_nonzero(wrong, axis=0), kind="stable").astype(np.int64),
        n=len(rows),
        accuracy=float(ok.mean()) if len(rows) else float("nan"),
    )


def _min_errors(cd: _ClassData, params: _Params) -> int:
    """A safe lower bound on the misclassified samples of any failure mode of the class.

    A mode has ``n >= s`` samples and accuracy ``<= A_c - a + tol``, so at least
    ``(1 - A_c + a - tol) * s`` errors; rounding is made conservative.
    """
    bound = params.min_size * (1.0 - (cd.accuracy - params.min_drop) - _engine.TOL)
    return max(0, int(np.ceil(bound - 1e-6)))


def _exhaustive(cd: _ClassData, params: _Params, lattice: bool) -> tuple:
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


def _greedy(cd: _ClassData, params: _Params, beam_width: int) -> tuple:
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


def _run(
    problem: _Problem,
    params: _Params,
    work: Callable[[_ClassData], tuple],
    *,
    lattice: bool,
    progress: bool,
) -> pd.DataFrame:
    def one(item: tuple[int, np.ndarray]) -> _ClassResult:
        k, rows = item
        cd = _class_data(problem, params, k, rows)
        return _ClassResult(k, cd, *work(cd))

    jobs = list(enumerate(_class_rows(problem)))
    if params.n_jobs > 1 and len(jobs) > 1:
        with ThreadPoolExecutor(params.n_jobs) as pool:
            results = list(_progress(pool.map(one, jobs), len(jobs), progress))
    else:
        results = list(_progress(map(one, jobs), len(jobs), progress))
    return _table([r for r in results if len(r.sizes)], lattice)


def _progress(it: Iterable, total: int, enabled: bool) -> Iterable:
    if not enabled:
        return it
    from tqdm.auto import tqdm

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


def _tag_tuples(items: np.ndarray, names: np.ndarray) -> list[tuple]:
    """Rows of -1-padded tag indices -> sorted tuples of tag names (vectorised per length)."""
    width = items.shape[1]
    ordered = np.sort(np.where(items < 0, np.iinfo(np.int64).max, items), axis=1)
    lengths = (items >= 0).sum(axis=1)
    out: list[tuple] = [()] * len(items)
    for k in range(1, width + 1):
        rows = np.flatnonzero(lengths == k)
        if len(rows):
            for i, t in zip(rows.tolist(), map(tuple, names[ordered[rows, :k]].tolist())):
                out[i] = t
    return out


def _table(results: list[_ClassResult], lattice: bool) -> pd.DataFrame:
    """One DataFrame from the raw arrays of every class, built once (not per class)."""
    columns = list(LATTICE_COLUMNS if lattice else MODE_COLUMNS)
    if not results:
        return _empty(columns)
    counts = [len(r.sizes) for r in results]
    n_tags = np.concatenate([(r.items >= 0).sum(axis=1) for r in results]).astype(np.int64)
    sizes = np.concatenate([r.sizes for r in results]).astype(np.int64)
    acc = np.concatenate([r.corr for r in results]) / sizes
    class_acc = np.repeat([r.cd.accuracy for r in results], counts)
    tags = [t for r in results for t in _tag_tuples(r.items, r.cd.names)]
    labels = np.empty(len(sizes), dtype=object)
    labels[:] = [r.cd.label for r, c in zip(results, counts) for _ in range(c)]
    frame = pd.DataFrame(
        {
            "class": labels,
            "tags": tags,
            "n_tags": n_tags,
            "size": sizes,
            "accuracy": acc,
            "class_accuracy": class_acc,
            "drop": class_acc - acc,
            "necessity_margin": np.where(
                n_tags == 1, np.nan, np.concatenate([r.margins for r in results])
            ),
        }
    )
    if lattice:
        frame["is_failure_mode"] = np.concatenate([r.is_mode for r in results]).astype(bool)
    else:
        frame["description"] = [describe(c, t) for c, t in zip(labels, tags)]
    key = ["\x00".join(t) for t in tags]
    order = np.lexsort((key, acc, n_tags, np.repeat([r.rank for r in results], counts)))
    return frame.iloc[order].reset_index(drop=True)[columns]


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


# ---------------------------------------------------------------------------------------------
# public API


def describe(cls: Any, tags: Sequence[str]) -> str:
    """Bag-of-words description of a mode (paper 4.3): ``"a photo of {class} {tag} {tag}..."``."""
    return " ".join(["a photo of", str(cls), *tags])


def find_failure_modes(
    tags: pd.DataFrame,
    labels: pd.Series,
    correct: pd.Series,
    *,
    min_size: int = 30,
    min_drop: float = 0.30,
    necessity: Mapping[int, float] | Sequence[float] = DEFAULT_NECESSITY,
    max_tags: int = 4,
    min_tag_count: int | None = None,
    method: str = "exhaustive",
    beam_width: int = 10,
    n_jobs: int = 1,
    progress: bool = False,
) -> pd.DataFrame:
    """Find minimal tag combinations on which the classifier underperforms (PRIME, section 3).

    Parameters
    ----------
    tags : DataFrame of bool (or 0/1), shape (n_samples, n_tags)
        Index = sample id (unique), one column per tag.
    labels : Series, length n_samples
        Class of each sample, indexed by sample id (same ids as ``tags``, any order).
    correct : Series of bool (or 0/1), length n_samples
        Whether the classifier's prediction is right, indexed by sample id.
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

    Returns
    -------
    DataFrame
        One row per failure mode with columns ``class, tags, n_tags, size, accuracy,
        class_accuracy, drop, necessity_margin, description``: ``tags`` is a sorted tuple of tag
        names, ``drop = class_accuracy - accuracy``, ``necessity_margin = min_t A_{S\\t} - A_S``
        (NaN for one tag). Rows are ordered by class, number of tags, accuracy, then tags.

    Raises
    ------
    TypeError, ValueError
        On bad input, before any work, naming the argument.
    """
    if method not in METHODS:
        raise ValueError(f"method: expected one of {', '.join(METHODS)}, got {method!r}")
    beam_width = _check_int(beam_width, "beam_width", 1)
    params = _validate_params(min_size, min_drop, necessity, max_tags, min_tag_count, n_jobs)
    problem = _validate_data(tags, labels, correct)
    if method == "greedy":

        def work(cd: _ClassData) -> tuple:
            return _greedy(cd, params, beam_width)
    else:

        def work(cd: _ClassData) -> tuple:
            return _exhaustive(cd, params, False)

    return _run(problem, params, work, lattice=False, progress=progress)


def tag_lattice(
    tags: pd.DataFrame,
    labels: pd.Series,
    correct: pd.Series,
    *,
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
    :func:`find_failure_modes`.

    Returns
    -------
    DataFrame
        Columns ``class, tags, n_tags, size, accuracy, class_accuracy, drop, necessity_margin,
        is_failure_mode``; the rows with ``is_failure_mode`` are exactly the output of
        :func:`find_failure_modes`. ``necessity_margin`` is computed for every row of 2+ tags.
    """
    params = _validate_params(min_size, min_drop, necessity, max_tags, min_tag_count, n_jobs)
    problem = _validate_data(tags, labels, correct)
    return _run(
        problem, params, lambda cd: _exhaustive(cd, params, True), lattice=True, progress=False
    )


def subset_accuracies(
    tags: pd.DataFrame,
    labels: pd.Series,
    correct: pd.Series,
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
    problem = _validate_data(tags, labels, correct)
    if isinstance(mode_tags, str):
        raise TypeError("mode_tags: expected a sequence of tag names, got a single string")
    mode_tags = tuple(sorted(str(t) for t in mode_tags))
    unknown = [t for t in mode_tags if t not in set(problem.tag_names)]
    if unknown:
        raise ValueError(f"mode_tags: unknown tag(s) {unknown}")
    if cls not in problem.classes:
        raise ValueError(f"cls: no sample has label {cls!r}")
    rows = problem.codes == problem.classes.index(cls)
    col = {name: i for i, name in enumerate(problem.tag_names)}
    sub = problem.matrix[rows]
    ok = problem.correct[rows]
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


def modes_to_csv_frame(modes: pd.DataFrame) -> pd.DataFrame:
    """Copy of a mode table with ``tags`` joined by ``" + "`` (the paper's style), for CSV."""
    out = modes.copy()
    out["tags"] = [" + ".join(t) for t in out["tags"]]
    return out


def modes_from_csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Inverse of :func:`modes_to_csv_frame`: split ``tags`` on ``" + "`` back into tuples."""
    missing = [c for c in MODE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"modes: missing column(s) {missing}")
    out = frame.copy()
    out["tags"] = [
        tuple(str(x) for x in t)
        if isinstance(t, (tuple, list, np.ndarray))
        else tuple(str(t).split(" + "))
        for t in out["tags"]
    ]
    return out


def write_modes(modes: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write a mode table atomically: CSV with tags joined by ``" + "``, or Parquet with lists."""
    from .io import write_table

    if str(path).lower().endswith(".csv"):
        table = modes_to_csv_frame(modes)
    else:
        table = modes.assign(tags=[list(t) for t in modes["tags"]])
    write_table(table, path, argument="out")


def read_modes(path: str | os.PathLike) -> pd.DataFrame:
    """Read a mode table written by :func:`write_modes` (tags back as sorted tuples)."""
    from .io import read_table

    return modes_from_csv_frame(read_table(path, argument="modes"))


def modes_by_class(modes: pd.DataFrame, *, max_modes: int | None = 10) -> pd.DataFrame:
    """One row per class in the style of the paper's appendix A.3.

    Returns
    -------
    DataFrame
        ``class, class_accuracy, n_modes, n_1_tag, n_2_tags, ...`` and ``modes``, the text
        ``"dry + grass (47.80%); snow (30.12%); ..."`` listing up to ``max_modes`` modes of the
        class, least accurate first.
    """
    missing = [c for c in ("class", "tags", "accuracy", "class_accuracy") if c not in modes]
    if missing:
        raise ValueError(f"modes: missing column(s) {missing}")
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
    tags: pd.DataFrame, labels: pd.Series, correct: pd.Series, modes: pd.DataFrame
) -> pd.DataFrame:
    """:func:`subset_accuracies` of every mode of ``modes``, stacked.

    Returns
    -------
    DataFrame
        ``mode`` (row position in ``modes``), ``class``, ``mode_tags`` and the columns of
        :func:`subset_accuracies` (``tags, n_tags, size, accuracy``).
    """
    frames = []
    for position, (cls, mode_tags) in enumerate(zip(modes["class"], modes["tags"])):
        table = subset_accuracies(tags, labels, correct, cls=cls, mode_tags=mode_tags)
        table.insert(0, "mode_tags", [tuple(mode_tags)] * len(table))
        table.insert(0, "class", cls)
        table.insert(0, "mode", position)
        frames.append(table)
    if not frames:
        return pd.DataFrame(columns=["mode", "class", "mode_tags", "tags", "n_tags", "size", "accuracy"])
    return pd.concat(frames, ignore_index=True)
