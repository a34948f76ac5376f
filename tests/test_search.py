"""Specification of primekit.find_failure_modes: the paper's definition, checked against a brute force."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import brute_force_modes

import primekit
from primekit.search import MODE_COLUMNS, modes_from_csv_frame, modes_to_csv_frame


def as_dict(modes: pd.DataFrame) -> dict:
    return {
        (row["class"], row["tags"]): {
            "size": row["size"],
            "accuracy": row["accuracy"],
            "class_accuracy": row["class_accuracy"],
            "margin": row["necessity_margin"],
        }
        for _, row in modes.iterrows()
    }


@st.composite
def problems(draw):
    n = draw(st.integers(0, 90))
    n_tags = draw(st.integers(0, 7))
    n_classes = draw(st.integers(1, 3))
    density = draw(st.sampled_from([0.1, 0.3, 0.5, 0.8, 1.0]))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    matrix = rng.random((n, n_tags)) < density
    if n_tags:
        matrix[:, -1] = False  # a tag that never occurs
    ids = [f"id{i}" for i in range(n)]
    names = [f"tag{j}" for j in range(n_tags)]
    tags = pd.DataFrame(matrix, index=ids, columns=names)
    labels = pd.Series(rng.integers(0, n_classes, n), index=ids)
    # correctness that depends on tags, so failures exist; coarse probabilities produce ties
    p = np.full(n, draw(st.sampled_from([0.5, 0.8, 1.0])))
    if n_tags >= 2:
        p[matrix[:, 0] & matrix[:, 1]] = 0.1
    correct = pd.Series(rng.random(n) < p, index=ids)
    # shuffled label/correct order must not matter
    perm = rng.permutation(n)
    labels = labels.iloc[perm]
    correct = correct.iloc[perm]
    max_tags = draw(st.integers(1, 4))
    necessity = {
        k: draw(st.sampled_from([0.0, 0.025, 0.05, 0.1, 0.2, 0.5])) for k in range(2, max_tags + 1)
    }
    kwargs = dict(
        min_size=draw(st.integers(1, 12)),
        min_drop=draw(st.sampled_from([0.0, 0.1, 0.2, 0.25, 0.3, 0.5])),
        necessity=necessity,
        max_tags=max_tags,
        min_tag_count=draw(st.one_of(st.none(), st.integers(1, 20))),
    )
    return tags, labels, correct, kwargs


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_exhaustive_search_equals_brute_force(problem):
    tags, labels, correct, kwargs = problem
    expected = brute_force_modes(tags, labels, correct, **kwargs)
    found = as_dict(primekit.find_failure_modes(tags, labels, correct, **kwargs))
    assert set(found) == set(expected)
    for key, want in expected.items():
        got = found[key]
        assert got["size"] == want["size"]
        assert got["accuracy"] == pytest.approx(want["accuracy"])
        assert got["class_accuracy"] == pytest.approx(want["class_accuracy"])
        if math.isnan(want["margin"]):
            assert math.isnan(got["margin"])
        else:
            assert got["margin"] == pytest.approx(want["margin"])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(), st.integers(1, 6))
def test_greedy_returns_only_exhaustive_modes(problem, beam_width):
    tags, labels, correct, kwargs = problem
    exhaustive = as_dict(primekit.find_failure_modes(tags, labels, correct, **kwargs))
    greedy = primekit.find_failure_modes(
        tags, labels, correct, method="greedy", beam_width=beam_width, **kwargs
    )
    assert set(as_dict(greedy)) <= set(exhaustive)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_lattice_marks_exactly_the_failure_modes(problem):
    tags, labels, correct, kwargs = problem
    lattice = primekit.tag_lattice(tags, labels, correct, **kwargs)
    modes = primekit.find_failure_modes(tags, labels, correct, **kwargs)
    marked = lattice[lattice["is_failure_mode"]]
    assert set(zip(marked["class"], marked["tags"])) == set(zip(modes["class"], modes["tags"]))
    assert (lattice["size"] >= kwargs["min_size"]).all()


def planted(n=600, seed=0):
    """Two classes; class 'fox' fails on grass+dry, class 'bear' on snow."""
    rng = np.random.default_rng(seed)
    ids = [f"img{i:04d}" for i in range(n)]
    names = ["grass", "dry", "snow", "tree", "water", "night"]
    matrix = rng.random((n, len(names))) < [0.4, 0.4, 0.2, 0.5, 0.3, 0.1]
    tags = pd.DataFrame(matrix, index=ids, columns=names)
    labels = pd.Series(np.where(rng.random(n) < 0.5, "fox", "bear"), index=ids)
    p = np.full(n, 0.95)
    fox = labels.to_numpy() == "fox"
    p[fox & tags["grass"].to_numpy() & tags["dry"].to_numpy()] = 0.2
    p[~fox & tags["snow"].to_numpy()] = 0.3
    correct = pd.Series(rng.random(n) < p, index=ids)
    return tags, labels, correct


def test_planted_modes_are_found_with_contract_columns():
    tags, labels, correct = planted()
    modes = primekit.find_failure_modes(tags, labels, correct, min_size=20)
    assert list(modes.columns) == list(MODE_COLUMNS)
    keys = set(zip(modes["class"], modes["tags"]))
    assert ("fox", ("dry", "grass")) in keys
    assert ("bear", ("snow",)) in keys
    row = modes[(modes["class"] == "fox") & (modes["tags"] == ("dry", "grass"))].iloc[0]
    assert row["n_tags"] == 2
    assert row["drop"] == pytest.approx(row["class_accuracy"] - row["accuracy"])
    assert row["description"] == "a photo of fox dry grass"
    assert row["necessity_margin"] >= 0.10
    assert modes[modes["n_tags"] == 1]["necessity_margin"].isna().all()


def test_output_is_deterministic_and_sorted():
    tags, labels, correct = planted()
    a = primekit.find_failure_modes(tags, labels, correct, min_size=10, min_drop=0.2)
    b = primekit.find_failure_modes(
        tags[tags.columns[::-1]], labels.sample(frac=1, random_state=1), correct, min_size=10,
        min_drop=0.2, n_jobs=2,
    )
    pd.testing.assert_frame_equal(a, b)
    keys = list(zip(a["class"], a["n_tags"], a["accuracy"]))
    assert keys == sorted(keys)
    assert all(list(t) == sorted(t) for t in a["tags"])


def test_zero_one_integers_are_accepted_as_booleans():
    tags, labels, correct = planted()
    a = primekit.find_failure_modes(tags, labels, correct, min_size=20)
    b = primekit.find_failure_modes(tags.astype(int), labels, correct.astype(int), min_size=20)
    pd.testing.assert_frame_equal(a, b)


def test_empty_input_returns_no_modes():
    empty = pd.DataFrame(np.zeros((0, 3), bool), columns=["a", "b", "c"])
    modes = primekit.find_failure_modes(
        empty, pd.Series([], dtype=object), pd.Series([], dtype=bool)
    )
    assert list(modes.columns) == list(MODE_COLUMNS)
    assert len(modes) == 0
    no_tags = pd.DataFrame(index=["a", "b"])
    modes = primekit.find_failure_modes(
        no_tags, pd.Series(["x", "y"], index=["a", "b"]), pd.Series([True, False], index=["a", "b"])
    )
    assert len(modes) == 0


def test_csv_frame_round_trip():
    tags, labels, correct = planted()
    modes = primekit.find_failure_modes(tags, labels, correct, min_size=20)
    csv = modes_to_csv_frame(modes)
    assert "dry + grass" in set(csv["tags"])
    back = modes_from_csv_frame(csv)
    assert list(back["tags"]) == list(modes["tags"])


def test_subset_accuracies_cover_every_subset():
    tags, labels, correct = planted()
    table = primekit.subset_accuracies(tags, labels, correct, cls="fox", mode_tags=["grass", "dry"])
    assert list(table["tags"]) == [(), ("dry",), ("grass",), ("dry", "grass")]
    fox = labels == "fox"
    assert table["size"].iloc[0] == fox.sum()
    both = fox & tags["grass"] & tags["dry"]
    assert table["accuracy"].iloc[-1] == pytest.approx(correct[both].mean())


GOOD = planted(60)


@pytest.mark.parametrize(
    "kwargs, exc, words",
    [
        ({"min_size": 0}, ValueError, "min_size"),
        ({"min_size": 2.5}, TypeError, "min_size"),
        ({"min_drop": 1.5}, ValueError, "min_drop"),
        ({"min_drop": "x"}, TypeError, "min_drop"),
        ({"max_tags": 0}, ValueError, "max_tags"),
        ({"max_tags": 5}, ValueError, "necessity"),
        ({"necessity": {2: 0.1}}, ValueError, "necessity"),
        ({"necessity": {2: 0.1, 3: -0.1, 4: 0.0}}, ValueError, "necessity[3]"),
        ({"necessity": "0.1"}, TypeError, "necessity"),
        ({"min_tag_count": 0}, ValueError, "min_tag_count"),
        ({"method": "fast"}, ValueError, "method"),
        ({"beam_width": 0}, ValueError, "beam_width"),
        ({"n_jobs": 0}, ValueError, "n_jobs"),
    ],
)
def test_bad_hyperparameters_are_named(kwargs, exc, words):
    tags, labels, correct = GOOD
    with pytest.raises(exc, match=words.replace("[", r"\[").replace("]", r"\]")):
        primekit.find_failure_modes(tags, labels, correct, **kwargs)


def test_necessity_as_sequence_and_small_max_tags():
    tags, labels, correct = planted()
    a = primekit.find_failure_modes(tags, labels, correct, min_size=20, necessity=(0.1, 0.05, 0.025))
    b = primekit.find_failure_modes(tags, labels, correct, min_size=20)
    pd.testing.assert_frame_equal(a, b)
    one = primekit.find_failure_modes(tags, labels, correct, min_size=20, max_tags=1, necessity={})
    assert (one["n_tags"] == 1).all()


def test_bad_data_is_named():
    tags, labels, correct = GOOD
    with pytest.raises(TypeError, match="tags"):
        primekit.find_failure_modes(tags.to_numpy(), labels, correct)
    with pytest.raises(ValueError, match="tags: duplicate sample id"):
        primekit.find_failure_modes(pd.concat([tags, tags.iloc[:1]]), labels, correct)
    dup_cols = tags.copy()
    dup_cols.columns = ["a", "a", "b", "c", "d", "e"]
    with pytest.raises(ValueError, match="duplicate tag name 'a'"):
        primekit.find_failure_modes(dup_cols, labels, correct)
    nan_tags = tags.astype(float)
    nan_tags.iloc[0, 0] = np.nan
    with pytest.raises(ValueError, match="tags: contains missing"):
        primekit.find_failure_modes(nan_tags, labels, correct)
    with pytest.raises(ValueError, match="tags: values must be boolean"):
        primekit.find_failure_modes(tags.astype(int) * 2, labels, correct)
    with pytest.raises(TypeError, match="tags: values must be boolean"):
        primekit.find_failure_modes(tags.astype(str), labels, correct)
    with pytest.raises(ValueError, match="labels: index does not match"):
        primekit.find_failure_modes(tags, labels.iloc[1:], correct)
    with pytest.raises(ValueError, match="correct: index does not match"):
        primekit.find_failure_modes(tags, labels, correct.rename(lambda i: i + "x"))
    with pytest.raises(ValueError, match="labels: 1 missing"):
        primekit.find_failure_modes(tags, labels.where(labels.index != labels.index[0]), correct)
    with pytest.raises(ValueError, match="correct: values must be boolean"):
        primekit.find_failure_modes(tags, labels, correct.astype(int) + 1)
    with pytest.raises(ValueError, match="correct: contains missing"):
        primekit.find_failure_modes(tags, labels, correct.astype(float).where(correct, np.nan))
    with pytest.raises(ValueError, match="labels: expected 60 values"):
        primekit.find_failure_modes(tags, [1, 2], correct)


def test_modes_by_class_reads_like_the_appendix():
    tags, labels, correct = planted()
    modes = primekit.find_failure_modes(tags, labels, correct, min_size=20)
    table = primekit.search.modes_by_class(modes)
    fox = table[table["class"] == "fox"].iloc[0]
    assert fox["n_modes"] == (modes["class"] == "fox").sum()
    assert fox["n_2_tags"] >= 1
    assert "dry + grass (" in fox["modes"] and fox["modes"].count("%)") == fox["n_modes"]
