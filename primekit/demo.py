"""``primekit demo``: PRIME end to end on the embedded toy world, with the ground truth to check it.

Stages (one progress line each): build the world, train the classifier and predict, tag val
(ground truth, or the learned tagger, trained first if missing), search failure modes on val, measure precision/recall against the
oracle split, (optionally) train the tiny CLIP and measure its zero-shot AUROC, write files and
figures. Everything trained or rendered is cached under ``$PRIMEKIT_HOME``; a second run reuses it.

Default search settings are those of the paper (a = 30% drop, l = 4 tags, necessity b2..b4 =
0.10/0.05/0.025) except s = 50 images. The toy world's val split has ~2,000 images per class; on
groups of 30 the sampling noise of an accuracy (+-0.08) yields 2-tag "modes" on val that are not
real on the oracle split (measured on a 670-per-class val: precision 0.56 at s = 30, 1.00 at s = 50).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from .run_folder import FIGURES_DIR, RUN_FILES, is_run, is_smoke_run, read_summary, write_summary
from .search import TOYWORLD_SEARCH

__all__ = ["run_demo", "ensure_run", "add_subparser", "DEFAULTS"]

log = logging.getLogger(__name__)

#: Default search settings of the demo (see the module docstring for min_size); they live with
#: the search (primekit.search.TOYWORLD_SEARCH).
DEFAULTS: dict = TOYWORLD_SEARCH
SUMMARY_KEYS = (
    "classifier_accuracy",
    "n_failure_modes",
    "precision",
    "recall",
    "strict_precision",
    "strict_recall",
    "seconds",
)


def run_demo(
    out: str | Path,
    *,
    smoke: bool = False,
    home: str | Path | None = None,
    seed: int = 0,
    min_size: int | None = None,
    min_drop: float = DEFAULTS["min_drop"],
    necessity: Mapping[int, float] | None = None,
    max_tags: int = DEFAULTS["max_tags"],
    tagger: str = "truth",
    threshold: float = 0.5,
    clip: bool = False,
    n_grid_modes: int = 8,
    progress: bool = False,
    report: Callable[[str], None] | None = None,
) -> dict:
    """Run PRIME on the toy world and write the results to ``out``.

    Parameters
    ----------
    out : path-like
        Output folder: ``failure_modes.csv``, ``summary.json``, ``samples.parquet``,
        ``tags.parquet``, ``oracle_check.csv``, ``tagger_quality.csv`` and ``figures/``.
    smoke : bool
        Tiny world and short training (seconds), for tests.
    home : path-like, optional
        Data folder (default ``$PRIMEKIT_HOME`` or ``~/.cache/primekit``).
    seed : int
        Seed of the world and of every model.
    min_size, min_drop, necessity, max_tags :
        Search settings (s, a, b, l of the paper); ``min_size`` defaults to 50 (10 with ``smoke``).
    tagger : {"learned", "truth"}
        Tag val with the ground truth (default) or the learned multi-label tagger (mean
        precision/recall 0.97/0.94 on val, see ``tagger_quality.csv``). Training the learned
        tagger takes 4-5 minutes on 2 cores (once; it is cached), which is why it is not the
        default of a demo meant to finish within 4 minutes from a cold cache.
    threshold : float
        Score threshold of the learned tagger's tags.
    clip : bool
        Also train (or reuse) the tiny CLIP and report its zero-shot AUROC.
    n_grid_modes : int
        Modes shown in ``figures/demo_mode_grid.png``.
    progress : bool
        tqdm bars inside the stages.
    report : callable, optional
        Called with one line per stage (the CLI prints them to stderr).

    Returns
    -------
    dict
        The summary (also written to ``summary.json``).
    """
    from . import find_failure_modes
    from . import toyworld as tw
    from .io import write_table
    from .search import subset_accuracies
    from .tags import tags_to_matrix, write_tags

    if tagger not in ("learned", "truth"):
        raise ValueError(f"tagger: expected 'learned' or 'truth', got {tagger!r}")
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold: must lie in [0, 1], got {threshold}")
    min_size = (10 if smoke else DEFAULTS["min_size"]) if min_size is None else min_size
    if not isinstance(min_size, (int, np.integer)) or min_size < 1:
        raise ValueError(f"min_size: expected a positive integer, got {min_size!r}")
    necessity = dict(DEFAULTS["necessity"] if necessity is None else necessity)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / FIGURES_DIR).mkdir(exist_ok=True)
    report = report or (lambda line: log.info(line))
    t_start = time.perf_counter()
    stages: dict[str, float] = {}

    def stage(name: str, t0: float, detail: str) -> None:
        stages[name] = round(time.perf_counter() - t0, 2)
        report(f"[{len(stages)}] {name:<10} {stages[name]:7.1f} s  {detail}")

    # 1. world ---------------------------------------------------------------------------------
    t0 = time.perf_counter()
    world = tw.build_world(home=home, smoke=smoke, seed=seed, progress=progress)
    cfg = world.config
    stage("world", t0, f"{world.root} (train {cfg.n_train}, val {cfg.n_val}, test {cfg.n_test}, oracle {cfg.n_oracle})")

    # 2. classifier ----------------------------------------------------------------------------
    t0 = time.perf_counter()
    clf_cfg = tw.ClassifierConfig(epochs=2, seed=seed) if smoke else tw.ClassifierConfig(seed=seed)
    model = tw.train_classifier(world, config=clf_cfg, progress=progress)
    preds = {s: tw.predict(world, s, config=clf_cfg, progress=progress) for s in ("val", "test", "oracle")}
    val = preds["val"]
    accuracy = float(val["correct"].mean())
    train_s = getattr(model, "train_seconds_", float("nan"))
    stage(
        "classifier",
        t0,
        f"val accuracy {accuracy:.1%}, test {preds['test']['correct'].mean():.1%}"
        + (f" (trained in {train_s:.0f} s)" if np.isfinite(train_s) else " (cached)"),
    )

    # 3. tags ----------------------------------------------------------------------------------
    t0 = time.perf_counter()
    truth = world.attributes("val")
    tag_cfg = tw.TaggerConfig(epochs=8, size=32, seed=seed + 1) if smoke else tw.TaggerConfig(seed=seed + 1)
    if tagger == "learned":
        tags = tw.learned_tags(world, "val", config=tag_cfg, progress=progress)
        matrix = tags_to_matrix(tags, threshold=threshold, ids=truth.index).reindex(columns=truth.columns, fill_value=False)
        metadata = {"tagger": "toyworld-learned", "threshold": threshold, "config": dict(tag_cfg)}
    else:
        tags = tw.ground_truth_tags(world, "val")
        matrix = truth
        metadata = {"tagger": "toyworld-truth"}
    quality = tw.tagger_quality(matrix, truth)
    stage(
        "tags",
        t0,
        f"{tagger} tagger: {len(tags)} tags on {len(truth)} val images, "
        f"mean precision {quality['precision'].mean():.3f}, recall {quality['recall'].mean():.3f}",
    )

    # 4. search --------------------------------------------------------------------------------
    t0 = time.perf_counter()
    labels = val.set_index("id")["label"].reindex(matrix.index)
    correct = val.set_index("id")["correct"].reindex(matrix.index)
    modes = find_failure_modes(
        matrix, labels, correct, min_size=min_size, min_drop=min_drop, necessity=necessity, max_tags=max_tags
    )
    modes = modes.sort_values(["drop", "size"], ascending=[False, False], kind="stable").reset_index(drop=True)
    counts = modes["n_tags"].value_counts().sort_index().to_dict()
    stage("search", t0, f"{len(modes)} failure modes on val (by number of tags: {counts})")

    # 5. ground truth --------------------------------------------------------------------------
    t0 = time.perf_counter()
    rec = tw.evaluate_recovery(
        modes, world, min_size=min_size, min_drop=min_drop, necessity=necessity, max_tags=max_tags, classifier=clf_cfg
    )
    stage(
        "oracle",
        t0,
        f"precision {rec['precision']:.2f}, recall {rec['recall']:.2f} "
        f"(strict {rec['strict_precision']:.2f} / {rec['strict_recall']:.2f}; {rec['n_true_clear']} clear true modes)",
    )

    # 6. CLIP (optional) -----------------------------------------------------------------------
    clip_auroc = None
    if clip:
        t0 = time.perf_counter()
        path = tw.clip_dir(world=world, smoke=smoke, seed=seed, progress=progress)
        auroc = tw.clip_zero_shot_auroc(path, world, split="test", max_images=500 if smoke else 4000)
        clip_auroc = float(auroc["auroc"].mean())
        write_table(auroc.reset_index(), out / RUN_FILES["clip_auroc"])
        stage("clip", t0, f"tiny CLIP at {path}: mean zero-shot AUROC {clip_auroc:.3f}")

    # 7. files and figures ---------------------------------------------------------------------
    t0 = time.perf_counter()
    from .search import modes_to_csv_frame

    write_table(modes_to_csv_frame(modes), out / RUN_FILES["modes"])
    per_mode = rec["per_mode"].copy()
    per_mode["tags"] = [" + ".join(t) for t in per_mode["tags"]]
    write_table(per_mode, out / RUN_FILES["oracle_check"])
    missed = rec["missed"].copy()
    if len(missed):
        missed["tags"] = [" + ".join(t) for t in missed["tags"]]
    write_table(missed, out / RUN_FILES["oracle_missed"])
    samples = pd.concat([preds["val"], preds["test"]], ignore_index=True)
    write_table(samples, out / RUN_FILES["samples"])
    write_tags(tags, out / RUN_FILES["tags"], metadata=metadata)
    write_table(quality.reset_index(), out / RUN_FILES["tagger_quality"])
    _figures(world, modes, matrix, labels, correct, out / FIGURES_DIR, n_grid_modes, subset_accuracies)
    stage("write", t0, f"{out}")

    seconds = time.perf_counter() - t_start
    summary = {
        "classifier_accuracy": accuracy,
        "test_accuracy": float(preds["test"]["correct"].mean()),
        "oracle_accuracy": float(preds["oracle"]["correct"].mean()),
        "n_failure_modes": int(len(modes)),
        "modes_by_n_tags": {int(k): int(v) for k, v in counts.items()},
        "precision": rec["precision"],
        "recall": rec["recall"],
        "strict_precision": rec["strict_precision"],
        "strict_recall": rec["strict_recall"],
        "n_true_modes_clear": rec["n_true_clear"],
        "n_true_modes_strict": rec["n_true_strict"],
        "oracle_min_size": rec["oracle_min_size"],
        "seconds": seconds,
        "stage_seconds": stages,
        "classifier_train_seconds": train_s,
        "tagger": tagger,
        "tagger_precision": float(quality["precision"].mean()),
        "tagger_recall": float(quality["recall"].mean()),
        "clip_auroc": clip_auroc,
        "search": {"min_size": int(min_size), "min_drop": min_drop, "necessity": necessity, "max_tags": max_tags, "split": "val", "threshold": threshold},
        "world": {"root": str(world.root), **{f"n_{s}": world.config.size(s) for s in tw.SPLITS}, "seed": seed, "smoke": smoke},
    }
    summary = write_summary(out, summary)
    from .report import write_report

    write_report(out, out / RUN_FILES["report"])
    return summary


def ensure_run(run_dir: str | os.PathLike, *, smoke: bool = False) -> Path:
    """A run folder to look at: ``run_dir``, made by :func:`run_demo` when it holds no run.

    - ``run_dir`` holds a run: it is returned as it is (but a run recorded as a smoke run is
      rebuilt in full when ``smoke`` is False);
    - it holds none and ``smoke`` is False: ``run_demo(run_dir)`` makes it;
    - it holds none and ``smoke`` is True: the tiny demo run is made (once) under
      ``$PRIMEKIT_HOME/runs/demo-smoke`` and that folder is returned, so that a CI run never
      leaves a toy-sized run where the real one belongs.
    """
    if not isinstance(run_dir, (str, os.PathLike)):
        raise TypeError(f"run_dir: expected a directory path, got {type(run_dir).__name__}")
    path = Path(run_dir).expanduser()
    # a smoke run (e.g. left by CI) is not what someone asking for the full run wants to see
    if is_run(path) and (smoke or not is_smoke_run(read_summary(path))):
        return path
    if smoke:
        from .toyworld.world import primekit_home  # the toyworld package imports torch

        path = primekit_home() / "runs" / "demo-smoke"
        if is_run(path):
            return path
    log.info("no run in %s: running the demo (smoke=%s)", path, smoke)
    run_demo(path, smoke=smoke)
    return path


def _figures(world, modes, matrix, labels, correct, fig_dir: Path, n_grid_modes: int, subset_accuracies) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from .plots import plot_mode_grid, plot_subset_accuracies

    top = modes.head(n_grid_modes)
    images = [world.mode_images("val", c, t, n=6, matrix=matrix) for c, t in zip(top["class"], top["tags"], strict=False)]
    if len(top):
        fig = plot_mode_grid(top, images)[0, 0].figure
        fig.savefig(fig_dir / "demo_mode_grid.png", dpi=110)
        plt.close(fig)
    # Fig. 3: the mode with most tags (largest drop among them) against all its subsets
    if len(modes):
        best = modes.sort_values(["n_tags", "drop"], ascending=[False, False]).iloc[0]
        subsets = subset_accuracies(matrix, labels, correct, cls=best["class"], mode_tags=list(best["tags"]))
        fig, ax = plt.subplots(figsize=(6, 0.45 * len(subsets) + 1.2))
        plot_subset_accuracies(
            subsets,
            class_accuracy=float(best["class_accuracy"]),
            title=f"{best['class']}: accuracy on every subset of {' + '.join(best['tags'])}",
            ax=ax,
        )
        fig.tight_layout()
        fig.savefig(fig_dir / "demo_subsets.png", dpi=110)
        plt.close(fig)


def _cli(args: argparse.Namespace) -> int:
    def report(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    summary = run_demo(
        args.out,
        smoke=args.smoke,
        home=args.home,
        seed=args.seed,
        min_size=args.min_size,
        min_drop=args.min_drop,
        max_tags=args.max_tags,
        tagger=args.tagger,
        clip=args.clip,
        progress=not args.no_progress,
        report=report,
    )
    keys = [k for k in summary if k in SUMMARY_KEYS] + ["tagger_precision", "tagger_recall", "clip_auroc"]
    print(json.dumps({k: summary[k] for k in keys}, indent=1))
    return 0


def add_subparser(subparsers) -> None:
    """Register ``primekit demo`` on the top-level CLI."""
    p = subparsers.add_parser(
        "demo",
        help="run PRIME end to end on the embedded toy world",
        description="Build the toy world (cached under $PRIMEKIT_HOME), train its classifier and "
        "tagger, search failure modes on val and check them against the oracle split.",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--smoke", action="store_true", help="tiny world and training (seconds), for tests")
    p.add_argument("--home", default=None, help="data folder (default $PRIMEKIT_HOME or ~/.cache/primekit)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--min-size", type=int, default=None, help="s: smallest group (default 50; 10 with --smoke)")
    p.add_argument("--min-drop", type=float, default=DEFAULTS["min_drop"], help="a: accuracy drop (default 0.30)")
    p.add_argument("--max-tags", type=int, default=DEFAULTS["max_tags"], help="l: most tags per mode (default 4)")
    p.add_argument("--tagger", choices=("learned", "truth"), default="truth")
    p.add_argument("--clip", action="store_true", help="also train the tiny CLIP and report its AUROC")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    p.set_defaults(func=_cli)
