"""Specification of primekit.statistics: how sure a failure mode is, and the q-value filter."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats import proportion

import primekit
from primekit import statistics
from primekit.search import LATTICE_COLUMNS, MODE_COLUMNS


def one_class(groups: list[tuple[list[str], int, int]], *, rest: tuple[int, int]) -> tuple:
    """A class made of disjoint blocks of images: (tags, size, correct) each, plus an untagged rest."""
    names = sorted({t for tags, _, _ in groups for t in tags})
    rows, ok = [], []
    for tags, size, n_correct in groups + [([], *rest)]:
        rows += [[t in tags for t in names]] * size
        ok += [True] * n_correct + [False] * (size - n_correct)
    ids = [f"i{k:05d}" for k in range(len(rows))]
    return (
        pd.DataFrame(rows, index=ids, columns=names),
        pd.Series("fox", index=ids),
        pd.Series(ok, index=ids),
    )


def test_drop_interval_and_test_count_the_class_own_noise():
    # class of 1000 with 900 right; "snow" is 100 images with 40 right: A_c = 0.9, drop 0.5
    tags, labels, correct = one_class([(["snow"], 100, 40)], rest=(900, 860))
    row = primekit.find_failure_modes(tags, labels, correct, max_q=1.0).iloc[0]
    assert row["drop"] == pytest.approx(0.5)
    # drop = w (A_rest - A_S) with w = 900 / 1000: a two-sample test of rest vs group, margin a / w
    expected = proportion.test_proportions_2indep(
        860, 900, 40, 100, value=0.30 / 0.9, compare="diff", alternative="larger", method="agresti-caffo"
    ).pvalue
    assert row["p_drop"] == pytest.approx(expected, rel=1e-12)
    low, high = proportion.confint_proportions_2indep(860, 900, 40, 100, method="agresti-caffo", compare="diff")
    assert (row["drop_low"], row["drop_high"]) == pytest.approx((0.9 * low, 0.9 * high), rel=1e-12)
    # Wilson interval of the group's accuracy, as scipy computes it
    ci = stats.binomtest(40, 100).proportion_ci(confidence_level=0.95, method="wilson")
    assert (row["accuracy_low"], row["accuracy_high"]) == pytest.approx((ci.low, ci.high), rel=1e-9)
    assert row["p_value"] == row["p_drop"] and np.isnan(row["p_necessity"])


def test_difference_pvalue_matches_statsmodels_row_by_row():
    rng = np.random.default_rng(3)
    n1, n2 = rng.integers(5, 400, 40), rng.integers(5, 400, 40)
    c1, c2 = rng.integers(0, n1 + 1), rng.integers(0, n2 + 1)
    value = rng.uniform(-0.4, 0.6, 40)
    ours = statistics.difference_pvalue(c1, n1, c2, n2, value)
    for i in range(40):
        ref = proportion.test_proportions_2indep(
            c1[i], n1[i], c2[i], n2[i], value=value[i], compare="diff", alternative="larger", method="agresti-caffo"
        ).pvalue
        assert ours[i] == pytest.approx(ref, rel=1e-10, abs=1e-300)
    assert statistics.difference_pvalue(3, 0, 2, 5, 0.1) == 1.0  # an empty sample says nothing


def test_necessity_is_tested_against_its_margin_on_disjoint_images():
    # "dry" alone is bad; "grass" adds only a little: grass+dry 60 images 12 right (0.2),
    # dry without grass 200 images 50 right (0.25): A_dry = 62 / 260, margin = 0.0385 < b2 = 0.1
    tags, labels, correct = one_class(
        [(["dry", "grass"], 60, 12), (["dry"], 200, 50), (["grass"], 300, 280)], rest=(2000, 1900)
    )
    lattice = primekit.tag_lattice(tags, labels, correct, min_size=30)
    both = lattice[lattice["tags"] == ("dry", "grass")].iloc[0]
    assert both["necessity_margin"] == pytest.approx(62 / 260 - 0.2)
    # removing "grass" leaves dry: compare the 200 dry-not-grass images with the group, margin b / w
    p_grass = proportion.test_proportions_2indep(
        50, 200, 12, 60, value=0.10 / (200 / 260), compare="diff", alternative="larger", method="agresti-caffo"
    ).pvalue
    p_dry = proportion.test_proportions_2indep(
        280, 300, 12, 60, value=0.10 / (300 / 360), compare="diff", alternative="larger", method="agresti-caffo"
    ).pvalue
    assert both["p_necessity"] == pytest.approx(max(p_grass, p_dry), rel=1e-12)
    assert both["p_value"] == pytest.approx(max(both["p_drop"], p_grass, p_dry))
    assert both["p_necessity"] > 0.5 and both["necessity_low"] < 0.1


def test_conditional_q_values_are_bh_of_the_rescaled_p_values_in_contention():
    p = np.array([0.001, 0.02, 0.3, 0.49, 0.5, 0.51, 0.97, np.nan])
    q = statistics.conditional_q_values(p)
    entered = p <= 0.5
    np.testing.assert_allclose(q[:5], stats.false_discovery_control(p[entered] / 0.5))
    np.testing.assert_array_equal(q[5:7], [1.0, 1.0])  # never in contention: never a discovery
    assert np.isnan(q[7])
    # selection 1 is plain BH; BY is the conservative variant
    np.testing.assert_allclose(statistics.conditional_q_values(p[:7], selection=1.0), stats.false_discovery_control(p[:7]))
    by = statistics.conditional_q_values(p, method="by")
    np.testing.assert_allclose(by[:5], stats.false_discovery_control(p[entered] / 0.5, method="by"))
    with pytest.raises(ValueError, match="selection"):
        statistics.conditional_q_values(p, selection=0.0)


def test_q_values_are_conditional_bh_over_the_whole_lattice_of_all_classes():
    rng = np.random.default_rng(0)
    n = 3000
    tags = pd.DataFrame(rng.random((n, 5)) < 0.3, columns=list("abcde"), index=[f"i{k}" for k in range(n)])
    labels = pd.Series(rng.choice(["x", "y"], n), index=tags.index)
    p = np.where(tags["a"] & (labels == "x"), 0.3, 0.9)
    correct = pd.Series(rng.random(n) < p, index=tags.index)
    lattice = primekit.tag_lattice(tags, labels, correct, min_size=20)
    assert list(lattice.columns) == list(LATTICE_COLUMNS) + list(statistics.STATISTIC_COLUMNS)
    entered = lattice["p_value"] <= statistics.SELECTION_LEVEL
    assert 0 < entered.sum() < len(lattice) / 4  # most of the lattice is never in contention
    np.testing.assert_allclose(
        lattice.loc[entered, "q_value"], stats.false_discovery_control(lattice.loc[entered, "p_value"] / 0.5)
    )
    assert (lattice.loc[~entered, "q_value"] == 1.0).all()
    modes = primekit.find_failure_modes(tags, labels, correct, min_size=20, max_q=0.05)
    assert ("x", ("a",)) in set(zip(modes["class"], modes["tags"]))
    assert (modes["q_value"] <= 0.05).all()
    np.testing.assert_array_equal(statistics.q_values(np.array([np.nan, 0.01])), [np.nan, 0.01])


def test_default_is_the_paper_definition_bit_for_bit():
    rng = np.random.default_rng(1)
    n = 2500
    tags = pd.DataFrame(rng.random((n, 6)) < 0.35, columns=list("abcdef"), index=[f"i{k}" for k in range(n)])
    labels = pd.Series(rng.choice(["x", "y", "z"], n), index=tags.index)
    p = np.where(tags["a"] & tags["b"], 0.35, 0.85) - 0.3 * (tags["c"] & (labels == "y"))
    correct = pd.Series(rng.random(n) < p, index=tags.index)
    paper = primekit.find_failure_modes(tags, labels, correct, min_size=25)
    assert list(paper.columns) == list(MODE_COLUMNS)
    annotated = primekit.find_failure_modes(tags, labels, correct, min_size=25, max_q=1.0)
    pd.testing.assert_frame_equal(annotated[list(MODE_COLUMNS)], paper)
    assert list(annotated.columns) == list(MODE_COLUMNS) + list(statistics.STATISTIC_COLUMNS)
    strict = primekit.find_failure_modes(tags, labels, correct, min_size=25, max_q=0.05)
    keep = annotated["q_value"] <= 0.05
    pd.testing.assert_frame_equal(strict, annotated[keep].reset_index(drop=True))
    greedy = primekit.find_failure_modes(tags, labels, correct, min_size=25, max_q=0.05, method="greedy")
    assert set(zip(greedy["class"], greedy["tags"])) <= set(zip(strict["class"], strict["tags"]))


@pytest.mark.parametrize("bad, error", [(0.0, ValueError), (1.5, ValueError), ("0.1", TypeError), (True, TypeError)])
def test_max_q_is_checked_at_the_boundary(bad, error):
    tags, labels, correct = one_class([(["snow"], 40, 10)], rest=(100, 90))
    with pytest.raises(error, match="max_q"):
        primekit.find_failure_modes(tags, labels, correct, max_q=bad)


# --------------------------------------------------------------------------------------------
# The FDR step on a simulated lattice whose truth is known exactly.
NAMES = ("dry", "grass", "snow", "tree", "fog")
PREVALENCE = np.array([0.30, 0.35, 0.15, 0.40, 0.25])


def error_rate(pattern: np.ndarray) -> np.ndarray:
    """Probability of a wrong prediction given the tags (rows of bool): modes planted near a."""
    dry, grass, snow, tree, fog = pattern.T
    p = np.full(len(pattern), 0.08)
    p = np.where(dry & grass, 0.70, p)  # a real 2-tag mode, drop ~0.5
    p = np.where(snow, np.maximum(p, 0.38), p)  # a mode right at the threshold (drop ~0.30)
    p = np.where(fog, p + 0.12, p)  # a tag that hurts, but not enough
    return np.minimum(p, 0.95)


def true_modes(min_drop: float, necessity: dict[int, float]) -> set[tuple]:
    """Every combination whose *true* accuracy makes it a failure mode (exact, over 2^5 patterns)."""
    patterns = np.array(list(itertools.product([False, True], repeat=len(NAMES))))
    weight = np.prod(np.where(patterns, PREVALENCE, 1 - PREVALENCE), axis=1)
    accuracy = 1 - error_rate(patterns)

    def acc(subset: tuple[int, ...]) -> float:
        inside = patterns[:, list(subset)].all(axis=1) if subset else np.ones(len(patterns), bool)
        return float((weight * accuracy)[inside].sum() / weight[inside].sum())

    found = set()
    for k in range(1, 5):
        for subset in itertools.combinations(range(len(NAMES)), k):
            a_s = acc(subset)
            if a_s > acc(()) - min_drop:
                continue
            if k > 1 and any(acc(tuple(u for u in subset if u != t)) < a_s + necessity[k] for t in subset):
                continue
            found.add(tuple(sorted(NAMES[i] for i in subset)))
    return found


def test_fdr_of_the_q_filter_is_at_most_its_level_over_many_draws():
    levels, necessity = (0.05, 0.10, 0.20), {2: 0.10, 3: 0.05, 4: 0.025}
    truth = true_modes(0.30, necessity)
    assert ("dry", "grass") in truth
    shares = {level: [] for level in (None, *levels)}  # None: the paper's definition, unfiltered
    discoveries = dict.fromkeys(levels, 0)
    for draw in range(150):
        rng = np.random.default_rng(draw)
        n = 1500
        matrix = rng.random((n, len(NAMES))) < PREVALENCE
        ids = [f"i{k}" for k in range(n)]
        correct = pd.Series(rng.random(n) >= error_rate(matrix), index=ids)
        tags = pd.DataFrame(matrix, index=ids, columns=list(NAMES))
        # the lattice's rows with is_failure_mode and q <= level are find_failure_modes(max_q=level)
        lattice = primekit.tag_lattice(tags, pd.Series("fox", index=ids), correct, min_size=30, necessity=necessity)
        paper = lattice[lattice["is_failure_mode"]]
        for level in shares:
            kept = paper if level is None else paper[paper["q_value"] <= level]
            shares[level].append(sum(t not in truth for t in kept["tags"]) / max(len(kept), 1))
            if level is not None:
                discoveries[level] += len(kept)
    # without the filter a third of the modes are false: the filter has work to do
    assert np.mean(shares[None]) > 0.25
    for level in levels:
        # mean false discovery proportion, with 3 standard errors of slack for 150 draws
        assert np.mean(shares[level]) <= level + 3 * np.std(shares[level]) / np.sqrt(150), level
    assert discoveries[0.05] <= discoveries[0.10] <= discoveries[0.20]
    assert discoveries[0.10] > 100  # the filter has power: the real mode is found in most draws


def test_expected_drop_shrinks_noise_and_keeps_a_real_drop():
    # one real tag ("a": accuracy 0.30 against 0.85); the other tags and their combinations are noise
    rng = np.random.default_rng(5)
    n = 3000
    tags = pd.DataFrame(rng.random((n, 6)) < 0.3, columns=list("abcdef"), index=[f"i{k}" for k in range(n)])
    labels = pd.Series("fox", index=tags.index)
    correct = pd.Series(rng.random(n) < np.where(tags["a"], 0.3, 0.85), index=tags.index)
    lattice = primekit.tag_lattice(tags, labels, correct, min_size=20)
    noise = lattice[[("a" not in t) for t in lattice["tags"]]]
    assert noise["expected_drop"].abs().mean() < 0.8 * noise["drop"].abs().mean()
    real = lattice[lattice["tags"] == ("a",)].iloc[0]
    assert 0 < real["drop"] - real["expected_drop"] < 0.05
    # the posterior mean of the two-group model: between the observed and the prior accuracy; a
    # group far from its prediction on many images keeps its own accuracy (the "far" group), one
    # near it is pulled to the prediction
    correct, nobs = np.array([10, 90, 40, 41, 39, 170]), np.array([40, 100, 50, 50, 50, 200])
    shrunk, kappa, pi = statistics.shrunk_accuracy(correct, nobs, np.full(6, 0.8))
    assert kappa > 0 and 0 < pi <= 0.5
    assert 10 / 40 < shrunk[0] < (10 + 1) / (40 + 2) + 1e-3  # far: (k + 1) / (n + 2), barely shrunk
    assert 0.8 < shrunk[1] < 0.9 and 0.8 < shrunk[5] < 0.85
    pulled = (correct / nobs - shrunk)[[0, 5]] / (correct / nobs - 0.8)[[0, 5]]  # share of the way to the prediction
    assert pulled[0] < 0.05 and pulled[1] > 0.2
    # the posterior mean is the mixture of the two groups' posterior means, by their posterior odds
    near = stats.betabinom.pmf(correct, nobs, kappa * 0.8, kappa * 0.2) * (1 - pi)
    far = pi / (nobs + 1.0)
    mixed = (near * (correct + kappa * 0.8) / (nobs + kappa) + far * (correct + 1) / (nobs + 2)) / (near + far)
    np.testing.assert_allclose(shrunk, mixed, rtol=1e-10)
    one, kappa1, pi1 = statistics.shrunk_accuracy(np.array([3, 4]), np.array([10, 10]), np.array([0.5, 0.5]))
    assert (kappa1, pi1) == (1.0, 0.0)  # two groups cannot fit two parameters: a weak one-group prior
    np.testing.assert_allclose(one, (np.array([3, 4]) + 0.5) / 11)


def test_drop_calibration_measures_each_estimate_against_the_test_drop():
    recovered = pd.DataFrame(
        {"drop": [0.5, 0.4, 0.35, 0.6], "expected_drop": [0.45, 0.3, 0.3, 0.55], "test_drop": [0.45, 0.3, np.nan, 0.5]}
    )
    errors, bins = statistics.drop_calibration(recovered, n_bins=2)
    observed = errors.set_index("estimate")
    assert observed.loc["drop", "n"] == 3  # the row without a test drop is left out
    assert observed.loc["drop", "mean_error"] == pytest.approx((0.05 + 0.1 + 0.1) / 3)
    assert observed.loc["expected_drop", "mean_absolute_error"] == pytest.approx(0.05 / 3)
    assert observed.loc["drop", "mean_squared_error"] == pytest.approx((0.05**2 + 0.1**2 + 0.1**2) / 3)
    paired = np.array([0.0, 0.0, 0.05**2]) - np.array([0.05**2, 0.1**2, 0.1**2])
    assert observed.loc["expected_drop", "mse_difference"] == pytest.approx(paired.mean())
    assert observed.loc["expected_drop", "mse_difference_se"] == pytest.approx(paired.std(ddof=1) / np.sqrt(3))
    assert observed.loc["drop", "mse_difference"] == 0.0
    assert set(bins["estimate"]) == {"drop", "expected_drop"} and bins["n"].sum() == 6
    with pytest.raises(ValueError, match="test_drop"):
        statistics.drop_calibration(recovered.drop(columns="test_drop"))
