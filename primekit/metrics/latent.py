"""Latent vs semantic space (paper 5.2, Tables 3/6): do images close in embedding space share
tags, and do images that share tags lie close?

:func:`distance_by_shared_tags` (Table 3) compares distances of pairs sharing at least d tags
with those of random pairs; :func:`neighbour_shared_tags` (Table 6) counts the tags shared by
an image's nearest neighbours in embedding space and in tag space.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.neighbors import NearestNeighbors

from .._validation import as_bool, check_embeddings, check_int, check_real, l2_normalize

__all__ = ["distance_by_shared_tags", "neighbour_shared_tags"]

logger = logging.getLogger(__name__)


def _tag_matrix(tags: Any, n: int, argument: str = "tags") -> np.ndarray:
    if isinstance(tags, pd.DataFrame):
        values = tags.to_numpy()
    else:
        values = np.asarray(tags)
    if values.ndim != 2 or values.shape[0] != n:
        raise ValueError(
            f"{argument}: expected a sample x tag matrix with {n} rows, got {values.shape}"
        )
    return as_bool(values, argument)


def _pair_distances(emb: np.ndarray, i: np.ndarray, j: np.ndarray, chunk: int = 8192) -> np.ndarray:
    out = np.empty(len(i))
    for start in range(0, len(i), chunk):
        sl = slice(start, start + chunk)
        out[sl] = np.linalg.norm(emb[i[sl]] - emb[j[sl]], axis=1)
    return out


def distance_by_shared_tags(
    embeddings: np.ndarray,
    tags: pd.DataFrame | np.ndarray,
    *,
    thresholds: Sequence[int] = (0, 1, 3, 5, 7),
    n_pairs: int = 20_000,
    max_draws: int = 2_000_000,
    normalize: bool = False,
    seed: int = 0,
) -> pd.DataFrame:
    """Table 3: distance between two images conditioned on sharing at least d tags.

    Pairs of distinct images are drawn uniformly at random; "sharing" a tag means both images
    carry it. For every d, the distances of pairs with at least d shared tags are compared with
    those of independent random pairs.

    Parameters
    ----------
    embeddings : array, shape (n, d)
        Image embeddings, rows aligned with ``tags`` (the paper: CLIP ViT-B/16, raw features,
        Euclidean distance; ``normalize=True`` L2-normalizes first).
    tags : boolean DataFrame or array, shape (n, n_tags)
    thresholds : the values of d
    n_pairs : int
        Pairs wanted per threshold (and random reference pairs); draws stop when every threshold
        has them or after ``max_draws`` pairs.
    seed : int

    Returns
    -------
    DataFrame indexed by ``min_shared`` = d with columns ``n_pairs``, ``mean``, ``std`` (of the
    distance) and ``probability``: P(distance of a pair sharing >= d tags > distance of a random
    pair), ties counted 1/2. Rows with no pair are NaN.
    """
    emb = check_embeddings(embeddings, "embeddings")
    n = emb.shape[0]
    if n < 2:
        raise ValueError("embeddings: need at least 2 images")
    matrix = _tag_matrix(tags, n)
    thresholds = [check_int(d, "thresholds", 0) for d in thresholds]
    if not thresholds:
        raise ValueError("thresholds: expected at least one value of d")
    n_pairs = check_int(n_pairs, "n_pairs", 1)
    max_draws = check_int(max_draws, "max_draws", n_pairs)
    if normalize:
        emb = l2_normalize(emb, "embeddings")
    rng = np.random.default_rng(seed)
    reference = None
    collected: dict[int, list[np.ndarray]] = {d: [] for d in thresholds}
    counts = dict.fromkeys(thresholds, 0)
    drawn = 0
    batch = max(n_pairs, 10_000)
    while drawn < max_draws:
        size = min(batch, max_draws - drawn)
        i = rng.integers(0, n, size)
        j = rng.integers(0, n - 1, size)
        j = j + (j >= i)  # distinct pairs, uniform
        drawn += size
        shared = (matrix[i] & matrix[j]).sum(axis=1)
        dist = _pair_distances(emb, i, j)
        if reference is None:
            reference = dist[:n_pairs]
        for d in thresholds:
            if counts[d] < n_pairs:
                take = dist[shared >= d][: n_pairs - counts[d]]
                collected[d].append(take)
                counts[d] += len(take)
        if all(c >= n_pairs for c in counts.values()):
            break
    ref_sorted = np.sort(reference)
    rows = {}
    for d in thresholds:
        values = np.concatenate(collected[d]) if collected[d] else np.empty(0)
        if len(values) == 0:
            rows[d] = {"n_pairs": 0, "mean": np.nan, "std": np.nan, "probability": np.nan}
            logger.warning("distance_by_shared_tags: no pair shares %d or more tags", d)
            continue
        below = np.searchsorted(ref_sorted, values, side="left")
        not_above = np.searchsorted(ref_sorted, values, side="right")
        prob = float(((below + not_above) / 2).mean() / len(ref_sorted))
        rows[d] = {
            "n_pairs": int(len(values)),
            "mean": float(values.mean()),
            "std": float(values.std()),
            "probability": prob,
        }
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "min_shared"
    return out


def _max_shared_tagset(carriers: np.ndarray, min_support: int, max_nodes: int) -> tuple[int, bool]:
    """Size of the largest set of columns of the boolean matrix ``carriers`` (rows = images,
    columns = tags) that at least ``min_support`` rows carry together, and whether the search
    was exhaustive (False when it stopped after ``max_nodes`` nodes: the size is a lower bound).

    That set is the longest maximal frequent itemset, which mlxtend's ``fpmax`` also finds (the
    tests check the two agree). It is written by hand because fpmax rebuilds its FP-tree row by
    row in Python for every query image: measured 15-30x slower on the toy world's Table 6 (7.4 s
    vs 0.5 s for 200 queries on 1,300 images), minutes at Living17 size. Here each column is a
    Python-int bitset over the rows, and a depth-first search with support and size bounds
    stops as soon as no longer set can beat the best one.
    """
    support = carriers.sum(axis=0)
    keep = np.flatnonzero(support >= min_support)
    if len(keep) <= 1:
        return len(keep), True
    packed = np.packbits(carriers[:, keep], axis=0)
    items = sorted((int.from_bytes(packed[:, k].tobytes(), "big") for k in range(len(keep))),
                   key=lambda b: -b.bit_count())
    best, nodes = 1, 0

    def extend(current: int, size: int, start: int) -> bool:
        """Depth-first from the set ``current`` of ``size`` columns; False once over budget."""
        nonlocal best, nodes
        best = max(best, size)
        for k in range(start, len(items)):
            if size + (len(items) - k) <= best:
                return True
            nodes += 1
            if nodes > max_nodes:
                return False
            nxt = items[k] & current
            if nxt.bit_count() >= min_support and not extend(nxt, size + 1, k + 1):
                return False
        return True

    exhausted = extend(-1, 0, 0)  # -1: every bit set, the empty set's carriers
    return best, exhausted


def _shared_counts(
    matrix: np.ndarray, queries: np.ndarray, neighbours: np.ndarray, sizes: list[int],
    fraction: float, max_nodes: int,
) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
    """Per N: the latent and the semantic shared-tag count of every query image."""
    latent: dict[int, list[int]] = {N: [] for N in sizes}
    semantic: dict[int, list[int]] = {N: [] for N in sizes}
    others = np.ones(matrix.shape[0], bool)
    truncated = 0
    for q, row in zip(queries, neighbours, strict=True):
        row = row[row != q][: max(sizes)]
        others[q] = False
        carriers = matrix[others][:, matrix[q]]  # the other images, on the tags of q
        others[q] = True
        for N in sizes:
            counts = matrix[row[:N]].sum(axis=0)
            latent[N].append(int((counts >= fraction * N - 1e-9).sum()))
            best, exact = _max_shared_tagset(carriers, N, max_nodes)
            truncated += not exact
            semantic[N].append(best)
    if truncated:
        logger.warning("neighbour_shared_tags: %d searches hit max_nodes (lower bounds)", truncated)
    return latent, semantic


def neighbour_shared_tags(
    embeddings: np.ndarray,
    tags: pd.DataFrame | np.ndarray,
    *,
    n_neighbours: Sequence[int] = (10, 20, 50),
    fraction: float = 0.9,
    n_queries: int = 200,
    normalize: bool = False,
    max_nodes: int = 200_000,
    seed: int = 0,
) -> pd.DataFrame:
    """Table 6: shared tags among nearest neighbours in embedding space vs in tag space.

    For a random image x: C = its N nearest neighbours in embedding space (x excluded,
    Euclidean). *Latent*: the number of tags carried by at least ``fraction`` * N images of C.
    *Semantic*: the largest number of tags of x that at least N other images carry together
    (x's N neighbours in tag space; an exact maximal-itemset search within ``max_nodes``). Averaged over
    ``n_queries`` random images x.

    Parameters
    ----------
    embeddings : array, shape (n, d)
    tags : boolean DataFrame or array, shape (n, n_tags)
    n_neighbours : values of N
    fraction : float in (0, 1], default 0.9
        alpha of the paper ("tags that appear in at least alpha*N images of C").
    n_queries : int
        Number of random images x.
    normalize : bool
        L2-normalize embeddings before the neighbour search (cosine neighbours).
    max_nodes : int
        Bound on the search for the largest shared tag set per query; when hit, the best set
        found so far is used (a lower bound) and a warning is logged.
    seed : int

    Returns
    -------
    DataFrame indexed by ``n_neighbours`` = N with columns ``latent_mean``, ``latent_std``,
    ``semantic_mean``, ``semantic_std``, ``n_queries``.
    """
    emb = check_embeddings(embeddings, "embeddings")
    n = emb.shape[0]
    matrix = _tag_matrix(tags, n)
    sizes = [check_int(v, "n_neighbours", 1) for v in n_neighbours]
    if not sizes:
        raise ValueError("n_neighbours: expected at least one value of N")
    if max(sizes) >= n:
        raise ValueError(
            f"n_neighbours: N must be below the number of images ({n}), got {max(sizes)}"
        )
    fraction = check_real(fraction, "fraction", 0.0, 1.0)
    if fraction == 0.0:
        raise ValueError("fraction: must be > 0")
    n_queries = min(check_int(n_queries, "n_queries", 1), n)
    max_nodes = check_int(max_nodes, "max_nodes", 1)
    if normalize:
        emb = l2_normalize(emb, "embeddings")
    rng = np.random.default_rng(seed)
    queries = rng.choice(n, size=n_queries, replace=False)
    knn = NearestNeighbors(n_neighbors=max(sizes) + 1).fit(emb)
    _, neighbours = knn.kneighbors(emb[queries])
    latent, semantic = _shared_counts(matrix, queries, neighbours, sizes, fraction, max_nodes)
    rows = {
        N: {
            "latent_mean": float(np.mean(latent[N])),
            "latent_std": float(np.std(latent[N])),
            "semantic_mean": float(np.mean(semantic[N])),
            "semantic_std": float(np.std(semantic[N])),
            "n_queries": n_queries,
        }
        for N in sizes
    }
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "n_neighbours"
    return out
