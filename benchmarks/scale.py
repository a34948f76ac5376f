"""ImageNet scale from the tag table: ``primekit search`` as a whole process against the floor.

    .venv/bin/python benchmarks/scale.py                    # ImageNet shape: targets (a few minutes)
    .venv/bin/python benchmarks/scale.py --classes 100      # a smaller problem, same shape per class
    .venv/bin/python benchmarks/scale.py --phases           # where the time goes, in process
    .venv/bin/python benchmarks/scale.py --living17         # Living17, 25 tags/image, 2 threads
    .venv/bin/python benchmarks/scale.py --dense 100        # the old dense-matrix path, 100 classes
    .venv/bin/python benchmarks/scale.py --curve            # classes 10 -> 1,000, vocabulary 1,000 -> 20,000

The problem is what a user has after tagging ImageNet-1k with RAM++: 1,000 classes x 1,280 images,
a 4,585-tag vocabulary with Zipf-like popularity, ~10 present tags per image plus a few scores under
the threshold, three planted failures (1, 2 and 3 tags) per class (``generate.write_long``); two
Parquet files, ``samples.parquet`` (id, label, correct) and ``tags.parquet`` (id, tag, score),
cached under ``build/bench-scale/``.

Measured in the same run:

- **floor**: reading both tables with pyarrow and counting images per (class, tag) of the present
  tags, work any search must do (in this process, best of 2, the files in the page cache);
- **CLI**: ``primekit search --samples ... --tags ... --out ...`` as a whole process (interpreter
  start, imports, numba's cached kernels, reading, search, writing) under ``/usr/bin/time -v``: wall
  seconds, CPU seconds and peak resident memory;
- **planted**: every planted failure whose images reach ``s`` with an accuracy at least ``a`` below
  its class's is found, as itself or as a subset of its tags (a subset that fails on its own is
  the minimal mode PRIME reports instead).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import re
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from generate import LIVING17_CLASSES, Scenario, generate, write_long  # noqa: E402

PARAMS = {"min_size": 30, "min_drop": 0.30, "max_tags": 4}
NECESSITY = {2: 0.10, 3: 0.05, 4: 0.025}  # the default b_k
TARGETS = {"floor ratio": 5.0, "peak GB": 3.0, "living17 seconds": 0.3}
CACHE = ROOT / "build" / "bench-scale"
PRIMEKIT = str(Path(sys.executable).with_name("primekit"))


def imagenet(n_classes: int = 1000, vocabulary: int = 4585, seed: int = 0) -> Scenario:
    """The ImageNet-shaped scenario (per class exactly the same data whatever ``n_classes``)."""
    return Scenario(
        n_classes, 1280, tags_per_class=100, mean_tags=10.0, pool_size=vocabulary,
        planted=(1, 1, 1), seed=seed,
    )  # fmt: skip


def prepare(scenario: Scenario, log) -> tuple[Path, dict]:
    """The scenario's two Parquet files (generated once, then cached) and its summary."""
    key = f"c{scenario.n_classes}-v{scenario.pool_size}-s{scenario.seed}"
    folder = CACHE / key
    meta = folder / "summary.json"
    if meta.exists():
        summary = json.loads(meta.read_text())
        if summary.get("scenario") == json.loads(json.dumps(asdict(scenario))):
            return folder, summary
    log(f"generating {key} ...")
    started = time.perf_counter()
    summary = write_long(scenario, folder)
    summary["scenario"] = asdict(scenario)
    summary["generate seconds"] = round(time.perf_counter() - started, 1)
    meta.write_text(json.dumps(summary, default=list))
    return folder, json.loads(meta.read_text())


