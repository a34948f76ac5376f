"""Tag statistics (notebook 01) on hand-made matrices whose numbers can be checked by hand."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from primekit import plots
from primekit.tag_stats import (
    tag_count_distribution,
    tagger_summary,
    tags_per_image,
    threshold_sweep,
    top_tags,
)
from primekit.toyworld import tagger_quality

IDS = [f"s{i}" for i in range(4)]


@pytest.fixture
def matrix():
    # s0: a b   s1: a   s2: (none)   s3: a b c
    return pd.DataFrame(
        {
            "a": [True, True, False, True],
            "b": [True, False, False, True],
            "c": [False, False, False, True],
        },
        index=IDS,
    )


@pytest.fixture
def labels():
    return pd.Series(["x", "x", "y", "y"], index=IDS)


def test_tags_per_image_per_class_and_overall(matrix, labels):
    table = tags_per_image(matrix, labels)
    assert list(table.index) == ["x", "y", "all"]
    assert table.loc["x", "mean"] == 1.5 and table.loc["y", "mean"] == 1.5
    assert table.loc["all", "n_images"] == 4
    assert table.loc["all", "median"] == 1.5
    assert table.loc["y", "max"] == 3
    assert table.loc["y", "share_untagged"] == 0.5
    assert table.loc["x", "share_untagged"] == 0.0
    assert table.loc["all", "std"] == pytest.approx(np.std([2, 1, 0, 3]))


def test_tags_per_image_without_labels_has_only_all(matrix):
    assert list(tags_per_image(matrix).index) == ["all"]


def test_tags_per_image_rejects_non_frames():
    with pytest.raises(TypeError, match="matrix"):
        tags_per_image(np.ones((2, 2), bool))


def test_tag_count_distribution_sums_to_one_and_pools(matrix):
    dist = tag_count_distribution({"learned": matrix, "truth": matrix | True})
    assert list(dist.index) == [0, 1, 2, 3]
    assert dist["learned"].tolist() == [0.25, 0.25, 0.25, 0.25]
    assert dist["truth"].tolist() == [0, 0, 0, 1]
    pooled = tag_count_distribution(matrix, max_count=2)
    assert list(pooled.columns) == ["tags"]
    assert pooled["tags"].tolist() == [0.25, 0.25, 0.5]


def test_top_tags_ranks_frequency_and_lift(matrix, labels):
    top = top_tags(matrix, labels, n=2)
    x = top[top["class"] == "x"]
    assert x["tag"].tolist() == ["a", "b"]
    assert x["rank"].tolist() == [1, 2]
    assert x["frequency"].tolist() == [1.0, 0.5]
    # a: 1.0 in x vs 3/4 overall
    assert x["lift"].iloc[0] == pytest.approx(1 / 0.75)
    y = top[top["class"] == "y"]
    assert y["tag"].tolist() == ["a", "b"]  # ties broken by name: a, b, c each once
    assert len(top) == 4


def test_top_tags_rejects_bad_n(matrix, labels):
    with pytest.raises(ValueError, match="n:"):
        top_tags(matrix, labels, n=0)


def test_tagger_summary_micro_and_macro(matrix):
    truth = pd.DataFrame(
        {"a": [True, False, False, True], "b": [True, True, False, True], "c": [False] * 4},
        index=IDS,
    )
    # predictions: a on s0 s1 s3 (tp 2 of 3), b on s0 s3 (tp 2 of 2), c on s3 (tp 0 of 1)
    out = tagger_summary(matrix, truth)
    assert out["precision"] == pytest.approx(4 / 6)
    assert out["recall"] == pytest.approx(4 / 5)
    assert out["f1"] == pytest.approx(2 * (4 / 6) * (4 / 5) / (4 / 6 + 4 / 5))
    # macro over tags present in truth (a, b): precision (2/3 + 1)/2, recall (1 + 2/3)/2
    assert out["macro_precision"] == pytest.approx((2 / 3 + 1) / 2)
    assert out["macro_recall"] == pytest.approx((1 + 2 / 3) / 2)
    per_tag = tagger_quality(matrix, truth)
    assert per_tag.loc["a", "precision"] == pytest.approx(2 / 3)


def test_tagger_summary_of_perfect_tags_is_one(matrix):
    out = tagger_summary(matrix, matrix)
    assert out["precision"] == out["recall"] == out["f1"] == 1.0


def test_threshold_sweep_counts_tags_and_quality(matrix, labels):
    scores = pd.DataFrame(
        {"a": [0.9, 0.6, 0.1, 0.95], "b": [0.7, 0.2, 0.0, 0.55], "c": [0.0, 0.0, 0.3, 0.8]},
        index=IDS,
    )
    sweep = threshold_sweep(scores, thresholds=[0.25, 0.5, 0.75], truth=matrix, labels=labels,
                            min_count=1)
    assert sweep["threshold"].tolist() == [0.25, 0.5, 0.75]
    # >= 0.25: a a . a | b . . b | . . c c -> 7; >= 0.5: 6 (a a a b b c); >= 0.75: a a c -> 3
    assert sweep["tags_per_image"].tolist() == [7 / 4, 6 / 4, 3 / 4]
    assert sweep["share_untagged"].tolist() == [0.0, 0.25, 0.5]
    assert sweep["tags_used"].tolist() == [3, 3, 2]
    # at 0.5 the thresholded scores are exactly the truth
    assert sweep.loc[1, "precision"] == 1.0 and sweep.loc[1, "recall"] == 1.0
    assert sweep.loc[0, "precision"] == pytest.approx(6 / 7)
    assert sweep.loc[2, "precision"] == 1.0 and sweep.loc[2, "recall"] == pytest.approx(3 / 6)
    # at 0.75 class x (s0, s1) has tag a once; class y (s2, s3) has a and c
    assert sweep.loc[2, "searchable_tags"] == pytest.approx((1 + 2) / 2)


def test_threshold_sweep_counts_failure_modes():
    rng = np.random.default_rng(0)
    n = 200
    ids = [f"i{k}" for k in range(n)]
    hard = rng.random(n) < 0.4
    scores = pd.DataFrame({"dark": np.where(hard, 0.8, 0.2), "noise": rng.random(n)}, index=ids)
    labels = pd.Series(["cat"] * n, index=ids)
    correct = pd.Series(~hard | (rng.random(n) < 0.1), index=ids)
    sweep = threshold_sweep(scores, thresholds=[0.5, 0.9], labels=labels, correct=correct,
                            min_count=10, search={"min_size": 10, "min_drop": 0.3})
    assert sweep["n_failure_modes"].tolist()[0] >= 1  # "dark" at 0.5
    assert sweep["n_failure_modes"].tolist()[1] == 0  # no "dark" above 0.9


def test_threshold_sweep_validates_arguments(matrix):
    scores = matrix.astype(float)
    with pytest.raises(ValueError, match="thresholds"):
        threshold_sweep(scores, thresholds=[1.5])
    with pytest.raises(ValueError, match="scores"):
        threshold_sweep(scores * 2)
    with pytest.raises(ValueError, match="correct"):
        threshold_sweep(scores, correct=pd.Series([True] * 4, index=IDS))


def test_plots_take_an_axes_and_return_it(matrix, labels):
    import matplotlib.pyplot as plt

    from primekit import tag_frequencies

    fig, axes = plt.subplots(1, 4)
    dist = tag_count_distribution({"a": matrix, "b": matrix})
    assert plots.plot_tag_count_distribution(dist, ax=axes[0]) is axes[0]
    assert plots.plot_tag_heatmap(tag_frequencies(matrix, labels), ax=axes[1]) is axes[1]
    sweep = threshold_sweep(matrix.astype(float), thresholds=[0.5], truth=matrix)
    assert plots.plot_threshold_sweep(sweep, threshold=0.5, ax=axes[2]) is axes[2]
    quality = tagger_quality(matrix, matrix)
    assert plots.plot_tag_quality(quality, ax=axes[3]) is axes[3]
    assert len(axes[3].patches) == 2 * 3
    plt.close(fig)
