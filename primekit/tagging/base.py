"""The tagger interface: what every tagger is and how its scores become the long tag table.

A tagger turns a batch of images into a score matrix (n_images, n_tags) in [0, 1] over its
``vocabulary``; ``thresholds`` holds its default decision threshold per tag. A tag is present when its score is
at least its threshold (``THRESHOLD_RULE``), the rule the search applies to the tag table too; a
tagger whose model decides with ``>`` (RAM) stores the next float above its thresholds. Everything that changes the numbers
is in ``name``, ``weights`` and ``settings``, which also key the cache and go into the tag table's
metadata.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._jobs import resolve_device
from ..tags import validate_tag_table

__all__ = [
    "Tagger",
    "resolve_thresholds",
    "check_unit",
    "scores_to_long",
    "resolve_device",
    "THRESHOLD_RULE",
]

logger = logging.getLogger(__name__)

#: how a score and a threshold make a tag present: the search's rule (``score >= threshold``)
THRESHOLD_RULE = "present when score >= threshold"


class Tagger:
    """Base class of the image taggers.

    Subclasses set ``name`` (str), ``weights`` (str: file, folder or tag of the weights),
    ``settings`` (JSON-serialisable dict), ``vocabulary`` (list of str), ``thresholds``
    (float array, one per tag) and ``transform`` (PIL image -> tensor (3, H, W)), and implement
    :meth:`forward`. :meth:`calibrate` maps raw outputs to scores in [0, 1] (identity by default).
    """

    name: str = "tagger"
    weights: str = ""
    settings: dict[str, Any]
    vocabulary: list[str]
    thresholds: np.ndarray
    device: str = "cpu"

    def forward(self, batch):  # pragma: no cover - abstract
        """Raw outputs (tensor (b, n_tags)) for a preprocessed batch already on ``self.device``."""
        raise NotImplementedError

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        """Map raw outputs of shape (n, n_tags) to scores in [0, 1] (identity by default)."""
        return raw

    def transform(self, image):  # pragma: no cover - abstract
        raise NotImplementedError

    def cache_settings(self) -> dict[str, Any]:
        """What determines the raw outputs: used as the cache key."""
        return {"tagger": self.name, "weights": self.weights, "settings": self.settings}

    def metadata(self) -> dict[str, Any]:
        """Tagger description stored in the tag table's metadata."""
        return {"tagger": self.name, "weights": self.weights, "settings": self.settings}

    def tag_batch(self, images: Sequence[Any]) -> np.ndarray:
        """Scores (n_images, n_tags) in [0, 1] for a list of PIL images or a preprocessed batch."""
        import torch  # heavy: imported on first use

        if isinstance(images, torch.Tensor):
            batch = images
        else:
            batch = torch.stack([self.transform(im) for im in images])
        with torch.inference_mode():
            raw = self.forward(batch.to(self.device))
        return self.calibrate(raw.float().cpu().numpy())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, weights={self.weights!r}, n_tags={len(self.vocabulary)})"


def resolve_thresholds(
    vocabulary: Sequence[str],
    defaults: np.ndarray,
    threshold: float | Mapping[str, float] | None,
) -> np.ndarray:
    """Per-tag thresholds: the tagger's ``defaults``, one global value, or per-tag overrides.

    A mapping overrides the named tags and keeps the defaults of the others; unknown tag names
    raise a ``ValueError`` naming ``threshold``.
    """
    thr = np.asarray(defaults, dtype=np.float64).copy()
    if threshold is None:
        return thr
    if isinstance(threshold, Mapping):
        index = {t: i for i, t in enumerate(vocabulary)}
        unknown = [t for t in threshold if t not in index]
        if unknown:
            raise ValueError(f"threshold: tag(s) {unknown[:5]} are not in the tagger's vocabulary")
        for t, v in threshold.items():
            thr[index[t]] = check_unit(v)
        return thr
    return np.full(len(vocabulary), check_unit(threshold))


def check_unit(value: Any, argument: str = "threshold") -> float:
    """A score threshold: a number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise TypeError(
            f"{argument}: expected a number in [0, 1] or a mapping tag -> number, got {value!r}"
        )
    if not 0 <= float(value) <= 1:
        raise ValueError(f"{argument}: must lie in [0, 1], got {value}")
    return float(value)


def scores_to_long(
    ids: Sequence[str],
    scores: np.ndarray,
    vocabulary: Sequence[str],
    thresholds: np.ndarray,
    *,
    min_score: float | None = None,
) -> pd.DataFrame:
    """Long ``id, tag, score`` rows: tags scoring at least their threshold (or ``min_score``).

    Rows are sorted by id, then tag, so the table is identical however it was computed.
    """
    scores = np.asarray(scores, dtype=np.float64)
    keep = scores >= (thresholds[None, :] if min_score is None else min_score)
    rows, cols = np.nonzero(keep)
    out = pd.DataFrame(
        {
            "id": np.asarray(ids, dtype=object)[rows],
            "tag": np.asarray(vocabulary, dtype=object)[cols],
            "score": np.clip(scores[rows, cols], 0.0, 1.0),
        }
    )
    out = out.sort_values(["id", "tag"], kind="stable").reset_index(drop=True)
    return validate_tag_table(out)  # same dtypes as read_tags gives back
