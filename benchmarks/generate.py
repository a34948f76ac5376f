"""Seeded generator of realistic tag matrices for the search benchmark.

What makes the matrices realistic (the features that decide how hard the search is):

- **Zipf-like tag frequencies.** A global pool of tags has Zipf popularity; each class draws its own
  vocabulary (``tags_per_class`` tags) from the pool, favouring popular tags, so classes share their
  common tags ("outdoor", "grass") and differ in the rare ones. Inside a class the tag
  probabilities follow a capped Zipf law, calibrated so that an image carries ``mean_tags`` tags on
  average.
- **Scene-correlated tags.** Every class has a few latent scenes; each image is in one scene, and a
  scene switches a group of tags on together. This produces the long correlated itemsets that make
  frequent-itemset mining expensive.
- **Off-vocabulary noise.** A few random pool tags per image (Poisson), as taggers produce; they
  rarely reach ``min_size`` inside a class and exercise the ``T_c`` filter.
- **Correctness with planted conjunctive failures.** Each class has a base accuracy (uniform in
  ``base_accuracy``); on planted 1-, 2- and 3-tag conjunctions the accuracy is low. The conjunction
  tags are forced onto a random group of images so that every planted failure has enough support.

Every class is generated from its own seed (``SeedSequence([seed, class_index])``), so a subset of
classes of a scenario is exactly the same data as in the full scenario.

Returns ``(tags, labels, correct)``: a boolean DataFrame (index = sample id, one column per tag),
the class labels and the correctness of the classifier, both Series on the same index.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

LIVING17_CLASSES = (
    "salamander", "turtle", "lizard", "snake", "spider", "grouse", "parrot", "crab", "dog",
    "wolf", "fox", "domestic cat", "bear", "beetle", "butterfly", "ape", "monkey",
)  # fmt: skip


@dataclass(frozen=True)
class Scenario:
    """Shape and statistics of one generated problem (all fields are plain, hashable values)."""

    n_classes: int
    n_per_class: int
    tags_per_class: int = 100
    mean_tags: float = 12.0
    pool_size: int | None = None  # default: 6 * tags_per_class (independent of n_classes)
    n_scenes: int = 8
    scene_share: float = 0.35  # share of an image's tags that come from its scene
    scene_on: float = 0.7  # probability that a scene tag is on in an image of that scene
    zipf: float = 1.0
    max_tag_probability: float = 0.9
    noise_tags: float = 0.3  # mean number of off-vocabulary tags per image
    base_accuracy: tuple[float, float] = (0.85, 0.95)
    planted: tuple[int, int, int] = (2, 2, 1)  # planted 1-, 2- and 3-tag failures per class
    planted_group: tuple[int, int] = (35, 70)  # images forced to carry a planted conjunction
    planted_accuracy: tuple[float, float] = (0.15, 0.45)
    class_names: tuple[str, ...] | None = field(default=None)
    seed: int = 0

    def resolved_pool_size(self) -> int:
        if self.pool_size is not None:
            return self.pool_size
        return 6 * self.tags_per_class


def _class_names(scenario: Scenario) -> list[str]:
    if scenario.class_names is not None:
        if len(scenario.class_names) < scenario.n_classes:
            raise ValueError("class_names: fewer names than n_classes")
        return list(scenario.class_names[: scenario.n_classes])
    width = len(str(scenario.n_classes - 1))
    return [f"class{c:0{width}d}" for c in range(scenario.n_classes)]


def _calibrate_scale(
    ranks: np.ndarray, zipf: float, cap: float, scene_p: np.ndarray, target: float
) -> np.ndarray:
    """Tag probabilities ``min(cap, scale / rank**zipf)`` whose expected count (OR-ed with the
    scene tags) is ``target``; bisection on ``scale``."""
    base = 1.0 / ranks.astype(float) ** zipf

    def expected(scale: float) -> float:
        q = np.minimum(cap, scale * base)
        return float(np.sum(1.0 - (1.0 - q) * (1.0 - scene_p)))

    lo, hi = 0.0, 1.0
    while expected(hi) < target and hi < 1e6:
        hi *= 2.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if expected(mid) < target:
            lo = mid
        else:
            hi = mid
    return np.minimum(cap, hi * base)


def _pool_weights(scenario: Scenario) -> np.ndarray:
    """Zipf popularity of the global tag pool, in a seeded random order."""
    pool = scenario.resolved_pool_size()
    pool_rng = np.random.default_rng(np.random.SeedSequence([scenario.seed, 2**31 - 1]))
    weights = 1.0 / np.arange(1, pool + 1) ** scenario.zipf
    weights = weights[pool_rng.permutation(pool)]
    return weights / weights.sum()


def _generate_class(scenario: Scenario, class_index: int, pool_weights: np.ndarray):
    """One class: (pool column ids of its rows' tags as a dense block, correctness, planted)."""
    rng = np.random.default_rng(np.random.SeedSequence([scenario.seed, class_index]))
    n, k = scenario.n_per_class, scenario.tags_per_class
    pool = len(pool_weights)

    # Vocabulary: popular pool tags are more likely to be in many classes' vocabularies.
    vocab_p = np.sqrt(pool_weights)
    vocab = rng.choice(pool, size=k, replace=False, p=vocab_p / vocab_p.sum())

    # Scenes: a group of vocabulary tags switched on together; scene popularity is uneven.
    group_size = max(1, round(scenario.scene_share * scenario.mean_tags / scenario.scene_on))
    group_size = min(group_size, k)
    groups = np.stack(
        [rng.choice(k, size=group_size, replace=False) for _ in range(scenario.n_scenes)]
    )
    scene_weights = rng.dirichlet(np.full(scenario.n_scenes, 2.0))
    scene_p = np.zeros(k)
    for s in range(scenario.n_scenes):
        scene_p[groups[s]] += scene_weights[s] * scenario.scene_on
    scene_p = np.minimum(scene_p, 1.0)

    # Independent tags: capped Zipf over a random order of the vocabulary.
    ranks = np.empty(k, dtype=np.int64)
    ranks[rng.permutation(k)] = np.arange(1, k + 1)
    target = max(0.0, scenario.mean_tags - scenario.noise_tags)
    q = _calibrate_scale(ranks, scenario.zipf, scenario.max_tag_probability, scene_p, target)

    block = rng.random((n, k)) < q
    scene_of = rng.choice(scenario.n_scenes, size=n, p=scene_weights)
    scene_draw = rng.random((n, group_size)) < scenario.scene_on
    rows = np.repeat(np.arange(n), group_size)
    block[rows, groups[scene_of].ravel()] |= scene_draw.ravel()

    # Planted failures: conjunctions of 1, 2 or 3 vocabulary tags with low accuracy.
    accuracy = np.full(n, rng.uniform(*scenario.base_accuracy))
    planted = []
    marginal = block.mean(axis=0)
    for n_tags, count in zip((1, 2, 3), scenario.planted, strict=True):
        for _ in range(count):
            if n_tags == 1:  # a rare-ish tag fails as a whole
                choices = np.flatnonzero((marginal > 0.005) & (marginal < 0.02))
                if len(choices) < 3:  # dense tagging: the rarest tags that still occur
                    choices = np.argsort(np.where(marginal > 0.005, marginal, np.inf))[:10]
            else:  # common-ish tags that fail only together
                choices = np.flatnonzero((marginal > 0.04) & (marginal < 0.4))
                if len(choices) < 2 * n_tags:
                    choices = np.arange(k)
            # Prefer conjunctions that are rare by themselves (the least common of 50 draws).
            best, best_share = None, np.inf
            for _ in range(50):
                cols = np.sort(rng.choice(choices, size=n_tags, replace=False))
                share = block[:, cols].all(axis=1).mean()
                if share < best_share:
                    best, best_share = cols, share
                if share <= 0.01:
                    break
            cols = best
            forced = rng.choice(n, size=int(rng.integers(*scenario.planted_group)), replace=False)
            block[np.ix_(forced, cols)] = True
            members = block[:, cols].all(axis=1)
            fail = rng.uniform(*scenario.planted_accuracy)
            accuracy[members] = np.minimum(accuracy[members], fail)
            planted.append((tuple(int(vocab[c]) for c in cols), float(fail)))
    correct = rng.random(n) < accuracy

    # Off-vocabulary noise tags from the whole pool.
    n_noise = rng.poisson(scenario.noise_tags, size=n)
    noise_rows = np.repeat(np.arange(n), n_noise)
    noise_cols = rng.choice(pool, size=int(n_noise.sum()), p=pool_weights)
    return vocab, block, noise_rows, noise_cols, correct, planted


def generate(scenario: Scenario | None = None, *, return_planted: bool = False, **overrides):
    """Generate ``(tags, labels, correct)`` for a scenario (or for ``Scenario(**overrides)``).

    Parameters
    ----------
    scenario
        The problem's shape and statistics; keyword overrides replace its fields.

    Returns
    -------
    tags : DataFrame, shape (n_classes * n_per_class, n_used_tags), bool
        Index = sample id (``"s0000000"``...), columns = tag names (``"tag0000"``...), only the pool
        tags that occur at least once.
    labels : Series of str
        Class name of each sample (name ``"label"``).
    correct : Series of bool
        Whether the classifier is right on the sample (name ``"correct"``).

    planted : list of (class, tags, accuracy), only with ``return_planted=True``
        The planted failures. (Not stored in ``tags.attrs``: pandas deep-copies ``attrs`` on
        every derived frame and column, which slows down any pandas code using the frame.)
    """
    if scenario is None:
        scenario = Scenario(**overrides)
    elif overrides:
        scenario = Scenario(**{**asdict(scenario), **overrides})
    names = _class_names(scenario)
    pool = scenario.resolved_pool_size()
    pool_weights = _pool_weights(scenario)

    n_total = scenario.n_classes * scenario.n_per_class
    matrix = np.zeros((n_total, pool), dtype=bool)
    correct = np.zeros(n_total, dtype=bool)
    planted_all = []
    for c in range(scenario.n_classes):
        vocab, block, noise_rows, noise_cols, ok, planted = _generate_class(
            scenario, c, pool_weights
        )
        lo = c * scenario.n_per_class
        rows = matrix[lo : lo + scenario.n_per_class]
        rows[:, vocab] |= block
        rows[noise_rows, noise_cols] = True
        correct[lo : lo + scenario.n_per_class] = ok
        planted_all.extend((names[c], tuple(f"tag{t:04d}" for t in ts), acc) for ts, acc in planted)

    used = np.flatnonzero(matrix.any(axis=0))
    if len(used) < pool:
        matrix = matrix[:, used]
    index = pd.Index([f"s{i:07d}" for i in range(n_total)], name="id")
    tags = pd.DataFrame(matrix, index=index, columns=[f"tag{t:04d}" for t in used], copy=False)
    labels = pd.Series(np.repeat(names, scenario.n_per_class), index=index, name="label")
    correct_s = pd.Series(correct, index=index, name="correct")
    if return_planted:
        planted = [(c, tuple(sorted(t)), a) for c, t, a in planted_all]
        return tags, labels, correct_s, planted
    return tags, labels, correct_s


def describe(
    tags: pd.DataFrame, labels: pd.Series, correct: pd.Series, *, min_size: int = 30
) -> dict:
    """Summary statistics of a generated problem (for the benchmark report)."""
    x = tags.to_numpy()
    codes, _ = pd.factorize(labels.to_numpy(dtype=object))
    if len(codes) and (np.diff(codes) < 0).any():  # generated data is already grouped by class
        order = np.argsort(codes, kind="stable")
        x, codes = x[order], codes[order]
    starts = np.searchsorted(codes, np.arange(codes.max() + 1 if len(codes) else 0))
    per_class = np.add.reduceat(x.view(np.uint8), starts, axis=0, dtype=np.int32)
    per_class_tc = (per_class >= min_size).sum(axis=1)
    return {
        "images": int(len(tags)),
        "classes": int(labels.nunique()),
        "tag columns": int(tags.shape[1]),
        "mean tags/image": round(float(x.sum(axis=1).mean()), 2),
        "mean T_c size": round(float(np.mean(per_class_tc)), 1),
        "accuracy": round(float(correct.mean()), 3),
        "matrix MB": round(x.nbytes / 2**20, 1),
    }


# ---------------------------------------------------------------------------------------------
# the long tables a user has after tagging, written class by class (never the dense matrix)

LONG_SCHEMA = {"id": "string", "tag": "string", "score": "float32"}


def _class_rows(scenario: Scenario, c: int, pool_weights: np.ndarray, low_score_tags: float):
    """One class as long rows: (image, pool tag, score) arrays sorted by image then tag, the
    correctness of its images and its planted failures with their realised size and accuracy."""
    vocab, block, noise_rows, noise_cols, correct, planted = _generate_class(
        scenario, c, pool_weights
    )
    pool = len(pool_weights)
    rng = np.random.default_rng(np.random.SeedSequence([scenario.seed, c, 7]))
    rows, cols = np.nonzero(block)
    present = np.unique(np.concatenate([rows * pool + vocab[cols], noise_rows * pool + noise_cols]))
    # tags under the threshold, as a tagger that writes every score above a floor produces
    n_low = rng.poisson(low_score_tags, size=scenario.n_per_class)
    low_rows = np.repeat(np.arange(scenario.n_per_class), n_low)
    low = np.unique(low_rows * pool + rng.choice(pool, size=len(low_rows), p=pool_weights))
    low = np.setdiff1d(low, present, assume_unique=True)
    keys = np.concatenate([present, low])
    score = np.concatenate(
        [rng.uniform(0.5, 1.0, len(present)), rng.uniform(0.02, 0.49, len(low))]
    ).astype(np.float32)
    order = np.argsort(keys, kind="stable")
    keys, score = keys[order], score[order]
    image, tag = keys // pool, keys % pool
    def group(tags) -> tuple[int, float]:
        members = np.ones(scenario.n_per_class, bool)
        for t in tags:
            carriers = np.zeros(scenario.n_per_class, bool)
            carriers[present[present % pool == t] // pool] = True
            members &= carriers
        size = int(members.sum())
        return size, float(correct[members].mean()) if size else float("nan")

    stats = []
    for tags, fail in planted:
        size, acc = group(tags)
        # accuracy without each tag: PRIME's necessity condition decides whether it is a mode
        without = [group(tags[:i] + tags[i + 1 :])[1] for i in range(len(tags))] if len(tags) > 1 else []
        stats.append((tags, fail, size, acc, without))
    return image, tag, score, correct, stats


def write_long(
    scenario: Scenario,
    folder,
    *,
    low_score_tags: float = 0.25,
    classes_per_group: int = 50,
) -> dict:
    """Write ``samples.parquet`` (id, label, correct) and ``tags.parquet`` (id, tag, score).

    The tag table holds every present tag (score in [0.5, 1)) and ``low_score_tags`` absent ones
    per image on average (score < 0.5), sorted by id then tag, as a tagger writes it; one Parquet
    row group per ``classes_per_group`` classes. Memory stays that of a few classes.

    Returns
    -------
    dict
        ``images, tag_rows, present_rows, vocabulary`` and ``planted``: one
        ``(class, tags, planted accuracy, size, accuracy, class accuracy, accuracies without
        each tag)`` per planted failure, with the realised size and accuracies of its images.
    """
    from pathlib import Path

    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = _class_names(scenario)
    pool = scenario.resolved_pool_size()
    pool_weights = _pool_weights(scenario)
    width = max(4, len(str(pool - 1)))
    tag_names = pa.array([f"tag{t:0{width}d}" for t in range(pool)])
    schema = pa.schema({k: getattr(pa, v)() for k, v in LONG_SCHEMA.items()})
    n = scenario.n_per_class
    summary = {"images": n * scenario.n_classes, "tag_rows": 0, "present_rows": 0, "planted": []}
    used = np.zeros(pool, bool)
    samples = []
    with pq.ParquetWriter(folder / "tags.parquet", schema) as writer:
        parts = []
        for c in range(scenario.n_classes):
            image, tag, score, correct, stats = _class_rows(scenario, c, pool_weights, low_score_tags)
            ids = pa.array([f"{names[c]}_{i:05d}" for i in range(n)])
            parts.append(
                pa.table(
                    {
                        "id": ids.take(pa.array(image)),
                        "tag": tag_names.take(pa.array(tag)),
                        "score": pa.array(score),
                    }
                )
            )
            samples.append(pa.table({"id": ids, "label": [names[c]] * n, "correct": correct}))
            used[tag] = True
            summary["tag_rows"] += len(tag)
            summary["present_rows"] += int((score >= 0.5).sum())
            accuracy = float(correct.mean())
            summary["planted"].extend(
                (names[c], tuple(str(tag_names[t]) for t in ts), fail, size, acc, accuracy, without)
                for ts, fail, size, acc, without in stats
            )
            if len(parts) == classes_per_group or c == scenario.n_classes - 1:
                writer.write_table(pa.concat_tables(parts))
                parts = []
    pq.write_table(pa.concat_tables(samples), folder / "samples.parquet")
    summary["vocabulary"] = int(used.sum())
    return summary
