"""The long tag table straight to per-class bitsets, without the dense image x vocabulary matrix.

A tagger's output is the long table ``id, tag, score`` (DESIGN.md "Data contracts"): at ImageNet
scale 13 M rows over a 4,585-tag vocabulary, whose dense boolean matrix would be 1.28 M x 4,585
(5.9 GB). The search needs, per class, only the bit rows of the class's candidate tags T_c. Here:

1. the table is read in Arrow record batches (a Parquet file or dataset is streamed, with ``id`` and
   ``tag`` dictionary-encoded by the reader); each batch becomes integer codes: the sample position
   of its ``id`` (looked up once per distinct id) and the code of its ``tag`` in the sorted
   vocabulary;
2. one pass keeps the rows whose score reaches the threshold and groups them by class (a counting
   sort), as (row inside the class, tag code) pairs;
3. each class is packed on its own (:meth:`LongTags.class_bits`, with ``primekit._packing``): tag
   counts, T_c, then one bit set per pair into the uint64 rows the kernel of ``primekit._engine``
   searches.

Memory is the codes (8 bytes per kept row) plus the bitsets. Rows whose ``id`` has no sample,
samples without tags and classes without any tag row are counted in a
:class:`primekit._join.JoinReport`, not fatal; missing values, scores outside [0, 1] and repeated
``(id, tag)`` pairs are errors, as in :func:`primekit.tags.validate_tag_table`.

The grouping loops are numba kernels: no library groups code pairs by class in two linear passes
(a numpy ``argsort`` of 13 M keys is several times slower).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numba import njit

from ._join import JoinReport, id_positions
from ._packing import ClassBits, pack_pairs
from ._validation import check_correct, check_labels, class_codes, class_order

__all__ = ["LongTags", "is_long_table", "encode_long_table"]

_COLUMNS = ("id", "tag", "score")
_EXAMPLES = 3


def is_long_table(tags: Any) -> bool:
    """Whether ``tags`` is a long ``id, tag[, score]`` table (or a path to one), not a matrix.

    A path, a pyarrow Table or Dataset, or a DataFrame with a ``tag`` column that holds names (not
    booleans or 0/1) is a long table.
    """
    if isinstance(tags, (str, os.PathLike)):
        return True
    if isinstance(tags, pd.DataFrame):
        if "tag" not in tags.columns:
            return False
        column = tags["tag"]
        return not (isinstance(column, pd.Series) and pd.api.types.is_numeric_dtype(column))
    module = type(tags).__module__
    return module.startswith("pyarrow")


# ---------------------------------------------------------------------------------------------
# reading: any long table -> Arrow record batches of id, tag[, score]


def _check_columns(names: list[str], argument: str) -> list[str]:
    missing = [c for c in ("id", "tag") if c not in names]
    if missing:
        raise ValueError(
            f"{argument}: missing column(s) {missing}; a tag table has columns id, tag[, score]"
        )
    return [c for c in _COLUMNS if c in names]


def _batches(tags: Any, argument: str) -> Iterator:
    """Record batches of the table's ``id, tag[, score]`` columns (a path is streamed)."""
    # pyarrow is imported here, on first use, so that `import primekit` stays fast
    import pyarrow as pa
    import pyarrow.dataset as ds

    if isinstance(tags, pd.DataFrame):
        columns = _check_columns([str(c) for c in tags.columns], argument)
        frame = tags[columns]
        try:
            table = pa.Table.from_pandas(frame, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise TypeError(f"{argument}: cannot read the columns {columns}: {exc}") from None
        yield from table.to_batches()
        return
    if isinstance(tags, pa.RecordBatch):
        tags = pa.Table.from_batches([tags])
    if isinstance(tags, pa.Table):
        yield from tags.select(_check_columns(tags.schema.names, argument)).to_batches()
        return
    if isinstance(tags, (str, os.PathLike)):
        dataset = open_tag_dataset(Path(tags), argument)
    elif isinstance(tags, ds.Dataset):
        dataset = tags
    else:
        raise TypeError(
            f"{argument}: expected a boolean DataFrame, a long tag table (DataFrame or pyarrow "
            f"Table with columns id, tag[, score]) or a Parquet/CSV path, got {type(tags).__name__}"
        )
    columns = _check_columns(dataset.schema.names, argument)
    try:
        yield from dataset.to_batches(columns=columns, batch_size=1 << 20)
    except (pa.ArrowException, OSError) as exc:  # a broken file becomes one clear line
        raise ValueError(f"{argument}: cannot read {str(tags)!r}: {exc}") from exc


def open_tag_dataset(path: Path, argument: str):
    """The tag table at ``path`` (Parquet file or folder, or CSV) as a pyarrow Dataset, read lazily."""
    import pyarrow.dataset as ds

    if not path.exists():
        raise ValueError(f"{argument}: {str(path)!r} does not exist")
    if path.is_file() and path.suffix.lower() == ".csv":
        import pyarrow as pa
        import pyarrow.csv as csv

        strings = {"id": pa.string(), "tag": pa.string()}
        fmt = ds.CsvFileFormat(convert_options=csv.ConvertOptions(column_types=strings))
    else:
        fmt = ds.ParquetFileFormat(
            read_options=ds.ParquetReadOptions(dictionary_columns=["id", "tag"])
        )
    try:
        return ds.dataset(path, format=fmt, partitioning="hive")
    except Exception as exc:  # any reader error becomes one clear line
        raise ValueError(f"{argument}: cannot read {str(path)!r}: {exc}") from exc


# ---------------------------------------------------------------------------------------------
# batches -> integer codes

_NO_SCORE = np.zeros(0, np.float64)


class _Codes:
    """Integer codes of the rows, batch by batch: id dictionary entries, tag codes and scores.

    A batch is kept as its Arrow dictionary indices (``chunks``: id indices, the offset of its id
    dictionary among all entries, tag indices, the map of its tag dictionary to vocabulary codes,
    scores), so no per-row array is built here. The ids are looked up once, at the end, for the
    dictionaries of all batches together (:func:`primekit._join.id_positions`), and a new tag
    dictionary is matched to the vocabulary by one Arrow lookup, not row by row.
    """

    def __init__(self, argument: str) -> None:
        self.argument = argument
        self.vocabulary: list[str] = []  # tags in order of first appearance
        self._known: Any = None  # the same as an Arrow array, for lookups
        self.dictionaries: list = []  # id dictionaries of the batches, as large strings
        self.chunks: list[tuple] = []  # (id indices, id offset, tag indices, tag map, scores)
        self.n_entries = 0
        self.n_rows = 0
        self._last: Any = None
        self._offset = 0
        self._last_tags: Any = None
        self._tag_map = np.zeros(0, np.int32)

    def add(self, batch: Any) -> None:
        if batch.num_rows == 0:
            return
        ids, tags = batch.column("id"), batch.column("tag")
        for name, column in (("id", ids), ("tag", tags)):
            if column.null_count:
                raise ValueError(f"{self.argument}: column {name!r} has missing values")
        id_dict, id_codes = _dictionary(ids)
        # consecutive batches of one Parquet row group share their dictionaries: keep them once
        if not _same(self._last, id_dict):
            self._offset = self.n_entries
            self.dictionaries.append(_large_strings(id_dict))
            self.n_entries += len(id_dict)
            self._last = id_dict
        tag_dict, tag_codes = _dictionary(tags)
        if not _same(self._last_tags, tag_dict):
            self._tag_map = self._match(tag_dict)
            self._last_tags = tag_dict
        score = self._scores(batch.column("score")) if "score" in batch.schema.names else _NO_SCORE
        self.chunks.append((id_codes, self._offset, tag_codes, self._tag_map, score))
        self.n_rows += batch.num_rows

    def _match(self, names: Any) -> np.ndarray:
        """Vocabulary code of every tag of a dictionary; new tags join the vocabulary."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if not (pa.types.is_string(names.type) or pa.types.is_large_string(names.type)):
            names = names.cast(pa.string())  # e.g. integer tags: named by their digits
        names = _large_strings(names)
        if self._known is None:
            self._known = names.slice(0, 0)
        found = pc.index_in(names, value_set=self._known)
        new = found.is_null().to_numpy(zero_copy_only=False)
        codes = found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32)
        if new.any():
            fresh = names.filter(pa.array(new))
            codes[new] = len(self.vocabulary) + np.arange(len(fresh), dtype=np.int32)
            self.vocabulary.extend(fresh.to_pylist())
            self._known = pa.concat_arrays([self._known, fresh])
        return codes

    def _scores(self, column: Any) -> np.ndarray:
        import pyarrow as pa

        if not (pa.types.is_floating(column.type) or pa.types.is_integer(column.type)):
            raise ValueError(
                f"{self.argument}: column 'score' is not numeric (type {column.type})"
            )
        if column.null_count:
            raise ValueError(f"{self.argument}: column 'score' has missing (NaN) values")
        values = column.to_numpy(zero_copy_only=False)
        low, high = (values.min(), values.max()) if len(values) else (0.0, 1.0)
        if np.isnan(low) or np.isnan(high):
            raise ValueError(f"{self.argument}: column 'score' has missing (NaN) values")
        if low < 0 or high > 1:
            raise ValueError(
                f"{self.argument}: scores must lie in [0, 1], found range [{low:.4g}, {high:.4g}]"
            )
        return values

    def positions(self, sample_ids: pd.Index) -> tuple[np.ndarray, Any]:
        """Sample position of every dictionary entry (-1: no sample), and the entries' ids."""
        import pyarrow as pa

        if not self.dictionaries:
            return np.zeros(0, np.int64), pa.array([], pa.large_string())
        try:  # Arrow-backed strings (pandas' default) convert without copying
            value_set = pa.array(sample_ids.array)
        except (TypeError, pa.ArrowException):
            value_set = pa.array(sample_ids.to_numpy(dtype=object))
        if isinstance(value_set, pa.ChunkedArray):
            value_set = value_set.combine_chunks()
        value_set = _large_strings(value_set)
        return id_positions(self.dictionaries, value_set), pa.concat_arrays(self.dictionaries)

    def sorted_vocabulary(self) -> tuple[list[str], list[np.ndarray]]:
        """The vocabulary sorted, and per chunk the map from its tag indices to sorted codes."""
        names = self.vocabulary
        order = sorted(range(len(names)), key=names.__getitem__)
        recode = np.empty(len(names), np.int32)
        recode[order] = np.arange(len(names), dtype=np.int32)
        maps: dict[int, np.ndarray] = {}  # one per distinct tag dictionary
        chunk_maps = [maps.setdefault(id(c[3]), recode[c[3]]) for c in self.chunks]
        return [names[i] for i in order], chunk_maps


def _same(last: Any, values: Any) -> bool:
    """Whether an Arrow dictionary is the previous batch's (the same buffers, or equal values)."""
    return last is not None and len(last) == len(values) and (last is values or last.equals(values))


def _large_strings(values: Any) -> Any:
    import pyarrow as pa

    return values if pa.types.is_large_string(values.type) else values.cast(pa.large_string())


def _dictionary(column: Any) -> tuple[Any, np.ndarray]:
    """(dictionary, int32 codes) of an Arrow array, dictionary-encoding it when it is not."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    codes = column.indices.to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
    return column.dictionary, codes


def _thresholds(threshold: Any, vocabulary: list[str]) -> np.ndarray:
    """Per-tag thresholds in vocabulary order (a mapping names some tags; the others use 0.5)."""
    if isinstance(threshold, Mapping):
        values = np.array([float(threshold.get(t, 0.5)) for t in vocabulary], dtype=np.float64)
        bad = [t for t, v in threshold.items() if not 0 <= float(v) <= 1]
        if bad:
            raise ValueError(f"threshold: must lie in [0, 1], got {threshold[bad[0]]} for {bad[0]!r}")
        return values
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating)):
        raise TypeError(f"threshold: expected a number or a mapping, got {threshold!r}")
    if not 0 <= float(threshold) <= 1:
        raise ValueError(f"threshold: must lie in [0, 1], got {threshold}")
    return np.full(len(vocabulary), float(threshold))


# ---------------------------------------------------------------------------------------------
# numba kernels, each called once per batch (state carried in the arrays passed)


@njit(cache=True, nogil=True)
def _scan(entries, tags, score, thr, recode, entry_pos, pos_class, counts, tagged, stray_entry,
          seen, mark, state):
    """First pass over a batch: present rows per class (``counts[k + 1]``), tagged samples, stray
    entries; and the repeated (sample, tag) check, linear while the rows of a sample are
    contiguous (tag tables are written sorted by id): a tag seen twice in one run of a sample is
    a repeat. ``state`` = (run number, sample of the run, 1 once a sample's rows were found not
    contiguous: the caller then sorts). Returns (stray rows, index of a repeating row or -1).
    """
    has_score = score.shape[0] > 0
    stray = 0
    run, previous, check = state[0], state[1], state[2] == 0
    for i in range(entries.shape[0]):
        p = entry_pos[entries[i]]
        if p < 0:
            stray_entry[entries[i]] = True
            stray += 1
            continue
        tagged[p] = True
        t = recode[tags[i]]
        if check:
            if p != previous:
                if seen[p]:
                    check = False
                else:
                    seen[p] = True
                    run += 1
                    previous = p
            if check:
                if mark[t] == run:
                    return stray, i
                mark[t] = run
        if has_score and score[i] < thr[t]:
            continue
        counts[pos_class[p] + 1] += 1
    state[0], state[1], state[2] = run, previous, 0 if check else 1
    return stray, -1


@njit(cache=True, nogil=True)
def _place(entries, tags, score, thr, recode, entry_pos, pos_class, pos_local, cursor, rows, out):
    """Second pass: each present row to its class's slice, as (row inside the class, tag code)."""
    has_score = score.shape[0] > 0
    for i in range(entries.shape[0]):
        p = entry_pos[entries[i]]
        if p < 0:
            continue
        t = recode[tags[i]]
        if has_score and score[i] < thr[t]:
            continue
        c = pos_class[p]
        j = cursor[c]
        rows[j] = pos_local[p]
        out[j] = t
        cursor[c] = j + 1


# ---------------------------------------------------------------------------------------------
# the encoded table


@dataclass(frozen=True)
class LongTags:
    """A long tag table encoded by class: what the search packs one class at a time.

    Built by :func:`encode_long_table`. ``rows[offsets[k]:offsets[k+1]]`` and the same slice of
    ``tags`` are the (row inside class ``k``, tag code) pairs of the present tags of class ``k``;
    ``correct[starts[k]:starts[k+1]]`` the correctness of its samples in row order.
    """

    classes: list
    tag_names: np.ndarray  # str, sorted: the vocabulary
    offsets: np.ndarray
    rows: np.ndarray
    tags: np.ndarray
    correct: np.ndarray
    starts: np.ndarray
    report: JoinReport

    @property
    def codes(self) -> np.ndarray:
        """Class index of every sample, in the class-major order of ``correct``."""
        return np.repeat(np.arange(len(self.classes)), np.diff(self.starts))

    @property
    def correct_mask(self) -> np.ndarray:
        """Correctness of every sample, class-major (as :attr:`TaggedSplit.correct_mask`)."""
        return self.correct

    def class_bits(self, k: int, *, min_count: int) -> ClassBits:
        """Pack class ``k`` (index into ``classes``): T_c = tags on >= ``min_count`` samples."""
        lo, hi = self.offsets[k], self.offsets[k + 1]
        correct = self.correct[self.starts[k] : self.starts[k + 1]]
        return pack_pairs(
            self.classes[k], self.tag_names, self.rows[lo:hi], self.tags[lo:hi], correct,
            min_count=min_count,
        )  # fmt: skip


def _samples(labels: Any, correct: Any) -> tuple[pd.Index, np.ndarray, list, np.ndarray]:
    """(ids as str, class codes, sorted classes, correctness) of the samples, checked."""
    if not isinstance(labels, pd.Series):
        raise TypeError(
            f"labels: with a long tag table, expected a pandas Series indexed by sample id, got "
            f"{type(labels).__name__}"
        )
    labels = check_labels(labels, labels.index)
    correct = check_correct(correct, labels.index).to_numpy()
    codes, classes = class_codes(labels)
    ids = labels.index
    return (ids if isinstance(ids.dtype, pd.StringDtype) else ids.astype(str)), codes, classes, correct


def encode_long_table(
    tags: Any,
    labels: pd.Series,
    correct: pd.Series,
    *,
    threshold: float | Mapping[str, float] = 0.5,
    argument: str = "tags",
) -> LongTags:
    """Encode a long tag table against the samples for a per-class search.

    Parameters
    ----------
    tags : DataFrame, pyarrow Table or Dataset, or path
        Long table with columns ``id, tag[, score]`` (a Parquet file or dataset folder, or CSV).
        Without ``score`` every row is a present tag.
    labels : Series, length n_samples
        Class of each sample, indexed by sample id (unique; the ids of the tag table).
    correct : Series of bool (or 0/1), length n_samples
        Whether the classifier is right on each sample, indexed by sample id.
    threshold : float or mapping tag -> float, default 0.5
        A tag is present when its score is ``>= threshold`` (tags a mapping omits: 0.5).
    argument : str
        Name of the tag table in error messages.

    Returns
    -------
    LongTags
        With ``report``, the :class:`JoinReport` of the join (also logged as warnings).
    """
    sample_ids, class_codes, classes, correct = _samples(labels, correct)
    codes = _Codes(argument)
    for batch in _batches(tags, argument):
        codes.add(batch)
    entry_pos, entry_ids = codes.positions(sample_ids)
    vocabulary, maps = codes.sorted_vocabulary()
    thr = _thresholds(threshold, vocabulary)

    order = class_order(class_codes, len(classes))
    starts = np.searchsorted(class_codes[order], np.arange(len(classes) + 1))
    pos_local = np.empty(len(order), np.int64)
    pos_local[order] = np.arange(len(order)) - starts[class_codes[order]]
    counts = np.zeros(len(classes) + 1, np.int64)
    tagged = np.zeros(len(sample_ids), bool)
    stray_entry = np.zeros(len(entry_pos), bool)
    stray_rows = _first_pass(codes, maps, thr, entry_pos, class_codes, counts, tagged, stray_entry,
                             entry_ids, vocabulary)  # fmt: skip
    offsets = np.cumsum(counts)
    cursor = offsets[:-1].copy()
    # 2 bytes a pair when they fit (ImageNet: 1,280 samples a class, 4,585 tags): half the memory,
    # and half the fresh pages to fault in, of int32
    rows = np.empty(offsets[-1], _narrow(int(np.diff(starts).max(initial=0))))
    tag_rows = np.empty(offsets[-1], _narrow(len(vocabulary)))
    for (entries, offset, tag, _, score), recode in zip(codes.chunks, maps):
        _place(entries, tag, score, thr, recode, entry_pos[offset:], class_codes, pos_local,
               cursor, rows, tag_rows)  # fmt: skip
    stray = entry_ids.filter(stray_entry).unique() if stray_entry.any() else entry_ids[:0]
    class_tagged = np.bincount(class_codes[tagged], minlength=len(classes)) > 0
    report = JoinReport(
        n_samples=len(sample_ids),
        n_tag_rows=codes.n_rows,
        stray_ids=len(stray),
        stray_rows=int(stray_rows),
        untagged_samples=int(len(tagged) - tagged.sum()),
        classes_without_tags=tuple(c for c, t in zip(classes, class_tagged) if not t),
        stray_examples=tuple(sorted(stray[: 100 * _EXAMPLES].to_pylist())[:_EXAMPLES]),
    )
    report.log(argument=argument)
    return LongTags(
        classes=list(classes),
        tag_names=np.asarray(vocabulary, dtype=object),
        offsets=offsets,
        rows=rows,
        tags=tag_rows,
        correct=np.asarray(correct, dtype=bool)[order],
        starts=starts,
        report=report,
    )


def _narrow(n: int) -> type:
    """The smallest of uint16 and int32 that holds 0 .. n - 1."""
    return np.uint16 if n <= 1 << 16 else np.int32


def _first_pass(
    codes: _Codes,
    maps: list[np.ndarray],
    thr: np.ndarray,
    entry_pos: np.ndarray,
    class_codes: np.ndarray,
    counts: np.ndarray,
    tagged: np.ndarray,
    stray_entry: np.ndarray,
    entry_ids: Any,
    vocabulary: list[str],
) -> int:
    """:func:`_scan` over every batch (a sort when the rows of a sample are not contiguous);
    raises on a repeated (id, tag) pair, returns the stray rows."""
    seen = np.zeros(len(tagged), np.bool_)
    mark = np.full(max(1, len(vocabulary)), -1, np.int64)
    state = np.array([-1, -1, 0], np.int64)
    stray_rows, found = 0, None
    for k, ((entries, offset, tag, _, score), recode) in enumerate(zip(codes.chunks, maps)):
        stray, first = _scan(entries, tag, score, thr, recode, entry_pos[offset:], class_codes,
                             counts, tagged, stray_entry[offset:], seen, mark, state)  # fmt: skip
        stray_rows += stray
        if first >= 0:
            found = (k, first)
            break
    if found is None and state[2]:  # the rows of a sample are not contiguous: sort the keys
        found = _sorted_repeat(codes.chunks, maps, entry_pos, max(1, len(vocabulary)))
    if found is not None:
        entries, offset, tag, _, _ = codes.chunks[found[0]]
        row = found[1]
        raise ValueError(
            f"{codes.argument}: repeated (id, tag) pair "
            f"({entry_ids[offset + int(entries[row])].as_py()!r}, "
            f"{vocabulary[maps[found[0]][tag[row]]]!r}); each sample carries each tag at most once"
        )
    return stray_rows


def _sorted_repeat(chunks: list, maps: list, entry_pos: np.ndarray, n_vocab: int):
    """(batch, row) of a repeated (sample, tag) pair found by sorting, or None."""
    keys, where = [], []
    for k, ((entries, offset, tag, _, _), recode) in enumerate(zip(chunks, maps)):
        pos = entry_pos[offset + entries.astype(np.int64)]
        keep = np.flatnonzero(pos >= 0)
        keys.append(pos[keep] * n_vocab + recode[tag[keep]])
        where.append(np.stack([np.full(len(keep), k), keep], axis=1))
    key, place = np.concatenate(keys), np.concatenate(where)
    order = np.argsort(key, kind="stable")
    same = np.flatnonzero(key[order][1:] == key[order][:-1])
    return tuple(int(v) for v in place[order[same[0] + 1]]) if len(same) else None
