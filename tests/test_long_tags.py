"""The search on the long tag table: same modes as on the boolean matrix, without building it."""

from __future__ import annotations

import logging
import tracemalloc

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_search import planted

import primekit
from primekit._join import join_report

OPTIONS = dict(min_size=20, min_drop=0.2)


@pytest.fixture(scope="module")
def problem():
    tags, labels, correct = planted(n=900, seed=3)
    long = primekit.matrix_to_tags(tags)
    rng = np.random.default_rng(0)
    long["score"] = rng.uniform(0.5, 1.0, len(long))
    return tags, labels, correct, long


def dense(tags, labels, correct, **kw):
    return primekit.find_failure_modes(tags, labels, correct, **{**OPTIONS, **kw})


def test_every_form_of_the_long_table_gives_the_modes_of_the_matrix(problem, tmp_path):
    tags, labels, correct, long = problem
    expected = dense(tags, labels, correct)
    assert len(expected) >= 2
    pq.write_table(pa.Table.from_pandas(long, preserve_index=False), tmp_path / "tags.parquet", row_group_size=500)
    folder = tmp_path / "dataset"
    folder.mkdir()
    shuffled = long.sample(frac=1, random_state=2)
    for i in range(3):  # rows of one id split over files
        shuffled.iloc[i::3].to_parquet(folder / f"part-{i}.parquet", index=False)
    long.to_csv(tmp_path / "tags.csv", index=False)
    forms = {
        "pandas": long,
        "pandas categorical": long.astype({"id": "category", "tag": "category"}),
        "pyarrow": pa.Table.from_pandas(long, preserve_index=False),
        "parquet file": tmp_path / "tags.parquet",
        "parquet dataset": str(folder),
        "csv": tmp_path / "tags.csv",
        "no score column": long.drop(columns="score"),
    }
    for name, form in forms.items():
        got = dense(form, labels.sample(frac=1, random_state=1), correct)
        pd.testing.assert_frame_equal(got, expected, obj=name)
        assert got.attrs["join"]["n_tag_rows"] == len(long), name


@pytest.mark.parametrize("method", ["exhaustive", "greedy"])
def test_long_and_dense_agree_on_generated_problems(method):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from generate import Scenario, generate

    tags, labels, correct = generate(Scenario(4, 500, tags_per_class=20, mean_tags=7.0, seed=5))
    long = primekit.matrix_to_tags(tags)
    options = dict(min_size=15, min_drop=0.25, method=method, n_jobs=2)
    expected = primekit.find_failure_modes(tags, labels, correct, **options)
    got = primekit.find_failure_modes(long, labels, correct, **options)
    assert len(expected) > 5
    pd.testing.assert_frame_equal(got, expected)


def test_lattice_on_the_long_table_equals_the_lattice_on_the_matrix(problem):
    tags, labels, correct, long = problem
    expected = primekit.tag_lattice(tags, labels, correct, min_size=30)
    got = primekit.tag_lattice(long, labels, correct, min_size=30)
    pd.testing.assert_frame_equal(got, expected)


def test_threshold_drops_low_scores_like_tags_to_matrix(problem):
    tags, labels, correct, long = problem
    scored = long.assign(score=np.where(long["tag"] == "dry", 0.3, long["score"]))
    for threshold in (0.5, {"dry": 0.25}, 0.25):
        matrix = primekit.tags_to_matrix(scored, threshold=threshold, ids=tags.index)
        expected = dense(matrix, labels, correct)
        got = dense(scored, labels, correct, threshold=threshold)
        pd.testing.assert_frame_equal(got, expected, obj=str(threshold))
    assert not any("dry" in t for t in dense(scored, labels, correct)["tags"])


