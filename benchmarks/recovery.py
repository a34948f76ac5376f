"""Faithfulness over several toy worlds: precision and recall of PRIME's modes against each world's
oracle split, one world per seed, with the demo's settings.

    .venv/bin/python benchmarks/recovery.py                          # seeds 0-4, s = 40 50 60
    .venv/bin/python benchmarks/recovery.py --seeds 0 1 --min-size 50 --markdown build/recovery.md

A single world's precision and recall move by +-0.1 with its seed: the modes near the thresholds
(a drop near a, a necessity margin near b) fall on either side of them by the sampling noise of
val (about +-0.06 on a 2-tag group of 60 images). The mean over seeds is the number to trust; the
demo's default ``min_size`` is the one with the best mean over seeds, not over seed 0.

Each world is built (or reused from ``$PRIMEKIT_HOME``) and its classifier trained exactly as
``primekit demo --seed N`` does (2-3 minutes per cold world on 2 cores, seconds when cached); the
tags are the ground truth (the demo's default).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd


def measure(seeds: list[int], min_sizes: list[int], *, smoke: bool = False, progress: bool = False) -> pd.DataFrame:
    """One row per (seed, min_size): accuracy, modes by number of tags, precision, recall.

    ``smoke``: the tiny world and 2-epoch classifier of ``primekit demo --smoke`` (for tests)."""
    from primekit import find_failure_modes
    from primekit import toyworld as tw
    from primekit.study import search_defaults

    rows = []
    for seed in seeds:
        t0 = time.perf_counter()
        world = tw.build_world(seed=seed, smoke=smoke, progress=progress)
        config = tw.ClassifierConfig(epochs=2, seed=seed) if smoke else tw.ClassifierConfig(seed=seed)
        val = tw.predict(world, "val", config=config, progress=progress).set_index("id")
        tags = world.attributes("val")
        labels, correct = val["label"].reindex(tags.index), val["correct"].reindex(tags.index)
        defaults = search_defaults(smoke)
        settings = {k: defaults[k] for k in ("min_drop", "necessity", "max_tags")}
        built = time.perf_counter() - t0
        for s in min_sizes:
            t1 = time.perf_counter()
            modes = find_failure_modes(tags, labels, correct, min_size=s, **settings)
            rec = tw.evaluate_recovery(modes, world, min_size=s, classifier=config, **settings)
            counts = modes["n_tags"].value_counts()
            rows.append(
                {
                    "seed": seed,
                    "min_size": s,
                    "accuracy": float(correct.mean()),
                    "modes": len(modes),
                    "by_tags": " / ".join(str(int(counts.get(k, 0))) for k in range(1, settings["max_tags"] + 1)),
                    "precision": rec["precision"],
                    "recall": rec["recall"],
                    "strict_precision": rec["strict_precision"],
                    "strict_recall": rec["strict_recall"],
                    "true_modes": rec["n_true_clear"],
                    "world_seconds": built,  # build (or load) the world, train and predict
                    "search_seconds": time.perf_counter() - t1,  # search and recovery
                }
            )
        print(f"seed {seed} done in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame) -> str:
    """The per-seed rows and, per min_size, the mean and range over seeds."""
    cols = ["seed", "min_size", "accuracy", "modes", "by_tags", "precision", "recall", "strict_precision", "strict_recall", "true_modes"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in table.sort_values(["min_size", "seed"]).iterrows():
        lines.append(
            f"| {r.seed} | {r.min_size} | {r.accuracy:.3f} | {r.modes} | {r.by_tags} | {r.precision:.2f} | "
            f"{r.recall:.2f} | {r.strict_precision:.2f} | {r.strict_recall:.2f} | {r.true_modes} |"
        )
    lines += ["", "| min_size | worlds | mean modes | precision mean (min-max) | recall mean (min-max) |", "|---|---|---|---|---|"]
    for s, g in table.groupby("min_size"):
        lines.append(
            f"| {s} | {len(g)} | {g.modes.mean():.1f} | {g.precision.mean():.2f} ({g.precision.min():.2f}-{g.precision.max():.2f}) | "
            f"{g.recall.mean():.2f} ({g.recall.min():.2f}-{g.recall.max():.2f}) |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--min-size", type=int, nargs="+", default=[40, 50, 60])
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    parser.add_argument("--smoke", action="store_true", help="tiny worlds (for tests)")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args(argv)
    if any(s < 1 for s in args.min_size):
        parser.error("--min-size: expected positive integers")
    table = measure(args.seeds, args.min_size, smoke=args.smoke, progress=args.progress)
    text = markdown(table)
    print(text)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text + "\n")
    return 0 if np.isfinite(table["precision"]).all() else 1


if __name__ == "__main__":
    raise SystemExit(main())
