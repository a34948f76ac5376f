"""Specification of the run folder: its file names, reading it back, writing its summary."""

from __future__ import annotations

import ast
import json
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_report import EVIL_TAG, make_run_dir

import primekit
import primekit.demo
from primekit.demo import ensure_run
from primekit.io import write_table
from primekit.run_folder import (
    RUN_FILES,
    is_run,
    is_smoke_run,
    load_run,
    read_summary,
    search_settings,
    write_summary,
)
from primekit.split import TaggedSplit

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return make_run_dir(tmp_path_factory.mktemp("run") / "demo")



def test_load_run_aligns_samples_tags_and_modes(run_dir):
    run = load_run(run_dir)
    assert run.samples.index.equals(run.tags.index)
    assert run.tags.dtypes.eq(bool).all()
    assert EVIL_TAG in run.tags.columns
    assert run.summary["search"]["min_size"] == 10
    assert all(isinstance(t, tuple) for t in run.modes["tags"])
    assert ("cat", ("night",)) in set(zip(run.modes["class"], run.modes["tags"], strict=True))
    assert ("dog", ("grass", "water")) in set(
        zip(run.modes["class"], run.modes["tags"], strict=True)
    )
    # relative image paths are resolved against the run directory
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in run.images)
    assert [p.name for p in run.figures] == ["02_overview.png"]


def test_load_run_keeps_one_split(run_dir):
    assert len(load_run(run_dir, split="test").samples) == len(load_run(run_dir).samples)
    with pytest.raises(ValueError, match="split"):
        load_run(run_dir, split="train")


