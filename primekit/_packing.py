"""Packing one class's tags into the uint64 bit rows the search kernel walks.

The kernel of :mod:`primekit._engine` needs, per class, the bit rows of its candidate tags T_c
over the class's samples and over its misclassified samples. They are packed here from either
input without building anything larger than the class:

- a row-major boolean matrix (:class:`MatrixBits`): the class's rows are read once, without a
  copy; each row's bytes are OR-ed 8 tags per uint64 operation into byte blocks of 8 samples,
  and every 64 samples an 8 x 8 byte transpose turns the blocks into one word per tag. The
  counts are popcounts of the words, T_c the tags that reach ``min_count``; a scratch buffer
  per thread holds every tag's words. (A tag-major matrix is packed by
  :class:`primekit._tag_major.TagMajorBits`: every class in one in-order sweep of the tags);
- (row, tag) code pairs of a long tag table (:func:`pack_pairs`, used by ``primekit._bitsets``):
  one counting pass, then one bit set per pair.

No library does this: numpy's ``packbits`` of a class's gathered columns copies the block and
is an order of magnitude slower along this axis, and a ``bitwise_or.at`` scatter of pairs too.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from ._engine import ctpop

__all__ = ["ClassBits", "MatrixBits", "check_rows", "class_bits_of", "pack_pairs", "walk_order"]

_NO_WIDE = np.zeros((0, 0), np.uint64)


@dataclass(frozen=True)
class ClassBits:
    """One class packed for the kernel: its candidate tags T_c as bit rows over its samples."""

    label: Any
    names: np.ndarray  # names of the class's candidate tags T_c, sorted
    bits: np.ndarray  # uint64 (len(names), n_words): tags over the class's samples
    ebits: np.ndarray  # uint64 (len(names), n_error_words): tags over its misclassified samples
    candidates: np.ndarray  # arange(len(names))
    walk: np.ndarray  # candidates by increasing error count: the exhaustive walk's order
    n: int
    accuracy: float


@njit(cache=True, nogil=True, inline="always")
def _candidates(counts, order, min_count):
    """Candidate tags: those of ``order`` on >= ``min_count`` samples, in that order.

    Returns ``(candidates, lookup)``: the tag codes, and each tag's place among them (-1: none).
    """
    lookup = np.full(counts.shape[0], -1, np.int64)
    m = 0
    for t in order:
        if counts[t] >= min_count:
            lookup[t] = m
            m += 1
    candidates = np.empty(m, np.int64)
    for t in order:
        if lookup[t] >= 0:
            candidates[lookup[t]] = t
    return candidates, lookup


@njit(cache=True, nogil=True, inline="always")
def _bit_rows(m, correct):
    """Empty bit rows over the samples and the errors, each sample's error row (-1: correct)."""
    n = correct.shape[0]
    error_row = np.full(n, -1, np.int64)
    e = 0
    for r in range(n):
        if not correct[r]:
            error_row[r] = e
            e += 1
    bits = np.zeros((m, max(1, (n + 63) // 64)), np.uint64)
    ebits = np.zeros((m, max(1, (e + 63) // 64)), np.uint64)
    return bits, ebits, error_row


@njit(cache=True, nogil=True, inline="always")
def walk_order(errors):
    """The exhaustive walk's order: candidates by increasing error count (stable).

    Rarest errors first: deep levels then see few siblings with many errors.
    """
    return np.argsort(errors, kind="mergesort").astype(np.int64)


@njit(cache=True, nogil=True, inline="always")
def _accuracy(correct):
    n = correct.shape[0]
    return np.sum(correct) / n if n else np.nan


@njit(cache=True, nogil=True)
def compress_stages(masks):
    """Per mask, the 6 stages of Hacker's Delight's ``compress`` (section 7-4): with them,
    :func:`compress` of any word by that mask is 6 branch-free steps. (x86's ``pext`` does it
    in one instruction, but is slow on some CPUs and absent on others.)"""
    stages = np.empty((masks.shape[0], 6), np.uint64)
    one = np.uint64(1)
    for j in range(masks.shape[0]):
        m = masks[j]
        mk = ~m << one  # count the zeros of m to the right
        for i in range(6):
            mp = mk ^ (mk << one)  # parallel suffix
            mp ^= mp << np.uint64(2)
            mp ^= mp << np.uint64(4)
            mp ^= mp << np.uint64(8)
            mp ^= mp << np.uint64(16)
            mp ^= mp << np.uint64(32)
            mv = mp & m  # the bits to move
            stages[j, i] = mv
            m = (m ^ mv) | (mv >> (one << np.uint64(i)))
            mk &= ~mp
    return stages


@njit(cache=True, nogil=True, inline="always")
def compress(x, stages):
    """The bits of ``x`` under the mask of ``stages`` (:func:`compress_stages`), packed to the
    low bits in order (x86's ``pext``); ``x`` must lie within the mask."""
    one = np.uint64(1)
    for i in range(6):
        t = x & stages[i]
        x = (x ^ t) | (t >> (one << np.uint64(i)))
    return x


@njit(cache=True, nogil=True, inline="always")
def add_error_row(words, wrong, stages, before, out):
    """OR the misclassified samples of the bit row ``words`` into the error row ``out``: bit ``j``
    of ``out`` is the ``j``-th sample marked in ``wrong`` (per word; ``before[w]``: how many are
    marked before word ``w``, ``stages``: :func:`compress_stages` of ``wrong``). ``out`` needs one
    word past the last error's (a spill-over of zero bits). Returns the number of errors set."""
    one = np.uint64(1)
    n = 0
    for w in range(words.shape[0]):
        if not wrong[w]:  # also keeps e below the last error: the spill-over stays in ``out``
            continue
        hit = compress(words[w] & wrong[w], stages[w])
        e = before[w]
        shift = np.uint64(e & 63)
        out[e >> 6] |= hit << shift
        out[(e >> 6) + 1] |= (hit >> one) >> (np.uint64(63) - shift)
        n += np.int64(ctpop(hit))
    return n


@njit(cache=True, nogil=True)
def error_marks(correct):
    """The misclassified samples of ``correct`` as bit words, the number of them before each word
    and the :func:`compress_stages` of the words: what :func:`add_error_row` takes."""
    n_words = max(1, (correct.shape[0] + 63) // 64)
    wrong = np.zeros(n_words, np.uint64)
    for i in range(correct.shape[0]):
        if not correct[i]:
            wrong[i >> 6] |= np.uint64(1) << np.uint64(i & 63)
    before = np.zeros(n_words, np.int64)
    for w in range(1, n_words):
        before[w] = before[w - 1] + np.int64(ctpop(wrong[w - 1]))
    return wrong, before, compress_stages(wrong)


@njit(cache=True, nogil=True)
def _pack_class(rows, tags, correct, n_vocab, min_count):
    """Bit rows of one class's candidate tags (those on >= ``min_count`` of its samples).

    Returns ``(candidates, bits, ebits, walk, accuracy)``: candidate tag codes (increasing), their
    bit rows over the class's samples and over its misclassified samples, the walk's order of the
    candidates and the class's accuracy.
    """
    counts = np.zeros(n_vocab, np.int64)
    for i in range(tags.shape[0]):
        counts[tags[i]] += 1
    candidates, lookup = _candidates(counts, np.arange(n_vocab), min_count)
    bits, ebits, error_row = _bit_rows(candidates.shape[0], correct)
    errors = np.zeros(candidates.shape[0], np.int64)
    one = np.uint64(1)
    # written out, not a helper: numba's inlining of a helper that sets bits made this 3x slower
    for i in range(tags.shape[0]):
        c = lookup[tags[i]]
        if c < 0:
            continue
        r = rows[i]
        bits[c, r >> 6] |= one << np.uint64(r & 63)
        q = error_row[r]
        if q >= 0:
            ebits[c, q >> 6] |= one << np.uint64(q & 63)
            errors[c] += 1
    return candidates, bits, ebits, walk_order(errors), _accuracy(correct)


@njit(cache=True, nogil=True)
def _flush(blocks, out, w):
    """Word ``w`` of every tag from the 8 byte blocks of 64 samples: ``out[w, t]``.

    ``blocks[b, t]`` bit ``r`` is sample ``8 b + r`` of tag ``t``; viewed as uint64 each word holds
    8 tags of one block, and an 8 x 8 byte transpose (three swap stages) turns the 8 words of a
    group of 8 tags into one word per tag. The blocks are cleared for the next 64 samples.
    """
    wide = blocks.view(np.uint64)
    row = out[w]
    m1, m2, m3 = np.uint64(0x00FF00FF00FF00FF), np.uint64(0x0000FFFF0000FFFF), np.uint64(0xFFFFFFFF)
    s1, s2, s3 = np.uint64(8), np.uint64(16), np.uint64(32)
    for g in range(wide.shape[1]):
        a0, a1, a2, a3 = wide[0, g], wide[1, g], wide[2, g], wide[3, g]
        a4, a5, a6, a7 = wide[4, g], wide[5, g], wide[6, g], wide[7, g]
        b0, b1 = (a0 & m1) | ((a1 & m1) << s1), ((a0 >> s1) & m1) | (a1 & ~m1)
        b2, b3 = (a2 & m1) | ((a3 & m1) << s1), ((a2 >> s1) & m1) | (a3 & ~m1)
        b4, b5 = (a4 & m1) | ((a5 & m1) << s1), ((a4 >> s1) & m1) | (a5 & ~m1)
        b6, b7 = (a6 & m1) | ((a7 & m1) << s1), ((a6 >> s1) & m1) | (a7 & ~m1)
        c0, c2 = (b0 & m2) | ((b2 & m2) << s2), ((b0 >> s2) & m2) | (b2 & ~m2)
        c1, c3 = (b1 & m2) | ((b3 & m2) << s2), ((b1 >> s2) & m2) | (b3 & ~m2)
        c4, c6 = (b4 & m2) | ((b6 & m2) << s2), ((b4 >> s2) & m2) | (b6 & ~m2)
        c5, c7 = (b5 & m2) | ((b7 & m2) << s2), ((b5 >> s2) & m2) | (b7 & ~m2)
        t = 8 * g
        row[t], row[t + 4] = (c0 & m3) | ((c4 & m3) << s3), ((c0 >> s3) & m3) | (c4 & ~m3)
        row[t + 1], row[t + 5] = (c1 & m3) | ((c5 & m3) << s3), ((c1 >> s3) & m3) | (c5 & ~m3)
        row[t + 2], row[t + 6] = (c2 & m3) | ((c6 & m3) << s3), ((c2 >> s3) & m3) | (c6 & ~m3)
        row[t + 3], row[t + 7] = (c3 & m3) | ((c7 & m3) << s3), ((c3 >> s3) & m3) | (c7 & ~m3)
    blocks[:] = 0


@njit(cache=True, nogil=True)
def _or_shifted(source, line, shift):
    """``line |= source << shift``, element-wise (branch-free: it vectorises)."""
    for j in range(source.shape[0]):
        line[j] |= source[j] << shift


@njit(cache=True, nogil=True)
def _bits_by_row(matrix, wide, rows, every):
    """``every[w, t]`` bit ``i`` = ``matrix[rows[64 w + i], t]``.

    One pass over the rows, in order: row ``i`` goes into bit ``i & 7`` of byte block
    ``(i >> 3) & 7`` (with ``wide``, the matrix's rows as uint64 words, 8 tags per operation), and
    every 64 samples :func:`_flush` transposes the blocks into words: far fewer operations than
    widening each byte to a uint64.
    """
    n = rows.shape[0]
    blocks = np.zeros((8, every.shape[1]), np.uint8)
    words = blocks.view(np.uint64)
    by_word = wide.shape[0] > 0
    for i in range(n):
        if by_word:
            _or_shifted(wide[rows[i]], words[(i >> 3) & 7], np.uint64(i & 7))
        else:
            _or_shifted(matrix[rows[i]], blocks[(i >> 3) & 7], np.uint8(i & 7))
        if (i & 63) == 63 or i == n - 1:
            _flush(blocks, every, i >> 6)


@njit(cache=True, nogil=True)
def _pack_matrix_class(matrix, wide, rows, correct, order, min_count, scratch):
    """:func:`_pack_class` for the rows ``rows`` of a row-major boolean matrix (viewed as uint8).

    Candidates come in the order of ``order`` (the tags by name). Every tag is packed over the
    class's samples into ``scratch``, word-major, reused across classes (no fresh pages per
    class); the counts are popcounts; the candidates' rows are then copied out, and their error
    rows drawn from them (:func:`add_error_row`), not packed in a second pass over the matrix.
    """
    n = rows.shape[0]
    n_tags = matrix.shape[1]
    n_words = max(1, (n + 63) // 64)
    every = scratch[:n_words]
    every[n_words - 1] = 0  # no sample, no flush: the one word must still be empty
    _bits_by_row(matrix, wide, rows, every)
    counts = np.zeros(n_tags, np.int64)
    for w in range(n_words):
        for t in range(n_tags):
            counts[t] += ctpop(every[w, t])
    candidates, _ = _candidates(counts, order, min_count)
    m = candidates.shape[0]
    wrong, before, stages = error_marks(correct)
    n_error_words = max(1, (n - np.sum(correct) + 63) // 64)
    flat = np.zeros(m * n_error_words + 1, np.uint64)  # + the spill-over word
    bits = np.empty((m, n_words), np.uint64)
    errors = np.zeros(m, np.int64)
    for c in range(m):
        t = candidates[c]
        for w in range(n_words):
            bits[c, w] = every[w, t]
        errors[c] = add_error_row(bits[c], wrong, stages, before, flat[c * n_error_words :])
    ebits = flat[: m * n_error_words].reshape(m, n_error_words)
    return candidates, bits, ebits, walk_order(errors), _accuracy(correct)


def check_rows(rows: np.ndarray, n_samples: int, correct: np.ndarray, n_correct: int) -> None:
    """A ValueError unless ``rows`` are positions below ``n_samples`` and ``correct`` has
    ``n_correct`` values (the kernels do not check bounds: a mismatch would write past their
    buffers)."""
    if len(correct) != n_correct:
        raise ValueError(f"correct: expected {n_correct} values, got {len(correct)}")
    if len(rows) and (rows.min() < 0 or rows.max() >= n_samples):
        raise ValueError(
            f"rows: expected sample positions in [0, {n_samples}), got {rows.min()}..{rows.max()}"
        )


def class_bits_of(label: Any, names: np.ndarray, packed: tuple, n: int) -> ClassBits:
    """The :class:`ClassBits` of a packing kernel's ``(candidates, bits, ebits, walk, accuracy)``."""
    candidates, bits, ebits, walk, accuracy = packed
    return ClassBits(
        label=label,
        names=names[candidates],
        bits=bits,
        ebits=ebits,
        candidates=np.arange(len(candidates), dtype=np.int64),
        walk=walk,
        n=n,
        accuracy=float(accuracy),
    )


class MatrixBits:
    """Packs the classes of a boolean (n_samples, n_tags) matrix, one at a time, for the kernel.

    ``names`` are the tag names of the columns; the candidates of a class come sorted by name.
    A row-major matrix is read without a copy; any other is copied to row-major first (the
    search packs a tag-major one with :class:`primekit._tag_major.TagMajorBits`, all classes in
    one sweep, instead). Each thread packs into its own scratch buffer, grown to the largest
    class it has seen.
    """

    def __init__(self, matrix: np.ndarray, names: np.ndarray) -> None:
        view = np.ascontiguousarray(matrix).view(np.uint8)
        self.matrix = view
        self.wide = _NO_WIDE
        if view.shape[1] % 8 == 0 and view.ctypes.data % 8 == 0:
            self.wide = view.view(np.uint64)  # rows as words of 8 tags (no copy)
        self.names = np.asarray(names, dtype=object)
        self.order = np.argsort(self.names, kind="stable").astype(np.int64)
        self._local = threading.local()

    def _scratch(self, n: int) -> np.ndarray:
        """This thread's scratch for a class of ``n`` samples: (words, n_tags rounded up to 8)."""
        rows = max(1, (n + 63) // 64)
        buffer = getattr(self._local, "buffer", None)
        if buffer is None or buffer.shape[0] < rows:
            width = -(-len(self.names) // 8) * 8
            buffer = np.empty((rows, max(8, width)), np.uint64)
            self._local.buffer = buffer
        return buffer

    def class_bits(
        self, label: Any, rows: np.ndarray, correct: np.ndarray, *, min_count: int
    ) -> ClassBits:
        """Pack the samples ``rows`` (positions, in order) whose correctness is ``correct``."""
        rows = np.asarray(rows, dtype=np.int64)
        correct = np.asarray(correct, dtype=np.bool_)
        check_rows(rows, self.matrix.shape[0], correct, len(rows))  # one value per row packed
        packed = _pack_matrix_class(
            self.matrix, self.wide, rows, correct, self.order, min_count, self._scratch(len(rows))
        )
        return class_bits_of(label, self.names, packed, len(rows))


def pack_pairs(
    label: Any,
    names: np.ndarray,
    rows: np.ndarray,
    tags: np.ndarray,
    correct: np.ndarray,
    *,
    min_count: int,
) -> ClassBits:
    """Pack one class from the (row inside the class, tag code) pairs of its present tags.

    ``names[code]`` is the name of tag ``code`` (codes in name order); ``correct`` the correctness
    of the class's samples in row order. T_c = the tags on >= ``min_count`` samples.
    """
    packed = _pack_class(rows, tags, correct, len(names), min_count)
    return class_bits_of(label, names, packed, len(correct))
