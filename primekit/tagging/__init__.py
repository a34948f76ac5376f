"""Taggers behind one interface, each producing the long tag table ``id, tag, score``.

- :class:`RamTagger`: RAM / RAM++ with per-tag probabilities (``ram++:PATH``, ``ram:PATH``);
- :class:`ClipTagger`: open-vocabulary tagging with open_clip (``clip:ViT-B-16:openai``,
  ``clip:toyworld``, ``clip:local-dir:PATH``);
- :func:`attributes_to_tags`: attribute tables (CelebA, CUB, Waterbirds, any boolean columns).

:func:`tag_images` runs a tagger over an image source (cached, resumable, corrupt images skipped);
:func:`primekit.tagging.ray.tag_images_ray` does the same on a Ray cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .attributes import (
    attributes_to_tags,
    read_celeba_attributes,
    read_cub_attributes,
    read_waterbirds_metadata,
)
from .base import Tagger, resolve_device, tag_images

__all__ = [
    "Tagger",
    "tag_images",
    "load_tagger",
    "ClipTagger",
    "RamTagger",
    "builtin_vocabulary",
    "attributes_to_tags",
    "read_celeba_attributes",
    "read_cub_attributes",
    "read_waterbirds_metadata",
    "TAGGER_SPECS",
]

TAGGER_SPECS = (
    "ram++:PATH",
    "ram:PATH",
    "clip:ViT-B-16:openai",
    "clip:toyworld",
    "clip:local-dir:PATH",
)


def __getattr__(name: str) -> Any:  # torch-heavy taggers are imported on first use
    if name in ("ClipTagger", "builtin_vocabulary"):
        from . import clip_tagger

        return getattr(clip_tagger, name)
    if name == "RamTagger":
        from .ram import RamTagger

        return RamTagger
    raise AttributeError(name)


def load_tagger(spec: str, *, device: str | None = "cpu", **options: Any) -> Tagger:
    """Build a tagger from a spec string.

    Parameters
    ----------
    spec : str
        ``ram++:PATH`` or ``ram:PATH`` (checkpoint file), ``clip:ARCH:PRETRAINED`` (e.g.
        ``clip:ViT-B-16:openai``), ``clip:toyworld``, ``clip:local-dir:PATH``.
    device : str
        Torch device; ``ValueError`` if CUDA is asked for and absent.
    **options
        Passed to the tagger's class (e.g. ``vocabulary=`` for CLIP, ``tokenizer_dir=`` for RAM).
    """
    if not isinstance(spec, str):
        raise TypeError(f"tagger: expected a spec string, got {type(spec).__name__}")
    device = resolve_device(device)
    kind, _, rest = spec.partition(":")
    if kind in ("ram++", "ram") and rest:
        from .ram import RamTagger

        return RamTagger(Path(rest), variant=kind, device=device, **options)
    if kind == "clip" and rest:
        from .clip_tagger import ClipTagger

        return ClipTagger(rest, device=device, **options)
    raise ValueError(f"tagger: unknown spec {spec!r}; expected one of {', '.join(TAGGER_SPECS)}")
