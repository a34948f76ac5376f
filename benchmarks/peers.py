"""Peer implementations of PRIME's failure-mode search, for the benchmark.

All peers take the same arguments as ``primekit.find_failure_modes`` (plus ``classes``, to run on a
subset of classes; unlike primekit they assume ``tags``, ``labels`` and ``correct`` in the same row
order, as the generator makes them) and return a DataFrame with the columns ``class, tags, n_tags, size, accuracy,
class_accuracy, drop, necessity_margin`` (``tags`` a sorted tuple), one row per failure mode, in
the order ``class, n_tags, tags``. The definition (DESIGN.md, "The method"): for each class c,
T_c = tags on at least ``min_tag_count`` (default ``min_size``) samples of c; S subset of T_c with
1 <= |S| <= ``max_tags`` is a mode iff |I_S| >= ``min_size``, A_S <= A_c - ``min_drop`` (+1e-9),
and |S| = 1 or A_{S minus t} >= A_S + b_|S| (-1e-9) for every t in S.

- ``pure_python``: what a researcher would write in plain Python: one ``set`` of sample positions
  per tag, a depth-first walk over combinations with support pruning, set
  intersections, and a dict lookup for the necessity check (``itertools``-style nested loops
  would enumerate all C(100, 4) = 3.9M combinations per class; support pruning is the least a
  researcher would add).
- ``mlxtend_fpgrowth``: mlxtend's ``fpgrowth(df, min_support, max_len, use_colnames=True)`` per class,
  then the accuracy of every frequent itemset (vectorised numpy, chunked) and the necessity check.
- ``divexplorer_fpgrowth``: DivExplorer's FP-growth with outcome accumulation (``fpgrowth_cm``, the
  engine of ``DivergenceExplorer.get_pattern_divergence``) per class with the boolean outcome
  ``correct``, ``max_len``; accuracy is the accumulated positives over positives + negatives.
  The public ``DivergenceExplorer.get_pattern_divergence`` cannot be used as is: it has no
  ``max_len`` (so it mines itemsets of every length, exponential with correlated tags), and with
  ``is_one_hot_encoding=True`` it fails with an UnboundLocalError (``df_ohe``; DivExplorer 0.2.6); with
  ``is_one_hot_encoding=False`` it one-hot encodes each boolean column into ``tag=True`` and
  ``tag=False`` items, which mines the absence of tags as well.

``TIMING_ONLY`` holds a peer that answers another question, so only its time is comparable:

- ``sliceline_topk``: SliceLine (the ``sliceline`` package's ``Slicefinder``, Sagadeeva & Boehm,
  SIGMOD 2021) per class on the same tag matrix with the errors ``~correct``: the ``k`` slices of
  highest SliceLine score (``alpha``, ``min_sup = min_size``, ``max_l = max_tags``). It one-hot
  encodes every value of every column, so "tag absent" is a predicate too; its slices are not
  PRIME's modes. The child's address space is capped (``SLICELINE_MEMORY``) so that its dense
  candidate matrices fail with a MemoryError instead of swapping the machine.

FP-growth's ``min_support`` is a fraction; ``ceil(min_support * n)`` of ``min_size / n`` can round
up past ``min_size`` in floating point, so the peers pass ``(min_size - 0.5) / n``, which selects
exactly the itemsets with at least ``min_size`` samples.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from primekit.mode_table import MODE_COLUMNS

TOL = 1e-9
# the contract columns, without the description the peers do not write (named once, in primekit.mode_table)
COLUMNS = list(MODE_COLUMNS[:-1])
DEFAULT_NECESSITY = {2: 0.10, 3: 0.05, 4: 0.025}


def _classes(labels: pd.Series, classes: Iterable | None) -> list[tuple]:
    """``(class, row positions)`` of the wanted classes, sorted by name (one groupby pass)."""
    groups = labels.groupby(labels.to_numpy(), sort=False).indices
    wanted = groups.keys() if classes is None else set(classes) & groups.keys()
    return [(c, groups[c]) for c in sorted(wanted, key=str)]


def _select_modes(
    cls,
    stats: Mapping[tuple, tuple[int, int]],
    class_accuracy: float,
    *,
    min_drop: float,
    necessity: Mapping[int, float],
) -> list[dict]:
    """Apply conditions 2 and 3 to ``stats``: sorted tag tuple -> (size, n_correct) of every
    frequent group (all subsets of a frequent group are frequent, so they are all in ``stats``)."""
    rows = []
    threshold = class_accuracy - min_drop + TOL
    accuracy = {s: ok / n for s, (n, ok) in stats.items()}
    for tags, acc in accuracy.items():
        if acc > threshold:
            continue
        k = len(tags)
        margin = math.nan
        if k > 1:
            parents = [accuracy[tags[:i] + tags[i + 1 :]] for i in range(k)]
            margin = min(parents) - acc
            if margin < necessity[k] - TOL:
                continue
        rows.append(
            {
                "class": cls,
                "tags": tags,
                "n_tags": k,
                "size": stats[tags][0],
                "accuracy": acc,
                "class_accuracy": class_accuracy,
                "drop": class_accuracy - acc,
                "necessity_margin": margin,
            }
        )
    return rows


def _frame(rows: list[dict]) -> pd.DataFrame:
    out = pd.DataFrame(rows, columns=COLUMNS)
    if len(out):
        out["_c"] = out["class"].map(str)
        out = out.sort_values(["_c", "n_tags", "tags"], kind="stable").drop(columns="_c")
    return out.reset_index(drop=True)


def _class_block(tags: pd.DataFrame, correct: pd.Series, rows: np.ndarray, min_count: int):
    """Samples of one class restricted to T_c: (bool DataFrame, correct as bool ndarray)."""
    block = tags.iloc[rows]
    counts = block.sum(axis=0)
    block = block.loc[:, (counts >= min_count).to_numpy()]
    return block, correct.to_numpy()[rows].astype(bool)


def _walk(vocab: list, tag_sets: dict, right: set, min_size: int, max_tags: int) -> dict:
    """Depth-first over combinations of ``vocab`` (in order), intersecting sample sets; returns
    ``{tags: (size, n_correct)}`` for every combination with at least ``min_size`` samples."""
    stats: dict[tuple, tuple[int, int]] = {}

    def extend(prefix: tuple, carriers: set, start: int) -> None:
        for j in range(start, len(vocab)):
            both = carriers & tag_sets[vocab[j]] if prefix else tag_sets[vocab[j]]
            if len(both) < min_size:
                continue
            group = prefix + (vocab[j],)
            stats[group] = (len(both), len(both & right))
            if len(group) < max_tags:
                extend(group, both, j + 1)

    extend((), set(), 0)
    return stats


def pure_python(
    tags: pd.DataFrame,
    labels: pd.Series,
    correct: pd.Series,
    *,
    min_size: int = 30,
    min_drop: float = 0.30,
    necessity: Mapping[int, float] = DEFAULT_NECESSITY,
    max_tags: int = 4,
    min_tag_count: int | None = None,
    classes: Iterable | None = None,
) -> pd.DataFrame:
    """Plain Python: per-tag sets of sample positions, depth-first set intersections.

    Only the per-class slicing and the per-tag position lists use pandas/numpy (as a researcher
    would); the search itself is Python sets and dicts."""
    min_count = min_size if min_tag_count is None else min_tag_count
    rows: list[dict] = []
    for cls, positions in _classes(labels, classes):
        block, ok = _class_block(tags, correct, positions, min_count)
        n_class = len(block)
        right = set(np.flatnonzero(ok).tolist())
        class_accuracy = len(right) / n_class
        tag_sets = {
            name: set(np.flatnonzero(block[name].to_numpy()).tolist()) for name in block.columns
        }
        stats = _walk(sorted(tag_sets), tag_sets, right, min_size, max_tags)
        rows.extend(
            _select_modes(cls, stats, class_accuracy, min_drop=min_drop, necessity=necessity)
        )
    return _frame(rows)


def _itemset_stats(
    block: pd.DataFrame, ok: np.ndarray, itemsets: Iterable[frozenset], chunk: int = 2048
) -> dict[tuple, tuple[int, int]]:
    """Size and number of correct samples of each itemset, vectorised per itemset length."""
    position = {name: i for i, name in enumerate(block.columns)}
    x = block.to_numpy(dtype=bool)
    by_len: dict[int, list[tuple]] = {}
    for items in itemsets:
        by_len.setdefault(len(items), []).append(tuple(sorted(items)))
    stats = {}
    for groups in by_len.values():
        idx = np.array([[position[t] for t in g] for g in groups], dtype=np.intp)
        for lo in range(0, len(groups), chunk):
            part = idx[lo : lo + chunk]
            carriers = x[:, part].all(axis=2)  # (n_class, chunk)
            sizes = carriers.sum(axis=0)
            rights = carriers[ok].sum(axis=0)
            for g, n, r in zip(
                groups[lo : lo + chunk], sizes.tolist(), rights.tolist(), strict=True
            ):
                stats[g] = (n, r)
    return stats


def mlxtend_fpgrowth(
    tags: pd.DataFrame,
    labels: pd.Series,
    correct: pd.Series,
    *,
    min_size: int = 30,
    min_drop: float = 0.30,
    necessity: Mapping[int, float] = DEFAULT_NECESSITY,
    max_tags: int = 4,
    min_tag_count: int | None = None,
    classes: Iterable | None = None,
) -> pd.DataFrame:
    """mlxtend ``fpgrowth`` per class, then accuracies and the necessity check."""
    from mlxtend.frequent_patterns import fpgrowth

    min_count = min_size if min_tag_count is None else min_tag_count
    rows: list[dict] = []
    for cls, positions in _classes(labels, classes):
        block, ok = _class_block(tags, correct, positions, min_count)
        n_class = len(block)
        class_accuracy = float(ok.mean())
        if block.shape[1] == 0 or n_class < min_size:
            continue
        frequent = fpgrowth(
            block, min_support=(min_size - 0.5) / n_class, max_len=max_tags, use_colnames=True
        )
        stats = _itemset_stats(block, ok, frequent["itemsets"])
        rows.extend(
            _select_modes(cls, stats, class_accuracy, min_drop=min_drop, necessity=necessity)
        )
    return _frame(rows)


def divexplorer_fpgrowth(
    tags: pd.DataFrame,
    labels: pd.Series,
    correct: pd.Series,
    *,
    min_size: int = 30,
    min_drop: float = 0.30,
    necessity: Mapping[int, float] = DEFAULT_NECESSITY,
    max_tags: int = 4,
    min_tag_count: int | None = None,
    classes: Iterable | None = None,
) -> pd.DataFrame:
    """DivExplorer's FP-growth with the boolean outcome ``correct`` accumulated per itemset."""
    from divexplorer.utils_FPgrowth import fpgrowth_cm

    min_count = min_size if min_tag_count is None else min_tag_count
    rows: list[dict] = []
    for cls, positions in _classes(labels, classes):
        block, ok = _class_block(tags, correct, positions, min_count)
        n_class = len(block)
        class_accuracy = float(ok.mean())
        if block.shape[1] == 0 or n_class < min_size:
            continue
        # The outcome columns DivergenceExplorer builds for a boolean outcome.
        outcomes = pd.DataFrame(
            {
                "correct_positive": ok.astype(int),
                "correct_negative": (~ok).astype(int),
                "correct_bottom": np.zeros(n_class, dtype=int),
            }
        )
        found = fpgrowth_cm(
            block.reset_index(drop=True),
            outcomes,
            min_support=(min_size - 0.5) / n_class,
            use_colnames=True,
            max_len=max_tags,
            columns_accumulate=list(outcomes.columns),
        )
        stats = {}
        for items, pos, neg in zip(
            found["itemset"], found["correct_positive"], found["correct_negative"], strict=True
        ):
            stats[tuple(sorted(items))] = (int(pos + neg), int(pos))
        rows.extend(
            _select_modes(cls, stats, class_accuracy, min_drop=min_drop, necessity=necessity)
        )
    return _frame(rows)


