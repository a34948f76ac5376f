"""``primekit search``: failure modes from a samples file and a tag file."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._bitsets import open_tag_dataset
from .io import table_suffix
from .samples import read_samples, select_split
from .search import DEFAULT_NECESSITY, find_failure_modes, search_settings, write_modes
from .search_ray import find_failure_modes_ray

logger = logging.getLogger(__name__)


def parse_necessity(text: str) -> dict[int, float]:
    """``"b2,b3,b4"`` -> ``{2: b2, 3: b3, 4: b4}``, the argparse type of every ``--necessity``."""
    try:
        return {size: float(x) for size, x in enumerate(text.split(","), start=2)}
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers like 0.10,0.05,0.025, got {text!r}"
        ) from None


def add_subparser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``primekit search``."""
    p = subparsers.add_parser(
        "search",
        help="find failure modes (minimal tag combinations with an accuracy drop)",
        description=(
            "Find PRIME failure modes: for each class, the minimal combinations of tags on whose "
            "samples the classifier's accuracy drops sharply (paper section 3)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--samples", default=None, metavar="S",
                   help="CSV/Parquet with columns id, label and correct (0/1) or pred")
    p.add_argument("--tags", default=None, metavar="T",
                   help="long tag table with columns id, tag[, score]: CSV, Parquet file or "
                        "Parquet dataset folder (streamed: no dense image x tag matrix); tag ids "
                        "without a sample are left out and counted")
    p.add_argument("--study", default=None, metavar="DIR",
                   help="a study folder (primekit study): its samples, tags and threshold")
    p.add_argument("--split", default=None, metavar="NAME",
                   help="search only the samples of this split (e.g. val); default: all, or "
                        "val with --study")
    p.add_argument("--out", default=None, metavar="OUT",
                   help="output .csv or .parquet; in CSV the tags are joined by ' + ' "
                        "(default with --study: DIR/modes_SPLIT.csv)")
    p.add_argument("--min-size", type=int, default=30,
                   help="s: smallest number of samples in a failure mode")
    p.add_argument("--min-drop", type=float, default=0.30,
                   help="a: least drop below the class accuracy (0.3 = 30 points)")
    default_nec = ",".join(str(DEFAULT_NECESSITY[k]) for k in sorted(DEFAULT_NECESSITY))
    p.add_argument("--necessity", type=parse_necessity, default=default_nec,
                   help="b2,b3,b4,...: removing any tag of a k-tag mode must raise accuracy by b_k")
    p.add_argument("--max-tags", type=int, default=4, help="l: most tags in a combination")
    p.add_argument("--min-tag-count", type=int, default=None,
                   help="a tag enters a class's vocabulary T_c when this many of its samples carry "
                        "it (default: --min-size)")
    p.add_argument("--threshold", type=float, default=None,
                   help="a tag is present when its score is >= this (default 0.5, or the "
                        "study's)")
    p.add_argument("--method", choices=["exhaustive", "greedy"], default="exhaustive",
                   help="exhaustive search, or the beam search of appendix A.6")
    p.add_argument("--beam-width", type=int, default=10, help="beam width of --method greedy")
    p.add_argument("--n-jobs", type=int, default=-1, help="classes searched in parallel (-1: all cores)")
    p.add_argument("--max-q", type=float, default=None, metavar="Q",
                   help="keep only modes with q-value <= Q (false discovery rate over every tag "
                        "combination tested, e.g. 0.1) and add the statistics columns (intervals, "
                        "p- and q-values, expected drop); default: the paper's definition, unfiltered")
    p.add_argument("--ray", metavar="ADDRESS", default=None,
                   help="search class-partitioned on a Ray cluster ('auto' joins the running one, "
                        "'local' starts one here); --tags is then a Parquet file or dataset folder, "
                        "ideally hive-partitioned by label")
    p.set_defaults(func=run)


def _inputs(args: argparse.Namespace) -> tuple[str, str, str | None, str, float]:
    """(samples, tags, split, out, threshold) from --samples/--tags or --study DIR."""
    split, out, threshold = args.split, args.out, args.threshold
    if args.study is None:
        missing = [f for f in ("samples", "tags", "out") if getattr(args, f) is None]
        if missing:
            raise ValueError(f"--{missing[0]}: required (or pass --study DIR)")
        return args.samples, args.tags, split, out, 0.5 if threshold is None else threshold
    folder = Path(args.study).expanduser()
    if not folder.is_dir():
        raise ValueError(f"--study: {args.study!r} is not a folder")
    files = {}
    for stem in ("samples", "tags"):
        found = [folder / f"{stem}{x}" for x in (".parquet", ".csv") if (folder / f"{stem}{x}").is_file()]
        if getattr(args, stem) is None and not found:
            raise ValueError(f"--study: {str(folder)!r} has no {stem}.parquet or {stem}.csv")
        files[stem] = getattr(args, stem) or str(found[0])
    config = folder / "study.json"
    settings = json.loads(config.read_text()) if config.is_file() else {}
    split = split or "val"
    if threshold is None:
        threshold = float(settings.get("threshold", 0.5))
    return files["samples"], files["tags"], split, out or str(folder / f"modes_{split}.csv"), threshold


def run(args: argparse.Namespace) -> int:
    """Run ``primekit search`` with parsed arguments."""
    samples_path, tags_path, args.split, args.out, threshold = _inputs(args)
    table_suffix(args.out, "--out")
    if not 0 <= threshold <= 1:
        raise ValueError(f"--threshold: must lie in [0, 1], got {threshold}")
    necessity = args.necessity
    if isinstance(necessity, str):
        necessity = parse_necessity(necessity)
    # hyperparameters are checked before any file is read
    try:
        search_settings(
            min_size=args.min_size, min_drop=args.min_drop, necessity=necessity,
            max_tags=args.max_tags, min_tag_count=args.min_tag_count, n_jobs=args.n_jobs,
        )
    except (TypeError, ValueError) as exc:
        name, _, rest = str(exc).partition(":")
        raise type(exc)(f"--{name.replace('_', '-')}:{rest}") from None
    if args.beam_width < 1:
        raise ValueError(f"--beam-width: must be >= 1, got {args.beam_width}")
    if args.max_q is not None and not 0 < args.max_q <= 1:
        raise ValueError(f"--max-q: must lie in (0, 1], got {args.max_q}")
    started = time.perf_counter()
    every = read_samples(samples_path, argument="samples")
    samples = select_split(every, args.split, argument="--split")
    other = _other_split_ids(every, samples)
    tags_input = _without(tags_path, other) if args.ray is None else tags_path
    index = pd.Index(samples["id"], name="id")
    labels = pd.Series(samples["label"].to_numpy(), index=index, name="label")
    correct = pd.Series(samples["correct"].to_numpy(dtype=bool), index=index, name="correct")
    if args.ray is not None:
        modes = find_failure_modes_ray(
            samples, tags_path, threshold=threshold,
            address=None if args.ray == "local" else args.ray, min_size=args.min_size,
            min_drop=args.min_drop, necessity=necessity, max_tags=args.max_tags,
            min_tag_count=args.min_tag_count, method=args.method, beam_width=args.beam_width,
            max_q=None if args.max_q is None else 1.0, ignore_ids=other,
        )  # fmt: skip
        return _finish(*_filtered(modes, args.max_q), args, labels, started)
    # the long table goes to the search as it is: packed by class from its codes
    modes = find_failure_modes(
        tags_input,
        labels,
        correct,
        threshold=threshold,
        min_size=args.min_size,
        min_drop=args.min_drop,
        necessity=necessity,
        max_tags=args.max_tags,
        min_tag_count=args.min_tag_count,
        method=args.method,
        beam_width=args.beam_width,
        n_jobs=args.n_jobs,
        progress=sys.stderr.isatty(),
        max_q=None if args.max_q is None else 1.0,
    )
    return _finish(*_filtered(modes, args.max_q), args, labels, started)


def _other_split_ids(every: pd.DataFrame, samples: pd.DataFrame) -> np.ndarray | None:
    """The ids of the samples in other splits than the one searched (None without ``--split``).

    Tags are usually computed once for a whole folder; searching one split must not report the
    other splits' images as ids "without a sample". Ids that are in no split still are.
    """
    if samples is every:  # no --split: nothing to leave out
        return None
    ids = pd.Index(every["id"].astype(str))
    return ids[~ids.isin(samples["id"].astype(str))].to_numpy(dtype=object)  # a hash, not a sort


def _without(tags_path: str, other: np.ndarray | None) -> Any:
    """The tag table without the rows of the ids ``other`` (read lazily, by a dataset filter)."""
    if other is None or len(other) == 0:
        return tags_path
    import pyarrow as pa  # on first use, as in _bitsets: `import primekit` stays fast
    import pyarrow.compute as pc

    dataset = open_tag_dataset(Path(tags_path), "--tags")
    # ids compared as strings, as the search compares them (a tagger may write integer ids)
    return dataset.filter(~pc.field("id").cast(pa.string()).isin(pa.array(other, pa.string())))


def _filtered(modes: pd.DataFrame, max_q: float | None) -> tuple[pd.DataFrame, str]:
    """The modes with q-value <= ``max_q`` (of a search with every q-value) and what that kept."""
    if max_q is None:
        return modes, ""
    kept = modes[modes["q_value"] <= max_q].reset_index(drop=True)
    kept.attrs = dict(modes.attrs)
    return kept, f" (of the paper's {len(modes)}, those with q <= {max_q:g})"


def _finish(
    modes: pd.DataFrame, found: str, args: argparse.Namespace, labels: pd.Series, started: float
) -> int:
    write_modes(modes, args.out)
    print(
        f"{len(modes)} failure modes{found} in {labels.nunique()} classes "
        f"({len(labels)} samples{f' of split {args.split}' if args.split else ''}, "
        f"{modes.attrs.get('join', {}).get('n_tag_rows', '?')} tag rows{_join_note(modes.attrs.get('join', {}))}) in "
        f"{time.perf_counter() - started:.2f} s "
        f"-> {args.out}",
        file=sys.stderr,
    )
    return 0


def _join_note(join: dict) -> str:
    """What the join left out, for the summary line (the search logs the details)."""
    notes = []
    if join.get("stray_ids"):
        notes.append(f"{join['stray_ids']:,} tagged id(s) have no sample, left out")
    if join.get("untagged_samples"):
        notes.append(f"{join['untagged_samples']:,} sample(s) without tags")
    return "; " + ", ".join(notes) if notes else ""
