"""``primekit tag``, ``primekit embed`` and ``primekit predict``."""

from __future__ import annotations

import argparse
import logging
import sys

__all__ = [
    "add_subparser",
    "add_tag_subparser",
    "add_embed_subparser",
    "add_predict_subparser",
    "parse_threshold",
    "tagger_options",
    "add_trust_flag",
    "add_preprocessing_flags",
    "classifier_from_args",
]

logger = logging.getLogger(__name__)


def parse_threshold(text: str | None) -> float | dict[str, float] | None:
    """``"0.7"`` -> 0.7; ``"dog=0.8,grass=0.6"`` -> per-tag dict; ValueError naming --threshold."""
    if text is None:
        return None
    try:
        if "=" not in text:
            return float(text)
        out = {}
        for part in text.split(","):
            tag, _, value = part.rpartition("=")
            out[tag.strip()] = float(value)
        return out
    except ValueError:
        raise ValueError(
            f"--threshold: expected a number or tag=value[,tag=value], got {text!r}"
        ) from None


def tagger_options(spec: str, *, vocabulary: str | None = None, text_encoder: str | None = None,
                   trust_checkpoint: bool = False) -> dict:
    """Options of :func:`primekit.tagging.load_tagger` from the CLI's flags (named in errors)."""
    ram = spec.startswith(("ram:", "ram++:"))
    options: dict = {}
    if vocabulary:
        if not (ram or spec.startswith("clip:")):
            raise ValueError("--vocabulary: only CLIP and RAM/RAM++ taggers take a vocabulary")
        options["vocabulary"] = vocabulary
    if text_encoder:
        if not ram:
            raise ValueError("--text-encoder: only for the open-set tags of ram++:/ram: taggers")
        options["text_encoder"] = text_encoder
    if trust_checkpoint:
        if not ram:
            raise ValueError("--trust-checkpoint: only ram++:/ram: taggers load checkpoints")
        options["trust_pickle"] = True
    return options


def add_trust_flag(p: argparse.ArgumentParser) -> None:
    """``--trust-checkpoint``: allow a checkpoint that is a full pickle (runs code from it)."""
    p.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="allow a checkpoint that is a full Python pickle (this runs code from the file; "
        "default: weights-only files)",
    )


def _common(p: argparse.ArgumentParser, *, batch: int) -> None:
    p.add_argument(
        "--images",
        required=True,
        help="image folder (class sub-folders) or manifest id,path[,label,split]",
    )
    p.add_argument("--out", required=True, help="output table (.parquet or .csv)")
    p.add_argument("--batch-size", type=int, default=batch)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 or auto")
    p.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--cache-dir", default=None, help="result cache (default $PRIMEKIT_HOME/cache)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _summary(kind: str, table, out: str) -> None:
    meta = table.attrs.get("metadata", {})
    errors = table.attrs.get("errors")
    n_err = 0 if errors is None else len(errors)
    line = f"{kind}: wrote {out} ({len(table)} rows, {meta.get('n_images', '?')} images, {n_err} skipped"
    print(line + (", see the .errors.csv beside it)" if n_err else ")"), file=sys.stderr)


def _run_tag(args: argparse.Namespace) -> int:
    from ..images import read_image_source
    from .runner import tag_images

    threshold = parse_threshold(args.threshold)
    images = read_image_source(args.images, argument="--images")  # fail before loading a model
    options = tagger_options(args.tagger, vocabulary=args.vocabulary,
                             text_encoder=args.text_encoder, trust_checkpoint=args.trust_checkpoint)
    from . import load_tagger, resolve_device

    resolve_device(args.device)
    tagger = load_tagger(args.tagger, device=args.device, **options)
    table = tag_images(
        images,
        tagger,
        out=args.out,
        batch_size=args.batch_size,
        device=args.device,
        num_workers=args.num_workers,
        threshold=threshold,
        min_score=args.min_score,
        amp=not args.fp32,
        cache_dir=args.cache_dir,
        progress=not args.no_progress,
    )
    _summary("tag", table, args.out)
    return 0


def add_tag_subparser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "tag",
        help="tag images with RAM++/RAM or CLIP",
        description="Tag images into the long table id, tag, score.",
    )
    _common(p, batch=32)
    p.add_argument(
        "--tagger",
        required=True,
        help="ram++:PATH, ram:PATH, clip:ViT-B-16:openai, clip:toyworld, clip:local-dir:PATH",
    )
    p.add_argument(
        "--threshold",
        default=None,
        help="global threshold or tag=value,...; default: the tagger's own per-tag thresholds",
    )
    p.add_argument(
        "--min-score",
        type=float,
        default=None,
        help="also keep absent tags scoring at least this (to study thresholds)",
    )
    p.add_argument("--fp32", action="store_true", help="no mixed precision on the GPU")
    p.add_argument(
        "--vocabulary",
        default=None,
        help="CLIP: builtin, ram, or a file with one tag per line; RAM/RAM++: a file of your own "
        "tags added to RAM's (open-set tags)",
    )
    p.add_argument(
        "--text-encoder",
        default=None,
        help="RAM/RAM++ open-set tags: CLIP that embeds them (default clip:ViT-B-16:openai)",
    )
    add_trust_flag(p)
    p.set_defaults(func=_run_tag)
    return p


