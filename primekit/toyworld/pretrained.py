"""``primekit toyworld train``: train a toy-world model from scratch and write it as primekit ships it.

The shipped models (``primekit/toyworld/weights/``) were made with exactly these commands::

    primekit toyworld train --what classifier --seed 0
    primekit toyworld train --what tagger --seed 0
    primekit toyworld train --what clip --seed 0

Each writes ``{kind}-s{seed}.safetensors`` (weights only) and ``{kind}-s{seed}.json`` to
``--out`` (default: the package's weights folder): the command, the keys of the world and settings
it was trained for, the SHA-256 of the weights, the training time, the machine, and its metrics on
the world (classifier: accuracy on val and test; tagger: per-tag precision and recall on val at
score 0.5; tiny CLIP: zero-shot AUROC per attribute on test, measured on the shipped float16
weights). Training is deterministic on one CPU but not across CPUs (the float kernels differ): on
another machine the same command gives a slightly different model of about the same quality.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import shutil
import time
from pathlib import Path

from ..io import atomic_path
from ..tags import tags_to_matrix
from ._shipped import (
    KINDS,
    WEIGHTS_DIR,
    compact_clip_state,
    expand_clip_state,
    file_digest,
    load_weights,
    record_path,
    save_weights,
    weights_path,
)
from .clip import clip_dir, clip_key, clip_zero_shot_auroc, write_clip_folder
from .evaluate import tagger_quality
from .train import (
    ClassifierConfig,
    TaggerConfig,
    learned_tags,
    predict,
    train_classifier,
    train_tagger,
)
from .world import build_world

__all__ = ["train_pretrained", "add_subparser"]

log = logging.getLogger(__name__)


def _machine() -> dict:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version()}


def _classifier(world, seed: int, out: Path, progress: bool) -> dict:
    config = ClassifierConfig(seed=seed)
    model = train_classifier(world, config=config, retrain=True, progress=progress)
    shutil.copyfile(model.weights_file_, weights_path("classifier", seed, out))
    acc = {f"{s}_accuracy": float(predict(world, s, config=config, model=model)["correct"].mean()) for s in ("val", "test")}
    return {"config": dict(config), "config_key": config.key, "train_seconds": model.train_seconds_, "metrics": acc}


def _tagger(world, seed: int, out: Path, progress: bool) -> dict:
    config = TaggerConfig(seed=seed + 1)
    model = train_tagger(world, config=config, retrain=True, progress=progress)
    shutil.copyfile(model.weights_file_, weights_path("tagger", seed, out))
    truth = world.attributes("val")
    matrix = tags_to_matrix(learned_tags(world, "val", config=config, model=model), threshold=0.5, ids=truth.index)
    quality = tagger_quality(matrix, truth)
    per_tag = {t: {k: (None if v != v else round(float(v), 4)) for k, v in row.items()} for t, row in quality.to_dict("index").items()}
    metrics = {"split": "val", "threshold": 0.5, "mean_precision": float(quality["precision"].mean()),
               "mean_recall": float(quality["recall"].mean()), "per_tag": per_tag}
    return {"config": dict(config), "config_key": config.key, "train_seconds": model.train_seconds_, "metrics": metrics}


def _clip(world, seed: int, out: Path, progress: bool) -> dict:
    from safetensors.torch import load_file

    t0 = time.perf_counter()
    folder = clip_dir(world=world, seed=seed, retrain=True, progress=progress)
    seconds = time.perf_counter() - t0
    state = load_file(str(folder / "open_clip_model.safetensors"))
    used = state["token_embedding.weight"].abs().sum(1).nonzero().flatten().numpy()
    target = weights_path("clip", seed, out)
    save_weights(compact_clip_state(state, used), target)
    # measure what is shipped: the float16 weights, unpacked as clip_dir unpacks them
    check = world.root / f".clip-shipped-check-s{seed}"
    write_clip_folder(check, expand_clip_state(load_weights(target)), {"seed": seed})
    auroc = clip_zero_shot_auroc(check, world, split="test", max_images=4000)
    shutil.rmtree(check)
    metrics = {"split": "test", "images": 4000, "mean_auroc": float(auroc["auroc"].mean()),
               "per_tag_auroc": {t: round(float(v), 4) for t, v in auroc["auroc"].items()}}
    return {"config": {"vocabulary_rows": int(len(used))}, "config_key": clip_key(seed=seed), "train_seconds": seconds, "metrics": metrics}


_TRAIN = {"classifier": _classifier, "tagger": _tagger, "clip": _clip}


def train_pretrained(kind: str, *, seed: int = 0, out: str | os.PathLike = WEIGHTS_DIR, home: str | os.PathLike | None = None, progress: bool = False) -> dict:
    """Train one toy-world model from scratch on the default world of ``seed`` and write it.

    Parameters
    ----------
    kind : {"classifier", "tagger", "clip"}
        The model.
    seed : int
        Seed of the world and the model (the shipped ones: 0).
    out : path-like
        Folder of ``{kind}-s{seed}.safetensors`` and ``{kind}-s{seed}.json`` (default: the
        package's weights folder, i.e. replace the shipped model).
    home : path-like, optional
        Data folder of the world (default ``$PRIMEKIT_HOME``).
    progress : bool
        tqdm bars.

    Returns
    -------
    dict
        The record written to the JSON file.
    """
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    world = build_world(home=home, seed=seed, progress=progress)
    t0 = time.perf_counter()
    result = _TRAIN[kind](world, seed, out, progress)
    record = {
        "kind": kind,
        "seed": seed,
        "command": f"primekit toyworld train --what {kind} --seed {seed}",
        "world_key": world.config.key,
        **result,
        "seconds": round(time.perf_counter() - t0, 1),
        "sha256": file_digest(weights_path(kind, seed, out)),
        "bytes": weights_path(kind, seed, out).stat().st_size,
        "machine": _machine(),
        "threads": int(os.environ.get("PRIMEKIT_THREADS") or 0) or None,
        "date": datetime.date.today().isoformat(),
        "note": "deterministic on one CPU, not across CPUs: elsewhere the command gives a slightly different model",
    }
    with atomic_path(record_path(kind, seed, out)) as tmp:
        tmp.write_text(json.dumps(record, indent=1) + "\n")
    return record


def _cli(args: argparse.Namespace) -> int:
    kinds = KINDS if args.what == "all" else (args.what,)
    for kind in kinds:
        record = train_pretrained(kind, seed=args.seed, out=args.out, home=args.home, progress=not args.no_progress)
        print(json.dumps({k: record[k] for k in ("kind", "seed", "sha256", "bytes", "seconds")} | {"metrics": {k: v for k, v in record["metrics"].items() if not isinstance(v, dict)}}), flush=True)
    return 0


def add_subparser(subparsers) -> None:
    """Register ``primekit toyworld train`` on the top-level CLI."""
    p = subparsers.add_parser("toyworld", help="the embedded toy world's models", description="The embedded toy world.")
    sub = p.add_subparsers(dest="toyworld_command", metavar="ACTION")
    sub.required = True
    t = sub.add_parser(
        "train",
        help="train a toy-world model from scratch and write it as primekit ships it",
        description="Train a toy-world model from scratch on the default world and write its weights "
        "(safetensors) and a JSON record of the command, keys and metrics.",
    )
    t.add_argument("--what", required=True, choices=(*KINDS, "all"), help="the model to train")
    t.add_argument("--seed", type=int, default=0, help="seed of the world and the model (shipped: 0)")
    t.add_argument("--out", default=str(WEIGHTS_DIR), help="output folder (default: the package's weights folder)")
    t.add_argument("--home", default=None, help="data folder (default $PRIMEKIT_HOME or ~/.cache/primekit)")
    t.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    t.set_defaults(func=_cli)

