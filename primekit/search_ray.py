"""The search beyond one machine: class-partitioned on Ray, gathering the same mode table.

PRIME's search is independent per class, so a tag table larger than one machine's memory (say 50 M
images, 500 M tag rows) is searched in partitions of whole classes: each Ray task receives the
samples of its classes and their tag rows, runs :func:`primekit.find_failure_modes` on them (the
long-table path of ``primekit._bitsets``), and the driver concatenates the mode tables in the
single-process order. The result equals the single-process result row for row.

How the rows reach their partition:

- **a dataset partitioned by class** (hive folders ``label=dog/part-0.parquet``, as
  ``pyarrow.dataset.write_dataset(..., partitioning=["label"], partitioning_flavor="hive")`` writes
  them): each task reads only its classes' folders (partition pruning); nothing moves through the
  driver. Pass ``partition_column`` (found by itself when the column is ``label`` or ``class``).
- **any other Parquet dataset** (one file, or the parts a tagging job wrote): one map task per file
  reads it, looks each id up in the samples (shipped once through the object store) and splits
  its rows by partition; the search tasks gather their pieces (a shuffle in Ray's object store).

Pointing it at a cluster: as for :func:`primekit.tagging.ray.tag_images_ray` (``address="auto"``,
the tag dataset at the same path on every node, or on object storage that pyarrow reads).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._bitsets import encode_long_table
from ._join import JoinReport
from ._validation import check_int, sorted_classes
from .samples import read_samples, validate_samples
from .search import find_failure_modes, search_settings, tag_lattice
from .statistics import STATISTIC_COLUMNS, attach, check_max_q, conditional_q_values

__all__ = ["find_failure_modes_ray"]

logger = logging.getLogger(__name__)

_CLASS_COLUMNS = ("label", "class")
_SEARCH_OPTIONS = (
    "min_size", "min_drop", "necessity", "max_tags", "min_tag_count", "method", "beam_width",
)  # fmt: skip


def _dataset(tags: Any):
    import pyarrow.dataset as ds

    if not isinstance(tags, (str, os.PathLike)):
        raise TypeError(
            f"tags: expected the path of a Parquet file or dataset folder, got {type(tags).__name__}"
        )
    if not Path(tags).exists():
        raise ValueError(f"tags: {str(tags)!r} does not exist")
    try:
        return ds.dataset(tags, format="parquet", partitioning="hive")
    except Exception as exc:  # any reader error becomes one clear line
        raise ValueError(f"tags: cannot read {str(tags)!r}: {exc}") from exc


def _partition_column(dataset: Any, requested: str | None) -> str | None:
    fields = list(dataset.partitioning.schema.names) if dataset.partitioning else []
    if requested is not None:
        if requested not in fields:
            raise ValueError(
                f"partition_column: {requested!r} is not a partition field of tags "
                f"(fields: {fields or 'none'})"
            )
        return requested
    return next((c for c in _CLASS_COLUMNS if c in fields), None)


def _assign(samples: pd.DataFrame, classes: list, n_partitions: int) -> np.ndarray:
    """Partition of each class: largest classes first onto the least loaded partition."""
    sizes = samples["label"].value_counts()
    load = np.zeros(n_partitions, np.int64)
    part = np.empty(len(classes), np.int64)
    order = sorted(range(len(classes)), key=lambda k: (-int(sizes[classes[k]]), k))
    for k in order:
        p = int(np.argmin(load))
        part[k] = p
        load[p] += int(sizes[classes[k]])
    return part


def _split_rows(fragment_path: str, filesystem: Any, lookup: Any, n_partitions: int) -> list:
    """Map task: one file's tag rows split by the partition of their sample (-1: no sample)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    ids_index, partition_of = lookup
    table = ds.dataset(fragment_path, format="parquet", filesystem=filesystem).to_table()
    columns = [c for c in ("id", "tag", "score") if c in table.schema.names]
    table = table.select(columns)
    ids = table.column("id")
    ids = ids if pa.types.is_string(ids.type) else ids.cast(pa.string())
    position = ids_index.get_indexer(ids.to_numpy(zero_copy_only=False))
    part = np.where(position >= 0, partition_of[np.maximum(position, 0)], -1)
    stray = table.filter(pa.array(part == -1))  # -2: a sample left out on purpose
    pieces = [table.filter(pa.array(part == p)) for p in range(n_partitions)]
    return [*pieces, stray.column("id").unique().to_pylist(), stray.num_rows]