add_subparser = add_tag_subparser


def _run_embed(args: argparse.Namespace) -> int:
    from ..clip import embed_images, load_clip
    from ..images import read_image_source

    images = read_image_source(args.images, argument="--images")
    model = load_clip(args.model, device=args.device)
    table = embed_images(
        images,
        model=model,
        out=args.out,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        cache_dir=args.cache_dir,
        progress=not args.no_progress,
    )
    _summary("embed", table, args.out)
    return 0


def add_embed_subparser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "embed",
        help="CLIP image embeddings",
        description="Embed images with an open_clip model (id, emb_0..).",
    )
    _common(p, batch=64)
    p.add_argument(
        "--model",
        default="clip:ViT-B-16:openai",
        help="clip:ViT-B-16:openai, clip:toyworld, clip:local-dir:PATH, clip:ARCH:WEIGHTS_FILE",
    )
    p.set_defaults(func=_run_embed)
    return p


def add_preprocessing_flags(p: argparse.ArgumentParser) -> None:
    """The classifier's preprocessing flags (``predict`` and ``study``)."""
    g = p.add_argument_group(
        "preprocessing",
        "how images are turned into the model's input; torchvision/timm models bring their own, "
        "TorchScript/checkpoint models get the ImageNet default (256 -> crop 224, ImageNet "
        "mean/std) unless you say otherwise",
    )
    g.add_argument("--image-size", type=int, default=None, help="side of the centre crop fed to the model")
    g.add_argument("--resize", type=int, default=None,
                   help="shorter side after resizing, before the crop (default image-size * 8/7; "
                        "= image-size: no crop margin)")
    g.add_argument("--normalize", default=None, help="imagenet, none, or MEAN,STD (or M1,M2,M3,S1,S2,S3)")
    g.add_argument("--grayscale", action="store_true", help="one grey channel (models trained on grey images)")
    g.add_argument("--expect-accuracy", type=float, default=None,
                   help="the accuracy you know the model has: warn loudly when far below it")


def classifier_from_args(args: argparse.Namespace):
    """Load ``--model`` with the preprocessing flags, naming a flag in every error."""
    from ..models import describe_preprocessing, load_classifier, parse_normalize

    if args.expect_accuracy is not None and not 0 < args.expect_accuracy <= 1:
        raise ValueError(f"--expect-accuracy: must lie in (0, 1], got {args.expect_accuracy}")
    for flag in ("image_size", "resize"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ValueError(f"--{flag.replace('_', '-')}: must be a positive integer, got {value}")
    normalize = None
    if args.normalize is not None:
        try:
            normalize = parse_normalize(args.normalize)
        except ValueError as exc:
            raise ValueError(f"--{exc}") from None
        normalize = args.normalize
    clf = load_classifier(
        args.model,
        device=args.device,
        image_size=args.image_size,
        resize=args.resize,
        normalize=normalize,
        grayscale=args.grayscale,
        trust_pickle=args.trust_checkpoint,
    )
    print(f"preprocessing ({describe_preprocessing(clf.preprocessing)})", file=sys.stderr)
    return clf


def _run_predict(args: argparse.Namespace) -> int:
    from ..images import read_image_source
    from ..models import predict

    images = read_image_source(args.images, argument="--images")
    clf = classifier_from_args(args)
    table = predict(
        images,
        clf,
        out=args.out,
        class_names=args.class_names,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        cache_dir=args.cache_dir,
        progress=not args.no_progress,
        expect_accuracy=args.expect_accuracy,
    )
    _summary("predict", table, args.out)
    return 0


def add_predict_subparser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "predict",
        help="run a classifier into the samples table",
        description="Classify images into id, label, pred, correct, confidence.",
    )
    _common(p, batch=64)
    p.add_argument(
        "--model",
        required=True,
        help="torchvision:NAME[:WEIGHTS], timm:NAME[:PATH], jit:PATH, checkpoint:PATH",
    )
    p.add_argument("--class-names", default=None, help="text file, one class name per output index")
    add_preprocessing_flags(p)
    add_trust_flag(p)
    p.set_defaults(func=_run_predict)
    return p
