"""Packing every class of a tag-major boolean matrix at once, in one in-order sweep of the tags.

A tag-major (Fortran-ordered) matrix, (n_samples, n_tags) stored tag by tag, is what
``DataFrame.to_numpy()`` returns for a frame built column by column or read from Parquet.
:class:`primekit._packing.MatrixBits` packs a class at a time, which on such a matrix reads one
short piece of every tag's line per class: bound by memory latency at ImageNet scale, and a read
of the whole matrix per class when a class's samples are scattered. :class:`TagMajorBits` reads
each tag's line once, in order, 64 samples per vector compare, into the bit rows of every class,
and then cuts each class's candidates T_c out of them.

No library does this: numpy's ``packbits`` packs a line but neither places the classes' samples
nor counts them per class, and scatters of the bits (``bitwise_or.at``) are slower by far.
"""

from __future__ import annotations

import threading

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from ._engine import ctpop, cttz
from ._packing import (
    ClassBits,
    add_error_row,
    check_rows,
    class_bits_of,
    compress_stages,
    walk_order,
)

__all__ = ["TagMajorBits"]


@intrinsic
def _mask64(typingctx, line, start):
    """Bit ``i`` = ``line[start + i] != 0`` for the 64 bytes from ``start`` of a C-contiguous uint8
    array: one vector load and compare (LLVM lowers the <64 x i1> mask to ``vpmovb2m`` with
    AVX-512, to ``pmovmskb`` steps without), at any alignment."""
    sig = types.uint64(line, start)

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        vector = ir.VectorType(ir.IntType(8), 64)
        pointer = builder.bitcast(builder.gep(array.data, [args[1]]), vector.as_pointer())
        nonzero = builder.icmp_unsigned("!=", builder.load(pointer, align=1), ir.Constant(vector, None))
        return builder.bitcast(nonzero, ir.IntType(64))

    return sig, codegen


