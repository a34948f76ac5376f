"""The tag table helpers and atomic table I/O."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import primekit
from primekit.io import atomic_path, read_metadata, read_table, write_table

LONG = pd.DataFrame(
    {"id": ["a", "a", "b", "c"], "tag": ["grass", "dog", "grass", "snow"],
     "score": [0.9, 0.3, 0.6, 1.0]}
)


def test_threshold_turns_scores_into_a_matrix():
    m = primekit.tags_to_matrix(LONG, threshold=0.5)
    assert list(m.columns) == ["dog", "grass", "snow"]
    assert list(m.index) == ["a", "b", "c"]
    assert m.loc["a", "grass"] and not m.loc["a", "dog"] and m.loc["c", "snow"]
    per_tag = primekit.tags_to_matrix(LONG, threshold={"grass": 0.7, "dog": 0.2})
    assert per_tag.loc["a", "dog"] and per_tag.loc["a", "grass"] and not per_tag.loc["b", "grass"]


def test_ids_fix_the_rows_and_untagged_samples_are_all_false():
    m = primekit.tags_to_matrix(LONG, ids=["c", "b", "a", "d"])
    assert list(m.index) == ["c", "b", "a", "d"]
    assert not m.loc["d"].any()
    with pytest.raises(ValueError, match="id 'a' is not among"):
        primekit.tags_to_matrix(LONG, ids=["b", "c"])


def test_matrix_round_trip():
    m = primekit.tags_to_matrix(LONG, threshold=0.5)
    long = primekit.matrix_to_tags(m)
    assert set(zip(long["id"], long["tag"])) == {("a", "grass"), ("b", "grass"), ("c", "snow")}
    assert (long["score"] == 1.0).all()
    back = primekit.tags_to_matrix(long, ids=m.index)
    pd.testing.assert_frame_equal(back, m[back.columns])


def test_missing_score_means_hard_tags():
    m = primekit.tags_to_matrix(LONG[["id", "tag"]])
    assert m.loc["a", "dog"]


@pytest.mark.parametrize(
    "table, message",
    [
        (LONG.drop(columns="tag"), "missing column"),
        (LONG.assign(score=[0.1, 2.0, 0.3, 0.4]), r"scores must lie in \[0, 1\]"),
        (LONG.assign(score=[0.1, np.nan, 0.3, 0.4]), "NaN"),
        (pd.concat([LONG, LONG.iloc[:1]]), "repeated"),
        (LONG.assign(score=["x", "y", "z", "w"]), "not numeric"),
    ],
)
def test_bad_tag_tables_are_named(table, message):
    with pytest.raises(ValueError, match=message):
        primekit.tags_to_matrix(table)


def test_tag_frequencies_per_class():
    m = primekit.tags_to_matrix(LONG, threshold=0.5)
    labels = pd.Series(["x", "x", "y"], index=m.index)
    freq = primekit.tag_frequencies(m, labels)
    row = freq[(freq["class"] == "x") & (freq["tag"] == "grass")].iloc[0]
    assert row["count"] == 2 and row["frequency"] == 1.0
    assert not ((freq["class"] == "y") & (freq["tag"] == "grass")).any()


def test_write_tags_keeps_metadata(tmp_path):
    primekit.write_tags(LONG, tmp_path / "t.parquet", metadata={"tagger": "ram++", "threshold": 0.5})
    back = primekit.read_tags(tmp_path / "t.parquet")
    assert back.attrs["metadata"] == {"tagger": "ram++", "threshold": 0.5}
    pd.testing.assert_frame_equal(back, LONG, check_like=True)
    primekit.write_tags(LONG, tmp_path / "t.csv")
    assert read_metadata(tmp_path / "t.csv") == {}
    assert len(primekit.read_tags(tmp_path / "t.csv")) == 4


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "x.csv"
    write_table(pd.DataFrame({"a": [1]}), target)
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert read_table(target)["a"].tolist() == [1]
    assert [p.name for p in tmp_path.iterdir()] == ["x.csv"]


def test_unknown_extension_is_named(tmp_path):
    with pytest.raises(ValueError, match="out: .* has extension '.txt'"):
        write_table(pd.DataFrame({"a": [1]}), tmp_path / "x.txt", argument="out")