def _search(samples: pd.DataFrame, rows: Any, threshold: Any, options: dict, max_q: Any) -> tuple:
    """Search task: the single-process search on one partition's classes.

    Returns ``(modes, join report, q)``; with ``max_q``, ``q`` = (the statistics of the modes'
    lattice rows, their positions in the partition's lattice, the p-values of the whole lattice),
    for the driver's q-values over every class; else None.
    """
    import pyarrow as pa

    if isinstance(rows, tuple):  # (dataset path, filesystem, partition column, classes, ignored)
        import pyarrow.dataset as ds
        import ray

        path, filesystem, column, classes, ignored = rows
        ignored = ray.get(ignored)  # one copy in the object store for every task
        dataset = ds.dataset(path, format="parquet", partitioning="hive", filesystem=filesystem)
        keep = ds.field(column).isin(classes)
        if len(ignored):
            keep = keep & ~ds.field("id").cast(pa.string()).isin(pa.array(ignored, pa.string()))
        rows = dataset.to_table(
            columns=[c for c in ("id", "tag", "score") if c in dataset.schema.names], filter=keep
        )
    elif isinstance(rows, list):  # the pieces the map tasks made (object references)
        import ray

        rows = pa.concat_tables(ray.get(rows), promote_options="default") if rows else None
    index = pd.Index(samples["id"], name="id")
    labels = pd.Series(samples["label"].to_numpy(), index=index)
    correct = pd.Series(samples["correct"].to_numpy(dtype=bool), index=index)
    if rows is None or rows.num_rows == 0:
        rows = pd.DataFrame({"id": pd.Series(dtype=str), "tag": pd.Series(dtype=str)})
    encoded = encode_long_table(rows, labels, correct, threshold=threshold)
    modes = find_failure_modes(encoded, **options)
    if max_q is None:
        return modes, encoded.report.as_dict(), None
    settings = {k: v for k, v in options.items() if k not in ("method", "beam_width")}
    lattice = tag_lattice(encoded, **settings)
    position = pd.Index(_keys(lattice)).get_indexer(_keys(modes))
    found = lattice.iloc[position][["class", "tags", *STATISTIC_COLUMNS]].reset_index(drop=True)
    return modes, encoded.report.as_dict(), (found, position, lattice["p_value"].to_numpy())


def _keys(table: pd.DataFrame) -> list[str]:
    return [f"{c}\x00" + "\x00".join(t) for c, t in zip(table["class"].astype(str), table["tags"])]


