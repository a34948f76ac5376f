"""primekit.metrics: the paper's evaluation, checked against values computed by hand."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from primekit import metrics
from primekit.metrics.latent import _max_shared_tagset
from primekit.split import TaggedSplit

SQ = 1 / math.sqrt(2)


# ---------------------------------------------------------------------------------------------
# description quality (4.3)


IMAGES = np.array(
    [[1.0, 0.0], [0.0, 2.0], [3.0, 3.0], [-1.0, 0.0]]
)  # sims to [1,0]: 1, 0, .707, -1


def test_similarity_stats_by_hand():
    out = metrics.mode_similarity_stats(IMAGES, np.array([5.0, 0.0]), [0, 2], [1, 3])
    assert out["mean"] == pytest.approx((1 + SQ) / 2)
    assert out["std"] == pytest.approx((1 - SQ) / 2)  # population std of two values
    assert out["auroc"] == pytest.approx(1.0)
    assert (out["n_inside"], out["n_outside"]) == (2, 2)


def test_similarity_stats_masks_and_ties():
    inside = np.array([True, True, False, False])
    outside = np.array([False, False, False, True])
    # inside sims 1, 0; outside -1 -> AUROC 1; with outside image 1 (sim 0): pairs 1>0, 0=0 -> .75
    assert metrics.mode_similarity_stats(IMAGES, [1.0, 0.0], inside, outside)["auroc"] == 1.0
    images = np.vstack([IMAGES, [[0.0, 1.0]]])
    out = metrics.mode_similarity_stats(images, [1.0, 0.0], [0, 1], [4])
    assert out["auroc"] == pytest.approx(0.75)


def test_similarity_stats_empty_outside_is_nan():
    out = metrics.mode_similarity_stats(IMAGES, [1.0, 0.0], [0], [])
    assert math.isnan(out["auroc"]) and out["mean"] == pytest.approx(1.0) and out["std"] == 0.0


@pytest.mark.parametrize(
    "kwargs, error, word",
    [
        ({"text_embedding": [1.0, 0.0, 0.0]}, ValueError, "text_embedding"),
        ({"text_embedding": [0.0, 0.0]}, ValueError, "text_embedding"),
        ({"inside": [0, 1], "outside": [1]}, ValueError, "outside"),
        ({"inside": np.array([True, False])}, ValueError, "inside"),
        ({"image_embeddings": np.zeros(4)}, ValueError, "image_embeddings"),
        ({"inside": ["a"]}, TypeError, "inside"),
    ],
)
def test_similarity_stats_bad_input(kwargs, error, word):
    args = {
        "image_embeddings": IMAGES,
        "text_embedding": [1.0, 0.0],
        "inside": [0],
        "outside": [1],
        **kwargs,
    }
    with pytest.raises(error, match=word):
        metrics.mode_similarity_stats(**args)


def _quality_data():
    ids = pd.Index(["a", "b", "c", "d", "e"])
    labels = pd.Series(["fox", "fox", "fox", "fox", "cat"], index=ids)
    images = np.array([[1.0, 0.0], [3.0, 3.0], [0.0, 1.0], [-1.0, 0.0], [1.0, 0.0]])
    return ids, labels, images


def test_description_quality_members_and_text_embeddings():
    ids, labels, images = _quality_data()
    slices = pd.DataFrame(
        {"class": ["fox"], "description": ["a photo of fox x"], "members": [("a", "b")]}
    )
    out = metrics.description_quality(
        slices, images, ids, labels, text_embeddings=np.array([[2.0, 0.0]])
    )
    assert list(out.columns) == list(metrics.QUALITY_COLUMNS)
    row = out.iloc[0]
    assert row["n_inside"] == 2 and row["n_outside"] == 2  # "e" is a cat: not outside
    assert row["mean"] == pytest.approx((1 + SQ) / 2)
    assert row["auroc"] == pytest.approx(1.0)


def test_description_quality_from_tags_and_encoder():
    ids, labels, images = _quality_data()
    tags = pd.DataFrame({"grass": [True, True, False, False, True]}, index=ids)
    modes = pd.DataFrame(
        {"class": ["fox"], "tags": [("grass",)], "description": ["a photo of fox grass"]}
    )
    seen = []

    def encode(texts):
        seen.extend(texts)
        return np.array([[1.0, 0.0]] * len(texts))

    out = metrics.description_quality(modes, images, ids, labels, encode_text=encode, tags=tags)
    assert seen == ["a photo of fox grass"]
    assert out.iloc[0]["n_inside"] == 2 and out.iloc[0]["auroc"] == pytest.approx(1.0)


def test_description_quality_sampled_outside_is_seeded():
    ids, labels, images = _quality_data()
    slices = pd.DataFrame({"class": ["fox"], "description": ["d"], "members": [("a",)]})
    kw = {"text_embeddings": np.array([[1.0, 0.0]]), "n_outside": 2, "seed": 3}
    one = metrics.description_quality(slices, images, ids, labels, **kw)
    two = metrics.description_quality(slices, images, ids, labels, **kw)
    assert one.iloc[0]["n_outside"] == 2
    pd.testing.assert_frame_equal(one, two)


def test_description_quality_bad_input():
    ids, labels, images = _quality_data()
    slices = pd.DataFrame({"class": ["fox"], "description": ["d"], "members": [("a",)]})
    with pytest.raises(ValueError, match="encode_text, text_embeddings"):
        metrics.description_quality(slices, images, ids, labels)
    with pytest.raises(ValueError, match="text_embeddings"):
        metrics.description_quality(slices, images, ids, labels, text_embeddings=np.ones((2, 2)))
    with pytest.raises(ValueError, match="ids"):
        metrics.description_quality(
            slices, images, ids[:3], labels, text_embeddings=np.ones((1, 2))
        )
    with pytest.raises(ValueError, match="tags"):
        metrics.description_quality(
            slices.drop(columns="members"), images, ids, labels, text_embeddings=np.ones((1, 2))
        )
    with pytest.raises(TypeError, match="slices"):
        metrics.description_quality("x", images, ids, labels, text_embeddings=np.ones((1, 2)))


def test_summarize_description_quality():
    q = pd.DataFrame(
        {"mean": [0.2, 0.4, np.nan], "std": [0.1, 0.3, np.nan], "auroc": [0.6, 0.8, np.nan]}
    )
    out = metrics.summarize_description_quality({"PRIME": q, "DOMINO": q.iloc[:1]})
    assert out.loc["PRIME", "n_modes"] == 2
    assert out.loc["PRIME", "mean"] == pytest.approx(0.3)
    assert out.loc["PRIME", "auroc_sem"] == pytest.approx(np.std([0.6, 0.8], ddof=1) / math.sqrt(2))
    assert math.isnan(out.loc["DOMINO", "auroc_sem"])
    assert list(metrics.summarize_description_quality(q).index) == ["all"]
    # pooled over images: modes of 1 and 3 images with similarities {.2} and {.3, .4, .5}
    sized = pd.DataFrame(
        {
            "n_inside": [1, 3],
            "mean": [0.2, 0.4],
            "std": [0.0, np.std([0.3, 0.4, 0.5])],
            "auroc": [0.5, 0.7],
        }
    )
    pooled = metrics.summarize_description_quality(sized, how="pooled").loc["all"]
    assert pooled["mean"] == pytest.approx(np.mean([0.2, 0.3, 0.4, 0.5]))
    assert pooled["std"] == pytest.approx(np.std([0.2, 0.3, 0.4, 0.5]))
    assert pooled["auroc"] == pytest.approx(0.6)
    with pytest.raises(ValueError, match="how"):
        metrics.summarize_description_quality(q, how="images")


# ---------------------------------------------------------------------------------------------
# generalization (4.1)


def _test_data():
    ids = [f"t{i}" for i in range(8)]
    tags = pd.DataFrame(
        {
            "grass": [1, 1, 1, 0, 0, 0, 1, 0],
            "snow": [0, 0, 0, 0, 0, 0, 0, 0],
        },
        index=ids,
    ).astype(bool)
    labels = pd.Series(["fox"] * 6 + ["cat"] * 2, index=ids)
    correct = pd.Series([0, 0, 1, 1, 1, 1, 1, 0], index=ids).astype(bool)
    return tags, labels, correct


MODES = pd.DataFrame(
    {
        "class": ["fox", "fox", "cat"],
        "tags": [("grass",), ("night",), ("grass",)],
        "n_tags": [1, 1, 1],
        "size": [30, 40, 50],
        "accuracy": [0.2, 0.1, 0.3],
        "class_accuracy": [0.8, 0.8, 0.9],
        "drop": [0.6, 0.7, 0.6],
    }
)


def test_recover_groups_by_hand():
    out = metrics.recover_groups(MODES, *_test_data())
    # fox: 4/6 correct; fox+grass: 1/3 correct -> drop 1/3
    assert out.loc[0, "test_size"] == 3 and out.loc[0, "test_class_size"] == 6
    assert out.loc[0, "test_accuracy"] == pytest.approx(1 / 3)
    assert out.loc[0, "test_class_accuracy"] == pytest.approx(2 / 3)
    assert out.loc[0, "test_drop"] == pytest.approx(1 / 3)
    # a tag the test data never has: empty group
    assert out.loc[1, "test_size"] == 0 and math.isnan(out.loc[1, "test_accuracy"])
    # cat: 1/2 correct, cat+grass: 1/1
    assert out.loc[2, "test_drop"] == pytest.approx(-0.5)
    assert list(out.columns[: len(MODES.columns)]) == list(MODES.columns)


def test_recover_groups_bad_input():
    tags, labels, correct = _test_data()
    with pytest.raises(ValueError, match="modes"):
        metrics.recover_groups(MODES.drop(columns="drop"), tags, labels, correct)
    with pytest.raises(ValueError, match="labels"):
        metrics.recover_groups(MODES, tags, labels.iloc[:3], correct)


def test_generalization_summary_by_hand():
    rec = pd.DataFrame(
        {
            "drop": [0.3, 0.4, 0.5, 0.6],
            "test_drop": [0.2, 0.4, 0.6, np.nan],
            "test_size": [10, 10, 10, 0],
        }
    )
    out = metrics.generalization_summary(rec, min_test_drop=0.25)
    assert (out["n_modes"], out["n_evaluated"], out["n_absent"]) == (4, 3, 1)
    assert out["share_at_least"] == pytest.approx(2 / 3)
    assert out["corrcoef"] == pytest.approx(1.0)
    assert out["mean_test_drop"] == pytest.approx(0.4)
    small = metrics.generalization_summary(rec, min_test_size=11)
    assert small["n_evaluated"] == 0 and math.isnan(small["corrcoef"])
    with pytest.raises(ValueError, match="min_test_drop"):
        metrics.generalization_summary(rec, min_test_drop=2.0)


def test_generalization_sweep_runs_the_search():
    rng = np.random.default_rng(0)
    n = 400
    ids = [f"s{i}" for i in range(n)]
    tags = pd.DataFrame({"grass": rng.random(n) < 0.3, "sky": rng.random(n) < 0.5}, index=ids)
    labels = pd.Series(["fox"] * n, index=ids)
    correct = pd.Series(
        np.where(tags["grass"], rng.random(n) < 0.2, rng.random(n) < 0.95), index=ids
    )
    data = TaggedSplit(tags, labels, correct)
    out = metrics.generalization_sweep(data, data, grid=[(30, 0.3), (30, 0.9)])
    assert list(out["min_drop"]) == [0.3, 0.9]
    assert out.loc[0, "n_modes"] == 1 and out.loc[0, "share_at_least"] == 1.0
    assert out.loc[1, "n_modes"] == 0
    with pytest.raises(TypeError, match="unseen: expected a split"):
        metrics.generalization_sweep(data, tags, grid=[(30, 0.3)])


# ---------------------------------------------------------------------------------------------
# tag combinations (5.1)


def _combo_data():
    # class c, tags x y z; rows: xyz wrong, xyz wrong, xy ok, xz ok, yz wrong, x ok, - ok
    rows = ["xyz", "xyz", "xy", "xz", "yz", "x", ""]
    ok = [0, 0, 1, 1, 0, 1, 1]
    ids = [f"i{k}" for k in range(len(rows))]
    tags = pd.DataFrame({t: [t in r for r in rows] for t in "xyz"}, index=ids)
    labels = pd.Series(["c"] * len(rows), index=ids)
    correct = pd.Series(ok, index=ids).astype(bool)
    modes = pd.DataFrame({"class": ["c", "c"], "tags": [("x", "y", "z"), ("x",)]})
    return modes, tags, labels, correct


def test_tag_combination_accuracies_table1():
    modes, tags, labels, correct = _combo_data()
    out = metrics.tag_combination_accuracies(modes, tags, labels, correct, n_tags=3)
    assert len(out) == 7 and out.iloc[0]["subset"] == ("x", "y", "z")
    acc = dict(zip(out["subset"], out["accuracy"], strict=True))
    assert acc[("x", "y", "z")] == 0
    assert acc[("x", "y")] == pytest.approx(1 / 3) and acc[("y", "z")] == 0
    assert acc[("x",)] == pytest.approx(3 / 5) and acc[("z",)] == pytest.approx(1 / 4)
    assert out["class_accuracy"].iloc[0] == pytest.approx(4 / 7)
    assert len(metrics.tag_combination_accuracies(modes, tags, labels, correct)) == 8


def test_tag_combination_summary_table2_both_readings():
    modes, tags, labels, correct = _combo_data()
    sub = metrics.tag_combination_summary(modes, tags, labels, correct, n_tags=3)
    assert list(sub.index) == [3, 2, 1]
    assert sub.loc[3, "accuracy"] == 0
    assert sub.loc[2, "accuracy"] == pytest.approx(2 / 9)
    assert sub.loc[1, "accuracy"] == pytest.approx((3 / 5 + 1 / 4 + 1 / 4) / 3)
    assert sub.loc[2, "drop"] == pytest.approx(4 / 7 - 2 / 9)
    assert sub.loc[3, "n_modes"] == 1
    least = metrics.tag_combination_summary(modes, tags, labels, correct, how="at_least")
    assert least.loc[2, "accuracy"] == pytest.approx(2 / 5)
    assert least.loc[1, "accuracy"] == pytest.approx(3 / 6)
    with pytest.raises(ValueError, match="how"):
        metrics.tag_combination_summary(modes, tags, labels, correct, how="all")


# ---------------------------------------------------------------------------------------------
# latent vs semantic (5.2)


def test_distance_by_shared_tags_table3():
    emb = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]])
    tags = np.array([[1], [1], [0]], dtype=bool)  # only pair (0, 1) shares a tag; distance 5
    out = metrics.distance_by_shared_tags(emb, tags, thresholds=(0, 1, 2), n_pairs=20_000, seed=1)
    d = [5.0, 1.0, math.sqrt(18)]
    assert out.loc[1, "mean"] == pytest.approx(5.0) and out.loc[1, "std"] == pytest.approx(0.0)
    # 5 beats 1 and 4.24 and ties with 5: (1 + 1 + .5) / 3
    assert out.loc[1, "probability"] == pytest.approx(2.5 / 3, abs=0.02)
    assert out.loc[0, "mean"] == pytest.approx(np.mean(d), abs=0.05)
    assert out.loc[0, "probability"] == pytest.approx(0.5, abs=0.02)
    assert out.loc[2, "n_pairs"] == 0 and math.isnan(out.loc[2, "mean"])
    again = metrics.distance_by_shared_tags(emb, tags, thresholds=(0, 1, 2), n_pairs=20_000, seed=1)
    pd.testing.assert_frame_equal(out, again)


def test_neighbour_shared_tags_table6_by_hand():
    emb = np.array([[0.0], [1.0], [2.5], [10.0], [11.0], [12.5]])
    rows = ["abc", "a", "a", "bc", "bc", "d"]
    tags = pd.DataFrame({t: [t in r for r in rows] for t in "abcd"})
    out = metrics.neighbour_shared_tags(emb, tags, n_neighbours=(2,), fraction=1.0, n_queries=6)
    assert out.loc[2, "latent_mean"] == pytest.approx(5 / 6)
    assert out.loc[2, "semantic_mean"] == pytest.approx(8 / 6)
    assert out.loc[2, "n_queries"] == 6


def test_max_shared_tagset_is_the_largest_frequent_tag_set():
    # 5 samples x tags a, b, c: a on samples 1-4, b on 0-3, c on 0-2
    carriers = np.array([[0, 1, 1], [1, 1, 1], [1, 1, 1], [1, 1, 0], [1, 0, 0]], bool)
    assert _max_shared_tagset(carriers, 3, 1000) == (2, True)  # {a, b} and {b, c} on 3 samples
    assert _max_shared_tagset(carriers, 4, 1000) == (1, True)
    assert _max_shared_tagset(carriers, 6, 1000) == (0, True)
    assert _max_shared_tagset(np.zeros((4, 0), bool), 1, 1000) == (0, True)
    # over budget: a lower bound, said so
    assert _max_shared_tagset(carriers, 3, 1)[1] is False


def test_max_shared_tagset_equals_brute_force_and_mlxtend_fpmax():
    fpmax = pytest.importorskip("mlxtend.frequent_patterns").fpmax
    rng = np.random.default_rng(0)
    for _ in range(20):
        m = rng.random((int(rng.integers(7, 60)), 6)) < rng.uniform(0.2, 0.8)
        for support in (1, 3, 7):
            best = max(
                (k for k in range(1, 7) for combo in itertools.combinations(range(6), k)
                 if m[:, list(combo)].all(axis=1).sum() >= support),
                default=0,
            )
            assert _max_shared_tagset(m, support, 10**6) == (best, True)
            # fpmax rounds min_support * rows up to a count: half a row below keeps it exact
            sets = fpmax(pd.DataFrame(m, columns=list("abcdef")),
                         min_support=(support - 0.5) / len(m))
            assert int(sets["itemsets"].map(len).max() if len(sets) else 0) == best


def test_latent_semantic_bad_input():
    emb = np.zeros((3, 2))
    with pytest.raises(ValueError, match="tags"):
        metrics.distance_by_shared_tags(emb, np.zeros((2, 1), bool))
    with pytest.raises(ValueError, match="n_neighbours"):
        metrics.neighbour_shared_tags(emb, np.zeros((3, 1), bool), n_neighbours=(3,))
    with pytest.raises(ValueError, match="fraction"):
        metrics.neighbour_shared_tags(emb, np.zeros((3, 1), bool), n_neighbours=(1,), fraction=0)


# ---------------------------------------------------------------------------------------------
# generated images (4.2)


def _success_data():
    n = 60
    ids = [f"s{i}" for i in range(n)]
    sun = np.arange(n) < 30
    ok = sun | (np.arange(n) % 3 == 0)  # sun: all correct; the rest 1/3 correct
    tags = pd.DataFrame({"sun": sun, "rain": ~sun}, index=ids)
    return tags, pd.Series(["fox"] * n, index=ids), pd.Series(ok, index=ids)


def test_success_modes_mirror_failure_modes():
    tags, labels, correct = _success_data()
    # class accuracy (30 + 10) / 60 = 2/3; sun: 1.0 -> gain 1/3; rain: 1/3 -> a failure
    out = metrics.success_modes(tags, labels, correct, min_gain=0.3, min_size=30)
    assert list(out["tags"]) == [("sun",)]
    assert out.loc[0, "accuracy"] == pytest.approx(1.0)
    assert out.loc[0, "class_accuracy"] == pytest.approx(2 / 3)
    assert out.loc[0, "drop"] == pytest.approx(-1 / 3)
    assert metrics.success_modes(tags, labels, correct, min_gain=0.34, min_size=30).empty
    with pytest.raises(TypeError, match="min_drop"):
        metrics.success_modes(tags, labels, correct, min_drop=0.3)


def test_generated_validation_and_gap():
    failures = pd.DataFrame({"class": ["fox"], "tags": [("snow",)], "drop": [0.5], "size": [40]})
    successes = pd.DataFrame({"class": ["fox"], "tags": [("sun",)], "drop": [-0.2], "size": [40]})
    chosen = metrics.select_generation_modes(failures, successes, per_class=2)
    assert list(chosen["kind"]) == ["failure", "success"]
    calls = []

    def render(cls, tags, n, *, seed):
        calls.append((cls, tags, n, seed))
        return [(cls, tags)] * n, "metadata"

    def predict(images):
        return ["cat" if "snow" in tags else cls for cls, tags in images]

    out = metrics.generated_validation(chosen, render, predict, n_per_mode=4, seed=10)
    assert calls == [("fox", ("snow",), 4, 10), ("fox", ("sun",), 4, 11)]
    assert list(out["generated_accuracy"]) == [0.0, 1.0]
    gap = metrics.generation_gap(out)
    assert gap.loc["fox", "gap"] == pytest.approx(1.0)
    as_table = metrics.generated_validation(
        chosen, render, lambda images: pd.DataFrame({"pred": predict(images)}), n_per_mode=4
    )
    assert list(as_table["generated_accuracy"]) == [0.0, 1.0]
    with pytest.raises(ValueError, match="predict_fn"):
        metrics.generated_validation(chosen, render, lambda images: ["fox"], n_per_mode=4)
    with pytest.raises(TypeError, match="render_fn"):
        metrics.generated_validation(chosen, None, predict)


def test_select_generation_modes_keeps_top_per_class():
    fail = pd.DataFrame(
        {
            "class": ["a", "a", "a", "b"],
            "tags": [("x",), ("y",), ("z",), ("x",)],
            "drop": [0.3, 0.5, 0.4, 0.6],
            "size": [30, 30, 30, 30],
        }
    )
    succ = fail.assign(drop=-fail["drop"])
    out = metrics.select_generation_modes(fail, succ, per_class=2)
    a_fail = out[(out["class"] == "a") & (out["kind"] == "failure")]
    assert list(a_fail["tags"]) == [("y",), ("z",)]
    a_succ = out[(out["class"] == "a") & (out["kind"] == "success")]
    assert list(a_succ["tags"]) == [("y",), ("z",)]
    assert len(out) == 6


# ---------------------------------------------------------------------------------------------
# plots of the evaluation (primekit.plots): take ax=, return it, never show


def test_eval_plots_draw_on_the_given_axes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from primekit import plots

    fig, axes = plt.subplots(1, 5)
    q = pd.DataFrame({"mean": [0.3], "std": [0.1], "auroc": [0.7]})
    summary = metrics.summarize_description_quality({"PRIME": q, "DOMINO": q})
    assert plots.plot_description_quality(summary, ax=axes[0]) is axes[0]
    rec = metrics.recover_groups(MODES, *_test_data())
    assert plots.plot_generalization(rec, ax=axes[1]) is axes[1]
    modes, tags, labels, correct = _combo_data()
    table2 = metrics.tag_combination_summary(modes, tags, labels, correct)
    assert plots.plot_tag_combinations({"toy": table2}, ax=axes[2]) is axes[2]
    combos = metrics.tag_combination_accuracies(modes, tags, labels, correct, n_tags=3)
    assert plots.plot_combination_accuracies(combos, ax=axes[4]) is axes[4]
    assert len(axes[4].patches) == 7
    validated = pd.DataFrame(
        {"class": ["a", "a"], "kind": ["failure", "success"], "generated_accuracy": [0.2, 0.9]}
    )
    assert plots.plot_generated_accuracy(validated, ax=axes[3]) is axes[3]
    assert len(axes[3].patches) == 2
    with pytest.raises(ValueError, match="recovered"):
        plots.plot_generalization(pd.DataFrame({"drop": [0.1]}))
    plt.close(fig)


def test_edge_cases_empty_tables_and_csv_tags():
    empty = pd.DataFrame({"class": [], "tags": [], "drop": [], "size": []})
    fail = pd.DataFrame({"class": ["a"], "tags": [("x",)], "drop": [0.4], "size": [30]})
    chosen = metrics.select_generation_modes(fail, empty)
    assert list(chosen["kind"]) == ["failure"]
    validated = chosen.assign(generated_accuracy=[0.1])
    gap = metrics.generation_gap(validated)
    assert gap.loc["a", "failure_accuracy"] == 0.1 and math.isnan(gap.loc["a", "gap"])
    # tags as written in CSV files ("a + b") are read back
    tags, labels, correct = _test_data()
    csv_modes = MODES.assign(tags=["grass", "night", "grass"])
    pd.testing.assert_frame_equal(
        metrics.recover_groups(csv_modes, tags, labels, correct).drop(columns="tags"),
        metrics.recover_groups(MODES, tags, labels, correct).drop(columns="tags"),
    )
    assert metrics.recover_groups(MODES.iloc[:0], tags, labels, correct).empty
    assert (
        metrics.generalization_summary(
            metrics.recover_groups(MODES.iloc[:0], tags, labels, correct)
        )["n_modes"]
        == 0
    )
