"""Bitset kernels of the PRIME search (numba, no Python loop per candidate).

A class's samples are packed column-wise: ``bits[t]`` is a row of uint64 words whose bit ``i`` is
set when sample ``i`` carries tag ``t``; ``ebits[t]`` is the same over the class's misclassified
samples only. Sizes and error counts of tag combinations are popcounts of ANDs of these rows.

The exhaustive search is an Eclat-style depth-first walk over the tag lattice. Level ``d`` of the
walk keeps, for every frequent extension of the current prefix, the intersected bitset, its size
and its number of correct predictions; the children of an extension are its ANDs with the later
extensions of the same level. Support pruning is exact: a superset is never larger than its
subsets, so a branch whose size is below ``min_size`` holds no failure mode. The same holds for
the number of misclassified samples, which a failure mode needs in quantity; the error bitsets are
short (errors are rare), so that test runs first.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

__all__ = ["ctpop", "cttz", "popcounts", "search_class", "check_mode", "group_stats"]

# Tolerance of the paper's inclusive comparisons, in favour of inclusion (DESIGN.md).
TOL = 1e-9


@intrinsic
def ctpop(typingctx, x):
    """Hardware popcount of a uint64 (LLVM ``ctpop``; ``popcnt`` on x86-64)."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic("llvm.ctpop", [ir.IntType(64)])
        return builder.call(fn, args)

    return sig, codegen


