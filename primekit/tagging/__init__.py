"""Taggers behind one interface, each producing the long tag table ``id, tag, score``.

- :class:`RamTagger`: RAM / RAM++ with per-tag probabilities (``ram++:PATH``, ``ram:PATH``);
- :class:`ClipTagger`: open-vocabulary tagging with open_clip (``clip:ViT-B-16:openai``,
  ``clip:toyworld``, ``clip:local-dir:PATH``);
- :func:`attributes_to_tags`: attribute tables (CelebA, CUB, Waterbirds, any boolean columns).

:func:`tag_images` runs a tagger over an image source (cached, resumable, corrupt images skipped);
:func:`primekit.tagging.ray.tag_images_ray` does the same on a Ray cluster.
"""

from __future__ import annotations

from .attributes import (
    attributes_to_tags,
    read_celeba_attributes,
    read_cub_attributes,
    read_waterbirds_metadata,
)
from .base import Tagger, resolve_device
from .clip_tagger import ClipTagger, builtin_vocabulary
from .ram import RamTagger
from .runner import TAGGER_SPECS, load_tagger, tag_images

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
    "resolve_device",
]
