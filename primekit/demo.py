"""``primekit demo``: PRIME end to end on the embedded toy world, with the ground truth to check it.

Stages (one progress line each, one function each): :func:`stage_world` builds the world,
:func:`stage_classifier` loads the classifier (shipped with primekit; trained here with
``retrain``) and classifies val, test and the oracle split, :func:`stage_tags` tags val (with the
learned tagger, as the paper tags with RAM, or the ground truth, the upper bound) and measures the
tagger against the ground truth, :func:`stage_search` searches failure modes on val,
:func:`stage_oracle` measures precision/recall against the oracle split, :func:`stage_clip`
(optional) the tiny CLIP's zero-shot AUROC, and :func:`stage_write` writes the run folder. The
shipped weights are data, not results: every run classifies, tags, searches and checks anew.
Everything rendered or computed is cached under ``$PRIMEKIT_HOME``; a second run reuses it.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import toyworld as tw
from .io import write_table
from .mode_table import modes_to_csv_frame
from .run_folder import FIGURES_DIR, RUN_FILES, is_run, is_smoke_run, read_summary, write_summary
from .search import TOYWORLD_SEARCH, find_failure_modes, subset_accuracies
from .statistics import RECOMMENDED_MAX_Q
from .tags import tags_to_matrix, write_tags

__all__ = [
    "run_demo",
    "ensure_run",
    "add_subparser",
    "DEFAULTS",
    "TAGGERS",
    "DemoSettings",
    "stage_world",
    "stage_classifier",
    "stage_tags",
    "stage_search",
    "stage_oracle",
    "stage_clip",
    "stage_write",
]

log = logging.getLogger(__name__)

#: Default search settings of the demo (see the module docstring for min_size); they live with
#: the search (primekit.search.TOYWORLD_SEARCH).
DEFAULTS: dict = TOYWORLD_SEARCH
#: The demo's taggers: the learned one (the paper's setting) and the ground truth (upper bound).
TAGGERS = ("learned", "truth")
SUMMARY_KEYS = (
    "classifier_accuracy",
    "n_failure_modes",
    "precision",
    "recall",
    "strict_precision",
    "strict_recall",
    "tagger",
    "seconds",
)


@dataclass
class DemoSettings:
    """The demo's options, checked once (see :func:`run_demo` for their meaning)."""

    smoke: bool = False
    home: str | os.PathLike | None = None
    seed: int = 0
    min_size: int | None = None
    min_drop: float = DEFAULTS["min_drop"]
    necessity: Mapping[int, float] | None = None
    max_tags: int = DEFAULTS["max_tags"]
    max_q: float | None = RECOMMENDED_MAX_Q
    tagger: str = "learned"
    threshold: float = 0.5
    retrain: bool = False
    progress: bool = False

    def __post_init__(self) -> None:
        if self.tagger not in TAGGERS:
            raise ValueError(f"tagger: expected one of {TAGGERS}, got {self.tagger!r}")
        if not 0 <= self.threshold <= 1:
            raise ValueError(f"threshold: must lie in [0, 1], got {self.threshold}")
        self.min_size = (10 if self.smoke else DEFAULTS["min_size"]) if self.min_size is None else self.min_size
        if not isinstance(self.min_size, (int, np.integer)) or isinstance(self.min_size, bool) or self.min_size < 1:
            raise ValueError(f"min_size: expected a positive integer, got {self.min_size!r}")
        self.necessity = dict(DEFAULTS["necessity"] if self.necessity is None else self.necessity)

    @property
    def search(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~primekit.search.find_failure_modes` (without ``max_q``)."""
        return {"min_size": int(self.min_size), "min_drop": self.min_drop, "necessity": self.necessity, "max_tags": self.max_tags}


@dataclass
class _Stages:
    """Times each stage and reports one line per stage."""

    report: Callable[[str], None]
    seconds: dict[str, float] = field(default_factory=dict)

    def run(self, name: str, fn: Callable[..., tuple[Any, str]], *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        result, detail = fn(*args, **kwargs)
        self.seconds[name] = round(time.perf_counter() - t0, 2)
        self.report(f"[{len(self.seconds)}] {name:<10} {self.seconds[name]:7.1f} s  {detail}")
        return result


def _source(model) -> str:
    if model.source_ == "trained":
        return f"trained here in {model.train_seconds_:.0f} s"
    return f"{model.source_} weights {model.weights_id_}"


def stage_world(s: DemoSettings) -> tuple[tw.ToyWorld, str]:
    """Build (or reuse) the toy world."""
    world = tw.build_world(home=s.home, smoke=s.smoke, seed=s.seed, progress=s.progress)
    cfg = world.config
    return world, f"{world.root} (train {cfg.n_train}, val {cfg.n_val}, test {cfg.n_test}, oracle {cfg.n_oracle})"


def stage_classifier(world: tw.ToyWorld, s: DemoSettings) -> tuple[dict[str, Any], str]:
    """The classifier (shipped, cached or trained) and its predictions on val, test and oracle."""
    config = tw.ClassifierConfig(epochs=2, seed=s.seed) if s.smoke else tw.ClassifierConfig(seed=s.seed)
    model = tw.train_classifier(world, config=config, retrain=s.retrain, progress=s.progress)
    preds = {split: tw.predict(world, split, config=config, model=model, progress=s.progress) for split in ("val", "test", "oracle")}
    acc = {split: float(p["correct"].mean()) for split, p in preds.items()}
    out = {"model": model, "config": config, "predictions": preds, "accuracy": acc}
    return out, f"val accuracy {acc['val']:.1%}, test {acc['test']:.1%}, oracle {acc['oracle']:.1%} ({_source(model)})"


def stage_tags(world: tw.ToyWorld, s: DemoSettings) -> tuple[dict[str, Any], str]:
    """Tag val with the chosen tagger; its per-tag precision/recall against the ground truth."""
    truth = world.attributes("val")
    if s.tagger == "learned":
        config = tw.TaggerConfig.smoke(seed=s.seed + 1) if s.smoke else tw.TaggerConfig(seed=s.seed + 1)
        model = tw.train_tagger(world, config=config, retrain=s.retrain, progress=s.progress)
        tags = tw.learned_tags(world, "val", config=config, model=model, progress=s.progress)
        matrix = tags_to_matrix(tags, threshold=s.threshold, ids=truth.index).reindex(columns=truth.columns, fill_value=False)
        metadata = {"tagger": "toyworld-learned", "threshold": s.threshold, "config": dict(config), "weights": model.weights_id_}
        source = _source(model)
    else:
        tags, matrix = tw.ground_truth_tags(world, "val"), truth
        metadata, source = {"tagger": "toyworld-truth"}, "ground truth"
    quality = tw.tagger_quality(matrix, truth)
    weakest = quality.sort_values("f1").head(2)
    weak = ", ".join(f"{t} {r.precision:.2f}/{r.recall:.2f}" for t, r in weakest.iterrows())
    out = {"long": tags, "matrix": matrix, "metadata": metadata, "quality": quality, "source": source}
    return out, (
        f"{s.tagger} tagger ({source}): {len(tags)} tags on {len(truth)} val images, precision/recall "
        f"vs ground truth {quality['precision'].mean():.3f}/{quality['recall'].mean():.3f} (weakest {weak})"
    )


def stage_search(matrix: pd.DataFrame, val: pd.DataFrame, s: DemoSettings) -> tuple[pd.DataFrame, str]:
    """PRIME's search on val; modes sorted by drop, then size."""
    samples = val.set_index("id").reindex(matrix.index)
    paper = find_failure_modes(matrix, samples["label"], samples["correct"], max_q=None if s.max_q is None else 1.0, **s.search)
    paper = paper.sort_values(["drop", "size"], ascending=[False, False], kind="stable").reset_index(drop=True)
    kept = np.ones(len(paper), bool) if s.max_q is None else (paper["q_value"] <= s.max_q).to_numpy()
    modes = paper[kept].reset_index(drop=True)
    # the paper's other modes travel with the table to stage_write (filtered_out.csv)
    modes.attrs["filtered_out"] = None if s.max_q is None else paper[~kept].reset_index(drop=True)
    counts = modes["n_tags"].value_counts().sort_index().to_dict()
    q = " (the paper's definition, --max-q to filter)" if s.max_q is None else (
        f" with q-value <= {s.max_q:g} ({int((~kept).sum())} more of the paper's "
        f"{len(paper)} in filtered_out.csv, --max-q none keeps them)"
    )
    return modes, f"{len(modes)} failure modes on val{q} (by number of tags: {counts})"


def stage_oracle(modes: pd.DataFrame, world: tw.ToyWorld, oracle: pd.DataFrame, s: DemoSettings) -> tuple[dict, str]:
    """Precision and recall of the modes against the oracle split's true modes."""
    rec = tw.evaluate_recovery(modes, world, predictions=oracle, **s.search)
    return rec, (
        f"precision {rec['precision']:.2f}, recall {rec['recall']:.2f} "
        f"(strict {rec['strict_precision']:.2f} / {rec['strict_recall']:.2f}; {rec['n_true_clear']} clear true modes)"
    )


def stage_clip(world: tw.ToyWorld, out: Path, s: DemoSettings) -> tuple[float, str]:
    """The tiny CLIP (shipped, cached or trained) and its mean zero-shot AUROC on test."""
    path = tw.clip_dir(world=world, smoke=s.smoke, seed=s.seed, retrain=s.retrain, progress=s.progress)
    auroc = tw.clip_zero_shot_auroc(path, world, split="test", max_images=500 if s.smoke else 4000)
    write_table(auroc.reset_index(), out / RUN_FILES["clip_auroc"])
    value = float(auroc["auroc"].mean())
    return value, f"tiny CLIP at {path}: mean zero-shot AUROC {value:.3f}"


def _joined(table: pd.DataFrame) -> pd.DataFrame:
    table = table.copy()
    if len(table):
        table["tags"] = [" + ".join(t) for t in table["tags"]]
    return table


def stage_write(out: Path, world: tw.ToyWorld, clf: dict, tags: dict, modes: pd.DataFrame, rec: dict, n_grid_modes: int) -> tuple[None, str]:
    """Write the run folder's tables and figures (the summary and report follow)."""
    write_table(modes_to_csv_frame(modes), out / RUN_FILES["modes"])
    filtered = modes.attrs.get("filtered_out")
    if filtered is None:  # no filter: no list of filtered modes (nor a stale one of an earlier run)
        (out / RUN_FILES["filtered_out"]).unlink(missing_ok=True)
    else:
        write_table(modes_to_csv_frame(filtered), out / RUN_FILES["filtered_out"])
    write_table(_joined(rec["per_mode"]), out / RUN_FILES["oracle_check"])
    write_table(_joined(rec["missed"]), out / RUN_FILES["oracle_missed"])
    preds = clf["predictions"]
    write_table(pd.concat([preds["val"], preds["test"]], ignore_index=True), out / RUN_FILES["samples"])
    write_tags(tags["long"], out / RUN_FILES["tags"], metadata=tags["metadata"])
    write_table(tags["quality"].reset_index(), out / RUN_FILES["tagger_quality"])
    samples = preds["val"].set_index("id").reindex(tags["matrix"].index)
    _figures(world, modes, tags["matrix"], samples["label"], samples["correct"], out / FIGURES_DIR, n_grid_modes)
    return None, f"{out}"


def _summary(s: DemoSettings, world: tw.ToyWorld, clf: dict, tags: dict, modes: pd.DataFrame, rec: dict, clip_auroc: float | None, stages: _Stages, seconds: float) -> dict:
    quality = tags["quality"]
    model = clf["model"]
    return {
        "classifier_accuracy": clf["accuracy"]["val"],
        "test_accuracy": clf["accuracy"]["test"],
        "oracle_accuracy": clf["accuracy"]["oracle"],
        "n_failure_modes": int(len(modes)),
        "modes_by_n_tags": {int(k): int(v) for k, v in modes["n_tags"].value_counts().sort_index().items()},
        **{k: rec[k] for k in ("precision", "recall", "strict_precision", "strict_recall")},
        "n_true_modes_clear": rec["n_true_clear"],
        "n_true_modes_strict": rec["n_true_strict"],
        "oracle_min_size": rec["oracle_min_size"],
        "seconds": seconds,
        "stage_seconds": stages.seconds,
        "classifier_source": model.source_,
        "classifier_weights": model.weights_id_,
        "classifier_train_seconds": model.train_seconds_,
        "tagger": s.tagger,
        "tagger_source": tags["source"],
        "tagger_precision": float(quality["precision"].mean()),
        "tagger_recall": float(quality["recall"].mean()),
        "tagger_per_tag": {t: {"precision": r.precision, "recall": r.recall} for t, r in quality.iterrows()},
        "clip_auroc": clip_auroc,
        "search": {**s.search, "max_q": s.max_q, "split": "val", "threshold": s.threshold},
        "world": {"root": str(world.root), **{f"n_{x}": world.config.size(x) for x in tw.SPLITS}, "seed": s.seed, "smoke": s.smoke},
    }


def run_demo(
    out: str | Path,
    *,
    smoke: bool = False,
    home: str | os.PathLike | None = None,
    seed: int = 0,
    min_size: int | None = None,
    min_drop: float = DEFAULTS["min_drop"],
    necessity: Mapping[int, float] | None = None,
    max_tags: int = DEFAULTS["max_tags"],
    max_q: float | None = RECOMMENDED_MAX_Q,
    tagger: str = "learned",
    threshold: float = 0.5,
    retrain: bool = False,
    clip: bool = False,
    n_grid_modes: int = 8,
    progress: bool = False,
    report: Callable[[str], None] | None = None,
) -> dict:
    """Run PRIME on the toy world and write the results to ``out``.

    Parameters
    ----------
    out : path-like
        Output folder: the run folder of :mod:`primekit.run_folder` (``failure_modes.csv``,
        ``summary.json``, ``samples.parquet``, ``tags.parquet``, ``oracle_check.csv``,
        ``tagger_quality.csv``, ``report.html``, ``figures/``).
    clip : bool
        Also load (or train) the tiny CLIP and report its zero-shot AUROC.
    n_grid_modes : int
        Modes shown in ``figures/demo_mode_grid.png``.
    report : callable, optional
        Called with one line per stage (the CLI prints them to stderr).
    smoke : bool
        Tiny world and short training (seconds), for tests.
    home : path-like, optional
        Data folder (default ``$PRIMEKIT_HOME`` or ``~/.cache/primekit``).
    seed : int
        Seed of the world and of every model (primekit ships the models of seed 0).
    min_size, min_drop, necessity, max_tags :
        The search (s, a, b, l of the paper); ``min_size`` defaults to 50 (10 with ``smoke``).
    max_q : float or None, default :data:`~primekit.statistics.RECOMMENDED_MAX_Q` (0.3)
        Keep only the modes whose q-value is at most this (:mod:`primekit.statistics`); the
        paper's other modes go to ``filtered_out.csv``. None: the paper's definition, unfiltered
        (``benchmarks/recovery.py`` measures both on five toy worlds).
    tagger : {"learned", "truth"}
        ``"learned"`` (default): the learned multi-label tagger, as the paper tags with RAM;
        ``"truth"``: the ground truth, the upper bound.
    threshold : float
        Score threshold of the learned tagger's tags.
    retrain : bool
        Train the classifier, tagger and CLIP here from scratch instead of loading the weights
        shipped with primekit (minutes instead of a second).
    progress : bool
        tqdm bars inside the stages.

    Returns
    -------
    dict
        The summary (also written to ``summary.json``), with the tagger that ran and its
        per-tag precision/recall against the ground truth.
    """
    s = DemoSettings(
        smoke=smoke, home=home, seed=seed, min_size=min_size, min_drop=min_drop, necessity=necessity, max_tags=max_tags,
        max_q=max_q, tagger=tagger, threshold=threshold, retrain=retrain, progress=progress,
    )
    out = Path(out)
    (out / FIGURES_DIR).mkdir(parents=True, exist_ok=True)
    stages = _Stages(report or (lambda line: log.info(line)))
    t_start = time.perf_counter()
    world = stages.run("world", stage_world, s)
    clf = stages.run("classifier", stage_classifier, world, s)
    tags = stages.run("tags", stage_tags, world, s)
    modes = stages.run("search", stage_search, tags["matrix"], clf["predictions"]["val"], s)
    rec = stages.run("oracle", stage_oracle, modes, world, clf["predictions"]["oracle"], s)
    clip_auroc = stages.run("clip", stage_clip, world, out, s) if clip else None
    stages.run("write", stage_write, out, world, clf, tags, modes, rec, n_grid_modes)
    summary = write_summary(out, _summary(s, world, clf, tags, modes, rec, clip_auroc, stages, time.perf_counter() - t_start))
    from .report import write_report  # jinja2 and the templates: only when a report is written

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


def _figures(world, modes, matrix, labels, correct, fig_dir: Path, n_grid_modes: int) -> None:
    import matplotlib  # plotting only here: the CLI's other commands do not pay for it

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from .plots import plot_mode_grid, plot_subset_accuracies, save_figure

    top = modes.head(n_grid_modes)
    images = [world.mode_images("val", c, t, n=6, matrix=matrix) for c, t in zip(top["class"], top["tags"], strict=False)]
    if len(top):
        fig = plot_mode_grid(top, images)[0, 0].figure
        save_figure(fig, "demo_mode_grid", fig_dir, dpi=110)
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
        save_figure(fig, "demo_subsets", fig_dir, dpi=110)
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
        max_q=args.max_q,
        tagger=args.tagger,
        threshold=args.threshold,
        retrain=args.retrain,
        clip=args.clip,
        progress=not args.no_progress,
        report=report,
    )
    keys = [k for k in summary if k in SUMMARY_KEYS] + ["tagger_source", "tagger_precision", "tagger_recall", "clip_auroc"]
    print(json.dumps({k: summary[k] for k in keys}, indent=1))
    return 0


def _max_q(text: str) -> float | None:
    if text.strip().lower() == "none":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1] or 'none', got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1] or 'none', got {text!r}")
    return value


def add_subparser(subparsers) -> None:
    """Register ``primekit demo`` on the top-level CLI."""
    p = subparsers.add_parser(
        "demo",
        help="run PRIME end to end on the embedded toy world",
        description="Build the toy world (cached under $PRIMEKIT_HOME), classify it with the shipped "
        "classifier, tag val with the shipped learned tagger (or the ground truth), search failure "
        "modes on val and check them against the oracle split.",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--smoke", action="store_true", help="tiny world and training (seconds), for tests")
    p.add_argument("--home", default=None, help="data folder (default $PRIMEKIT_HOME or ~/.cache/primekit)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--min-size", type=int, default=None, help="s: smallest group (default 50; 10 with --smoke)")
    p.add_argument("--min-drop", type=float, default=DEFAULTS["min_drop"], help="a: accuracy drop (default 0.30)")
    p.add_argument("--max-tags", type=int, default=DEFAULTS["max_tags"], help="l: most tags per mode (default 4)")
    p.add_argument("--max-q", type=_max_q, default=RECOMMENDED_MAX_Q, metavar="Q",
                   help=f"keep only modes with q-value <= Q (default {RECOMMENDED_MAX_Q:g}); the others go to "
                        "filtered_out.csv ('none': the paper's definition, unfiltered)")
    p.add_argument("--tagger", choices=TAGGERS, default="learned", help="learned (default, as the paper) or truth (upper bound)")
    p.add_argument("--threshold", type=float, default=0.5, help="score threshold of the learned tagger (default 0.5)")
    p.add_argument("--retrain", action="store_true", help="train the classifier, tagger and CLIP here instead of using the shipped weights")
    p.add_argument("--clip", action="store_true", help="also load the tiny CLIP and report its zero-shot AUROC")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    p.set_defaults(func=_cli)
