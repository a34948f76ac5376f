"""`primekit demo` on the smoke world: files with the contract columns, summary keys, caching, CLI."""

from __future__ import annotations

import json
import time

import pandas as pd
import pytest

from primekit.demo import SUMMARY_KEYS, run_demo

MODE_COLUMNS = ["class", "tags", "n_tags", "size", "accuracy", "class_accuracy", "drop", "necessity_margin", "description"]


@pytest.fixture(scope="module")
def demo_run(primekit_home, tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    lines: list[str] = []
    t0 = time.perf_counter()
    summary = run_demo(out, smoke=True, home=primekit_home, tagger="learned", report=lines.append)
    return out, summary, lines, time.perf_counter() - t0


def test_demo_writes_the_files(demo_run):
    out, summary, lines, _ = demo_run
    modes = pd.read_csv(out / "failure_modes.csv")
    assert list(modes.columns[: len(MODE_COLUMNS)]) == MODE_COLUMNS
    if len(modes):
        assert modes["tags"].str.len().gt(0).all()
        assert (modes["n_tags"] == modes["tags"].str.count(r" \+ ") + 1).all()
    samples = pd.read_parquet(out / "samples.parquet")
    assert {"id", "label", "pred", "correct", "confidence", "split", "path"} <= set(samples.columns)
    assert "val" in set(samples["split"])
    tags = pd.read_parquet(out / "tags.parquet")
    assert list(tags.columns) == ["id", "tag", "score"]
    from primekit.io import read_metadata

    assert read_metadata(out / "tags.parquet")["tagger"] == "toyworld-learned"
    assert (out / "figures" / "demo_mode_grid.png").is_file() == (len(modes) > 0)
    assert (out / "figures" / "demo_subsets.png").is_file() == (len(modes) > 0)
    html = (out / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") or "<html" in html[:200]


def test_demo_summary(demo_run):
    out, summary, lines, _ = demo_run
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk == summary
    for key in SUMMARY_KEYS:
        assert key in summary
    assert 0 <= summary["classifier_accuracy"] <= 1
    assert summary["n_failure_modes"] == len(pd.read_csv(out / "failure_modes.csv"))
    for key in ("precision", "recall", "strict_precision", "strict_recall"):
        assert summary[key] is None or 0 <= summary[key] <= 1
    # one progress line per stage
    assert [line.split()[1] for line in lines] == ["world", "classifier", "tags", "search", "oracle", "write"]


def test_demo_states_the_tagger_and_its_quality(demo_run):
    out, summary, lines, _ = demo_run
    assert summary["tagger"] == "learned"
    assert "learned tagger" in lines[2] and "vs ground truth" in lines[2]
    quality = pd.read_csv(out / "tagger_quality.csv").set_index("tag")
    per_tag = summary["tagger_per_tag"]
    assert set(per_tag) == set(quality.index)
    for tag, row in quality.iterrows():
        for key in ("precision", "recall"):
            got, want = per_tag[tag][key], row[key]
            assert (got is None and pd.isna(want)) or got == pytest.approx(want, abs=1e-6)
    # no weights are shipped for the smoke world: trained here, or by an earlier test (the smoke
    # study trains the same TaggerConfig.smoke) in this session's home
    assert summary["tagger_source"].startswith(("trained here", "cache weights"))
    # no classifier is shipped for the smoke world: trained here, or by an earlier test in this session's home
    assert summary["classifier_source"] in {"trained", "cache"}


def test_demo_rejects_bad_options(tmp_path):
    with pytest.raises(ValueError, match="tagger"):
        run_demo(tmp_path, smoke=True, tagger="ram")
    with pytest.raises(ValueError, match="min_size"):
        run_demo(tmp_path, smoke=True, min_size=0)


def test_demo_resumes_from_the_cache(demo_run, primekit_home, tmp_path):
    out, summary, _, first = demo_run
    t0 = time.perf_counter()
    again = run_demo(tmp_path, smoke=True, home=primekit_home, tagger="learned")
    assert time.perf_counter() - t0 < max(0.7 * first, 5)
    assert again["n_failure_modes"] == summary["n_failure_modes"]
    assert again["classifier_accuracy"] == summary["classifier_accuracy"]
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "failure_modes.csv"), pd.read_csv(out / "failure_modes.csv"))


def test_demo_cli(primekit_home, tmp_path, capsys):
    from primekit.cli import main

    code = main(["demo", "--out", str(tmp_path), "--smoke", "--home", primekit_home, "--no-progress", "--tagger", "truth"])
    assert code == 0
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    assert set(SUMMARY_KEYS) <= set(printed)
    assert "search" in captured.err and "oracle" in captured.err
    assert main(["demo", "--out", str(tmp_path), "--smoke", "--home", primekit_home, "--min-size", "0"]) == 2
