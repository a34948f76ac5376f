"""The class-partitioned search on a local Ray cluster equals the single-process search."""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from test_search import planted

import primekit
from primekit.search_ray import find_failure_modes_ray

OPTIONS = dict(min_size=20, min_drop=0.2)


@pytest.fixture(scope="module")
def tables():
    tags, labels, correct = planted(n=1200, seed=4)
    # four classes, so that partitions hold several classes and some hold one
    labels = pd.Series(
        np.where(np.arange(len(labels)) % 3 == 0, labels.to_numpy() + "_b", labels.to_numpy()),
        index=labels.index,
    )
    long = primekit.matrix_to_tags(tags)
    long["score"] = np.random.default_rng(1).uniform(0.4, 1.0, len(long))
    samples = pd.DataFrame(
        {"id": labels.index, "label": labels.to_numpy(), "correct": correct.to_numpy()}
    )
    return samples, long, labels, correct


def single(long, labels, correct, **kw):
    return primekit.find_failure_modes(long, labels, correct, **{**OPTIONS, **kw})


def test_a_dataset_partitioned_by_class_gives_the_single_process_table(local_ray, tables, tmp_path):
    samples, long, labels, correct = tables
    with_class = long.assign(label=labels.reindex(long["id"]).to_numpy())
    ds.write_dataset(pa.Table.from_pandas(with_class, preserve_index=False), tmp_path / "tags",
                     format="parquet", partitioning=["label"], partitioning_flavor="hive")
    expected = single(long, labels, correct)
    assert len(expected) >= 3
    for n_partitions in (None, 1, 3):
        got = find_failure_modes_ray(samples, tmp_path / "tags", n_partitions=n_partitions,
                                     **OPTIONS)
        pd.testing.assert_frame_equal(got, expected, obj=f"n_partitions={n_partitions}")
    greedy = find_failure_modes_ray(samples, tmp_path / "tags", method="greedy", **OPTIONS)
    pd.testing.assert_frame_equal(greedy, single(long, labels, correct, method="greedy"))


def test_any_parquet_dataset_is_shuffled_to_class_partitions(local_ray, tables, tmp_path):
    samples, long, labels, correct = tables
    folder = tmp_path / "parts"
    folder.mkdir()
    shuffled = long.sample(frac=1, random_state=3)
    for i in range(4):  # the parts a tagging job wrote: ids of every class in every part
        shuffled.iloc[i::4].to_parquet(folder / f"part-{i}.parquet", index=False)
    samples.to_parquet(tmp_path / "samples.parquet")
    got = find_failure_modes_ray(tmp_path / "samples.parquet", folder, threshold=0.6,
                                 n_partitions=2, **OPTIONS)
    pd.testing.assert_frame_equal(got, single(long, labels, correct, threshold=0.6))


def test_bad_input_is_reported_like_the_single_process_search(local_ray, tables, tmp_path, caplog):
    samples, long, labels, correct = tables
    ghosts = pd.DataFrame({"id": ["ghost"] * 2, "tag": ["dry", "grass"], "score": [0.9, 0.9]})
    wolves = pd.DataFrame({"id": [f"wolf{i}" for i in range(25)], "label": "wolf",
                           "correct": False})  # fmt: skip
    table = pd.concat([long, ghosts], ignore_index=True)
    folder = tmp_path / "parts"
    folder.mkdir()
    table.iloc[::2].to_parquet(folder / "a.parquet", index=False)
    table.iloc[1::2].to_parquet(folder / "b.parquet", index=False)
    all_samples = pd.concat([samples, wolves], ignore_index=True)
    with caplog.at_level(logging.WARNING):
        got = find_failure_modes_ray(all_samples, folder, n_partitions=2, **OPTIONS)
    index = pd.Index(all_samples["id"])
    expected = single(table, pd.Series(all_samples["label"].to_numpy(), index=index),
                      pd.Series(all_samples["correct"].to_numpy(), index=index))
    pd.testing.assert_frame_equal(got, expected)
    for key in ("n_samples", "n_tag_rows", "stray_ids", "stray_rows", "untagged_samples",
                "classes_without_tags", "stray_examples"):
        assert got.attrs["join"][key] == expected.attrs["join"][key], key
    assert got.attrs["join"]["classes_without_tags"] == ["wolf"]
    assert "1 id(s) have no sample (e.g. 'ghost')" in caplog.text
    # a class folder no sample has is named, not fatal
    with_class = long.assign(label=labels.reindex(long["id"]).to_numpy())
    extra = ghosts.assign(label="unicorn")
    ds.write_dataset(pa.Table.from_pandas(pd.concat([with_class, extra]), preserve_index=False),
                     tmp_path / "by_class", format="parquet", partitioning=["label"],
                     partitioning_flavor="hive")
    got = find_failure_modes_ray(samples, tmp_path / "by_class", **OPTIONS)
    assert got.attrs["join"]["unknown_classes"] == ["unicorn"]
    pd.testing.assert_frame_equal(got, single(long, labels, correct))