def find_failure_modes_ray(
    samples: str | os.PathLike | pd.DataFrame,
    tags: Any,
    *,
    threshold: float | Mapping[str, float] = 0.5,
    partition_column: str | None = None,
    n_partitions: int | None = None,
    address: str | None = None,
    init_kwargs: Mapping[str, Any] | None = None,
    max_q: float | None = None,
    ignore_ids: Sequence | None = None,
    **options: Any,
) -> pd.DataFrame:
    """:func:`primekit.find_failure_modes` on a Ray cluster, one task per partition of classes.

    Parameters
    ----------
    samples : path-like or DataFrame
        The samples table (``id, label`` and ``correct`` or ``pred``); read on the driver.
    tags : path-like
        Long tag table ``id, tag[, score]``: a Parquet file or a dataset folder, optionally
        hive-partitioned by class.
    threshold : float or mapping tag -> float, default 0.5
        A tag is present when its score is ``>= threshold``.
    partition_column : str, optional
        Hive partition field of ``tags`` that holds the class; default ``label`` or ``class`` when
        the dataset has one. Then each task reads only its classes' folders.
    n_partitions : int, optional
        Number of search tasks (default: twice the cluster's CPUs, at most one per class).
    address : str, optional
        Ray cluster address (``"auto"``, ``"ray://host:10001"``); default: the running instance,
        else a new local one.
    init_kwargs : mapping, optional
        Extra ``ray.init`` arguments (e.g. ``{"num_cpus": 2}`` for a local instance).
    max_q : float in (0, 1], optional
        As in :func:`primekit.find_failure_modes`: keep the modes whose q-value is at most this
        and add the statistics columns. The q-values pool every lattice node of every class: each
        task returns its lattice's p-values and the driver computes them after the gather (with
        :func:`primekit.statistics.conditional_q_values`, the pooled step of
        :func:`primekit.statistics.lattice_statistics`), so they equal the single-process ones.
    ignore_ids : sequence of ids, optional
        Samples whose tag rows are left out without being reported as ids without a sample: the
        other splits of a study when ``samples`` is one split (``primekit search --split``).
    **options
        The search options of :func:`primekit.find_failure_modes` (``min_size``, ``min_drop``,
        ``necessity``, ``max_tags``, ``min_tag_count``, ``method``, ``beam_width``).

    Returns
    -------
    DataFrame
        The mode table of :func:`primekit.find_failure_modes`, same rows in the same order, with
        the combined :class:`primekit._join.JoinReport` in ``attrs["join"]`` (also logged).
    """
    max_q = check_max_q(max_q)
    if n_partitions is not None:
        n_partitions = check_int(n_partitions, "n_partitions", 1)
    table, dataset, column = _checked(samples, tags, partition_column, options)
    ignored = _ignored(ignore_ids, table)
    ray = _connect(address, init_kwargs)
    classes = sorted_classes(table["label"].to_numpy(dtype=object))
    codes = pd.Index(classes).get_indexer(table["label"].to_numpy(dtype=object))
    cpus = int(ray.cluster_resources().get("CPU", 1))
    n_parts = max(1, min(len(classes), n_partitions or 2 * cpus))
    part_of_class = _assign(table, classes, n_parts)
    part_of_sample = part_of_class[codes]
    groups = [table[part_of_sample == p] for p in range(n_parts)]
    search = ray.remote(num_cpus=1)(_search)
    stray_ids, stray_rows, unknown_classes = set(), 0, ()
    if column is not None:
        filesystem, path = dataset.filesystem, str(tags)
        found = {str(v) for v in _partition_values(dataset, column)}
        unknown_classes = tuple(sorted(found - {str(c) for c in classes}))
        left_out = ray.put(ignored)
        futures = [
            search.remote(
                groups[p], (path, filesystem, column, [str(c) for c in classes
                                                       if part_of_class[classes.index(c)] == p],
                            left_out),
                threshold, options, max_q,
            )
            for p in range(n_parts)
        ]  # fmt: skip
    else:  # an ignored id maps to partition -2: its rows are dropped, not counted as strays
        ids = pd.Index(np.concatenate([table["id"].to_numpy(dtype=object), ignored]))
        lookup = ray.put((ids, np.concatenate([part_of_sample, np.full(len(ignored), -2)])))
        split = ray.remote(num_returns=n_parts + 2, num_cpus=1)(_split_rows)
        pieces = [split.remote(f, dataset.filesystem, lookup, n_parts) for f in dataset.files]
        futures = [
            search.remote(groups[p], [piece[p] for piece in pieces], threshold, options, max_q)
            for p in range(n_parts)
        ]
        for piece in pieces:
            ids, rows = ray.get([piece[n_parts], piece[n_parts + 1]])
            stray_ids.update(ids)
            stray_rows += rows
    results = ray.get(futures)
    modes = _gather(results, table, classes, stray_ids, stray_rows, unknown_classes)
    return modes if max_q is None else _with_q_values(modes, [r[2] for r in results], max_q)


