"""The search benchmark's own machinery: a deterministic generator, peers that agree, a runner that runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

from generate import Scenario, generate  # noqa: E402
from peers import PEERS, brute_force  # noqa: E402

TINY = Scenario(3, 400, tags_per_class=16, mean_tags=5.0, seed=7)
PARAMS = {
    "min_size": 12,
    "min_drop": 0.25,
    "necessity": {2: 0.10, 3: 0.05, 4: 0.025},
    "max_tags": 4,
}


def keys(modes: pd.DataFrame) -> set:
    return set(
        zip(modes["class"], map(tuple, modes["tags"]), modes["size"].astype(int), strict=True)
    )


def test_generator_is_deterministic_and_seeded():
    a = generate(TINY)
    b = generate(TINY)
    pd.testing.assert_frame_equal(a[0], b[0])
    pd.testing.assert_series_equal(a[1], b[1])
    pd.testing.assert_series_equal(a[2], b[2])
    assert generate(TINY, return_planted=True)[3] == generate(TINY, return_planted=True)[3]
    assert not a[0].attrs  # attrs would be deep-copied by every pandas operation
    c = generate(TINY, seed=8)
    assert not a[0].equals(c[0].reindex(columns=a[0].columns, fill_value=False))


def test_generator_shapes_and_subsets():
    tags, labels, correct = generate(TINY)
    assert tags.shape[0] == 3 * 400 and tags.dtypes.eq(bool).all()
    assert tags.index.equals(labels.index) and tags.index.equals(correct.index)
    assert labels.value_counts().eq(400).all()
    assert 3.0 < tags.sum(axis=1).mean() < 7.0  # around mean_tags
    # A scenario with fewer classes is exactly the first classes of the bigger one.
    sub_tags, _, sub_correct = generate(TINY, n_classes=2)
    head = tags.iloc[: 2 * 400]
    pd.testing.assert_frame_equal(head[sub_tags.columns], sub_tags)
    assert not head.drop(columns=sub_tags.columns).to_numpy().any()
    assert (sub_correct.to_numpy() == correct.iloc[: 2 * 400].to_numpy()).all()


def test_peers_agree_with_brute_force_and_each_other():
    tags, labels, correct = generate(TINY)
    expected = keys(brute_force(tags, labels, correct, **PARAMS))
    assert expected  # the planted failures make the problem non-trivial
    for name, peer in PEERS.items():
        assert keys(peer(tags, labels, correct, **PARAMS)) == expected, name
    # a subset of classes gives the subset of the modes
    one = sorted(labels.unique())[:1]
    got = keys(PEERS["pure Python"](tags, labels, correct, classes=one, **PARAMS))
    assert got == {k for k in expected if k[0] in one}


def test_primekit_agrees_with_peers():
    primekit = pytest.importorskip("primekit")
    if not hasattr(primekit, "find_failure_modes"):
        pytest.skip("primekit.find_failure_modes not available")
    tags, labels, correct = generate(TINY)
    expected = keys(brute_force(tags, labels, correct, **PARAMS))
    assert keys(primekit.find_failure_modes(tags, labels, correct, **PARAMS)) == expected


def test_runner_quick_mode_runs(tmp_path):
    out = tmp_path / "bench.md"
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH / "run.py"),
            "--quick",
            "--scenario",
            "tiny",
            "--markdown",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report = out.read_text()
    assert "| tiny | primekit (n_jobs=1) |" in report
    for name in PEERS:
        assert f"| tiny | {name} |" in report
    assert "NO:" not in report


def test_recovery_benchmark_on_smoke_worlds(primekit_home, tmp_path):
    """benchmarks/recovery.py: per (seed, min_size, filter level) precision/recall, the frontier plot."""
    import recovery  # benchmarks/ is on sys.path (top of this module)

    modes = recovery.measure([0], [8, 10], smoke=True)
    assert {"q_value", "real", "clear", "test_drop"} <= set(modes.columns)
    scores = recovery.score(modes)
    paper = scores[scores["filter"] == "paper"]
    assert list(paper["min_size"]) == [8, 10]
    assert scores["precision"].dropna().between(0, 1).all() and scores["recall"].dropna().between(0, 1).all()
    # a larger min_size can only drop modes (the search is monotone in s), a stricter level too
    assert paper["modes"].iloc[1] <= paper["modes"].iloc[0]
    for _, g in scores[scores["level"].notna()].groupby("min_size"):
        assert g.sort_values("level")["modes"].is_monotonic_increasing
        assert g.loc[g["level"] == 1.0, "modes"].iloc[0] == paper.loc[paper["min_size"] == g["min_size"].iloc[0], "modes"].iloc[0]
    text = recovery.markdown(scores, max_q=0.1)
    assert "| 10 | paper | 1 |" in text and "| 10 | q<=0.1 | 1 |" in text
    ax = recovery.plot_frontier(scores, max_q=0.1)
    assert len(ax.lines) == 2
    envelope = recovery.score(modes, recovery.P_THRESHOLDS, column="p_value")
    assert set(envelope["filter"]) == {f"p<={t:g}" for t in recovery.P_THRESHOLDS}
    for _, g in envelope.groupby("min_size"):
        assert g.sort_values("level")["modes"].is_monotonic_increasing
    assert "| p <= |" in recovery.envelope_table(envelope)
    assert len(recovery.plot_frontier(scores, max_q=0.1, envelope=envelope).lines) == 4
    errors = recovery.calibration(modes, max_q=0.1)
    assert set(errors["estimate"]) == {"drop", "expected_drop"} and set(errors["target"]) == {"test_drop", "oracle_drop"}
    paper_rows = errors[(errors["modes"] == "paper") & (errors["target"] == "oracle_drop")]
    assert (paper_rows["n"].between(1, len(modes))).all()  # every mode has an oracle group, bar empty ones
    with pytest.raises(SystemExit):
        recovery.main(["--min-size", "0"])
    with pytest.raises(SystemExit):
        recovery.main(["--max-q", "0.123"])


def test_sliceline_peer_returns_its_top_slices():
    """The timing-only SliceLine peer: k slices per class, each at least min_size images, whose
    reported accuracy is that of its images (absent tags appear as "not <tag>")."""
    from peers import TIMING_ONLY

    tags, labels, correct = generate(Scenario(2, 300, tags_per_class=8, mean_tags=3.0, seed=2))
    import resource

    before = resource.getrlimit(resource.RLIMIT_AS)
    out = TIMING_ONLY["SliceLine top-K"](tags, labels, correct, min_size=20, k=5)
    assert resource.getrlimit(resource.RLIMIT_AS) == before  # the address-space cap is lifted
    with pytest.raises(TypeError, match="min_dorp"):
        TIMING_ONLY["SliceLine top-K"](tags, labels, correct, min_dorp=0.3)
    assert set(out["class"]) == set(labels) and (out.groupby("class").size() <= 5).all()
    assert (out["size"] >= 20).all() and out["n_tags"].between(1, 4).all()
    row = out.iloc[0]
    mask = (labels == row["class"]).to_numpy().copy()
    for t in row["tags"]:
        mask &= ~tags[t[4:]].to_numpy() if t.startswith("not ") else tags[t].to_numpy()
    assert mask.sum() == row["size"] and correct[mask].mean() == pytest.approx(row["accuracy"])


def test_slice_methods_benchmark_on_the_smoke_world(primekit_home):
    """benchmarks/slice_methods.py: PRIME, DOMINO and failure directions timed in one run."""
    import slice_methods

    table = slice_methods.measure(smoke=True, repeat=1)
    assert list(table["method"])[0].startswith("PRIME") and len(table) == 4
    assert (table["seconds"] > 0).all() and table["x PRIME"].iloc[0] == 1.0
    assert "| DOMINO |" in slice_methods.markdown(table)


def test_long_tables_search_to_every_planted_failure_mode(tmp_path):
    """benchmarks/scale.py's generator and check: the CLI on the two Parquet files."""
    import scale

    from primekit.cli import main
    from primekit.search import read_modes

    summary = scale.write_long(scale.imagenet(4, 500), tmp_path)
    assert summary["images"] == 4 * 1280 and summary["tag_rows"] > summary["present_rows"]
    out = tmp_path / "modes.parquet"
    argv = ["search", "--samples", str(tmp_path / "samples.parquet"), "--tags",
            str(tmp_path / "tags.parquet"), "--out", str(out), "--min-size", "30"]
    assert main(argv) == 0
    check = scale.planted_check(summary, read_modes(out))
    assert check["qualify"] >= 4 and check["found"] == check["qualify"] and not check["missed"]


