"""Open-vocabulary tagging with open_clip: cosine similarity to prompt-ensembled tag embeddings.

Each tag is embedded with several prompt templates ("a photo of {}.", ...); the normalised mean
is the tag's text embedding (CLIP paper, prompt ensembling). Raw similarities are cached; scores
in [0, 1] come from a calibration chosen so that one threshold (0.5) means the same for all tags:

- ``"image"`` (default for CLIP): per image, the similarities are standardised across the
  vocabulary, ``z = (s - mean) / std``, and ``score = sigmoid(slope * (z - offset))``: a tag is
  present when it is ``offset`` standard deviations more similar to the image than the average tag.
  Depends on the image alone, so it is the same in a batch, a resumed run or on a Ray cluster.
- ``"dataset"``: the same with per-tag statistics over the tagged collection (each tag is present
  on the images where it is unusually strong *for that tag*); needs the whole collection.
- ``"siglip"`` (default for SigLIP models): the model's own probability,
  ``sigmoid(logit_scale * s + logit_bias)``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from ..clip import DEFAULT_CLIP, ClipModel, load_clip
from .base import Tagger

__all__ = [
    "ClipTagger",
    "builtin_vocabulary",
    "ram_vocabulary",
    "resolve_vocabulary",
    "tag_text_embeddings",
    "TEMPLATES",
]

logger = logging.getLogger(__name__)

TEMPLATES: tuple[str, ...] = (
    "a photo of {}.",
    "a photo of a {}.",
    "a photo with {}.",
    "a close-up photo of {}.",
    "a blurry photo of {}.",
    "a picture showing {}.",
    "an image of {}.",
    "{}",
)
CALIBRATIONS = ("auto", "image", "dataset", "siglip")


def builtin_vocabulary(*, sections: Sequence[str] | None = None) -> list[str]:
    """primekit's curated vocabulary (~300 tags: objects, scenes, colours, materials, actions,
    weather and light, attributes), optionally restricted to some ``sections``."""
    text = resources.files("primekit").joinpath("data/vocabulary.txt").read_text(encoding="utf-8")
    out, section = [], None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("# section:"):
            section = line.split(":", 1)[1].strip()
        elif line and not line.startswith("#") and (sections is None or section in sections):
            out.append(line)
    return out


def ram_vocabulary() -> list[str]:
    """RAM's 4,585 English tags (needs the ``ram`` package)."""
    try:
        text = resources.files("ram").joinpath("data/ram_tag_list.txt").read_text(encoding="utf-8")
    except ModuleNotFoundError as exc:
        raise ValueError(
            "vocabulary: 'ram' needs the recognize-anything package (pip install 'primekit[ram]')"
        ) from exc
    return [t for t in text.splitlines() if t.strip()]


def resolve_vocabulary(vocabulary: str | os.PathLike | Sequence[str] | None) -> list[str]:
    """``None`` (RAM's tags if ``ram`` is installed, else built-in), ``"builtin"``, ``"ram"``, a
    text file with one tag per line, or a list of tags."""
    if vocabulary is None:
        try:
            return ram_vocabulary()
        except ValueError:
            return builtin_vocabulary()
    if isinstance(vocabulary, str) and vocabulary == "builtin":
        return builtin_vocabulary()
    if isinstance(vocabulary, str) and vocabulary == "ram":
        return ram_vocabulary()
    if isinstance(vocabulary, (str, os.PathLike)):
        path = Path(vocabulary).expanduser()
        if not path.is_file():
            raise ValueError(f"vocabulary: {str(vocabulary)!r} is not 'builtin', 'ram' or a file")
        tags = [t.strip() for t in path.read_text(encoding="utf-8").splitlines()]
        tags = [t for t in tags if t and not t.startswith("#")]
    else:
        tags = list(vocabulary)
        if not all(isinstance(t, str) and t.strip() for t in tags):
            raise TypeError("vocabulary: expected non-empty strings")
    if not tags:
        raise ValueError("vocabulary: is empty")
    if len(set(tags)) != len(tags):
        raise ValueError("vocabulary: contains repeated tags")
    return tags


