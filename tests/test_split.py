"""The one container of tagged samples (primekit.split.TaggedSplit) and the shared input checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import primekit
from primekit._validation import check_fraction, check_int, check_real, sorted_classes
from primekit.split import TaggedSplit
from primekit.study import Split


def tables(n: int = 80, seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = [f"s{i}" for i in range(n)]
    tags = pd.DataFrame(rng.random((n, 4)) < 0.5, index=ids, columns=["a", "b", "c", "d"])
    labels = pd.Series(rng.choice(["cat", "dog"], n), index=ids)
    correct = pd.Series(~(tags["a"] & tags["b"]).to_numpy() | (rng.random(n) < 0.2), index=ids)
    return tags, labels, correct


def test_a_split_lines_up_labels_and_correctness_by_id():
    tags, labels, correct = tables()
    split = TaggedSplit(tags, labels.iloc[::-1], correct.sample(frac=1.0, random_state=0))
    assert split.ids.equals(tags.index)
    assert split.labels.equals(labels)
    assert split.correct.equals(correct)
    assert split.classes == ["cat", "dog"]
    assert [split.classes[c] for c in split.codes] == list(labels)
    rows = split.class_rows()
    assert sorted(np.concatenate(rows).tolist()) == list(range(len(tags)))
    assert (split.labels.to_numpy()[rows[1]] == "dog").all()


def test_zero_one_tags_become_bool_and_groups_are_looked_up():
    tags, labels, correct = tables()
    split = TaggedSplit(tags.astype(int), labels, correct)
    assert all(dtype == np.bool_ for dtype in split.tags.dtypes)
    mask = split.group_mask("cat", ["a", "b"])
    expected = (labels == "cat") & tags["a"] & tags["b"]
    assert mask.tolist() == expected.tolist()
    assert not split.group_mask("cat", ["a", "no such tag"]).any()
    n, accuracy = split.group_accuracy(mask)
    assert n == int(expected.sum()) and accuracy == pytest.approx(correct[expected].mean())
    with pytest.raises(ValueError, match="correct"):
        TaggedSplit(tags, labels).correct_mask  # noqa: B018


def test_the_search_takes_a_split_or_the_three_tables():
    tags, labels, correct = tables(200)
    split = TaggedSplit(tags, labels, correct)
    a = primekit.find_failure_modes(tags, labels, correct, min_size=10, min_drop=0.2)
    b = primekit.find_failure_modes(split, min_size=10, min_drop=0.2)
    pd.testing.assert_frame_equal(a, b)
    assert len(a)
    pd.testing.assert_frame_equal(
        primekit.mode_subsets(tags, labels, correct, a), primekit.mode_subsets(split, modes=a)
    )
    with pytest.raises(TypeError, match="labels: pass either"):
        primekit.find_failure_modes(split, labels)


def test_a_study_split_is_a_tagged_split():
    tags, labels, correct = tables()
    samples = pd.DataFrame({"id": tags.index, "label": labels.to_numpy(), "correct": correct.to_numpy()})
    split = Split("val", samples, tags)
    assert isinstance(split, TaggedSplit)
    assert split.labels.equals(labels.rename("label"))
    pd.testing.assert_frame_equal(
        primekit.find_failure_modes(split, min_size=5, min_drop=0.1),
        primekit.find_failure_modes(tags, labels, correct, min_size=5, min_drop=0.1),
    )


def test_bad_input_is_named_with_the_prefix():
    tags, labels, correct = tables()
    with pytest.raises(ValueError, match="test data: labels: index does not match"):
        TaggedSplit(tags, labels.iloc[1:], correct, prefix="test data: ")
    with pytest.raises(TypeError, match="tags: expected a boolean pandas DataFrame"):
        TaggedSplit(tags.to_numpy(), labels, correct)


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda: check_int(True, "n", 0), TypeError, "n: expected an integer"),
        (lambda: check_int(-1, "n", 0), ValueError, "n: must be >= 0"),
        (lambda: check_real(float("nan"), "x"), ValueError, "x: must lie in"),
        (lambda: check_real("1", "x", 0.0), TypeError, r"x: expected a number in \[0, inf\]"),
        (lambda: check_fraction(1.5, "a"), ValueError, r"a: must lie in \[0, 1\]"),
    ],
)
def test_scalar_checks_name_the_argument(call, error, words):
    with pytest.raises(error, match=words):
        call()


def test_classes_sort_even_when_they_do_not_compare():
    assert sorted_classes([2, 1, 2]) == [1, 2]
    assert sorted_classes(["b", 1, "a"]) == [1, "a", "b"]


def test_a_study_split_is_a_tagged_split_for_the_metrics():
    """study.Split's overall ``accuracy`` property must not hide the group lookups metrics use."""
    from primekit.metrics import recover_groups

    ids = [f"s{i}" for i in range(6)]
    samples = pd.DataFrame({"id": ids, "label": ["a"] * 3 + ["b"] * 3,
                            "correct": [True, False, True, True, True, False]})
    tags = pd.DataFrame({"x": [True, True, False, False, True, True]}, index=ids)
    split = Split("test", samples, tags)
    assert split.accuracy == pytest.approx(4 / 6)
    assert split.group_accuracy(split.group_mask("a", ["x"])) == (2, 0.5)
    modes = pd.DataFrame({"class": ["a"], "tags": [("x",)], "drop": [0.3]})
    assert recover_groups(modes, split).loc[0, "test_accuracy"] == 0.5


