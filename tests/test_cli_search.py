"""`primekit search`: files in, failure modes out; bad input is one line and exit code 2."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from test_search import planted

import primekit
from primekit.cli import main
from primekit.search import read_modes


@pytest.fixture()
def files(tmp_path):
    tags, labels, correct = planted()
    samples = pd.DataFrame(
        {"id": tags.index, "label": labels.reindex(tags.index).to_numpy(),
         "correct": correct.reindex(tags.index).astype(int).to_numpy()}
    )
    long = primekit.matrix_to_tags(tags)
    long["score"] = np.where(long["tag"] == "night", 0.4, 0.9)  # night falls under 0.5
    samples.to_csv(tmp_path / "samples.csv", index=False)
    primekit.write_tags(long, tmp_path / "tags.parquet", metadata={"tagger": "test"})
    return tmp_path, tags, labels, correct


def test_search_writes_csv_with_joined_tags(files, capsys):
    d, tags, labels, correct = files
    code = main(["search", "--samples", str(d / "samples.csv"), "--tags", str(d / "tags.parquet"),
                 "--out", str(d / "modes.csv"), "--min-size", "20"])
    assert code == 0
    csv = pd.read_csv(d / "modes.csv")
    assert "dry + grass" in set(csv["tags"])
    expected = primekit.find_failure_modes(tags.drop(columns="night"), labels, correct, min_size=20)
    got = read_modes(d / "modes.csv")
    assert list(got["tags"]) == list(expected["tags"])
    assert "failure modes" in capsys.readouterr().err


def test_max_q_keeps_the_confident_modes_with_their_statistics(files, capsys):
    d, tags, labels, correct = files
    code = main(["search", "--samples", str(d / "samples.csv"), "--tags", str(d / "tags.parquet"),
                 "--out", str(d / "modes.csv"), "--min-size", "20", "--max-q", "0.05"])
    assert code == 0
    got = read_modes(d / "modes.csv")
    expected = primekit.find_failure_modes(tags.drop(columns="night"), labels, correct, min_size=20, max_q=0.05)
    assert list(got["tags"]) == list(expected["tags"]) and ("dry", "grass") in set(got["tags"])
    np.testing.assert_allclose(got["q_value"], expected["q_value"])
    paper = primekit.find_failure_modes(tags.drop(columns="night"), labels, correct, min_size=20)
    err = capsys.readouterr().err
    assert f"of the paper's {len(paper)}, those with q <= 0.05" in err
    assert "? tag rows" not in err  # the join report survives the q-value filter


def test_search_parquet_output_and_pred_column(files):
    d, tags, labels, correct = files
    samples = pd.read_csv(d / "samples.csv")
    samples["pred"] = np.where(samples["correct"] == 1, samples["label"], "other")
    samples.drop(columns="correct").to_parquet(d / "s.parquet")
    code = main(["search", "--samples", str(d / "s.parquet"), "--tags", str(d / "tags.parquet"),
                 "--out", str(d / "modes.parquet"), "--min-size", "20", "--threshold", "0.3",
                 "--method", "greedy"])
    assert code == 0
    got = read_modes(d / "modes.parquet")
    assert ("dry", "grass") in set(got["tags"])


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--min-size", "0"], "--min-size: must be >= 1"),
        (["--min-drop", "2"], "--min-drop: must lie in [0, 1]"),
        (["--max-tags", "5"], "necessity: no margin for combinations of 5 tags"),
        (["--out", "modes.txt"], "--out"),
        (["--max-q", "0"], "--max-q: must lie in (0, 1]"),
    ],
)
def test_bad_options_give_one_line(files, capsys, extra, message):
    d, *_ = files
    argv = ["search", "--samples", str(d / "samples.csv"), "--tags", str(d / "tags.parquet"),
            "--out", str(d / "modes.csv"), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1
    assert "Traceback" not in err


def test_bad_files_give_one_line(files, capsys):
    d, *_ = files
    (d / "broken.parquet").write_bytes(b"not parquet")
    pd.DataFrame({"id": ["a"], "label": ["x"]}).to_csv(d / "nocorrect.csv", index=False)
    pd.DataFrame({"id": ["zzz"], "tag": ["grass"]}).to_csv(d / "stray.csv", index=False)
    cases = [
        (["--samples", str(d / "missing.csv")], "samples: file"),
        (["--tags", str(d / "broken.parquet")], "tags: cannot read"),
        (["--samples", str(d / "nocorrect.csv")], "needs a 'correct' (0/1) or a 'pred' column"),
    ]
    for override, message in cases:
        argv = {"--samples": str(d / "samples.csv"), "--tags": str(d / "tags.parquet"),
                "--out": str(d / "o.csv")}
        argv.update(dict(zip(override[::2], override[1::2])))
        code = main(["search", *[x for kv in argv.items() for x in kv]])
        err = capsys.readouterr().err.strip()
        assert code == 2, message
        assert message in err
        assert len(err.splitlines()) == 1


def test_tag_ids_without_a_sample_are_reported_not_fatal(files, caplog):
    d, tags, labels, correct = files
    long = primekit.read_tags(d / "tags.parquet")
    stray = pd.DataFrame({"id": ["zzz", "zzz"], "tag": ["grass", "dry"], "score": [0.9, 0.9]})
    pd.concat([long, stray]).to_csv(d / "stray.csv", index=False)
    code = main(["search", "--samples", str(d / "samples.csv"), "--tags", str(d / "stray.csv"),
                 "--out", str(d / "modes.csv"), "--min-size", "20"])
    assert code == 0
    assert "tags: 1 id(s) have no sample (e.g. 'zzz'); their 2 tag row(s) are ignored" in caplog.text
    expected = primekit.find_failure_modes(tags.drop(columns="night"), labels, correct, min_size=20)
    assert list(read_modes(d / "modes.csv")["tags"]) == list(expected["tags"])


def test_help_names_the_paper_symbols(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["search", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for symbol in ("s:", "a:", "l:", "b2,b3,b4", "T_c"):
        assert symbol in out


def test_split_searches_one_split_and_tags_of_other_images_are_counted_not_fatal(files, capsys):
    d, tags, labels, correct = files
    samples = pd.read_csv(d / "samples.csv")
    rng = np.random.default_rng(0)
    samples["split"] = np.where(rng.random(len(samples)) < 0.5, "val", "test")
    samples.to_csv(d / "split.csv", index=False)
    val = samples[samples["split"] == "val"]
    val.to_csv(d / "val_only.csv", index=False)  # tags were computed for every image
    args = ["--tags", str(d / "tags.parquet"), "--min-size", "10", "--min-drop", "0.2"]
    assert main(["search", "--samples", str(d / "split.csv"), "--split", "val",
                 "--out", str(d / "a.csv"), *args]) == 0
    err = capsys.readouterr().err
    assert "of split val" in err
    assert "have no sample" not in err  # the other split's images are not strays...
    long = pd.read_parquet(d / "tags.parquet")
    pd.concat([long, long.iloc[:2].assign(id="zzz")]).to_parquet(d / "tags_stray.parquet")
    assert main(["search", "--samples", str(d / "split.csv"), "--split", "val", "--out",
                 str(d / "s.csv"), *args[2:], "--tags", str(d / "tags_stray.parquet")]) == 0
    err = capsys.readouterr().err  # ...an id in no split is (one: not "601 tagged id(s)")
    assert re.search(r"(?<!\d)1 tagged id\(s\) have no sample, left out", err)
    pd.testing.assert_frame_equal(read_modes(d / "a.csv"), read_modes(d / "s.csv"))
    assert main(["search", "--samples", str(d / "val_only.csv"), "--out", str(d / "b.csv"), *args]) == 0
    assert "tagged id(s) have no sample, left out" in capsys.readouterr().err  # counted, not fatal
    pd.testing.assert_frame_equal(read_modes(d / "a.csv"), read_modes(d / "b.csv"))
    ids = val["id"].astype(str)
    expected = primekit.find_failure_modes(tags.drop(columns="night").loc[ids], labels.loc[ids],
                                           correct.loc[ids], min_size=10, min_drop=0.2)
    assert list(read_modes(d / "a.csv")["tags"]) == list(expected["tags"])
    assert main(["search", "--samples", str(d / "samples.csv"), "--split", "val",
                 "--out", str(d / "c.csv"), *args]) == 2
    assert "--split: the samples have no 'split' column" in capsys.readouterr().err
    assert main(["search", "--samples", str(d / "split.csv"), "--split", "train",
                 "--out", str(d / "c.csv"), *args]) == 2
    assert "--split: no sample has split == 'train' (found ['test', 'val'])" in capsys.readouterr().err
    assert main(["search", "--tags", str(d / "tags.parquet"), "--out", str(d / "c.csv")]) == 2
    assert "--samples: required (or pass --study DIR)" in capsys.readouterr().err


def test_a_samples_table_with_a_repeated_id_is_refused_naming_it():
    from primekit.samples import validate_samples

    table = pd.DataFrame({"id": ["a", "b", "c", "b"], "label": "x", "correct": [1, 0, 1, 1]})
    with pytest.raises(ValueError, match="samples: duplicate id 'b'"):
        validate_samples(table)
    assert list(validate_samples(table.iloc[:3])["id"]) == ["a", "b", "c"]


def test_without_split_the_tag_table_is_read_as_it_is(tmp_path):
    """No --split: nothing to leave out, and no set difference of every id with itself (an
    object-array sort of 1.28 M ids took minutes at ImageNet scale)."""
    from primekit.search_cli import _other_split_ids, _without

    every = pd.DataFrame({"id": [f"s{i}" for i in range(5)], "label": "a", "correct": True})
    assert _other_split_ids(every, every) is None
    assert _without("tags.parquet", _other_split_ids(every, every)) == "tags.parquet"
    same = every.copy()  # the same ids in another frame: nothing to leave out either
    assert _without("tags.parquet", _other_split_ids(every, same)) == "tags.parquet"