@intrinsic
def cttz(typingctx, x):
    """Trailing zero bits of a non-zero uint64 (LLVM ``cttz``; ``tzcnt`` on x86-64)."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic("llvm.cttz", [ir.IntType(64), ir.IntType(1)])
        return builder.call(fn, [args[0], ir.Constant(ir.IntType(1), 1)])

    return sig, codegen


@njit(cache=True, nogil=True)
def _popcount(row):
    n = 0
    for w in range(row.shape[0]):
        n += ctpop(row[w])
    return n


@njit(cache=True, nogil=True)
def popcounts(bits):
    """Set bits of every row of a (n_rows, n_words) uint64 array: int64 (n_rows,)."""
    out = np.zeros(bits.shape[0], np.int64)
    for r in range(bits.shape[0]):
        out[r] = _popcount(bits[r])
    return out


@njit(cache=True, nogil=True)
def _intersection_count(bits, items, n_items):
    n = 0
    for w in range(bits.shape[1]):
        v = bits[items[0], w]
        for i in range(1, n_items):
            v &= bits[items[i], w]
        n += ctpop(v)
    return n


@njit(cache=True, nogil=True)
def group_stats(bits, ebits, items, n_items):
    """Size and number of correct predictions of the samples carrying ``items[:n_items]``.

    ``bits`` are the tags over all samples of the class, ``ebits`` over its misclassified samples.
    """
    n = _intersection_count(bits, items, n_items)
    return n, n - _intersection_count(ebits, items, n_items)


@njit(cache=True, nogil=True)
def check_mode(bits, ebits, items, n_items, accuracy, necessity, full):
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
        n, c = group_stats(bits, ebits, rest, n_items - 1)
        diff = c / n - accuracy
        if diff < margin:
            margin = diff
        if diff < need - TOL:
            ok = False
            if not full:
                break
    return ok, margin


@njit(cache=True, nogil=True)
def _grow(out_items, out_n, out_c, out_margin, out_mode, m):
    """The output arrays with twice the room (256 rows at first), their first ``m`` rows kept."""
    cap = max(2 * out_n.shape[0], 256)
    items = np.full((cap, out_items.shape[1]), -1, np.int64)
    items[:m] = out_items[:m]
    n = np.empty(cap, np.int64)
    n[:m] = out_n[:m]
    c = np.empty(cap, np.int64)
    c[:m] = out_c[:m]
    margin = np.empty(cap, np.float64)
    margin[:m] = out_margin[:m]
    mode = np.empty(cap, np.bool_)
    mode[:m] = out_mode[:m]
    return items, n, c, margin, mode


@njit(cache=True, nogil=True)
def search_class(bits, ebits, candidates, min_size, min_errors, max_tags, acc_limit, necessity,
                 lattice):
    """Exhaustive PRIME search within one class.

    Parameters
    ----------
    bits : uint64 (n_tags, n_words)
        Tags over all samples of the class.
    ebits : uint64 (n_tags, n_error_words)
        Tags over the misclassified samples of the class only.
    candidates : int64 (k,)
        Tag indices of T_c in the order the walk takes them (rarest errors first is fastest).
    min_size, max_tags : int
        s and l of the paper.
    min_errors : int
        Prune combinations with fewer misclassified samples. A failure mode has at least
        ``(1 - acc_limit) * min_size`` of them and errors only shrink in supersets, so a safe lower
        bound of that number prunes nothing that could be a mode (0 disables it).
    acc_limit : float
        A_c - a (the tolerance is added here).
    necessity : float64 (max_tags + 1,)
        ``necessity[k]`` = b_k.
    lattice : bool
        Record every frequent combination, not only failure modes (pass ``min_errors=0``).

    Returns
    -------
    items : int64 (m, max_tags), -1 padded, in walk order; sizes, n_correct : int64 (m,);
    margins : float64 (m,); is_mode : bool (m,)
    """
    # the walk's storage per depth: bitsets, error bitsets, last tag, size, errors of every node
    lvl_bits, lvl_ebits, lvl_tag, lvl_n, lvl_e = _levels(bits, ebits, candidates, max_tags)
    count = np.zeros(max_tags, np.int64)
    pos = np.zeros(max_tags, np.int64)
    count[0] = _first_level(
        bits, ebits, candidates, min_size, min_errors, lvl_bits, lvl_ebits, lvl_tag, lvl_n, lvl_e
    )
    limit = acc_limit + TOL
    # Most samples a failure mode with e errors can have: c / n <= limit  <=>  n <= e / (1 - limit).
    # Leaves (combinations of max_tags tags) stop counting once past it.
    leaf_cut = (not lattice) and 1.0 - limit > 0.0
    out_items, out_n, out_c, out_margin, out_mode = _grow(
        np.empty((0, max_tags), np.int64), np.empty(0, np.int64), np.empty(0, np.int64),
        np.empty(0, np.float64), np.empty(0, np.bool_), 0,
    )
    m = 0
    leaves = np.empty((lvl_tag.shape[1], 4), np.float64)  # (tag, size, n_correct, margin) rows
    items = np.empty(max_tags, np.int64)
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
        c = n - lvl_e[d, k]
        acc = c / n
        is_mode = False
        margin = np.nan
        if acc <= limit:
            is_mode, margin = check_mode(bits, ebits, items, d + 1, acc, necessity, lattice)
        elif lattice and d > 0:
            _, margin = check_mode(bits, ebits, items, d + 1, acc, necessity, True)
        if is_mode or lattice:
            if m == out_n.shape[0]:
                out_items, out_n, out_c, out_margin, out_mode = _grow(
                    out_items, out_n, out_c, out_margin, out_mode, m
                )
            _record(out_items, out_n, out_c, out_margin, out_mode, m, items, d + 1, n, c, margin,
                    is_mode)
            m += 1
        if d + 2 == max_tags and leaf_cut and k + 1 < count[d]:
            n_leaves = _leaves(bits, ebits, lvl_bits, lvl_ebits, lvl_tag, d, k, count[d], items,
                               acc, limit, min_size, min_errors, necessity, leaves)
            for j in range(n_leaves):
                if m == out_n.shape[0]:
                    out_items, out_n, out_c, out_margin, out_mode = _grow(
                        out_items, out_n, out_c, out_margin, out_mode, m
                    )
                items[d + 1] = np.int64(leaves[j, 0])
                _record(out_items, out_n, out_c, out_margin, out_mode, m, items, d + 2,
                        np.int64(leaves[j, 1]), np.int64(leaves[j, 2]), leaves[j, 3], True)
                m += 1
            pos[d] += 1
        elif d + 1 < max_tags and k + 1 < count[d]:
            count[d + 1] = _extend_level(
                lvl_bits, lvl_ebits, lvl_tag, lvl_n, lvl_e, d, k, count[d], min_size, min_errors
            )
            pos[d + 1] = 0
            d += 1
        else:
            pos[d] += 1
    return out_items[:m], out_n[:m], out_c[:m], out_margin[:m], out_mode[:m]


@njit(cache=True, nogil=True, inline="always")
def _levels(bits, ebits, candidates, max_tags):
    width = max(candidates.shape[0], 1)
    return (
        np.empty((max_tags, width, bits.shape[1]), np.uint64),
        np.empty((max_tags, width, ebits.shape[1]), np.uint64),
        np.empty((max_tags, width), np.int64),
        np.empty((max_tags, width), np.int64),
        np.empty((max_tags, width), np.int64),
    )


@njit(cache=True, nogil=True, inline="always")
def _first_level(bits, ebits, candidates, min_size, min_errors, lvl_bits, lvl_ebits, lvl_tag,
                 lvl_n, lvl_e):
    """Depth 0: the single tags with enough errors and samples; returns how many."""
    cnt = 0
    for t in candidates:
        e = _popcount(ebits[t])
        if e < min_errors:
            continue
        n = _popcount(bits[t])
        if n >= min_size:
            lvl_bits[0, cnt] = bits[t]
            lvl_ebits[0, cnt] = ebits[t]
            lvl_tag[0, cnt] = t
            lvl_n[0, cnt] = n
            lvl_e[0, cnt] = e
            cnt += 1
    return cnt


@njit(cache=True, nogil=True, inline="always")
def _record(out_items, out_n, out_c, out_margin, out_mode, m, items, n_items, n, c, margin,
            is_mode):
    """Write one combination into row ``m`` of the output (which has room for it)."""
    for i in range(n_items):
        out_items[m, i] = items[i]
    out_n[m] = n
    out_c[m] = c
    out_margin[m] = margin
    out_mode[m] = is_mode


@njit(cache=True, nogil=True, inline="always")
def _leaves(bits, ebits, lvl_bits, lvl_ebits, lvl_tag, d, k, count_d, items, acc, limit, min_size,
            min_errors, necessity, found):
    """Children of node ``k`` at depth ``d`` are leaves: test each in place, without storing its
    bitset. A leaf is a mode only if removing its last tag (giving this node) raises accuracy by
    b, so its accuracy is also bounded by this node's accuracy minus b: a tighter error floor.

    Writes float64 rows ``(tag, size, n_correct, margin)`` of the leaves that are modes into
    ``found`` and returns how many.
    """
    n_words = lvl_bits.shape[2]
    e_words = lvl_ebits.shape[2]
    leaf_limit = min(limit, acc - necessity[d + 2] + TOL)
    leaf_slack = 1.0 - leaf_limit
    leaf_errors = min_errors
    floor = np.ceil(leaf_slack * min_size - 1e-6)
    if floor > leaf_errors:
        leaf_errors = np.int64(floor)
    f = 0
    for k2 in range(k + 1, count_d):
        e2 = 0
        for w in range(e_words):
            e2 += ctpop(lvl_ebits[d, k, w] & lvl_ebits[d, k2, w])
        if e2 < leaf_errors:
            continue
        most = e2 / leaf_slack
        n2 = 0
        for w in range(n_words):
            n2 += ctpop(lvl_bits[d, k, w] & lvl_bits[d, k2, w])
            if n2 > most:
                break
        if n2 > most or n2 < min_size:
            continue
        items[d + 1] = lvl_tag[d, k2]
        c2 = n2 - e2
        ok, margin2 = check_mode(bits, ebits, items, d + 2, c2 / n2, necessity, False)
        if ok:
            found[f, 0] = lvl_tag[d, k2]
            found[f, 1] = n2
            found[f, 2] = c2
            found[f, 3] = margin2
            f += 1
    return f


@njit(cache=True, nogil=True, inline="always")
def _extend_level(lvl_bits, lvl_ebits, lvl_tag, lvl_n, lvl_e, d, k, count_d, min_size,
                  min_errors):
    """Depth ``d + 1`` under node ``k``: its ANDs with the later nodes of depth ``d`` that keep
    enough errors and samples; returns how many."""
    n_words = lvl_bits.shape[2]
    e_words = lvl_ebits.shape[2]
    cc = 0
    for k2 in range(k + 1, count_d):
        # errors first: the error bitsets are short, and most candidates fail here
        e2 = 0
        for w in range(e_words):
            v = lvl_ebits[d, k, w] & lvl_ebits[d, k2, w]
            lvl_ebits[d + 1, cc, w] = v
            e2 += ctpop(v)
        if e2 < min_errors:
            continue
        n2 = 0
        for w in range(n_words):
            v = lvl_bits[d, k, w] & lvl_bits[d, k2, w]
            lvl_bits[d + 1, cc, w] = v
            n2 += ctpop(v)
        if n2 >= min_size:
            lvl_tag[d + 1, cc] = lvl_tag[d, k2]
            lvl_n[d + 1, cc] = n2
            lvl_e[d + 1, cc] = e2
            cc += 1
    return cc


@njit(cache=True, nogil=True)
def extend_all(bits, ebits, items, n_items, candidates):
    """Sizes and correct counts of ``items[:n_items] + [t]`` for every ``t`` in ``candidates``."""
    k = candidates.shape[0]
    sizes = np.empty(k, np.int64)
    corr = np.empty(k, np.int64)
    ext = np.empty(n_items + 1, np.int64)
    ext[:n_items] = items[:n_items]
    for j in range(k):
        ext[n_items] = candidates[j]
        n, c = group_stats(bits, ebits, ext, n_items + 1)
        sizes[j] = n
        corr[j] = c
    return sizes, corr
