"""Faithfulness over several toy worlds: precision and recall of PRIME's modes against each world's
oracle split, one world per seed, with and without the q-value filter (issue 14).

    .venv/bin/python benchmarks/recovery.py                   # seeds 0-4, s = 30 50, the frontier plot
    .venv/bin/python benchmarks/recovery.py --seeds 0 1 --min-size 50 --markdown build/recovery.md

For every world and ``min_size`` the paper's modes are searched once on val with their statistics
(``find_failure_modes(..., max_q=1.0)``); each filter level keeps the modes with ``q_value <=
level``. A mode is *real* when the oracle split (10x val) confirms it within the margins of
``primekit.toyworld.recovery`` (precision); recall is the share of the oracle's clear modes that are
kept. ``test_share`` is the share of kept modes whose drop on the test split is >= 25% (Fig. 9).
The calibration table compares the observed drop on val with the shrunk ``expected_drop`` as
predictions of the drop on the test split and on the oracle split (pooled over the worlds; issue
14, item 2; rank them by the mean squared error, see ``primekit.statistics.drop_calibration``).
The envelope table (and the dashed lines of the plot) keeps the modes whose raw p-value is at
most a common threshold: what any step-up procedure on these p-values could reach.

A single world's precision and recall move by +-0.1 with its seed: the modes near the thresholds
fall on either side of them by the sampling noise of val. The mean over seeds is the number to trust.

Each world is built (or reused from ``$PRIMEKIT_HOME``) and its classifier trained exactly as
``primekit demo --seed N`` does (minutes per cold world on 2 cores, seconds when cached); the tags
are the ground truth (``primekit demo --tagger truth``, the demo's default).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

LEVELS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)


def _world_modes(seed: int, min_sizes: list[int], *, smoke: bool, progress: bool) -> list[pd.DataFrame]:
    """The paper's modes of one world per ``min_size``, with statistics, oracle truth and test drop."""
    from primekit import find_failure_modes
    from primekit import toyworld as tw
    from primekit.demo import DEFAULTS
    from primekit.metrics import recover_groups

    world = tw.build_world(seed=seed, smoke=smoke, progress=progress)
    config = tw.ClassifierConfig(epochs=2, seed=seed) if smoke else tw.ClassifierConfig(seed=seed)
    splits = {}
    for split in ("val", "test", "oracle"):
        pred = tw.predict(world, split, config=config, progress=progress).set_index("id")
        tags = world.attributes(split)
        splits[split] = (tags, pred["label"].reindex(tags.index), pred["correct"].reindex(tags.index))
    settings = {k: DEFAULTS[k] for k in ("min_drop", "necessity", "max_tags")}
    if smoke:
        settings["min_drop"] = 0.2
    ratio = world.config.n_oracle / world.config.n_val
    out = []
    for s in min_sizes:
        modes = find_failure_modes(*splits["val"], min_size=s, max_q=1.0, **settings)
        rec = tw.recovery(modes, *splits["oracle"], size_ratio=ratio, min_size=s, **settings)
        per_mode = rec["per_mode"]
        clear = tw.oracle_modes(
            *splits["oracle"], min_size=int(math.ceil(s * ratio - 1e-9)),
            min_drop=min(settings["min_drop"] + 0.05, 1.0), necessity=settings["necessity"], max_tags=settings["max_tags"],
        )
        clear_keys = {(str(c), tuple(t)) for c, t in zip(clear["class"], clear["tags"])}
        test = recover_groups(modes, *splits["test"])
        out.append(
            modes.assign(
                seed=seed,
                min_size=s,
                accuracy_val=float(splits["val"][2].mean()),
                real=per_mode["real"].to_numpy(bool),
                oracle_drop=(per_mode["oracle_class_accuracy"] - per_mode["oracle_accuracy"]).to_numpy(),
                clear=[(str(c), tuple(t)) in clear_keys for c, t in zip(modes["class"], modes["tags"])],
                n_clear=len(clear_keys),
                test_drop=test["test_drop"].to_numpy(),
            )
        )
    return out