def test_the_cli_searches_on_ray(local_ray, tables, tmp_path):
    from primekit.cli import main
    from primekit.search import read_modes

    samples, long, labels, correct = tables
    samples.to_csv(tmp_path / "samples.csv", index=False)
    long.to_parquet(tmp_path / "tags.parquet", index=False)
    argv = ["search", "--samples", str(tmp_path / "samples.csv"), "--tags",
            str(tmp_path / "tags.parquet"), "--out", str(tmp_path / "modes.parquet"),
            "--min-size", "20", "--min-drop", "0.2"]
    assert main([*argv, "--ray", "local"]) == 0
    got = read_modes(tmp_path / "modes.parquet")
    assert list(got["tags"]) == list(single(long, labels, correct)["tags"])
    assert main([*argv, "--max-q", "0.5"]) == 0
    alone = read_modes(tmp_path / "modes.parquet")
    assert main([*argv, "--ray", "local", "--max-q", "0.5"]) == 0
    pd.testing.assert_frame_equal(read_modes(tmp_path / "modes.parquet"), alone)


def test_q_values_pool_every_class_like_the_single_process_search(local_ray, tables, tmp_path):
    samples, long, labels, correct = tables
    long.to_parquet(tmp_path / "tags.parquet", index=False)
    everything = single(long, labels, correct, max_q=1.0)
    level = float(np.median(everything["q_value"]))  # keeps some modes, not all
    expected = single(long, labels, correct, max_q=level)
    assert 0 < len(expected) < len(everything)
    for n_partitions in (1, 3):
        got = find_failure_modes_ray(samples, tmp_path / "tags.parquet", max_q=level,
                                     n_partitions=n_partitions, **OPTIONS)
        pd.testing.assert_frame_equal(got, expected, obj=f"n_partitions={n_partitions}")
        assert got.attrs["join"] == expected.attrs["join"]
    # each partition's own q-values would differ: the pooled step runs after the gather
    per_class = [single(long[long["id"].isin(labels.index[labels == c])], labels[labels == c],
                        correct[labels == c], max_q=1.0) for c in sorted(labels.unique())]
    assert not np.allclose(pd.concat(per_class)["q_value"].sort_values(),
                           everything["q_value"].sort_values())
    with pytest.raises(ValueError, match="max_q: must lie in"):
        find_failure_modes_ray(samples, tmp_path / "tags.parquet", max_q=0, **OPTIONS)


def test_bad_arguments_fail_before_ray_work(tables, tmp_path):
    samples, *_ = tables
    with pytest.raises(ValueError, match="tags: .* does not exist"):
        find_failure_modes_ray(samples, tmp_path / "none")
    with pytest.raises(TypeError, match="unknown search option"):
        find_failure_modes_ray(samples, tmp_path, min_sise=3)
    with pytest.raises(ValueError, match="min_size: must be >= 1"):
        find_failure_modes_ray(samples, tmp_path, min_size=0)
    with pytest.raises(ValueError, match="partition_column: 'label' is not a partition field"):
        pd.DataFrame({"id": ["a"], "tag": ["t"]}).to_parquet(tmp_path / "t.parquet")
        find_failure_modes_ray(samples, tmp_path / "t.parquet", partition_column="label")