def brute_force(
    tags: pd.DataFrame,
    labels: pd.Series,
    correct: pd.Series,
    *,
    min_size: int = 30,
    min_drop: float = 0.30,
    necessity: Mapping[int, float] = DEFAULT_NECESSITY,
    max_tags: int = 4,
    min_tag_count: int | None = None,
    classes: Iterable | None = None,
) -> pd.DataFrame:
    """Every combination of T_c with itertools (no pruning); for tiny problems in tests only."""
    min_count = min_size if min_tag_count is None else min_tag_count
    rows: list[dict] = []
    for cls, positions in _classes(labels, classes):
        block, ok = _class_block(tags, correct, positions, min_count)
        x = block.to_numpy(dtype=bool)
        names = list(block.columns)
        stats = {}
        for k in range(1, max_tags + 1):
            for combo in itertools.combinations(range(len(names)), k):
                carriers = x[:, list(combo)].all(axis=1)
                if carriers.sum() >= min_size:
                    stats[tuple(sorted(names[i] for i in combo))] = (
                        int(carriers.sum()),
                        int(carriers[ok].sum()),
                    )
        if len(ok):
            rows.extend(
                _select_modes(cls, stats, float(ok.mean()), min_drop=min_drop, necessity=necessity)
            )
    return _frame(rows)