def measure(
    seeds: list[int], min_sizes: list[int], *, smoke: bool = False, progress: bool = False
) -> pd.DataFrame:
    """Every paper mode of every (seed, min_size) with ``q_value, real, clear, test_drop``."""
    frames = []
    for seed in seeds:
        t0 = time.perf_counter()
        frames += _world_modes(seed, min_sizes, smoke=smoke, progress=progress)
        print(f"seed {seed} done in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return pd.concat(frames, ignore_index=True)


#: Issue 14's targets per min_size: (mean precision, mean recall) at the defaults.
TARGETS = {30: (0.90, 0.60), 50: (0.95, 0.90)}

#: Common thresholds on the raw p-value (``max(p_drop, p_necessity)``) for the envelope.
P_THRESHOLDS = (0.001, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5)


def score(
    modes: pd.DataFrame, levels: tuple[float | None, ...] = (None, *LEVELS), *, column: str = "q_value"
) -> pd.DataFrame:
    """One row per (seed, min_size, level): modes kept, precision, recall, share with test drop >= 25%.

    ``level`` None is the paper's definition (no filter); recall counts the oracle's clear modes
    (``n_clear``), found or not. ``column="p_value"`` keeps the modes whose raw p-value is at most
    the level instead: every step-up procedure on these p-values (BH and its variants) keeps such
    a set in each world, so the frontier of common thresholds shows what any of them could reach.
    """
    rows = []
    name = "q" if column == "q_value" else "p"
    for (seed, s), group in modes.groupby(["seed", "min_size"], sort=True):
        n_clear = int(group["n_clear"].iloc[0])
        for level in levels:
            kept = group if level is None else group[group[column] <= level]
            rows.append(
                {
                    "seed": seed,
                    "min_size": s,
                    "filter": "paper" if level is None else f"{name}<={level:g}",
                    "level": np.nan if level is None else level,
                    "modes": len(kept),
                    "precision": float(kept["real"].mean()) if len(kept) else np.nan,
                    "recall": float(kept["clear"].sum() / n_clear) if n_clear else np.nan,
                    "test_share": float((kept["test_drop"] >= 0.25).mean()) if len(kept) else np.nan,
                    "true_modes": n_clear,
                }
            )
    return pd.DataFrame(rows)


def calibration(modes: pd.DataFrame, *, max_q: float) -> pd.DataFrame:
    """Errors of the observed and the expected drop against the test and the oracle drop, pooled.

    One row per (min_size, modes: all of the paper's or those kept at ``max_q``, estimate, target).
    """
    from primekit.statistics import drop_calibration

    rows = []
    for s, group in modes.groupby("min_size", sort=True):
        for name, subset in (("paper", group), (f"q<={max_q:g}", group[group["q_value"] <= max_q])):
            for target in ("test_drop", "oracle_drop"):
                errors, _ = drop_calibration(subset.assign(test_drop=subset[target]))
                rows += [{"min_size": s, "modes": name, "target": target, **e} for e in errors.to_dict("records")]
    return pd.DataFrame(rows)


def _markdown_table(frame: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * frame.shape[1]]
    return "\n".join(lines + ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)])


