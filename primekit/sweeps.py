"""Hyperparameter sweeps of the search (paper appendix A.5, A.6, Fig. 10).

- :func:`paper_search`: the paper's Living17 settings (s=30, a=30%), used by the evaluation
  notebooks so that their numbers sit next to the paper's.
- :func:`sweep_grid`: the (s, a) grid a sweep walks, and :func:`sweep_defaults`, grids that suit
  the toy world (full and smoke size).
- :func:`sweep_recovered`: the failure modes found at every (s, a) of a grid, each recovered on
  unseen data (Fig. 10's panels). The per-point summary (number of modes, share of modes that keep
  their drop, correlation of the drops; Table 4) is :func:`primekit.metrics.generalization_sweep`.
- :func:`compare_search_methods`: greedy (beam) vs exhaustive search (A.6): modes found, how many
  of the exhaustive modes each recovers, and wall time.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from . import metrics, search
from .search import paper_search, search_defaults
from .split import require_split

__all__ = [
    "paper_search",
    "sweep_grid",
    "sweep_defaults",
    "sweep_recovered",
    "compare_search_methods",
]


def _values(values: Any, argument: str, kind: type) -> list:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"{argument}: expected a sequence of numbers, got {values!r}")
    out = list(values)
    if not out:
        raise ValueError(f"{argument}: expected at least one value")
    for v in out:
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise TypeError(f"{argument}: expected numbers, got {v!r}")
        if kind is int and int(v) != v:
            raise TypeError(f"{argument}: expected integers, got {v!r}")
    return [kind(v) for v in out]


def sweep_grid(min_sizes: Sequence[int], min_drops: Sequence[float]) -> list[tuple[int, float]]:
    """Every (s, a) pair of ``min_sizes`` x ``min_drops``, s varying slowest.

    The result is the ``grid`` of :func:`primekit.metrics.generalization_sweep`.
    """
    sizes = _values(min_sizes, "min_sizes", int)
    drops = _values(min_drops, "min_drops", float)
    return list(itertools.product(sizes, drops))


def sweep_defaults(smoke: bool = False, **overrides: Any) -> dict[str, Any]:
    """Grids of s (``min_sizes``) and a (``min_drops``) that give modes on the toy world, the
    (s, a) ``panels`` drawn as Fig. 10, and the ``search`` settings of the greedy vs exhaustive
    comparison, with the caller's non-None ``overrides`` applied.

    The full world (about 650 val images per class) uses s in {25, 30, 50, 100} (the paper's
    values for Living17/CelebA, Table 4) and a in {0.20, 0.25, 0.30, 0.35}; the smoke world
    (about 100 val images per class, a weak classifier) uses s in {5, 10, 15, 20} and a in
    {0.10, 0.15, 0.20, 0.25}. Panels: the diagonal of the grid (s and a growing together).
    ``search``: :func:`primekit.search.search_defaults` at the most permissive point of the grid
    (smallest s and a: the largest lattice, where greedy and exhaustive differ most), unless
    ``min_size``/``min_drop``/``max_tags`` are given. Notebooks pass their parameters, where
    ``None`` means "the default for this world"::

        grid = sweep_defaults(smoke, min_sizes=min_sizes, min_drops=min_drops, panels=panels)
    """
    if smoke:
        out: dict[str, list] = {"min_sizes": [5, 10, 15, 20], "min_drops": [0.10, 0.15, 0.20, 0.25]}
    else:
        out = {"min_sizes": [25, 30, 50, 100], "min_drops": [0.20, 0.25, 0.30, 0.35]}
    grids = {"min_sizes", "min_drops"}
    singles = {"min_size", "min_drop", "max_tags"}
    unknown = set(overrides) - grids - singles - {"panels"}
    if unknown:
        raise ValueError(f"overrides: unknown setting(s) {sorted(unknown)}")
    out.update({k: list(v) for k, v in overrides.items() if v is not None and k in grids})
    sweep_grid(out["min_sizes"], out["min_drops"])  # validates
    panels = overrides.get("panels")
    if panels is None:
        panels = list(zip(out["min_sizes"], out["min_drops"], strict=False))
    out["panels"] = [(int(s), float(a)) for s, a in panels]
    search = {"min_size": min(out["min_sizes"]), "min_drop": min(out["min_drops"])}
    search.update({k: overrides[k] for k in singles if overrides.get(k) is not None})
    out["search"] = search_defaults(smoke, **search)
    return out


def sweep_recovered(
    data: Any,
    unseen: Any,
    *,
    grid: Iterable[tuple[int, float]],
    **search_options: Any,
) -> pd.DataFrame:
    """Fig. 10: the modes found at every (s, a) of ``grid``, each recovered on unseen data.

    Parameters
    ----------
    data : TaggedSplit
        The split searched, e.g. ``load_study(...).val`` (a
        :class:`~primekit.split.TaggedSplit` with correctness).
    unseen : TaggedSplit
        Unseen data, e.g. ``study.test``.
    grid : iterable of (min_size, min_drop) pairs, e.g. :func:`sweep_grid`
    **search_options : other options of the search (necessity, max_tags, method, ...)

    Returns
    -------
    DataFrame, one row per (grid point, mode): ``min_size``, ``min_drop``, the mode columns and
    the columns of :func:`primekit.metrics.recover_groups` (``test_size``, ``test_drop``, ...).
    A grid point without modes has no row (see ``generalization_sweep`` for the counts).
    """
    data = require_split(data, "data")
    unseen = require_split(unseen, "unseen")
    grid = list(grid)
    if not grid:
        raise ValueError("grid: expected at least one (min_size, min_drop) pair")
    for point in grid:
        if not isinstance(point, (tuple, list)) or len(point) != 2:
            raise TypeError(f"grid: expected (min_size, min_drop) pairs, got {point!r}")
    for bad in ("min_size", "min_drop"):
        if bad in search_options:
            raise TypeError(f"{bad}: set by grid, not an option of sweep_recovered")
    frames = []
    for min_size, min_drop in grid:
        modes = search.find_failure_modes(
            data, min_size=min_size, min_drop=min_drop, **search_options
        )
        recovered = metrics.recover_groups(modes, unseen)
        recovered.insert(0, "min_drop", float(min_drop))
        recovered.insert(0, "min_size", int(min_size))
        frames.append(recovered)
    filled = [f for f in frames if len(f)]
    return pd.concat(filled or frames[:1], ignore_index=True)


def _timed(fn: Any, repeat: int) -> tuple[pd.DataFrame, float]:
    best, out = np.inf, None
    for _ in range(repeat):
        started = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - started)
    return out, float(best)


def compare_search_methods(
    tags: pd.DataFrame,
    labels: pd.Series,
    correct: pd.Series,
    *,
    beam_widths: Sequence[int] = (1, 3, 10),
    repeat: int = 3,
    **search_options: Any,
) -> pd.DataFrame:
    """Appendix A.6: greedy (beam) search against the exhaustive search on the same data.

    Parameters
    ----------
    tags, labels, correct : contract of :func:`primekit.find_failure_modes`
    beam_widths : beam widths of the greedy search to compare
    repeat : int
        Each search is timed ``repeat`` times; the fastest run is reported.
    **search_options : min_size, min_drop, necessity, max_tags, ... (shared by all methods)

    Returns
    -------
    DataFrame indexed by ``method`` (``"exhaustive"``, ``"greedy (beam 1)"``, ...) with
    ``beam_width`` (NaN for exhaustive), ``n_modes``, ``n_exhaustive`` (modes of the exhaustive
    search), ``n_recovered`` (modes also found by the exhaustive search; all of them, since
    greedy outputs are exhaustive outputs), ``share_recovered`` = n_recovered / n_exhaustive
    (NaN when the exhaustive search finds none), ``n_modes_by_size`` (dict n_tags -> count),
    ``seconds`` and ``speedup`` (exhaustive seconds / seconds).
    """
    widths = _values(beam_widths, "beam_widths", int)
    if min(widths) < 1:
        raise ValueError(f"beam_widths: must be >= 1, got {min(widths)}")
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        raise ValueError(f"repeat: expected a positive integer, got {repeat!r}")
    for bad in ("method", "beam_width"):
        if bad in search_options:
            raise TypeError(f"{bad}: set by compare_search_methods, not an option")

    def run(method: str, width: int = 10) -> pd.DataFrame:
        return search.find_failure_modes(
            tags, labels, correct, method=method, beam_width=width, **search_options
        )

    exhaustive, seconds = _timed(lambda: run("exhaustive"), repeat)
    reference = set(zip(exhaustive["class"], exhaustive["tags"], strict=False))
    rows = {}
    candidates = [("exhaustive", np.nan, exhaustive, seconds)]
    for width in widths:
        modes, took = _timed(lambda w=width: run("greedy", w), repeat)
        candidates.append((f"greedy (beam {width})", width, modes, took))
    for name, width, modes, took in candidates:
        found = set(zip(modes["class"], modes["tags"], strict=False))
        n_rec = len(found & reference)
        rows[name] = {
            "beam_width": width,
            "n_modes": len(modes),
            "n_exhaustive": len(reference),
            "n_recovered": n_rec,
            "share_recovered": n_rec / len(reference) if reference else np.nan,
            "n_modes_by_size": {
                int(k): int(v) for k, v in modes["n_tags"].value_counts().sort_index().items()
            },
            "seconds": took,
            "speedup": seconds / took if took > 0 else np.nan,
        }
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "method"
    return out
