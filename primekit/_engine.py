"""Bitset kernels of the PRIME search (numba, no Python loop per candidate).

A class's samples are packed column-wise: ``bits[t]`` is a row of uint64 words whose bit ``i`` is
set when sample ``i`` carries tag ``t``; ``correct`` is packed the same way. Sizes and accuracies
of tag combinations are popcounts of ANDs of these rows.

The exhaustive search is an Eclat-style depth-first walk over the tag lattice. Level ``d`` of the
walk keeps, for every frequent extension of the current prefix, the intersected bitset, its size
and its number of correct predictions; the children of an extension are its ANDs with the later
extensions of the same level. Support pruning is exact: a superset is never larger than its
subsets, so a branch whose size is below ``min_size`` holds no failure mode.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

__all__ = ["pack_columns", "search_class", "check_mode", "group_stats"]

# Tolerance of the paper's inclusive comparisons, in favour of inclusion (DESIGN.md).
TOL = 1e-9


@intrinsic
def _ctpop(typingctx, x):
    """Hardware popcount of a uint64 (LLVM ``ctpop``; ``popcnt`` on x86-64)."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic("llvm.ctpop", [ir.IntType(64)])
        return builder.call(fn, args)

    return sig, codegen


def pack_columns(matrix: np.ndarray) -> np.ndarray:
    """Pack a boolean (n_samples, n_tags) matrix into (n_tags, n_words) uint64 bit rows.

    A 1-D boolean vector is packed into a single (n_words,) row.
    """
    matrix = np.asarray(matrix, dtype=bool)
    one = matrix.ndim == 1
    cols = matrix[:, None] if one else matrix
    n = cols.shape[0]
    n_words = max(1, -(-n // 64))
    packed = np.packbits(cols.T, axis=1, bitorder="little")
    padded = np.zeros((cols.shape[1], n_words * 8), dtype=np.uint8)
    padded[:, : packed.shape[1]] = packed
    words = padded.view("<u8").astype(np.uint64, copy=False)
    return words[0] if one else np.ascontiguousarray(words)


@njit(cache=True, nogil=True)
def _count(row, correct):
    n = 0
    c = 0
    for w in range(row.shape[0]):
        v = row[w]
        n += _ctpop(v)
        c += _ctpop(v & correct[w])
    return n, c


@njit(cache=True, nogil=True)
def group_stats(bits, correct, items, n_items):
    """Size and number of correct predictions of the samples carrying ``items[:n_items]``."""
    n = 0
    c = 0
    for w in range(bits.shape[1]):
        v = bits[items[0], w]
        for i in range(1, n_items):
            v &= bits[items[i], w]
        n += _ctpop(v)
        c += _ctpop(v & correct[w])
    return n, c


@njit(cache=True, nogil=True)
def check_mode(bits, correct, items, n_items, accuracy, necessity, full):
    """Necessity condition of a combination with accuracy ``accuracy``.

    Returns ``(ok, margin)`` where ``margin = min_t A_{S\\t} - A_S`` and ``ok`` says whether every
    ``A_{S\\t} >= A_S + necessity[n_items]`` (tolerance ``TOL``). With ``full`` false the loop
    stops at the first failing ``t`` (the margin is then an upper bound).
    """
    if n_items == 1:
        return True, np.nan
    need = necessity[n_items]
    rest = np.empty(n_items - 1, np.int64)
    margin = np.inf
    ok = True
    for j in range(n_items):
        k = 0
        for i in range(n_items):
            if i != j:
                rest[k] = items[i]
                k += 1
        n, c = group_stats(bits, correct, rest, n_items - 1)
        diff = c / n - accuracy
        if diff < margin:
            margin = diff
        if diff < need - TOL:
            ok = False
            if not full:
                break
    return ok, margin


@njit(cache=True, nogil=True)
def search_class(bits, correct, candidates, min_size, max_tags, acc_limit, necessity, lattice):
    """Exhaustive PRIME search within one class.

    Parameters
    ----------
    bits : uint64 (n_tags, n_words)
    correct : uint64 (n_words,)
    candidates : int64 (k,)
        Tag indices of T_c, increasing.
    min_size, max_tags : int
        s and l of the paper.
    acc_limit : float
        A_c - a (the tolerance is added here).
    necessity : float64 (max_tags + 1,)
        ``necessity[k]`` = b_k.
    lattice : bool
        Record every frequent combination, not only failure modes.

    Returns
    -------
    items : int64 (m, max_tags), -1 padded; sizes, n_correct : int64 (m,);
    margins : float64 (m,); is_mode : bool (m,)
    """
    n_words = bits.shape[1]
    width = candidates.shape[0]
    lvl_bits = np.empty((max_tags, max(width, 1), n_words), np.uint64)
    lvl_tag = np.empty((max_tags, max(width, 1)), np.int64)
    lvl_n = np.empty((max_tags, max(width, 1)), np.int64)
    lvl_c = np.empty((max_tags, max(width, 1)), np.int64)
    count = np.zeros(max_tags, np.int64)
    pos = np.zeros(max_tags, np.int64)

    cnt = 0
    for t in candidates:
        n, c = _count(bits[t], correct)
        if n >= min_size:
            lvl_bits[0, cnt] = bits[t]
            lvl_tag[0, cnt] = t
            lvl_n[0, cnt] = n
            lvl_c[0, cnt] = c
            cnt += 1
    count[0] = cnt

    cap = 256
    out_items = np.full((cap, max_tags), -1, np.int64)
    out_n = np.empty(cap, np.int64)
    out_c = np.empty(cap, np.int64)
    out_margin = np.empty(cap, np.float64)
    out_mode = np.empty(cap, np.bool_)
    m = 0

    items = np.empty(max_tags, np.int64)
    limit = acc_limit + TOL
    d = 0
    while d >= 0:
        k = pos[d]
        if k >= count[d]:
            d -= 1
            if d >= 0:
                pos[d] += 1
            continue
        items[d] = lvl_tag[d, k]
        n = lvl_n[d, k]
        c = lvl_c[d, k]
        acc = c / n
        is_mode = False
        margin = np.nan
        if acc <= limit:
            is_mode, margin = check_mode(bits, correct, items, d + 1, acc, necessity, lattice)
        elif lattice and d > 0:
            _, margin = check_mode(bits, correct, items, d + 1, acc, necessity, True)
        if is_mode or lattice:
            if m == cap:
                cap *= 2
                grown = np.full((cap, max_tags), -1, np.int64)
                grown[:m] = out_items[:m]
                out_items = grown
                out_n = np.concatenate((out_n[:m], np.empty(cap - m, np.int64)))
                out_c = np.concatenate((out_c[:m], np.empty(cap - m, np.int64)))
                out_margin = np.concatenate((out_margin[:m], np.empty(cap - m, np.float64)))
                out_mode = np.concatenate((out_mode[:m], np.empty(cap - m, np.bool_)))
            for i in range(d + 1):
                out_items[m, i] = items[i]
            out_n[m] = n
            out_c[m] = c
            out_margin[m] = margin
            out_mode[m] = is_mode
            m += 1
        if d + 1 < max_tags and k + 1 < count[d]:
            cc = 0
            for k2 in range(k + 1, count[d]):
                n2 = 0
                c2 = 0
                for w in range(n_words):
                    v = lvl_bits[d, k, w] & lvl_bits[d, k2, w]
                    lvl_bits[d + 1, cc, w] = v
                    n2 += _ctpop(v)
                    c2 += _ctpop(v & correct[w])
                if n2 >= min_size:
                    lvl_tag[d + 1, cc] = lvl_tag[d, k2]
                    lvl_n[d + 1, cc] = n2
                    lvl_c[d + 1, cc] = c2
                    cc += 1
            count[d + 1] = cc
            pos[d + 1] = 0
            d += 1
        else:
            pos[d] += 1
    return out_items[:m], out_n[:m], out_c[:m], out_margin[:m], out_mode[:m]


@njit(cache=True, nogil=True)
def extend_all(bits, correct, prefix_row, candidates):
    """Sizes and correct counts of ``prefix & bits[t]`` for every ``t`` in ``candidates``."""
    k = candidates.shape[0]
    sizes = np.empty(k, np.int64)
    corr = np.empty(k, np.int64)
    for j in range(k):
        t = candidates[j]
        n = 0
        c = 0
        for w in range(bits.shape[1]):
            v = prefix_row[w] & bits[t, w]
            n += _ctpop(v)
            c += _ctpop(v & correct[w])
        sizes[j] = n
        corr[j] = c
    return sizes, corr