#: Address-space cap (bytes) of the process running ``sliceline_topk``.
SLICELINE_MEMORY = 8 * 2**30


def sliceline_topk(tags: pd.DataFrame, labels: pd.Series, correct: pd.Series, *, min_size: int = 30,
                   max_tags: int = 4, min_tag_count: int | None = None, classes: Iterable | None = None,
                   k: int = 25, alpha: float = 0.95, **prime_only) -> pd.DataFrame:
    """SliceLine's top-``k`` slices per class (timing only; see the module docstring). Rows have
    the usual columns; a slice with a "tag absent" predicate lists it as ``"not <tag>"``.
    ``min_drop`` and ``necessity`` are accepted, as by every peer, and unused: SliceLine ranks
    slices by its own score."""
    import resource

    from sliceline.slicefinder import Slicefinder

    unknown = set(prime_only) - {"min_drop", "necessity"}
    if unknown:
        raise TypeError(f"sliceline_topk: unexpected keyword argument(s) {sorted(unknown)}")
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    # at least 2 GiB above what the process maps already: a process that maps more than the cap
    # (a Ray session earlier in a test run reserves ~14 GB) would otherwise hang on its next mmap
    cap = max(SLICELINE_MEMORY, _mapped_bytes() + 2 * 2**30)
    cap = cap if hard == resource.RLIM_INFINITY else min(cap, hard)
    if soft == resource.RLIM_INFINITY or soft > cap:
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    min_count = min_size if min_tag_count is None else min_tag_count
    rows: list[dict] = []
    try:
        for cls, positions in _classes(labels, classes):
            block, ok = _class_block(tags, correct, positions, min_count)
            if block.shape[1] == 0 or len(block) < min_size:
                continue
            x = block.to_numpy(dtype=np.int8)
            finder = Slicefinder(alpha=alpha, k=k, max_l=max_tags, min_sup=min_size).fit(x, (~ok).astype(float))
            rows.extend(_slice_rows(cls, finder.top_slices_, x, ok, list(block.columns)))
    finally:  # the cap is for the search only, not for the caller's process afterwards
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    return _frame(rows)