class ClipTagger(Tagger):
    """Tag images with an open_clip model over a vocabulary.

    Parameters
    ----------
    model : ClipModel or str
        CLIP spec (default ``"ViT-B-16:openai"``, the paper's CLIP) or a loaded model.
    vocabulary : str, path or list of str, optional
        See :func:`resolve_vocabulary`.
    templates : sequence of str
        Prompt templates with one ``{}``; embeddings are averaged (prompt ensembling).
    calibration : {"auto", "image", "dataset", "siglip"}
        How similarities become scores (module docstring). ``"auto"``: ``"siglip"`` for models
        with a logit bias, else ``"image"``.
    offset, slope : float
        z-score at which the score is 0.5, and the sigmoid's steepness.
    device : str
        Torch device.
    """

    name = "clip"

    def __init__(
        self,
        model: ClipModel | str = DEFAULT_CLIP,
        *,
        vocabulary: str | os.PathLike | Sequence[str] | None = None,
        templates: Sequence[str] = TEMPLATES,
        calibration: str = "auto",
        offset: float = 2.0,
        slope: float = 2.0,
        device: str = "cpu",
    ):
        if calibration not in CALIBRATIONS:
            raise ValueError(f"calibration: expected one of {CALIBRATIONS}, got {calibration!r}")
        templates = list(templates)
        if not templates or not all(isinstance(t, str) and "{}" in t for t in templates):
            raise ValueError("templates: each template must be a string containing '{}'")
        if slope <= 0:
            raise ValueError(f"slope: must be > 0, got {slope}")
        self.vocabulary = resolve_vocabulary(vocabulary)
        self.clip = model if isinstance(model, ClipModel) else load_clip(model, device=device)
        self.device = self.clip.device
        if calibration == "auto":
            calibration = "siglip" if self.clip.logit_bias is not None else "image"
        if calibration == "siglip" and self.clip.logit_bias is None:
            raise ValueError("calibration: 'siglip' needs a SigLIP model (one with a logit_bias)")
        self.calibration = calibration
        self.offset, self.slope = float(offset), float(slope)
        self.templates = templates
        self.text_embeddings = self._embed_vocabulary()  # (n_tags, d), unit norm
        self.thresholds = np.full(len(self.vocabulary), 0.5)
        self.weights = self.clip.weights
        self.settings = {
            "model": self.clip.spec,
            "templates": templates,
            "calibration": calibration,
            "offset": self.offset,
            "slope": self.slope,
            "n_tags": len(self.vocabulary),
        }

    def _embed_vocabulary(self):
        return tag_text_embeddings(self.clip, self.vocabulary, self.templates)

    def transform(self, image):
        return self.clip.preprocess(image)

    def cache_settings(self) -> dict:
        # calibration is applied after the cache (raw similarities), so it is not part of the key
        return {
            "tagger": self.name,
            "clip": self.clip.identity,
            "templates": self.templates,
            "vocabulary": self.vocabulary,
            "preprocess": repr(self.clip.preprocess),
        }

    def forward(self, batch):
        """Cosine similarities (b, n_tags) between images and tag embeddings."""
        image = self.clip.encode_images(batch)
        return image @ self.text_embeddings.to(image.dtype).T

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.float64)
        if self.calibration == "siglip":
            return _sigmoid(self.clip.logit_scale * raw + self.clip.logit_bias)
        axis = 1 if self.calibration == "image" else 0
        mean = raw.mean(axis=axis, keepdims=True)
        std = raw.std(axis=axis, keepdims=True)
        z = (raw - mean) / np.where(std > 1e-12, std, 1.0)
        return _sigmoid(self.slope * (z - self.offset))


def tag_text_embeddings(clip: ClipModel, tags: Sequence[str], templates: Sequence[str] = TEMPLATES):
    """Prompt-ensembled text embeddings of ``tags``: tensor (len(tags), d), unit norm.

    Each tag is written into every template, embedded, and the normalised mean of its prompts'
    embeddings is the tag's embedding (CLIP paper, prompt ensembling).
    """
    import torch  # heavy: imported on first use

    chunks = []
    for start in range(0, len(tags), 256):
        part = list(tags[start : start + 256])
        prompts = [t.format(tag) for tag in part for t in templates]
        emb = clip.encode_texts(prompts).reshape(len(part), len(templates), -1)
        chunks.append(torch.nn.functional.normalize(emb.mean(1), dim=-1))
    return torch.cat(chunks)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))
