"""Packing one class's tags into the uint64 bit rows the search kernel walks.

The kernel of :mod:`primekit._engine` needs, per class, the bit rows of its candidate tags T_c
over the class's samples and over its misclassified samples. They are packed here from either
input without building anything larger than the class:

- a boolean matrix (:class:`MatrixBits`): the class's rows are read once, in the matrix's memory
  order (C or Fortran, no copy), and the 64-sample words of every tag fill together
  (branch-free, so the loop vectorises); the counts are popcounts of the words, T_c the tags that
  reach ``min_count``;
- (row, tag) code pairs of a long tag table (:func:`pack_pairs`, used by ``primekit._bitsets``):
  one counting pass, then one bit set per pair.

No library does this: numpy's ``packbits`` of a class's gathered columns copies the block and
is an order of magnitude slower along this axis, and a ``bitwise_or.at`` scatter of pairs too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from ._engine import popcounts

__all__ = ["ClassBits", "MatrixBits", "pack_pairs"]


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
def _walk(errors):
    """The exhaustive walk's order: candidates by increasing error count (stable).

    Rarest errors first: deep levels then see few siblings with many errors.
    """
    return np.argsort(errors, kind="mergesort").astype(np.int64)


@njit(cache=True, nogil=True, inline="always")
def _accuracy(correct):
    n = correct.shape[0]
    return np.sum(correct) / n if n else np.nan


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
    return candidates, bits, ebits, _walk(errors), _accuracy(correct)


@njit(cache=True, nogil=True)
def _bits_by_row(matrix, rows, which, bits):
    """``bits[t]`` bit ``i`` = ``matrix[rows[which[i]], t]``, for every tag t.

    Branch-free and contiguous (each row is read in order and the 64-sample words of all tags
    fill together), so the inner loop vectorises.
    """
    n_tags = matrix.shape[1]
    word = np.zeros(n_tags, np.uint64)
    n = which.shape[0]
    for i in range(n):
        row = matrix[rows[which[i]]]
        shift = np.uint64(i & 63)
        for t in range(n_tags):
            word[t] |= np.uint64(row[t]) << shift
        if (i & 63) == 63 or i == n - 1:
            for t in range(n_tags):
                bits[t, i >> 6] = word[t]
                word[t] = 0


@njit(cache=True, nogil=True)
def _bits_by_tag(matrix, rows, which, bits):
    """:func:`_bits_by_row` for a tag-major matrix ``(n_tags, n_samples)``."""
    n = which.shape[0]
    for t in range(matrix.shape[0]):
        line = matrix[t]
        word = np.uint64(0)
        for i in range(n):
            word |= np.uint64(line[rows[which[i]]]) << np.uint64(i & 63)
            if (i & 63) == 63 or i == n - 1:
                bits[t, i >> 6] = word
                word = np.uint64(0)


@njit(cache=True, nogil=True)
def _pack_matrix_class(matrix, by_tag, rows, correct, order, min_count):
    """:func:`_pack_class` for the rows ``rows`` of a boolean matrix (viewed as uint8).

    ``matrix`` is C-contiguous, (n_samples, n_tags), or with ``by_tag`` its transpose (n_tags,
    n_samples): each loop then walks memory in order. Candidates come in the order of ``order``
    (the tags by name). One pass packs every tag over the class's samples, a second over its
    misclassified samples; the counts are popcounts, the candidates' rows are then copied out.
    """
    n = rows.shape[0]
    n_tags = matrix.shape[0] if by_tag else matrix.shape[1]
    wrong = np.flatnonzero(~correct)
    every = np.zeros((n_tags, max(1, (n + 63) // 64)), np.uint64)
    every_error = np.zeros((n_tags, max(1, (wrong.shape[0] + 63) // 64)), np.uint64)
    if by_tag:
        _bits_by_tag(matrix, rows, np.arange(n), every)
        _bits_by_tag(matrix, rows, wrong, every_error)
    else:
        _bits_by_row(matrix, rows, np.arange(n), every)
        _bits_by_row(matrix, rows, wrong, every_error)
    candidates, _ = _candidates(popcounts(every), order, min_count)
    m = candidates.shape[0]
    bits = np.empty((m, every.shape[1]), np.uint64)
    ebits = np.empty((m, every_error.shape[1]), np.uint64)
    for c in range(m):
        bits[c] = every[candidates[c]]
        ebits[c] = every_error[candidates[c]]
    return candidates, bits, ebits, _walk(popcounts(ebits)), _accuracy(correct)


def _class_bits(label: Any, names: np.ndarray, packed: tuple, n: int) -> ClassBits:
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
    The matrix is read in the memory order it has (C or Fortran), without a copy.
    """

    def __init__(self, matrix: np.ndarray, names: np.ndarray) -> None:
        if not (matrix.flags.c_contiguous or matrix.flags.f_contiguous):
            matrix = np.ascontiguousarray(matrix)
        self.by_tag = not matrix.flags.c_contiguous
        view = matrix.view(np.uint8)
        self.matrix = view.T if self.by_tag else view  # C-contiguous either way
        self.names = np.asarray(names, dtype=object)
        self.order = np.argsort(self.names, kind="stable").astype(np.int64)

    def class_bits(
        self, label: Any, rows: np.ndarray, correct: np.ndarray, *, min_count: int
    ) -> ClassBits:
        """Pack the samples ``rows`` (positions, in order) whose correctness is ``correct``."""
        rows = np.asarray(rows, dtype=np.int64)
        correct = np.asarray(correct, dtype=np.bool_)
        packed = _pack_matrix_class(self.matrix, self.by_tag, rows, correct, self.order, min_count)
        return _class_bits(label, self.names, packed, len(rows))


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
    return _class_bits(label, names, packed, len(correct))