@njit(cache=True, nogil=True)
def _sweep_layout(rows, sizes, correct, n_samples):
    """Where the sweep puts every sample: classes one after the other, each from a word boundary.

    ``rows`` are the positions of the classes' samples, class by class (``sizes``). Returns
    ``dest`` (bit of each position, -1: of no class), ``sample_class``, ``window_dest`` (per 64
    positions: the first one's bit when they are consecutive bits of one class, else -1) and
    ``window_class`` (that class), the classes' first words ``words`` (n_classes + 1), and per output word the misclassified bits
    ``wrong``, the misclassified samples of its class in the words ``before`` it, and each
    class's ``errors``.
    """
    n_classes = sizes.shape[0]
    words = np.zeros(n_classes + 1, np.int64)
    for k in range(n_classes):
        words[k + 1] = words[k] + max(1, (sizes[k] + 63) // 64)
    dest = np.full(n_samples, -1, np.int64)
    sample_class = np.zeros(n_samples, np.int64)
    wrong = np.zeros(words[n_classes], np.uint64)
    before = np.zeros(words[n_classes], np.int64)
    errors = np.zeros(n_classes, np.int64)
    i = 0
    for k in range(n_classes):
        for j in range(sizes[k]):
            p = rows[i]
            i += 1
            d = 64 * words[k] + j
            dest[p] = d
            sample_class[p] = k
            if not correct[p]:
                wrong[d >> 6] |= np.uint64(1) << np.uint64(d & 63)
                errors[k] += 1
        seen = 0
        for w in range(words[k], words[k + 1]):
            before[w] = seen
            seen += ctpop(wrong[w])
    n_windows = (n_samples + 63) // 64
    window_dest = np.full(n_windows, -1, np.int64)
    window_class = np.full(n_windows, -1, np.int64)
    for g in range(n_windows):
        first = dest[64 * g]
        if first < 0:
            continue
        whole = True
        for p in range(64 * g + 1, min(64 * g + 64, n_samples)):
            if dest[p] != first + p - 64 * g or sample_class[p] != sample_class[64 * g]:
                whole = False
                break
        if whole:
            window_dest[g] = first
            window_class[g] = sample_class[64 * g]
    return dest, sample_class, window_dest, window_class, words, wrong, before, errors


@njit(cache=True, nogil=True, inline="always")
def _scatter(bits, base, dest, sample_class, out, counts, t):
    """Bit ``b`` of ``bits`` is the sample ``base + b``: set its bit ``dest[base + b]`` of ``out``
    (-1: a sample of no class) and count it for its class, one trailing-zero count per set bit."""
    one = np.uint64(1)
    while bits:
        p = base + np.int64(cttz(bits))
        bits &= bits - one  # the lowest set bit
        d = dest[p]
        if d >= 0:
            out[d >> 6] |= one << np.uint64(d & 63)
            counts[t, sample_class[p]] += 1


@njit(cache=True, nogil=True)
def _sweep_by_tag(matrix, dest, sample_class, window_dest, window_class, bits, counts):
    """Every tag line of a tag-major matrix (n_tags, n_samples), read once and in order, into the
    bit rows of all classes: the sample at position ``p`` is bit ``dest[p]`` of ``bits[t]``, and
    ``counts[t, k]`` counts the samples of class ``k`` that carry tag ``t``.

    The line is read 64 samples at a time into a 64-bit mask (:func:`_mask64`). When the 64
    samples are consecutive bits of one class (``window_dest[g]`` >= 0: the first one's; the
    usual case, samples grouped by class) the mask is OR-ed in, shifted across two words (each
    row has a spare word at the end), and counted by one popcount; only arrays per window are
    read, and they stay in cache. Otherwise each set bit goes through ``dest`` and
    ``sample_class``.
    """
    n = matrix.shape[1]
    one = np.uint64(1)
    for t in range(matrix.shape[0]):
        line, out = matrix[t], bits[t]
        klass, carried = -1, 0  # the class of the last window and its count so far, in registers
        for g in range((n + 63) // 64):
            base = 64 * g
            if base + 64 <= n:
                m = _mask64(line, base)
            else:
                m = np.uint64(0)
                for i in range(n - base):
                    if line[base + i]:
                        m |= one << np.uint64(i)
            d = window_dest[g]
            if d >= 0:
                shift = np.uint64(d & 63)
                out[d >> 6] |= m << shift
                out[(d >> 6) + 1] |= (m >> one) >> (np.uint64(63) - shift)  # the spill-over
                if window_class[g] != klass:  # per window: in cache, unlike sample_class
                    if klass >= 0:
                        counts[t, klass] += carried
                    klass, carried = window_class[g], 0
                carried += np.int64(ctpop(m))
            else:
                _scatter(m, base, dest, sample_class, out, counts, t)
        if klass >= 0:
            counts[t, klass] += carried


@njit(cache=True, nogil=True)
def _cut_classes(counts, order, min_count, bits, words, wrong, before, errors):
    """Every class out of the sweep's rows: its candidates (tags on >= ``min_count`` of its
    samples, in ``order``), their bit rows (its words ``words[k]:words[k + 1]``), their error rows
    (bit ``j`` = the class's ``j``-th misclassified sample, by ``wrong`` and ``before``) and the
    walk. Flat arrays with per-class offsets: ``(candidate_at, candidates, row_at, rows,
    error_at, error_rows, walks)``.

    All classes at once, so that ``counts`` and ``bits`` are read row by row, in memory order:
    one class at a time would read 1,000 scattered words of ``counts`` and pieces of 1,000 bit
    rows 160 kB apart at ImageNet scale, each a cache miss.
    """
    n_tags, n_classes = counts.shape
    per_class = np.zeros(n_classes + 1, np.int64)
    n_entries = 0
    for t in order:
        for k in range(n_classes):
            if counts[t, k] >= min_count:
                per_class[k + 1] += 1
                n_entries += 1
    candidate_at = np.cumsum(per_class)
    candidates = np.empty(n_entries, np.int64)
    entry_class = np.empty(n_entries, np.int64)  # the entries (tag, class) in the order of order
    entry_slot = np.empty(n_entries, np.int64)
    filled = candidate_at[:-1].copy()
    i = 0
    for t in order:
        for k in range(n_classes):
            if counts[t, k] >= min_count:
                candidates[filled[k]] = t
                entry_class[i], entry_slot[i] = k, filled[k] - candidate_at[k]
                filled[k] += 1
                i += 1
    row_at = np.zeros(n_classes + 1, np.int64)
    error_at = np.zeros(n_classes + 1, np.int64)
    for k in range(n_classes):
        m = candidate_at[k + 1] - candidate_at[k]
        row_at[k + 1] = row_at[k] + m * (words[k + 1] - words[k])
        error_at[k + 1] = error_at[k] + m * max(1, (errors[k] + 63) // 64)
    rows = np.empty(row_at[-1], np.uint64)
    error_rows = np.zeros(error_at[-1] + 1, np.uint64)  # + a spare word for the spill-over
    error_count = np.zeros(n_entries, np.int64)
    stages = compress_stages(wrong)
    i = 0
    for t in order:
        line = bits[t]
        while i < n_entries and candidates[candidate_at[entry_class[i]] + entry_slot[i]] == t:
            k, c = entry_class[i], entry_slot[i]
            first, n_words = words[k], words[k + 1] - words[k]
            n_error_words = max(1, (errors[k] + 63) // 64)
            out = row_at[k] + c * n_words
            error_out = error_at[k] + c * n_error_words
            line_words = line[first : first + n_words]
            rows[out : out + n_words] = line_words
            n_hits = add_error_row(line_words, wrong[first:], stages[first:], before[first:],
                                   error_rows[error_out:])  # fmt: skip
            error_count[candidate_at[k] + c] = n_hits
            i += 1
    walks = np.empty(n_entries, np.int64)
    for k in range(n_classes):
        lo, hi = candidate_at[k], candidate_at[k + 1]
        walks[lo:hi] = walk_order(error_count[lo:hi])
    return candidate_at, candidates, row_at, rows, error_at, error_rows[:-1], walks


class TagMajorBits:
    """Packs every class of a tag-major boolean matrix at once, for the kernel.

    A tag-major (Fortran-ordered) matrix is what ``DataFrame.to_numpy()`` returns for a frame
    built column by column or read from Parquet. Packing it a class at a time reads, per class,
    one short piece of every tag's line: at ImageNet scale 1,000 pieces of 1.3 kB 1.3 MB apart
    per class, bound by memory latency, and hopeless when a class's samples are scattered. Here
    each tag's line is read once, in order (:func:`_sweep_by_tag`), into the bit rows of every
    class (each class's words start at a word boundary), with the per-class tag counts from the
    same pass; a class's error rows are then drawn from its candidates' rows
    (:func:`_cut_classes`). Memory: the bit rows of every tag, 1/8 of the boolean matrix (each
    class padded to whole 64-bit words), plus a copy of the candidates' rows once cut.

    ``class_bits(k, min_count=...)`` packs class ``k`` (the interface of
    :class:`primekit._bitsets.LongTags`).
    """

    def __init__(
        self,
        matrix: np.ndarray,
        names: np.ndarray,
        classes: list,
        class_rows: list[np.ndarray],
        correct: np.ndarray,
    ) -> None:
        if not matrix.flags.f_contiguous:
            raise ValueError("TagMajorBits: the matrix must be tag-major (Fortran-ordered)")
        lines = matrix.view(np.uint8).T  # (n_tags, n_samples), C-contiguous
        self.classes = list(classes)
        self.names = np.asarray(names, dtype=object)
        self.order = np.argsort(self.names, kind="stable").astype(np.int64)
        self.n = np.array([len(r) for r in class_rows], dtype=np.int64)
        rows = np.concatenate(class_rows).astype(np.int64) if class_rows else np.zeros(0, np.int64)
        correct = np.asarray(correct, dtype=np.bool_)
        check_rows(rows, lines.shape[1], correct, lines.shape[1])  # one value per sample
        layout = _sweep_layout(rows, self.n, correct, lines.shape[1])
        dest, sample_class, window_dest, window_class = layout[:4]
        self.words, self.wrong, self.before, self.errors = layout[4:]
        self.bits = np.zeros((lines.shape[0], self.words[-1] + 1), np.uint64)  # + a spare word
        self.counts = np.zeros((lines.shape[0], len(self.n)), np.int64)
        _sweep_by_tag(lines, dest, sample_class, window_dest, window_class, self.bits, self.counts)
        self._cut: tuple = (None, None)
        self._lock = threading.Lock()

    def class_bits(self, k: int, *, min_count: int) -> ClassBits:
        """Class ``k`` (index into ``classes``): T_c = tags on >= ``min_count`` of its samples.

        The first call cuts every class out at once (:func:`_cut_classes`) for this ``min_count``.
        """
        with self._lock:  # the cut is read under the lock too: another min_count may replace it
            if self._cut[0] != min_count:
                cut = _cut_classes(self.counts, self.order, min_count, self.bits, self.words,
                                   self.wrong, self.before, self.errors)  # fmt: skip
                self._cut = (min_count, cut)
            candidate_at, candidates, row_at, rows, error_at, error_rows, walks = self._cut[1]
        lo, hi = candidate_at[k], candidate_at[k + 1]
        m, n = hi - lo, int(self.n[k])
        packed = (
            candidates[lo:hi],
            rows[row_at[k] : row_at[k + 1]].reshape(m, self.words[k + 1] - self.words[k]),
            error_rows[error_at[k] : error_at[k + 1]].reshape(m, max(1, -(-self.errors[k] // 64))),
            walks[lo:hi],
            1.0 - self.errors[k] / n if n else np.nan,
        )
        return class_bits_of(self.classes[k], self.names, packed, n)
