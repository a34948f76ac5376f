"""primekit.baselines: DOMINO and failure directions find a planted error cluster."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from primekit import baselines, metrics

D = 16
PHRASES = ["a photo of a fox", "a photo of grass", "a photo of water", "a photo of snow"]


def _basis(k: int) -> np.ndarray:
    v = np.zeros(D)
    v[k] = 1.0
    return v


PHRASE_EMB = np.stack([_basis(0), _basis(2), _basis(3), _basis(4)])


@pytest.fixture(scope="module")
def planted():
    """Two classes; inside class "fox" a cluster of 60 images shifted toward "grass" (axis 2)
    on which the classifier is wrong 85% of the time (10% elsewhere)."""
    rng = np.random.default_rng(0)
    n_plain, n_planted, n_cat = 300, 60, 300
    fox = 3 * _basis(0) + rng.normal(0, 0.6, (n_plain, D))
    grass = 3 * _basis(0) + 3 * _basis(2) + rng.normal(0, 0.6, (n_planted, D))
    cat = 3 * _basis(1) + rng.normal(0, 0.6, (n_cat, D))
    emb = np.vstack([fox, grass, cat])
    labels = np.array(["fox"] * (n_plain + n_planted) + ["cat"] * n_cat, dtype=object)
    is_planted = np.r_[np.zeros(n_plain, bool), np.ones(n_planted, bool), np.zeros(n_cat, bool)]
    wrong = np.where(is_planted, rng.random(len(emb)) < 0.85, rng.random(len(emb)) < 0.10)
    ids = pd.Index([f"img{i}" for i in range(len(emb))])
    return {
        "emb": emb,
        "ids": ids,
        "labels": pd.Series(labels, index=ids),
        "correct": pd.Series(~wrong, index=ids),
        "planted": set(ids[is_planted]),
    }


def _overlap(members, planted):
    members = set(members)
    hit = len(members & planted)
    return hit / max(len(members), 1), hit / len(planted)


# ---------------------------------------------------------------------------------------------
# DOMINO


def test_domino_finds_and_describes_the_planted_cluster(planted):
    out = baselines.domino_slices(
        planted["emb"],
        planted["ids"],
        planted["labels"],
        planted["correct"],
        phrases=PHRASES,
        phrase_embeddings=PHRASE_EMB,
        n_slices={"fox": 2},
        n_mixture_components=5,
        n_pca_components=8,
        seed=0,
    )
    assert list(out.columns) == list(baselines.SLICE_COLUMNS)
    assert set(out["class"]) == {"fox"} and list(out["slice"]) == [0, 1]
    top = out.iloc[0]
    # the mixture also models predictions: its worst slice is the planted cluster's errors
    planted_errors = {i for i in planted["planted"] if not planted["correct"][i]}
    precision, recall = _overlap(top["members"], planted_errors)
    assert precision >= 0.8 and recall >= 0.8
    assert top["description"] == "a photo of grass"
    assert top["accuracy"] < 0.3 and top["drop"] > 0.4
    assert top["size"] == len(top["members"])
    assert top["score"] >= out.iloc[1]["score"]


def test_domino_is_deterministic_given_seed(planted):
    kw = dict(
        phrases=PHRASES,
        phrase_embeddings=PHRASE_EMB,
        n_slices=2,
        n_pca_components=8,
        n_mixture_components=6,
    )
    args = (planted["emb"], planted["ids"], planted["labels"], planted["correct"])
    one = baselines.domino_slices(*args, seed=3, **kw)
    two = baselines.domino_slices(*args, seed=3, **kw)
    pd.testing.assert_frame_equal(one, two)
    assert set(one["class"]) == {"cat", "fox"}


def test_domino_slicer_follows_sklearn_conventions(planted):
    emb = planted["emb"][:360]
    ok = planted["correct"].to_numpy()[:360].astype(float)
    slicer = baselines.DominoSlicer(3, n_mixture_components=6, n_pca_components=4, seed=1)
    assert slicer.n_slices == 3 and not hasattr(slicer, "means_")
    with pytest.raises(ValueError, match="fit"):
        slicer.predict_proba(emb)
    assert slicer.fit(emb, np.ones(360), ok) is slicer
    assert slicer.means_.shape == (6, 4) and slicer.y_hat_probs_.shape == (6, 2)
    assert np.allclose(slicer.weights_.sum(), 1.0)
    probs = slicer.predict_proba(emb)
    assert probs.shape == (360, 3) and (probs >= 0).all() and (probs.sum(axis=1) <= 1 + 1e-9).all()
    assert slicer.predict(emb).sum(axis=1).tolist() == [1] * 360
    # ranking: component scores (error rates) in decreasing order
    ranked = slicer.component_scores_[slicer.slice_indices_]
    assert (np.diff(ranked) <= 1e-12).all()
    assert np.allclose(ranked, 1 - slicer.y_hat_probs_[slicer.slice_indices_, 1])
    described = slicer.describe(emb, np.ones(360, bool), PHRASE_EMB, PHRASES)
    assert list(described.columns) == ["phrase", "score"] and len(described) == 4


def test_domino_multiclass_confusion_init():
    rng = np.random.default_rng(2)
    emb = rng.normal(size=(90, 5))
    targets = np.repeat([0, 1, 2], 30)
    preds = np.eye(3)[targets]
    with pytest.raises(ValueError, match="n_mixture_components"):
        baselines.DominoSlicer(2, n_mixture_components=8, n_pca_components=None).fit(
            emb, targets, preds
        )
    slicer = baselines.DominoSlicer(2, n_mixture_components=9, n_pca_components=None).fit(
        emb, targets, preds
    )
    assert slicer.y_probs_.shape == (9, 3) and slicer.pca_ is None


def test_domino_describe_by_hand():
    emb = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    members = np.array([False, False, True])
    ref = np.ones(3, bool)
    out = baselines.domino_describe(
        emb, members, ref, np.array([[1.0, 0.0], [0.0, 1.0]]), ["x", "y"]
    )
    # shift = [0, 1] - mean([1,0], [.707,.707], [0,1])
    s = np.sqrt(0.5)
    shift = np.array([0.0, 1.0]) - np.array([1 + s, s + 1]) / 3
    assert list(out["phrase"]) == ["y", "x"]
    assert out["score"].tolist() == pytest.approx([shift[1], shift[0]])


@pytest.mark.parametrize(
    "kwargs, error, word",
    [
        ({"n_slices": 0}, ValueError, "n_slices"),
        ({"n_slices": 30}, ValueError, "n_mixture_components"),
        ({"init_params": "kmeans"}, ValueError, "init_params"),
        ({"max_iter": 1.5}, TypeError, "max_iter"),
    ],
)
def test_domino_bad_params(kwargs, error, word):
    with pytest.raises(error, match=word):
        baselines.DominoSlicer(**kwargs).fit(np.ones((10, 3)), np.ones(10), np.ones(10))


def test_domino_slices_bad_input(planted):
    args = (planted["emb"], planted["ids"], planted["labels"], planted["correct"])
    with pytest.raises(ValueError, match="phrase_embeddings"):
        baselines.domino_slices(*args, phrases=PHRASES, phrase_embeddings=PHRASE_EMB[:, :3])
    with pytest.raises(ValueError, match="ids"):
        baselines.domino_slices(
            planted["emb"],
            planted["ids"][:5],
            planted["labels"],
            planted["correct"],
            phrases=PHRASES,
            phrase_embeddings=PHRASE_EMB,
        )
    bad = planted["emb"].copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="embeddings"):
        baselines.domino_slices(bad, *args[1:], phrases=PHRASES, phrase_embeddings=PHRASE_EMB)


# ---------------------------------------------------------------------------------------------
# failure directions


def test_failure_directions_find_and_caption_the_planted_cluster(planted):
    out = baselines.failure_direction_slices(
        planted["emb"],
        planted["ids"],
        planted["labels"],
        planted["correct"],
        captions=PHRASES,
        caption_embeddings=PHRASE_EMB,
        top_k={"fox": 60},
    )
    assert list(out.columns) == list(baselines.SLICE_COLUMNS)
    assert list(out["class"]) == ["fox"]
    top = out.iloc[0]
    precision, _ = _overlap(top["members"], planted["planted"])
    assert top["size"] == 60 and precision >= 0.8
    assert top["description"] == "a photo of grass"
    assert top["accuracy"] < 0.35


def test_failure_directions_model(planted):
    emb, labels = planted["emb"], planted["labels"].to_numpy()
    ok = planted["correct"].to_numpy()
    model = baselines.FailureDirections(C_grid=(1e-2, 1.0)).fit(emb, labels, ok)
    assert model.classes_ == ["cat", "fox"]
    assert model.best_C_["fox"] in (1e-2, 1.0) and model.cv_scores_["fox"] > 0.6
    decision = model.decision_function(emb, labels)
    fox = labels == "fox"
    # correct images score higher than wrong ones along the SVM
    assert decision[fox & ok].mean() > decision[fox & ~ok].mean()
    assert np.linalg.norm(model.directions_["fox"]) == pytest.approx(1.0)
    again = baselines.FailureDirections(C_grid=(1e-2, 1.0)).fit(emb, labels, ok)
    assert np.array_equal(decision, again.decision_function(emb, labels))
    with pytest.raises(ValueError, match="cls"):
        model.rank_captions("dog", PHRASE_EMB, PHRASES)


def test_failure_directions_skips_a_class_without_errors():
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(40, 4))
    labels = np.array(["a"] * 20 + ["b"] * 20, dtype=object)
    ok = np.r_[np.ones(20, bool), rng.random(20) < 0.5]
    model = baselines.FailureDirections(C=1.0).fit(emb, labels, ok)
    assert model.classes_ == ["b"]
    assert np.isnan(model.decision_function(emb, labels)[:20]).all()
    with pytest.raises(ValueError, match="correct"):
        baselines.FailureDirections().fit(emb, labels, np.full(40, 2))
    with pytest.raises(ValueError, match="C_grid"):
        baselines.FailureDirections(C_grid=()).fit(emb, labels, ok)


# ---------------------------------------------------------------------------------------------
# matching PRIME and scoring the slices like PRIME's modes


def test_prime_budget():
    modes = pd.DataFrame({"class": ["a", "a", "b"], "size": [30, 51, 40]})
    budget = baselines.prime_budget(modes)
    assert budget.loc["a", "n_modes"] == 2 and budget.loc["a", "median_size"] == 40
    assert budget.loc["b", "median_size"] == 40
    with pytest.raises(ValueError, match="modes"):
        baselines.prime_budget(modes.drop(columns="size"))


def test_slices_feed_description_quality(planted):
    out = baselines.domino_slices(
        planted["emb"],
        planted["ids"],
        planted["labels"],
        planted["correct"],
        phrases=PHRASES,
        phrase_embeddings=PHRASE_EMB,
        n_slices=baselines.prime_budget(pd.DataFrame({"class": ["fox"], "size": [60]}))["n_modes"],
        n_pca_components=8,
        n_mixture_components=5,
    )
    text = PHRASE_EMB[[PHRASES.index(d) for d in out["description"]]]
    quality = metrics.description_quality(
        out, planted["emb"], planted["ids"], planted["labels"], text_embeddings=text
    )
    assert len(quality) == 1 and quality.iloc[0]["auroc"] > 0.9


def test_phrase_vocabulary():
    assert baselines.phrase_vocabulary(["grass", "snow", "grass"]) == [
        "a photo of grass.",
        "a photo of snow.",
    ]
    assert baselines.phrase_vocabulary(["x"], template="{} scene") == ["x scene"]
    with pytest.raises(ValueError, match="template"):
        baselines.phrase_vocabulary(["x"], template="no slot")
    with pytest.raises(TypeError, match="words"):
        baselines.phrase_vocabulary("grass")


def test_failure_directions_liblinear_agrees_with_libsvm(planted):
    emb, labels = planted["emb"], planted["labels"].to_numpy()
    ok = planted["correct"].to_numpy()
    fast = baselines.FailureDirections(C=1.0, solver="liblinear").fit(emb, labels, ok)
    slow = baselines.FailureDirections(C=1.0).fit(emb, labels, ok)
    cosine = fast.directions_["fox"] @ slow.directions_["fox"]
    assert cosine > 0.9
    with pytest.raises(ValueError, match="solver"):
        baselines.FailureDirections(solver="sgd").fit(emb, labels, ok)


@pytest.fixture(scope="module")
def xor_clusters():
    """Class "fox" whose errors sit in two opposite quadrants of (axis 2, axis 3): 100 at (+, +)
    and 50 at (-, -), with the correct images in (+, -) and (-, +). No hyperplane holds both
    error clusters on its failure side; a balanced SVM takes the larger one."""
    rng = np.random.default_rng(3)
    parts, cluster = [], []
    for k, (a, b, n) in enumerate([(1, 1, 100), (-1, -1, 50), (1, -1, 150), (-1, 1, 150)]):
        parts.append(3 * _basis(0) + 2 * a * _basis(2) + 2 * b * _basis(3) + rng.normal(0, 0.6, (n, D)))
        cluster += [k] * n
    emb, cluster = np.vstack(parts), np.array(cluster)
    wrong = np.where(cluster < 2, rng.random(len(emb)) < 0.9, rng.random(len(emb)) < 0.05)
    labels = pd.Series(["fox"] * len(emb), index=[f"i{k}" for k in range(len(emb))])
    return emb, labels, pd.Series(~wrong, index=labels.index), cluster


def test_failure_directions_successive_directions(xor_clusters):
    emb, labels, ok, cluster = xor_clusters
    model = baselines.FailureDirections(C=1.0, n_directions=2).fit(emb, labels, ok)
    units = np.stack(model.all_directions_["fox"])
    assert units.shape == (2, D)
    np.testing.assert_allclose(np.linalg.norm(units, axis=1), 1.0)
    assert model.directions_["fox"] is model.all_directions_["fox"][0]
    # the first points to the (+, +) errors, the second (fitted without them) to the (-, -) ones
    assert units[0][2] > 0.4 and units[0][3] > 0.4
    assert units[1][2] < -0.4 and units[1][3] < -0.4
    # the first direction is the published method's, whatever n_directions is
    one = baselines.FailureDirections(C=1.0).fit(emb, labels, ok)
    np.testing.assert_allclose(one.directions_["fox"], units[0])
    np.testing.assert_array_equal(
        one.decision_function(emb, labels), model.decision_function(emb, labels, direction=0)
    )
    assert np.isnan(one.decision_function(emb, labels, direction=1)).all()
    with pytest.raises(ValueError, match="direction"):
        model.rank_captions("fox", PHRASE_EMB, PHRASES, direction=2)
    with pytest.raises(ValueError, match="direction"):
        model.decision_function(emb, labels, direction=True)
    with pytest.raises(ValueError, match="n_directions"):
        baselines.FailureDirections(n_directions=0).fit(emb, labels, ok)
    with pytest.raises(ValueError, match="n_directions"):
        baselines.FailureDirections(n_directions={}).fit(emb, labels, ok)
    with pytest.raises(ValueError, match=r"n_directions\['fox'\]"):
        baselines.FailureDirections(n_directions={"fox": 0}).fit(emb, labels, ok)


def test_failure_direction_slices_one_slice_per_direction(xor_clusters):
    emb, labels, ok, cluster = xor_clusters
    kwargs = {"captions": PHRASES, "caption_embeddings": PHRASE_EMB, "C": 1.0}
    out = baselines.failure_direction_slices(emb, labels.index, labels, ok, top_k=50, n_directions={"fox": 2}, **kwargs)
    assert list(out["slice"]) == [0, 1] and (out["size"] == 50).all()
    assert (out["accuracy"] < 0.25).all()
    where = dict(zip(labels.index, cluster, strict=True))
    first, second = ([where[i] for i in m] for m in out["members"])
    assert first.count(0) >= 45 and second.count(1) >= 45
    # one direction cannot reach the (-, -) cluster however many images its slice takes
    one = baselines.failure_direction_slices(emb, labels.index, labels, ok, top_k=150, **kwargs)
    assert [where[i] for i in one["members"].iloc[0]].count(1) < 10
    # slices are disjoint even when the directions' top images overlap; empty ones are dropped
    big = baselines.failure_direction_slices(emb, labels.index, labels, ok, top_k=300, n_directions=2, **kwargs)
    assert list(big["size"]) == [300, 150]
    assert not set(big["members"].iloc[0]) & set(big["members"].iloc[1])
    model = baselines.FailureDirections(C=1.0, n_directions=2).fit(emb, labels, ok)
    tops = [set(np.argsort(model.decision_function(emb, labels, direction=j))[:300]) for j in (0, 1)]
    assert len(tops[0] & tops[1]) > 50  # so the disjointness above is the slices' doing
    assert baselines.failure_direction_slices(emb, labels.index, labels, ok, n_directions={"cat": 2}, **kwargs).empty


def test_failure_directions_stop_when_the_errors_are_explained(planted, xor_clusters):
    # one error cluster: a second direction finds nothing the first does not explain
    emb, labels = planted["emb"], planted["labels"].to_numpy()
    model = baselines.FailureDirections(C=1.0, n_directions=4).fit(emb, labels, planted["correct"].to_numpy())
    assert 1 <= len(model.all_directions_["fox"]) < 4
    # the default C search (it may pick a tiny C, whose intercept decides every sign) still
    # finds both clusters: "explained" is a rank, not a sign
    emb, labels, ok, cluster = xor_clusters
    model = baselines.FailureDirections(n_directions=4).fit(emb, labels, ok)
    assert len(model.all_directions_["fox"]) >= 2
    units = np.stack(model.all_directions_["fox"])
    assert units[0][2] > 0.4 and units[0][3] > 0.4 and units[1][2] < -0.4 and units[1][3] < -0.4