@pytest.mark.parametrize(
    "ids",
    [
        ["a", "b", "c", "d"],  # sorted Arrow strings: proved unique by comparing neighbours
        ["c", "a", "d", "b"],  # unsorted: pandas' hash
        [3, 5, 8, 13],
        [5, 3, 13, 8],
        [0.5, 1.5, 2.5, 3.5],
    ],
)
def test_duplicate_ids_are_found_sorted_or_not(ids: list) -> None:
    from primekit._validation import has_duplicates

    index = pd.Index(ids)
    assert not has_duplicates(index)
    for dup in (pd.Index(ids[:2] + ids[1:]), pd.Index(ids + ids[-1:]), pd.Index([ids[0], ids[0]])):
        assert has_duplicates(dup), list(dup)
    assert not has_duplicates(pd.Index(ids[:1])) and not has_duplicates(pd.Index([], dtype=object))
    assert has_duplicates(pd.Index(["a", None, None])) and not has_duplicates(pd.Index(["a", None]))
    tags = pd.DataFrame({"t": [True] * 5}, index=pd.Index(ids + ids[-1:], name="id"))
    with pytest.raises(ValueError, match="tags: duplicate sample id"):
        primekit.TaggedSplit(tags, pd.Series(["x"] * 5, index=tags.index))


@pytest.mark.parametrize(
    "values",
    [
        ["b", "b", "a", "a", "a", "c"],  # grouped: one run per class
        ["b", "a", "b", "c", "a", "a"],  # a class in two runs
        ["z"],
        ["b", "a"],
    ],
)
def test_class_codes_of_arrow_labels_grouped_or_not_equal_those_of_objects(values) -> None:
    from primekit._validation import class_codes

    arrow = pd.Series(values, dtype="string[pyarrow]")
    plain = pd.Series(values, dtype=object)
    codes, classes = class_codes(arrow)
    want_codes, want_classes = class_codes(plain)
    assert classes == want_classes == sorted(set(values))
    np.testing.assert_array_equal(codes, want_codes)
    assert [classes[c] for c in codes] == values


def test_class_codes_of_arrow_float_labels_with_nan_keep_one_nan_class() -> None:
    """NaN != NaN: a comparison of neighbours would make every NaN a class of its own."""
    import pyarrow as pa

    from primekit._validation import class_codes

    labels = pd.Series(pd.arrays.ArrowExtensionArray(pa.array([np.nan, np.nan, 1.0, 1.0])))
    codes, classes = class_codes(labels)
    assert len(classes) == 2 and codes[0] == codes[1] != codes[2] == codes[3]