def _connect(address: str | None, init_kwargs: Mapping[str, Any] | None) -> Any:
    """The ``ray`` module, connected to ``address`` (or a running or new local instance)."""
    try:
        import ray
    except ImportError:
        raise ValueError("ray: Ray is not installed; pip install 'primekit[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=address, **dict(init_kwargs or {}))
    return ray


def _checked(samples: Any, tags: Any, partition_column: str | None, options: dict) -> tuple:
    """(samples table, tag dataset, partition column or None), every argument checked before Ray."""
    unknown = sorted(set(options) - set(_SEARCH_OPTIONS))
    if unknown:
        raise TypeError(f"options: unknown search option(s) {unknown}; expected {_SEARCH_OPTIONS}")
    # the settings are checked here, before Ray starts (the tasks check them again)
    search_settings(**{k: v for k, v in options.items() if k not in ("method", "beam_width")})
    table = read_samples(samples) if not isinstance(samples, pd.DataFrame) else samples
    table = validate_samples(table)[["id", "label", "correct"]]
    dataset = _dataset(tags)
    return table, dataset, _partition_column(dataset, partition_column)


def _ignored(ignore_ids: Sequence | None, samples: pd.DataFrame) -> np.ndarray:
    """The ids to leave out (as str), without those of the samples searched."""
    if ignore_ids is None:
        return np.zeros(0, dtype=object)
    if isinstance(ignore_ids, (str, bytes)):
        raise TypeError("ignore_ids: expected a sequence of sample ids, got a single string")
    ids = pd.Index(pd.Series(list(ignore_ids), dtype=object).astype(str))
    return ids[~ids.isin(samples["id"].astype(str))].unique().to_numpy(dtype=object)


def _partition_values(dataset: Any, column: str) -> list:
    import pyarrow.dataset as ds

    values = []
    for fragment in dataset.get_fragments():
        expression = ds.get_partition_keys(fragment.partition_expression)
        if column in expression:
            values.append(expression[column])
    return values


def _gather(
    results: Sequence[tuple],
    samples: pd.DataFrame,
    classes: list,
    stray_ids: set,
    stray_rows: int,
    unknown_classes: tuple,
) -> pd.DataFrame:
    """One mode table in the single-process order, and the combined join report."""
    modes = pd.concat([r[0] for r in results], ignore_index=True)
    rank = {c: k for k, c in enumerate(classes)}
    order = np.argsort(np.array([rank[c] for c in modes["class"]], dtype=np.int64), kind="stable")
    modes = modes.iloc[order].reset_index(drop=True)
    reports = [r[1] for r in results if r[1]]
    empty = {c for r in reports for c in r["classes_without_tags"]}
    examples = stray_ids | {i for r in reports for i in r["stray_examples"]}
    report = JoinReport(
        n_samples=len(samples),
        n_tag_rows=sum(r["n_tag_rows"] for r in reports) + stray_rows,
        # an id is stray in the map tasks (no sample) or in its class's partition (none there)
        stray_ids=len(stray_ids) + sum(r["stray_ids"] for r in reports),
        stray_rows=stray_rows + sum(r["stray_rows"] for r in reports),
        untagged_samples=sum(r["untagged_samples"] for r in reports),
        classes_without_tags=tuple(c for c in classes if c in empty),
        unknown_classes=unknown_classes,
        stray_examples=tuple(sorted(map(str, examples))[:3]),
    )
    report.log()
    modes.attrs["join"] = report.as_dict()
    return modes


def _with_q_values(modes: pd.DataFrame, parts: Sequence[tuple], max_q: float) -> pd.DataFrame:
    """The modes with their lattice statistics and the q-values over every partition's lattice."""
    offsets = np.cumsum([0] + [len(p_values) for _, _, p_values in parts])
    q = conditional_q_values(np.concatenate([p_values for _, _, p_values in parts]))
    found = pd.concat([stats for stats, _, _ in parts], ignore_index=True)
    found["q_value"] = q[np.concatenate([pos + off for (_, pos, _), off in zip(parts, offsets)])]
    out = attach(modes, found, found[list(STATISTIC_COLUMNS)], max_q=max_q)
    out.attrs = dict(modes.attrs)
    return out