def test_a_split_on_ray_leaves_the_other_splits_out_unreported(local_ray, tables, tmp_path, caplog,
                                                               capsys):
    """``primekit search --split val --ray``: the other split's images are not strays, in a plain
    file (map tasks) and in a class-partitioned dataset (each task filters its folders), as in the
    single process; an id in no split still is."""
    from primekit.cli import main
    from primekit.search import read_modes

    samples, long, labels, correct = tables
    rng = np.random.default_rng(2)
    split = samples.assign(split=np.where(rng.random(len(samples)) < 0.5, "val", "test"))
    split.to_csv(tmp_path / "samples.csv", index=False)
    rows = pd.concat([long, long.iloc[:2].assign(id="nowhere")])
    rows.to_parquet(tmp_path / "tags.parquet", index=False)
    first = labels.iloc[0]  # "nowhere" in a class's folder, so that a task reads it
    by_class = rows.assign(label=pd.concat([labels, pd.Series({"nowhere": first})]).loc[rows["id"]].to_numpy())
    by_class.to_parquet(tmp_path / "by_class", partition_cols=["label"], index=False)
    base = ["search", "--samples", str(tmp_path / "samples.csv"), "--split", "val",
            "--min-size", "20", "--min-drop", "0.2"]
    assert main([*base, "--tags", str(tmp_path / "tags.parquet"), "--out", str(tmp_path / "a.csv")]) == 0
    want = read_modes(tmp_path / "a.csv")
    for name, tags in (("file", tmp_path / "tags.parquet"), ("by class", tmp_path / "by_class")):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            out = tmp_path / f"{name}.csv"
            assert main([*base, "--tags", str(tags), "--out", str(out), "--ray", "local"]) == 0
        pd.testing.assert_frame_equal(read_modes(out), want, obj=name)
        said = caplog.text + capsys.readouterr().err
        assert re.search(r"(?<!\d)1 tagged id\(s\) have no sample", said), name  # "nowhere" only


def test_a_split_with_integer_ids_on_ray_and_in_one_process(local_ray, tables, tmp_path):
    """A tagger may write integer ids: leaving the other split out compares them as strings, in
    the dataset filters of the class-partitioned Ray tasks and of the single-process CLI."""
    from primekit.cli import main
    from primekit.search import read_modes

    samples, long, labels, correct = tables
    number = {s: i for i, s in enumerate(labels.index)}
    split = samples.assign(id=samples["id"].map(number),
                           split=np.where(np.arange(len(samples)) % 2, "val", "test"))
    split.to_csv(tmp_path / "samples.csv", index=False)
    rows = long.assign(id=long["id"].map(number).astype("int64"))
    rows.to_parquet(tmp_path / "tags.parquet", index=False)
    rows.assign(label=labels.loc[long["id"]].to_numpy()).to_parquet(
        tmp_path / "by_class", partition_cols=["label"], index=False
    )
    val = split[split["split"] == "val"].assign(id=lambda f: f["id"].astype(str))
    other = split.loc[split["split"] == "test", "id"].astype(str)
    got = find_failure_modes_ray(val, tmp_path / "by_class", ignore_ids=other, **OPTIONS)
    assert main(["search", "--samples", str(tmp_path / "samples.csv"), "--split", "val",
                 "--min-size", "20", "--min-drop", "0.2", "--tags", str(tmp_path / "tags.parquet"),
                 "--out", str(tmp_path / "one.csv")]) == 0  # fmt: skip
    one = read_modes(tmp_path / "one.csv")
    assert len(got) > 0 and got.attrs["join"]["stray_ids"] == 0
    key = ["class", "tags", "size", "accuracy"]
    assert got[key].astype(str).values.tolist() == one[key].astype(str).values.tolist()
    # a small table, one row group per class: Arrow prunes by the id statistics, which cannot
    # compare an int64 column with string ids unless the column is cast
    small = pd.DataFrame({"id": np.arange(60), "tag": "a", "label": np.repeat(["x", "y"], 30)})
    small.to_parquet(tmp_path / "small", partition_cols=["label"], index=False)
    kept = pd.DataFrame({"id": [str(i) for i in range(0, 60, 2)], "label": np.repeat(["x", "y"], 15),
                         "correct": True})
    ignored = [str(i) for i in range(1, 60, 2)]
    found = find_failure_modes_ray(kept, tmp_path / "small", ignore_ids=ignored, min_size=5)
    assert found.attrs["join"]["stray_ids"] == 0 and found.attrs["join"]["untagged_samples"] == 0