def test_stray_ids_untagged_samples_and_empty_classes_are_reported_not_fatal(problem, caplog):
    tags, labels, correct, long = problem
    extra = pd.DataFrame({"id": ["ghost1", "ghost1", "ghost2"], "tag": ["dry"] * 3,
                          "score": [0.9, 0.8, 0.7]})
    extra.loc[1, "tag"] = "grass"
    wolves = pd.Index([f"wolf{i}" for i in range(40)])
    labels_plus = pd.concat([labels, pd.Series("wolf", index=wolves)])
    correct_plus = pd.concat([correct, pd.Series(False, index=wolves)])
    with caplog.at_level(logging.WARNING):
        got = dense(pd.concat([long, extra]), labels_plus, correct_plus)
    expected = dense(tags, labels, correct)
    pd.testing.assert_frame_equal(got, expected)
    report = got.attrs["join"]
    # the q-value filter keeps the report too (primekit search --max-q prints it)
    annotated = dense(pd.concat([long, extra]), labels_plus, correct_plus, max_q=1.0)
    assert annotated.attrs["join"] == report
    # and so does the lattice
    lattice = primekit.tag_lattice(pd.concat([long, extra]), labels_plus, correct_plus, min_size=30)
    assert lattice.attrs["join"] == report
    assert report["stray_ids"] == 2 and report["stray_rows"] == 3
    assert report["stray_examples"] == ["ghost1", "ghost2"]
    untagged = int((~tags.any(axis=1)).sum()) + len(wolves)
    assert report["untagged_samples"] == untagged
    assert report["classes_without_tags"] == ["wolf"]
    text = caplog.text
    assert "2 id(s) have no sample" in text and "'wolf'" in text
    # the plain-array report (used at the CLI/study boundary) says the same
    same = join_report(labels_plus.index, pd.concat([long, extra])["id"], labels=labels_plus)
    assert same.as_dict() == report


@pytest.mark.parametrize(
    "change, error, message",
    [
        (lambda t: t.drop(columns="id"), ValueError, "tags: missing column(s) ['id']"),
        (lambda t: t.assign(score=t["score"] * 2), ValueError, "scores must lie in [0, 1]"),
        (lambda t: t.assign(score=np.where(t.index == 3, np.nan, t["score"])), ValueError,
         "'score' has missing"),
        (lambda t: t.assign(score="high"), ValueError, "'score' is not numeric"),
        (lambda t: t.assign(tag=np.where(t.index == 5, None, t["tag"])), ValueError,
         "'tag' has missing"),
        (lambda t: pd.concat([t, t.iloc[[7]]]), ValueError, "repeated (id, tag) pair"),
        (lambda t: pd.concat([t.iloc[[7]], t]), ValueError, "repeated (id, tag) pair"),
        (lambda t: pd.concat([t, t.iloc[[7]]]).sample(frac=1, random_state=0), ValueError,
         "repeated (id, tag) pair"),
    ],
)
def test_bad_long_tables_are_clear_errors(problem, change, error, message):
    tags, labels, correct, long = problem
    with pytest.raises(error) as info:
        dense(change(long), labels, correct)
    assert message in str(info.value)


def test_bad_labels_and_threshold_with_a_long_table(problem, tmp_path):
    tags, labels, correct, long = problem
    with pytest.raises(TypeError, match="labels: with a long tag table"):
        dense(long, labels.to_numpy(), correct)
    with pytest.raises(ValueError, match="correct: index does not match"):
        dense(long, labels, correct.iloc[1:])
    with pytest.raises(ValueError, match="threshold: must lie in"):
        dense(long, labels, correct, threshold=1.5)
    with pytest.raises(ValueError, match="tags: .* does not exist"):
        dense(tmp_path / "nothing.parquet", labels, correct)
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(ValueError, match="tags: cannot read"):
        dense(tmp_path / "broken.parquet", labels, correct)