def test_load_run_follows_the_recorded_search_settings(run_dir, tmp_path):
    import shutil

    copy = Path(shutil.copytree(run_dir, tmp_path / "copy"))
    summary = json.loads((copy / "summary.json").read_text())
    summary["search"].update(split="test", threshold=0.95)
    (copy / "summary.json").write_text(json.dumps(summary))
    run = load_run(copy)
    assert not run.tags.to_numpy().any()  # every score is 0.2 or 0.9 < 0.95
    assert search_settings(run.summary) == {
        "min_size": 10,
        "min_drop": 0.3,
        "max_tags": 3,
        "split": "test",
        "threshold": 0.95,
        "necessity": {2: 0.1, 3: 0.05},
    }
    summary["search"]["split"] = "val"
    (copy / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(ValueError, match="split: no sample has split 'val'"):
        load_run(copy)
    assert len(load_run(copy, split="test").samples) == 180


def test_load_run_leaves_out_splits_that_were_never_tagged(run_dir, tmp_path):
    import shutil

    copy = Path(shutil.copytree(run_dir, tmp_path / "copy"))
    samples = pd.read_parquet(copy / "samples.parquet")
    held_out = samples.assign(id="h" + samples["id"], split="heldout")
    write_table(pd.concat([samples, held_out]), copy / "samples.parquet")
    run = load_run(copy)
    assert len(run.samples) == len(samples) and set(run.samples["split"]) == {"test"}
    assert len(load_run(copy, split="heldout").samples) == len(samples)


def test_load_run_names_the_missing_piece(tmp_path):
    with pytest.raises(ValueError, match="path: run directory .* does not exist"):
        load_run(tmp_path / "nope")
    tmp_path.joinpath("empty").mkdir()
    with pytest.raises(ValueError, match="samples.parquet is missing"):
        load_run(tmp_path / "empty")


def test_a_run_is_a_tagged_split_the_search_takes_whole(run_dir):
    run = load_run(run_dir)
    assert isinstance(run, TaggedSplit)
    members = run.ids[run.group_mask("dog", ("grass", "water"))]
    expected = run.samples.index[(run.labels == "dog") & run.tags["grass"] & run.tags["water"]]
    assert list(members) == list(expected)
    settings = search_settings(run.summary)
    found = primekit.find_failure_modes(
        run, **{k: settings[k] for k in ("min_size", "min_drop", "max_tags", "necessity")}
    )
    assert set(zip(found["class"], found["tags"])) == set(zip(run.modes["class"], run.modes["tags"]))


def test_a_run_is_a_folder_with_its_three_tables(run_dir, tmp_path):
    assert is_run(run_dir)
    assert not is_run(tmp_path)
    (tmp_path / RUN_FILES["samples"]).write_bytes(b"")
    assert not is_run(tmp_path)


def test_summary_is_written_atomically_as_plain_json(tmp_path):
    summary = {
        "n": np.int64(3),
        "accuracy": np.float64(0.8765432109),
        "nothing": float("nan"),
        "flag": np.bool_(True),
        "search": {"necessity": {2: 0.1}, "split": "val"},
        "sizes": (1, 2),
    }
    written = write_summary(tmp_path, summary)
    assert written == {
        "n": 3,
        "accuracy": 0.876543,
        "nothing": None,
        "flag": True,
        "search": {"necessity": {"2": 0.1}, "split": "val"},
        "sizes": [1, 2],
    }
    assert read_summary(tmp_path) == written
    assert sorted(p.name for p in tmp_path.iterdir()) == [RUN_FILES["summary"]]
    assert search_settings(written) == {"split": "val", "necessity": {2: 0.1}}
    with pytest.raises(TypeError, match="summary"):
        write_summary(tmp_path, [1, 2])


def test_summary_reading_names_the_problem(tmp_path):
    assert read_summary(tmp_path) == {}
    (tmp_path / RUN_FILES["summary"]).write_text("[1, 2]")
    with pytest.raises(ValueError, match="does not hold a JSON object"):
        read_summary(tmp_path)
    (tmp_path / RUN_FILES["summary"]).write_text("{nope")
    with pytest.raises(ValueError, match="cannot read"):
        read_summary(tmp_path)


def test_smoke_runs_are_recognised_both_ways():
    assert is_smoke_run({"smoke": True}) and is_smoke_run({"world": {"smoke": True}})
    assert not is_smoke_run({"world": {"smoke": False}}) and not is_smoke_run({})


def test_only_the_run_folder_module_spells_the_file_names():
    names = set(RUN_FILES.values())
    for path in sorted((ROOT / "primekit").rglob("*.py")):
        if path.name == "run_folder.py":
            continue
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        spelled = {
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and id(node) not in docstrings
            and isinstance(node.value, str)
        }
        assert not spelled & names, (path.name, spelled & names)


def test_templates_ship_with_the_package():
    """Every file of primekit/templates matches a package-data glob (non-editable installs)."""
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["primekit"]
    files = [p for p in (ROOT / "primekit" / "templates").iterdir() if p.is_file()]
    assert files
    for path in files:
        name = path.relative_to(ROOT / "primekit").as_posix()
        assert any(fnmatch(name, g) for g in globs), name


# ---------------------------------------------------------------------------------------------
# a run to look at: primekit.demo.ensure_run


@pytest.fixture()
def fake_demo(monkeypatch):
    """primekit.demo.run_demo replaced by the synthetic run maker; records its calls."""
    calls = []

    def run_demo(out, *, smoke=False):
        calls.append((out, smoke))
        make_run_dir(out)
        summary = json.loads((out / "summary.json").read_text())
        (out / "summary.json").write_text(json.dumps({**summary, "smoke": smoke}))

    monkeypatch.setattr(primekit.demo, "run_demo", run_demo)
    return calls


def test_ensure_run_keeps_an_existing_run(run_dir, fake_demo):
    assert ensure_run(run_dir) == run_dir
    assert ensure_run(run_dir, smoke=True) == run_dir
    assert fake_demo == []


def test_ensure_run_creates_a_missing_run_with_the_demo(tmp_path, fake_demo):
    fresh = tmp_path / "fresh"
    assert ensure_run(fresh) == fresh
    assert fake_demo == [(fresh, False)]
    assert ensure_run(fresh) == fresh and len(fake_demo) == 1


def test_ensure_run_keeps_smoke_runs_out_of_the_run_dir(tmp_path, fake_demo, monkeypatch):
    monkeypatch.setenv("PRIMEKIT_HOME", str(tmp_path / "home"))
    wanted = tmp_path / "runs" / "demo"
    got = ensure_run(wanted, smoke=True)
    assert got == tmp_path / "home" / "runs" / "demo-smoke"
    assert not wanted.exists()
    assert ensure_run(wanted, smoke=True) == got and len(fake_demo) == 1  # made once


def test_ensure_run_rebuilds_a_smoke_run_for_a_full_one(tmp_path, fake_demo):
    smoky = tmp_path / "smoky"
    make_run_dir(smoky)
    summary = json.loads((smoky / "summary.json").read_text())
    # as primekit.demo records it
    (smoky / "summary.json").write_text(json.dumps({**summary, "world": {"smoke": True}}))
    assert ensure_run(smoky, smoke=True) == smoky and fake_demo == []
    assert ensure_run(smoky) == smoky
    assert fake_demo == [(smoky, False)]
