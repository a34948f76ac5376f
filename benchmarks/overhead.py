"""Where the time of a public search call goes: the numba kernel against everything around it.

    .venv/bin/python benchmarks/overhead.py                          # every scenario, this tree
    .venv/bin/python benchmarks/overhead.py --scenario imagenet-12   # one
    .venv/bin/python benchmarks/overhead.py --before ../old-tree     # and an older tree, same run

Issue 16 asks that everything outside the numba kernel (validation, encoding, packing, the result
table and its descriptions) costs no more than the kernel itself at Living17 and ImageNet scale.
For each scenario a child process generates the input (``run.py``'s scenarios for the boolean
matrix, ``scale.py``'s ImageNet-shaped long table), calls ``primekit.find_failure_modes`` once to
load numba's cached kernels, then times ``--repeat`` calls at ``n_jobs=1`` with **fresh** sample
ids each time (new ``pd.Index`` objects: pandas caches an index's uniqueness, which would hide the
duplicate-id check a user's first call pays). Reported per call, the best of the repeats: CPU
seconds of the calling thread (on a loaded machine, what the wall time is on an idle core) in the
kernel (``_engine.search_class``) and in each part around it.

One-time costs of a process (importing primekit, loading the cached kernels on the first call) are
measured apart: a user pays them once per process, not per call (``--once``).

With ``--before DIR`` every scenario also runs on the package in ``DIR`` (e.g. ``git worktree add
DIR <commit>``), alternating with this tree, so that both see the same machine load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

MATRIX = ("living17-12", "living17-25", "imagenet-12")
#: the same matrices stored tag by tag, as a frame read from Parquet or built column by column has
#: them (``to_numpy()`` is Fortran-ordered)
BY_TAG = tuple(f"{name}-by-tag" for name in MATRIX)
LONG = ("living17-25-long", "imagenet-long")
SCENARIOS = MATRIX + BY_TAG + LONG
TINY = "tiny"  # run.py's test scenario: for the tests only, not in the default run
TINY_BY_TAG = "tiny-by-tag"

#: the parts both input forms end with: the one engine and the one result table
SHARED_PARTS = {
    "kernel": ("primekit._engine", "", "search_class"),
    "result table and descriptions": ("primekit._class_search", "", "_table"),
}
#: the parts of a call on a boolean matrix: name -> (module, owner attribute path, function)
MATRIX_PARTS = {
    "validate (ids, matrix, labels, correct)": ("primekit.search", "", "as_split"),
    "class codes and rows": ("primekit.split", "TaggedSplit", "class_rows"),
    "pack classes (bitsets)": ("primekit._class_search", "", "_class_data"),
    **SHARED_PARTS,
}
#: a tag-major matrix: one sweep packs every class, then each class's candidates are cut out
BY_TAG_PARTS = {
    **{k: v for k, v in MATRIX_PARTS.items() if not k.startswith("pack")},
    "pack classes (one sweep of the tag lines)": ("primekit._tag_major", "TagMajorBits", "__init__"),
    "cut out each class (candidates, error rows)": ("primekit._tag_major", "TagMajorBits", "class_bits"),
}
LONG_PARTS = {
    "encode (read, ids, group by class)": ("primekit.search", "", "encode_long_table"),
    "  samples (labels, ids, correct)": ("primekit._bitsets", "", "_samples"),
    "  batch codes": ("primekit._bitsets", "_Codes", "add"),
    "  id lookup": ("primekit._bitsets", "_Codes", "positions"),
    "  repeat check": ("primekit._bitsets", "", "_check_repeats"),  # before this session
    "  count by class": ("primekit._bitsets", "", "_count"),  # before this session
    "  repeat check, count by class": ("primekit._bitsets", "", "_first_pass"),
    "  group by class": ("primekit._bitsets", "", "_place"),
    "pack classes (bitsets)": ("primekit._bitsets", "LongTags", "class_bits"),
    **SHARED_PARTS,
}


def _targets(parts: dict) -> dict:
    """(owner, attribute) of every part that exists in the imported primekit (older trees lack some)."""
    import importlib

    out = {}
    for name, (module, owner, attr) in parts.items():
        try:
            obj = importlib.import_module(module)
        except ImportError:
            continue
        for piece in filter(None, owner.split(".")):
            obj = getattr(obj, piece, None)
        if obj is not None and hasattr(obj, attr):
            out[name] = (obj, attr)
    return out


def _inputs(name: str):
    """(tags, labels, correct, search settings) of a scenario."""
    if name in (*MATRIX, *BY_TAG, TINY, TINY_BY_TAG):
        from generate import generate
        from run import SCENARIOS as RUN_SCENARIOS

        scenario, params = RUN_SCENARIOS[name.removesuffix("-by-tag")]
        tags, labels, correct = generate(scenario)
        if name.endswith("-by-tag"):
            tags = pd.DataFrame(np.asfortranarray(tags.to_numpy()), tags.index, tags.columns)
            assert not tags.to_numpy().flags.c_contiguous
        return tags, labels, correct, params
    from scale import PARAMS, imagenet, prepare

    if name == "imagenet-long":
        folder, _ = prepare(imagenet(), lambda m: print(m, file=sys.stderr))
        samples = pd.read_parquet(folder / "samples.parquet")
        index = pd.Index(samples["id"], name="id")
        labels = pd.Series(samples["label"].to_numpy(), index=index)
        correct = pd.Series(samples["correct"].to_numpy(bool), index=index)
        return folder / "tags.parquet", labels, correct, PARAMS
    import pyarrow as pa
    from generate import LIVING17_CLASSES, Scenario, generate

    import primekit

    tags, labels, correct = generate(Scenario(17, 5200, mean_tags=25.0, class_names=LIVING17_CLASSES))
    long = primekit.matrix_to_tags(tags)
    table = pa.Table.from_pandas(long.astype({"id": "category", "tag": "category"}))
    return table, labels, correct, PARAMS


def _fresh(tags, labels, correct):
    """The same inputs with new, uncached index objects (pandas caches an index's uniqueness)."""
    ids = labels.index.to_numpy()
    index = pd.Index(ids, name=labels.index.name)
    if isinstance(tags, pd.DataFrame):
        tags = tags.set_axis(index, axis=0)  # copy-on-write: the data are not copied
    return tags, labels.set_axis(index), correct.set_axis(index)


def child(name: str, repeat: int) -> dict:
    """Run in a child process: the phases of ``repeat`` fresh calls, the best (by total) kept."""
    from scale import Phases

    import primekit

    tags, labels, correct, params = _inputs(name)
    parts = LONG_PARTS if name in LONG else BY_TAG_PARTS if name.endswith("-by-tag") else MATRIX_PARTS
    started = time.thread_time()
    modes = primekit.find_failure_modes(tags, labels, correct, n_jobs=1, **params)
    first = time.thread_time() - started
    best: dict = {}
    for _ in range(repeat):
        args = _fresh(tags, labels, correct)
        with Phases(_targets(parts)) as clock:
            started = time.thread_time()
            primekit.find_failure_modes(*args, n_jobs=1, **params)
            total = time.thread_time() - started
        if not best or total < best["total"]:
            best = {"total": total, **clock.seconds}
    if isinstance(tags, pd.DataFrame):  # reference: one read of the input matrix, nothing else
        matrix = tags.to_numpy()
        best["(one read of the matrix: np.count_nonzero)"] = min(
            _cpu(np.count_nonzero, matrix) for _ in range(repeat)
        )
    kernel = best.get("kernel", float("nan"))
    top = [k for k in best if k not in ("total", "kernel") and not k.startswith((" ", "("))]
    best["other (settings, per-class glue)"] = best["total"] - kernel - sum(best[k] for k in top)
    return {
        "scenario": name,
        "modes": len(modes),
        "first call": first,
        "overhead": best["total"] - kernel,
        "ratio": (best["total"] - kernel) / kernel,
        "phases": best,
        "load": os.getloadavg()[0],
        "primekit": str(Path(primekit.__file__).parent.parent),
    }


def _cpu(fn, *args) -> float:
    started = time.thread_time()
    fn(*args)
    return time.thread_time() - started


def once() -> dict:
    """One-time costs in fresh interpreters: ``import primekit``, and the first call's kernel load."""
    code = (
        "import time; t = time.perf_counter(); c = time.process_time(); import primekit; "
        "print(time.perf_counter() - t, time.process_time() - c)"
    )
    wall, cpu = min(
        (tuple(map(float, _python(["-c", code]).split())) for _ in range(3)), key=lambda x: x[1]
    )
    scipy = _python(["-c", "import primekit, sys; print('scipy' in sys.modules)"]).strip()
    return {"import primekit wall s": wall, "import primekit CPU s": cpu, "imports scipy": scipy}


def _python(args: list[str], env: dict | None = None) -> str:
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return done.stdout


def run_child(name: str, repeat: int, tree: Path | None) -> dict:
    env = dict(os.environ)
    if tree is not None:  # the older package first on the path; the benchmarks stay this tree's
        env["PYTHONPATH"] = os.pathsep.join([str(tree), str(HERE)])
    out = _python([str(Path(__file__)), "--child", name, "--repeat", str(repeat)], env)
    return json.loads(out.strip().splitlines()[-1])


def report(results: list[dict]) -> list[str]:
    lines = []
    for r in results:
        p = r["phases"]
        lines.append(
            f"{r['scenario']} [{r['label']}] (load {r['load']:.1f}, {r['modes']:,} modes): "
            f"call {p['total']:.3f} s CPU, kernel {p.get('kernel', float('nan')):.3f} s, "
            f"overhead {r['overhead']:.3f} s = {r['ratio']:.2f}x the kernel; first call in the "
            f"process {r['first call']:.2f} s"
        )
        for k, v in p.items():
            if k not in ("total", "kernel"):
                lines.append(f"    {k}: {v:.4f} s")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", action="append", choices=[*SCENARIOS, TINY, TINY_BY_TAG])
    parser.add_argument("--repeat", type=int, default=5, help="fresh calls per scenario (best of)")
    parser.add_argument("--before", type=Path, help="also time the package in this folder")
    parser.add_argument("--once", action="store_true", help="also the one-time costs")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.repeat)))
        return 0
    results = []
    for name in args.scenario or SCENARIOS:
        trees = ([("before", args.before.resolve())] if args.before else []) + [("after", None)]
        for label, tree in trees:
            result = run_child(name, args.repeat, tree)
            result["label"] = label
            results.append(result)
            print("\n".join(report([result])), file=sys.stderr, flush=True)
    lines = report(results)
    if args.once:
        lines.append(f"one-time: {once()}")
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
