"""``primekit study`` (registered in primekit.cli.COMMANDS): :func:`primekit.study_build.build_study`
from the command line, then what to open next."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .search_cli import parse_necessity
from .study_build import STUDY_FILES, build_study

__all__ = ["add_subparser", "next_steps"]

# build_study's argument names in its errors -> the flags a user typed
_FLAGS = {"images": "--images", "val_fraction": "--val-fraction", "taggers": "--tagger",
          "attributes": "--attributes", "threshold": "--threshold", "min_size": "--min-size",
          "min_drop": "--min-drop", "max_tags": "--max-tags", "necessity": "--necessity",
          "min_tag_count": "--min-tag-count", "image_size": "--image-size", "resize": "--resize",
          "expect_accuracy": "--expect-accuracy", "class_names": "--class-names",
          "embed": "--embed"}


def next_steps(folder: str | os.PathLike) -> list[str]:
    """What to open next on a study folder, one line each (printed by ``primekit study``)."""
    folder = Path(folder)
    lines = [f"open {folder / STUDY_FILES['report']}  (the report: every failure mode with its images)"]
    lines.append(
        "papermill notebooks/10_your_data.ipynb build/10_your_data.ipynb --cwd notebooks "
        f"-p dataset {folder.resolve()}  (or open it in JupyterLab and set dataset)"
    )
    lines.append(f"python -c \"import primekit; print(primekit.load_study('{folder}'))\"")
    lines.append(f"primekit search --study {folder} --min-size 20  (search again with other settings)")
    return lines


def add_subparser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``primekit study``."""
    from .tagging.cli import add_preprocessing_flags, add_trust_flag

    p = subparsers.add_parser(
        "study",
        help="one command from an image folder and a classifier to a study folder",
        description=(
            "Predict, tag, (embed,) split, search and report on your own images; the folder is what "
            "primekit.load_study, the explorer and every notebook read. Rerun to resume."
        ),
    )
    p.add_argument("--images", required=True,
                   help="image folder (class sub-folders) or manifest id,path,label[,split]")
    p.add_argument("--model", required=True,
                   help="classifier: torchvision:NAME[:WEIGHTS], timm:NAME[:PATH], jit:PATH, checkpoint:PATH")
    p.add_argument("--out", required=True, help="the study folder")
    p.add_argument("--tagger", action="append", default=[],
                   help="ram++:PATH, ram:PATH, clip:ViT-B-16:openai, clip:local-dir:PATH (repeatable)")
    p.add_argument("--attributes", default=None,
                   help="attribute table (CSV/Parquet): id + boolean/categorical columns, as tags")
    p.add_argument("--vocabulary", default=None,
                   help="CLIP taggers' vocabulary; RAM/RAM++: your own tags added (open set)")
    p.add_argument("--text-encoder", default=None, help="CLIP that embeds RAM's open-set tags")
    p.add_argument("--embed", default=None, metavar="CLIP",
                   help="also write CLIP image embeddings (e.g. clip:ViT-B-16:openai)")
    p.add_argument("--class-names", default=None, help="text file, one class name per output index")
    add_preprocessing_flags(p)
    add_trust_flag(p)
    p.add_argument("--val-fraction", type=float, default=None,
                   help="share of each class searched (val) when the source has no split (default 0.5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the val/test split")
    p.add_argument("--threshold", type=float, default=0.5, help="a tag is present when its score is >= this")
    g = p.add_argument_group("search")
    g.add_argument("--min-size", type=int, default=30, help="s: smallest failure mode")
    g.add_argument("--min-drop", type=float, default=0.30, help="a: least accuracy drop")
    g.add_argument("--necessity", type=parse_necessity, default=None, help="b2,b3,b4 (default 0.10,0.05,0.025)")
    g.add_argument("--max-tags", type=int, default=4, help="l: most tags in a mode")
    g.add_argument("--min-tag-count", type=int, default=None, help="tag vocabulary cut-off (default --min-size)")
    p.add_argument("--no-report", action="store_true", help="skip report.html")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 or auto")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_main)
    return p


def _main(args: argparse.Namespace) -> int:
    from .models import describe_preprocessing, parse_normalize

    if args.normalize is not None:
        try:
            parse_normalize(args.normalize)
        except ValueError as exc:
            raise ValueError(f"--{exc}") from None
    search = {"min_size": args.min_size, "min_drop": args.min_drop, "max_tags": args.max_tags,
              "min_tag_count": args.min_tag_count}
    if args.necessity is not None:
        search["necessity"] = args.necessity
    try:
        result = build_study(
            args.images, args.model, out=args.out, taggers=args.tagger, attributes=args.attributes,
            vocabulary=args.vocabulary, text_encoder=args.text_encoder, embed=args.embed,
            class_names=args.class_names, image_size=args.image_size, resize=args.resize,
            normalize=args.normalize, grayscale=args.grayscale, expect_accuracy=args.expect_accuracy,
            val_fraction=args.val_fraction, seed=args.seed, threshold=args.threshold, search=search,
            report=not args.no_report, device=args.device, batch_size=args.batch_size,
            num_workers=args.num_workers, trust_pickle=args.trust_checkpoint,
            progress=not args.no_progress,
        )
    except ValueError as exc:  # name the flag, as every other command does
        name, sep, rest = str(exc).partition(":")
        raise ValueError(f"{_FLAGS[name]}:{rest}" if sep and name in _FLAGS else str(exc)) from None
    err = sys.stderr
    print(f"study: preprocessing ({describe_preprocessing(result['preprocessing'] or {})})", file=err)
    for warning in result["warnings"]:
        print(f"study: WARNING {warning}", file=err)
    for warning in result["join_warnings"]:
        print(f"study: {warning}", file=err)
    acc = result.get("accuracy")
    steps = result["steps"]
    print(
        f"study: {result['n_images']} images ({', '.join(f'{k} {v}' for k, v in result['splits'].items())}), "
        f"accuracy {acc:.3f}, {steps['search'].get('n_failure_modes', '?')} failure modes on val; "
        f"computed {len(result['computed'])} step(s), {len(result['skipped'])} up to date, "
        f"{result['seconds']:.1f} s -> {result['folder']}",
        file=err,
    )
    print("next:", file=err)
    for line in next_steps(result["folder"]):
        print(f"  {line}", file=err)
    return 0