def floor(folder: Path, threshold: float = 0.5) -> tuple[float, float]:
    """(wall, CPU) seconds to read both tables with pyarrow and count images per (class, tag).

    The best of two runs; CPU is the process's (Arrow's threads included).
    """
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    best, cpu = np.inf, np.inf
    for _ in range(2):
        started, cpu_started = time.perf_counter(), time.process_time()
        samples = pq.read_table(folder / "samples.parquet", columns=["id", "label"])
        tags = pq.read_table(folder / "tags.parquet")
        tags = tags.filter(pc.greater_equal(tags["score"], threshold))
        joined = tags.select(["id", "tag"]).join(samples, "id")
        counts = joined.group_by(["label", "tag"]).aggregate([("id", "count")])
        best = min(best, time.perf_counter() - started)
        cpu = min(cpu, time.process_time() - cpu_started)
    assert counts.num_rows > 0
    return best, cpu


def run_cli(folder: Path, out: Path, *, n_jobs: int = 2, extra: tuple = ()) -> dict:
    """``primekit search`` as a whole process under ``/usr/bin/time -v``."""
    cmd = [
        "/usr/bin/time", "-v", PRIMEKIT, "search",
        "--samples", str(folder / "samples.parquet"), "--tags", str(folder / "tags.parquet"),
        "--out", str(out), "--min-size", str(PARAMS["min_size"]),
        "--min-drop", str(PARAMS["min_drop"]), "--n-jobs", str(n_jobs), *extra,
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return {"command": " ".join(cmd[2:]), **_time_v(done.stderr)}


def _time_v(text: str) -> dict:
    def field(name: str) -> str:
        return re.search(rf"{re.escape(name)}: (.+)", text).group(1).strip()

    wall = 0.0
    for part in field("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":"):
        wall = wall * 60 + float(part)
    return {
        "seconds": wall,
        "cpu": float(field("User time (seconds)")) + float(field("System time (seconds)")),
        "peak GB": int(field("Maximum resident set size (kbytes)")) * 1024 / 1e9,
    }


def planted_check(summary: dict, modes: pd.DataFrame) -> dict:
    """Planted failures that are failure modes by PRIME's definition, and whether they were found.

    A planted conjunction qualifies when its images reach ``s``, its accuracy is at least ``a``
    below its class's and every tag is needed (removing one raises the accuracy by ``b_k``); it
    must then be in the mode table. One that fails the necessity test because a subset of its tags
    fails on its own is covered when that subset is a mode.
    """
    by_class: dict = {}
    for cls, tags in zip(modes["class"], modes["tags"]):
        by_class.setdefault(cls, set()).add(tuple(sorted(tags)))
    tol = 1e-9
    out = {"planted": len(summary["planted"]), "qualify": 0, "found": 0, "covered by a subset": 0,
           "not a mode (necessity)": 0, "missed": []}  # fmt: skip
    for cls, tags, _fail, size, acc, class_acc, without in summary["planted"]:
        if size < PARAMS["min_size"] or acc > class_acc - PARAMS["min_drop"] + tol:
            continue
        key, found = tuple(sorted(tags)), by_class.get(cls, set())
        need = NECESSITY.get(len(tags), 0.0)
        if all(w >= acc + need - tol for w in without):
            out["qualify"] += 1
            if key in found:
                out["found"] += 1
            else:
                out["missed"].append((cls, key))
        elif any(set(m) < set(key) for m in found):
            out["covered by a subset"] += 1
        else:
            out["not a mode (necessity)"] += 1
    return out


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def bench_imagenet(args, log) -> list[str]:
    from primekit.search import read_modes

    scenario = imagenet(args.classes, args.vocabulary)
    folder, summary = prepare(scenario, log)
    lines = [
        f"problem: {scenario.n_classes:,} classes x {scenario.n_per_class:,} images, vocabulary "
        f"{summary['vocabulary']:,} tags, {summary['tag_rows']:,} tag rows "
        f"({summary['present_rows']:,} present), {len(summary['planted']):,} planted failures",
    ]
    log(f"load before: {load()}")
    floor_s, floor_cpu = floor(folder)
    out = folder / "modes.parquet"
    cli = run_cli(folder, out, n_jobs=args.n_jobs)
    modes = read_modes(out)
    check = planted_check(summary, modes)
    ratio = cli["seconds"] / floor_s
    lines += [
        f"load average during the run: {load()}",
        f"floor (pyarrow read + count per class and tag, in process): {floor_s:.2f} s wall, "
        f"{floor_cpu:.2f} s CPU",
        f"CLI `{cli['command']}`: {cli['seconds']:.2f} s wall, {cli['cpu']:.2f} s CPU, "
        f"peak RSS {cli['peak GB']:.2f} GB, {len(modes):,} modes",
        f"CLI / floor: {ratio:.1f}x wall, {cli['cpu'] / floor_cpu:.1f}x CPU (target <= "
        f"{TARGETS['floor ratio']:.0f}x: {'PASS' if ratio <= TARGETS['floor ratio'] else 'FAIL'})",
        f"peak RSS {cli['peak GB']:.2f} GB (target <= {TARGETS['peak GB']:.0f} GB: "
        f"{'PASS' if cli['peak GB'] <= TARGETS['peak GB'] else 'FAIL'})",
        f"planted: {check['planted']:,}; failure modes by definition (size >= s, drop >= a, every "
        f"tag needed) {check['qualify']:,}, found {check['found']:,}, missed "
        f"{len(check['missed'])} ({'PASS' if not check['missed'] else 'FAIL'}); others: "
        f"{check['covered by a subset']:,} covered by a failing subset (a mode), "
        f"{check['not a mode (necessity)']:,} not a mode (a tag is not needed)"
        + (f": {check['missed'][:5]}" if check["missed"] else ""),
    ]
    return lines


class Phases:
    """Thread CPU time spent in named functions while active (monkeypatched wrappers, n_jobs=1)."""

    def __init__(self, targets: dict[str, tuple[object, str]]) -> None:
        self.targets = targets
        self.seconds = dict.fromkeys(targets, 0.0)

    def __enter__(self) -> Phases:
        self.saved = {}
        for name, (owner, attr) in self.targets.items():
            original = getattr(owner, attr)
            self.saved[name] = original

            def clocked(*a, _original=original, _name=name, **kw):
                # CPU time of this thread: on a loaded machine, what the wall time is when idle
                started = time.thread_time()
                try:
                    return _original(*a, **kw)
                finally:
                    self.seconds[_name] += time.thread_time() - started

            setattr(owner, attr, clocked)
        return self

    def __exit__(self, *exc) -> None:
        for name, (owner, attr) in self.targets.items():
            setattr(owner, attr, self.saved[name])


def phases(tags, labels, correct, *, n_jobs: int = 1, repeat: int = 3) -> dict:
    """Best-of-``repeat`` CPU seconds of a public call and of its phases (n_jobs=1: one thread)."""
    import primekit
    from primekit import _bitsets, _class_search, _engine
    from primekit import search as search_module

    targets = {
        "encode": (search_module, "encode_long_table"),
        "  samples (labels, ids)": (_bitsets, "_samples"),
        "  batch codes": (_bitsets._Codes, "add"),
        "  id lookup": (_bitsets._Codes, "positions"),
        "  repeat check, count by class": (_bitsets, "_first_pass"),
        "  group by class": (_bitsets, "_place"),
        "pack classes (bitsets)": (_bitsets.LongTags, "class_bits"),
        "kernel (numba search)": (_engine, "search_class"),
        "result table and descriptions": (_class_search, "_table"),
    }
    if not _bitsets.is_long_table(tags):
        targets = {
            "encode": (search_module, "as_split"),
            "pack classes (bitsets)": (_class_search, "_class_data"),
            "kernel (numba search)": (_engine, "search_class"),
            "result table and descriptions": (_class_search, "_table"),
        }
    best: dict = {}
    for _ in range(repeat):
        with Phases(targets) as clock:
            started = time.thread_time()
            primekit.find_failure_modes(tags, labels, correct, n_jobs=n_jobs, **PARAMS)
            total = time.thread_time() - started
        if not best or total < best["total"]:
            best = {"total": total, **clock.seconds}
    best["other (settings, threads, glue)"] = best["total"] - sum(
        v for k, v in best.items() if k != "total" and not k.startswith(" ")
    )
    return best


def bench_phases(args, log) -> list[str]:
    import pyarrow.parquet as pq

    import primekit
    from primekit.samples import read_samples

    folder, _ = prepare(imagenet(args.classes, args.vocabulary), log)
    samples = read_samples(folder / "samples.parquet")
    index = pd.Index(samples["id"])
    labels = pd.Series(samples["label"].to_numpy(), index=index)
    correct = pd.Series(samples["correct"].to_numpy(bool), index=index)
    primekit.find_failure_modes(folder / "tags.parquet", labels, correct, **PARAMS)  # warm up
    lines = [f"load average: {load()}"]
    inputs = {
        "Parquet path": folder / "tags.parquet",
        "pyarrow Table (read with dictionaries)": pq.read_table(
            folder / "tags.parquet", read_dictionary=["id", "tag"]
        ),
    }
    for name, tags in inputs.items():
        result = phases(tags, labels, correct)
        lines.append(f"{name}: " + ", ".join(f"{k} {v:.3f} s" for k, v in result.items()))
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        primekit.find_failure_modes(folder / "tags.parquet", labels, correct, **PARAMS)
        profiler.disable()
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(25)
    return lines


def bench_living17(args, log) -> list[str]:
    import pyarrow as pa

    import primekit

    tags, labels, correct = generate(
        Scenario(17, 5200, mean_tags=25.0, class_names=LIVING17_CLASSES)
    )
    long = primekit.matrix_to_tags(tags)
    table = pa.Table.from_pandas(long.astype({"id": "category", "tag": "category"}))
    primekit.find_failure_modes(table, labels, correct, n_jobs=2, **PARAMS)  # warm up
    lines = [f"load average: {load()}"]
    for name, data in {"boolean matrix": tags, "long table (pyarrow)": table}.items():
        for n_jobs in (1, 2):
            best = min(_seconds(data, labels, correct, n_jobs) for _ in range(7))
            lines.append(f"living17-25, {name}, n_jobs={n_jobs}: {best:.3f} s")
        result = phases(data, labels, correct, repeat=5)
        lines.append("  phases at n_jobs=1: " + ", ".join(f"{k} {v:.3f} s" for k, v in result.items()))
    return lines


def _seconds(data, labels, correct, n_jobs: int) -> float:
    import primekit

    started = time.perf_counter()
    primekit.find_failure_modes(data, labels, correct, n_jobs=n_jobs, **PARAMS)
    return time.perf_counter() - started


DENSE_SCRIPT = """
import sys
from primekit.samples import load_search_inputs
from primekit.search import find_failure_modes, write_modes
matrix, labels, correct = load_search_inputs(sys.argv[1], sys.argv[2])
write_modes(find_failure_modes(matrix, labels, correct, min_size=30, min_drop=0.3, n_jobs=2),
            sys.argv[3])
"""


def bench_dense(args, log) -> list[str]:
    """The path before the long table: the dense matrix first (small scale only: 12.5 GB at 1,000)."""
    from primekit.search import read_modes

    folder, _ = prepare(imagenet(args.dense, args.vocabulary), log)
    lines = [f"load average: {load()}"]
    cmd = ["/usr/bin/time", "-v", sys.executable, "-c", DENSE_SCRIPT,
           str(folder / "samples.parquet"), str(folder / "tags.parquet"), str(folder / "dense.parquet")]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    dense = _time_v(done.stderr)
    cli = run_cli(folder, folder / "modes.parquet")
    same = read_modes(folder / "dense.parquet").equals(read_modes(folder / "modes.parquet"))
    lines += [
        f"{args.dense} classes, dense matrix first: {dense['seconds']:.2f} s, "
        f"peak {dense['peak GB']:.2f} GB",
        f"{args.dense} classes, long table (CLI): {cli['seconds']:.2f} s, "
        f"peak {cli['peak GB']:.2f} GB; same modes: {same}",
    ]
    return lines


def bench_curve(args, log) -> list[str]:
    """CLI and floor over classes (vocabulary 4,585) and vocabulary (1,000 classes); a plot."""
    points = {"classes": [10, 30, 100, 300, 1000], "vocabulary": [1000, 2000, 4585, 10000, 20000]}
    rows = []
    for axis, values in points.items():
        for value in values:
            scenario = imagenet(value) if axis == "classes" else imagenet(1000, value)
            folder, summary = prepare(scenario, log)
            floor_s, floor_cpu = floor(folder)
            cli = run_cli(folder, folder / "modes.parquet")
            rows.append({"axis": axis, "value": value, "tag rows": summary["tag_rows"],
                         "floor s": floor_s, "floor cpu s": floor_cpu, "cli s": cli["seconds"],
                         "cli cpu s": cli["cpu"], "peak GB": cli["peak GB"],
                         "load": load()})  # fmt: skip
            log(f"{axis}={value}: {rows[-1]}")
    table = pd.DataFrame(rows)
    table.to_csv(HERE / "scale_curve.csv", index=False)
    plot_curve(table, load())
    return [table.to_string(index=False)]


def plot_curve(table: pd.DataFrame, load_text: str) -> None:
    """``scale_curve.png``: CPU and wall seconds of the search and the floor, and peak RSS."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, axis in zip(axes, ("classes", "vocabulary")):
        part = table[table["axis"] == axis]
        ax.plot(part["value"], part["cli cpu s"], "o-", color="C0",
                label="primekit search, whole process (CPU s)")
        ax.plot(part["value"], part["floor cpu s"], "s-", color="C1",
                label="pyarrow read + count, the floor (CPU s)")
        ax.plot(part["value"], part["cli s"], "o:", color="C0", alpha=0.5, label="search (wall s)")
        ax.plot(part["value"], part["floor s"], "s:", color="C1", alpha=0.5, label="floor (wall s)")
        twin = ax.twinx()
        twin.plot(part["value"], part["peak GB"], "^--", color="grey", label="search peak RSS (GB)")
        twin.set_ylabel("peak RSS (GB)")
        twin.set_ylim(0, max(3.0, part["peak GB"].max() * 1.1))
        ax.set_xscale("log")
        ax.set_xlabel("classes (1,280 images each, 4,585 tags)" if axis == "classes"
                      else "vocabulary (1,000 classes)")
        ax.set_ylabel("seconds")
        ax.set_ylim(bottom=0)
        if axis == "classes":
            handles = ax.get_legend_handles_labels()
            extra = twin.get_legend_handles_labels()
            ax.legend(handles[0] + extra[0], handles[1] + extra[1], loc="upper left", fontsize=7)
    fig.suptitle(f"primekit search on the long tag table, 2 shared cores (load {load_text})")
    fig.tight_layout()
    fig.savefig(HERE / "scale_curve.png", dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--vocabulary", type=int, default=4585)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--phases", action="store_true", help="time the phases in process")
    parser.add_argument("--profile", action="store_true", help="with --phases: cProfile too")
    parser.add_argument("--living17", action="store_true", help="Living17, 25 tags/image")
    parser.add_argument("--dense", type=int, default=0, metavar="N",
                        help="old dense path against the CLI on N classes")
    parser.add_argument("--curve", action="store_true", help="scaling curve and plot")
    parser.add_argument("--replot", metavar="LOAD", help="redraw scale_curve.png from the CSV")
    args = parser.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    if args.replot:
        plot_curve(pd.read_csv(HERE / "scale_curve.csv"), args.replot)
        return 0
    if args.phases:
        lines = bench_phases(args, log)
    elif args.living17:
        lines = bench_living17(args, log)
    elif args.dense:
        lines = bench_dense(args, log)
    elif args.curve:
        lines = bench_curve(args, log)
    else:
        lines = bench_imagenet(args, log)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