@pytest.mark.parametrize("scenario", ["tiny", "tiny-by-tag"])
def test_overhead_splits_a_call_into_the_kernel_and_its_parts(tmp_path, scenario):
    out = tmp_path / "overhead.json"
    done = subprocess.run(
        [sys.executable, str(BENCH / "overhead.py"), "--scenario", scenario, "--repeat", "1",
         "--json", str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    (result,) = json.loads(out.read_text())
    phases = result["phases"]
    assert result["modes"] > 0 and phases["kernel"] > 0
    parts = [v for k, v in phases.items() if k not in ("total", "kernel") and k[0] not in " ("]
    named = 5 if scenario.endswith("by-tag") else 4  # the tag-major call packs in two parts
    assert len(parts) == named + 1 and all(v >= 0 for v in parts[:-1])  # and "other"
    if scenario.endswith("by-tag"):  # the tag-major packer ran, the row packer did not
        assert phases["pack classes (one sweep of the tag lines)"] > 0
        assert "pack classes (bitsets)" not in phases
    assert sum(parts) + phases["kernel"] == pytest.approx(phases["total"])
    assert "overhead" in done.stdout and f"{scenario} [after]" in done.stdout


def test_sliceline_peer_runs_in_a_process_that_maps_more_than_its_cap():
    """The peer's address-space cap leaves room above what the process maps already: a process
    with 9 GiB reserved (a Ray session in the same test run reserves ~14 GB) still runs it."""
    code = (
        "import mmap, sys; sys.path.insert(0, sys.argv[1]); reserved = mmap.mmap(-1, 9 << 30)\n"
        "from generate import Scenario, generate; from peers import TIMING_ONLY\n"
        "tags, labels, correct = generate(Scenario(2, 300, tags_per_class=8, mean_tags=3.0, seed=2))\n"
        "out = TIMING_ONLY['SliceLine top-K'](tags, labels, correct, min_size=20, k=5)\n"
        "print(len(out))"
    )
    done = subprocess.run([sys.executable, "-c", code, str(BENCH)], capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split()[-1]) > 0