def test_memory_follows_the_table_not_images_times_vocabulary():
    """200,000 images over a 50,000-tag vocabulary: the dense matrix would be 10 GB."""
    rng = np.random.default_rng(1)
    n, vocabulary, per_image = 200_000, 50_000, 3
    ids = np.array([f"i{i}" for i in range(n)], dtype=object)
    tag_codes = (rng.zipf(1.3, size=n * per_image) - 1) % vocabulary
    table = pa.table(
        {
            "id": pa.DictionaryArray.from_arrays(np.repeat(np.arange(n), per_image), ids),
            "tag": pa.DictionaryArray.from_arrays(
                tag_codes, np.array([f"t{t}" for t in range(vocabulary)], dtype=object)
            ),
        }
    )
    table = table.group_by(["id", "tag"]).aggregate([])  # drop repeated draws
    labels = pd.Series(np.repeat([f"c{k}" for k in range(20)], n // 20), index=ids)
    correct = pd.Series(rng.random(n) < 0.8, index=ids)
    tracemalloc.start()
    modes = primekit.find_failure_modes(table, labels, correct, min_size=30)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert modes.attrs["join"]["n_tag_rows"] == table.num_rows
    assert peak < 200 * 2**20, f"{peak / 2**20:.0f} MiB"


def test_trust_statistics_on_the_long_table_equal_those_on_the_matrix(problem):
    tags, labels, correct, long = problem
    expected = dense(tags, labels, correct, max_q=0.5)
    got = dense(long, labels, correct, max_q=0.5)
    pd.testing.assert_frame_equal(got, expected)


@pytest.mark.parametrize("rows", ["sorted", "shuffled"])
def test_sorted_ids_are_merged_and_any_other_order_looked_up_to_the_same_result(problem, tmp_path, rows):
    """Sorted samples and id dictionaries take the merge (primekit._join.id_positions); ids
    between samples, before and after all of them, ids repeated across row groups and
    dictionaries out of order must come out as the hash lookup would find them."""
    tags, labels, correct, long = problem
    expected = dense(tags, labels, correct)
    ghosts = ["img0000~", "img0450a", "a", "zz", "img0899~"]  # between, before, after the samples
    extra = pd.DataFrame({"id": ghosts, "tag": "dry", "score": 0.9})
    table = pd.concat([long, extra]).sort_values(["id", "tag"], ignore_index=True)
    if rows == "shuffled":
        table = table.sample(frac=1, random_state=4)
    path = tmp_path / "tags.parquet"
    pq.write_table(pa.Table.from_pandas(table, preserve_index=False), path, row_group_size=701)
    grouped = labels.sort_index().sort_values(kind="stable")  # grouped by class, ids unsorted
    for samples in (labels.sort_index(), labels.sample(frac=1, random_state=5), grouped):
        got = dense(path, samples, correct)
        pd.testing.assert_frame_equal(got, expected)
        assert got.attrs["join"]["stray_ids"] == len(ghosts)
        assert got.attrs["join"]["stray_rows"] == len(ghosts)
        assert got.attrs["join"]["untagged_samples"] == int((~tags.any(axis=1)).sum())


def test_id_positions_merge_equals_a_lookup():
    from primekit._join import id_positions

    rng = np.random.default_rng(0)
    pool = sorted({f"{'ab'[rng.integers(2)]}{rng.integers(0, 60)}{'x' * int(rng.integers(0, 2))}" for _ in range(90)})
    for trial in range(200):
        samples = sorted(rng.choice(pool, size=int(rng.integers(0, 40)), replace=False).tolist())
        if trial % 5 == 0:
            rng.shuffle(samples)
        dictionaries = []
        for _ in range(int(rng.integers(0, 4))):
            d = list(dict.fromkeys(rng.choice(pool, size=int(rng.integers(0, 20))).tolist()))
            d = d if trial % 3 == 0 else sorted(d)
            d = d + d[:1] if trial % 7 == 0 else d  # a dictionary with a repeated entry
            whole = pa.array(["pad"] + d, pa.large_string())
            dictionaries.append(whole.slice(1))  # an array with an offset into its buffers
        got = id_positions(dictionaries, pa.array(samples, pa.large_string()))
        flat = [x for d in dictionaries for x in d.to_pylist()]
        want = [samples.index(x) if x in samples else -1 for x in flat]
        assert got.tolist() == want, (samples, flat)