def markdown(scores: pd.DataFrame, *, max_q: float) -> str:
    """Per-world rows (paper vs ``max_q``) and, per min_size, the mean and range over seeds."""
    chosen = scores[scores["filter"].isin(["paper", f"q<={max_q:g}"])]
    cols = ["seed", "min_size", "filter", "modes", "precision", "recall", "test_share", "true_modes"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in chosen.sort_values(["min_size", "seed", "level"], na_position="first").iterrows():
        lines.append(
            f"| {r.seed} | {r.min_size} | {r['filter']} | {r.modes} | {r.precision:.2f} | {r.recall:.2f} | "
            f"{r.test_share:.2f} | {r.true_modes} |"
        )
    lines += [
        "",
        "| min_size | filter | worlds | modes (min-max) | precision mean (min-max) | recall mean (min-max) | test drop >= 25% (pooled) |",
        "|---|---|---|---|---|---|---|",
    ]
    for (s, name), g in chosen.groupby(["min_size", "filter"], sort=False):
        pooled = (g["test_share"] * g["modes"]).sum() / max(g["modes"].sum(), 1)
        lines.append(
            f"| {s} | {name} | {len(g)} | {g.modes.mean():.1f} ({g.modes.min()}-{g.modes.max()}) | "
            f"{g.precision.mean():.2f} ({g.precision.min():.2f}-{g.precision.max():.2f}) | "
            f"{g.recall.mean():.2f} ({g.recall.min():.2f}-{g.recall.max():.2f}) | {pooled:.2f} |"
        )
    return "\n".join(lines)


def envelope_table(envelope: pd.DataFrame) -> str:
    """Mean modes (min), precision and recall over the worlds per common p threshold and min_size."""
    means = envelope.groupby(["min_size", "level"]).agg(
        modes=("modes", "mean"), fewest=("modes", "min"), precision=("precision", "mean"), recall=("recall", "mean")
    ).reset_index()
    means["modes"] = [f"{m:.1f} ({f})" for m, f in zip(means["modes"], means["fewest"])]
    return _markdown_table(means.drop(columns="fewest").rename(columns={"level": "p <="}).round(3))


def plot_frontier(
    scores: pd.DataFrame, *, max_q: float, envelope: pd.DataFrame | None = None,
    targets: dict[int, tuple[float, float]] | None = None, ax=None,
):
    """Mean precision against mean recall over the filter levels, one line per min_size.

    ``envelope`` (``score(..., column="p_value")``): a dashed line per min_size, the frontier of
    common thresholds on the raw p-value. ``targets``: ``{min_size: (precision, recall)}``, the
    corner of the region a setting should reach (dotted).
    """
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(5.5, 4.5))[1]
    means = scores.groupby(["min_size", "filter", "level"], dropna=False)[["precision", "recall"]].mean().reset_index()
    colors = {}
    for s, g in means.groupby("min_size"):
        line = g[g["level"].notna()].sort_values("level")
        (handle,) = ax.plot(line["recall"], line["precision"], marker="o", ms=3, label=f"s = {s}, q-value filter")
        colors[s] = handle.get_color()
        # one label per point: levels with the same precision and recall share it ("0.05-0.5")
        for i, (_, same) in enumerate(line.groupby(["recall", "precision"], sort=False)):
            text = f"{same.level.min():g}" + (f"-{same.level.max():g}" if len(same) > 1 else "")
            ax.annotate(text, (same.recall.iloc[0], same.precision.iloc[0]), fontsize=6,
                        xytext=(3, -8 - 7 * (i % 3)), textcoords="offset points")  # staggered: points sit close
        paper = g[g["level"].isna()].iloc[0]
        ax.scatter([paper.recall], [paper.precision], marker="s", color=handle.get_color(), label=f"s = {s}, paper (no filter)")
        mine = line[np.isclose(line["level"], max_q)].iloc[0]
        ax.scatter([mine.recall], [mine.precision], marker="*", s=160, color=handle.get_color(), edgecolor="k", zorder=3,
                   label=f"s = {s}, default q <= {max_q:g}")
    if envelope is not None:
        env = envelope.groupby(["min_size", "level"])[["precision", "recall"]].mean().reset_index()
        for s, g in env.groupby("min_size"):
            g = g.sort_values("level")
            ax.plot(g["recall"], g["precision"], ls="--", lw=0.9, color=colors.get(s), marker=".", ms=3,
                    label=f"s = {s}, any common threshold on the p-value")
    for s, (precision, recall) in (targets or {}).items():
        if s in colors:
            ax.plot([recall, recall, 1.0], [1.0, precision, precision], ls=":", lw=1.2, color=colors[s],
                    label=f"s = {s}, target (P >= {precision:g}, R >= {recall:g})")
    ax.set_xlabel("recall (mean over worlds)")
    ax.set_ylabel("precision (mean over worlds)")
    ax.set_title("Precision-recall frontier of the q-value filter (toy worlds)", fontsize=9)
    ax.legend(fontsize=7, frameon=False, loc="lower left")
    ax.grid(alpha=0.3)
    return ax


def main(argv: list[str] | None = None) -> int:
    from primekit.statistics import RECOMMENDED_MAX_Q

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--min-size", type=int, nargs="+", default=[30, 50])
    parser.add_argument("--max-q", type=float, default=RECOMMENDED_MAX_Q,
                        help="the filter level of the per-world rows (default: the demo's)")
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    parser.add_argument("--plot", type=Path, default=Path(__file__).with_name("recovery_frontier.png"),
                        help="precision-recall frontier figure")
    parser.add_argument("--smoke", action="store_true", help="tiny worlds (for tests)")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args(argv)
    if any(s < 1 for s in args.min_size):
        parser.error("--min-size: expected positive integers")
    if args.max_q not in LEVELS:
        parser.error(f"--max-q: expected one of the measured levels {LEVELS}")
    modes = measure(args.seeds, args.min_size, smoke=args.smoke, progress=args.progress)
    scores = score(modes)
    errors = calibration(modes, max_q=args.max_q)
    envelope = score(modes, P_THRESHOLDS, column="p_value")
    text = "\n\n".join([markdown(scores, max_q=args.max_q), _markdown_table(errors.round(4)), envelope_table(envelope)])
    print(text)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text + "\n")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        ax = plot_frontier(scores, max_q=args.max_q, envelope=envelope, targets=TARGETS)
        ax.figure.savefig(args.plot, dpi=130, bbox_inches="tight")
    return 0 if np.isfinite(scores["precision"].fillna(0)).all() else 1


if __name__ == "__main__":
    raise SystemExit(main())