def _mapped_bytes() -> int:
    """The address space this process maps now (``VmSize``; 0 where /proc is not there)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def _slice_rows(cls, predicates, x: np.ndarray, ok: np.ndarray, names: list) -> list[dict]:
    """SliceLine's predicates (one value or None per column) as rows of the peers' columns."""
    class_accuracy = float(ok.mean())
    rows = []
    for predicate in predicates:
        used = [(j, int(v)) for j, v in enumerate(predicate) if v is not None and v == v]
        carriers = np.ones(len(x), bool)
        for j, v in used:
            carriers &= x[:, j] == v
        accuracy = float(ok[carriers].mean()) if carriers.any() else float("nan")
        rows.append(
            {
                "class": cls,
                "tags": tuple(sorted(names[j] if v else f"not {names[j]}" for j, v in used)),
                "n_tags": len(used),
                "size": int(carriers.sum()),
                "accuracy": accuracy,
                "class_accuracy": class_accuracy,
                "drop": class_accuracy - accuracy,
                "necessity_margin": float("nan"),
            }
        )
    return rows


PEERS = {
    "pure Python": pure_python,
    "mlxtend fpgrowth": mlxtend_fpgrowth,
    "DivExplorer fpgrowth": divexplorer_fpgrowth,
}
#: Peers whose output is not PRIME's modes: the runner reports their time, not agreement.
TIMING_ONLY = {"SliceLine top-K": sliceline_topk}
