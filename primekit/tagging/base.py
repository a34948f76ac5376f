"""The tagger interface and :func:`tag_images`, which runs any tagger over an image source.

A tagger turns a batch of images into a score matrix (n_images, n_tags) in [0, 1] over its
``vocabulary``; ``thresholds`` holds its default decision threshold per tag (a tag is present when
its score is strictly greater, as RAM's ``generate_tag`` does). Everything that changes the numbers
is in ``name``, ``weights`` and ``settings``, which also key the cache and go into the tag table's
metadata.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._jobs import default_cache_dir, run_image_job, write_errors
from ..images import read_image_source
from ..tags import validate_tag_table, write_tags

__all__ = ["Tagger", "tag_images", "resolve_thresholds", "scores_to_long", "resolve_device"]

logger = logging.getLogger(__name__)


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
        import torch

        if isinstance(images, torch.Tensor):
            batch = images
        else:
            batch = torch.stack([self.transform(im) for im in images])
        with torch.inference_mode():
            raw = self.forward(batch.to(self.device))
        return self.calibrate(raw.float().cpu().numpy())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, weights={self.weights!r}, n_tags={len(self.vocabulary)})"


def resolve_device(device: str | None) -> str:
    """Return a usable torch device string; ``ValueError`` naming ``device`` if CUDA is absent."""
    import torch

    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not isinstance(device, str):
        raise TypeError(f"device: expected a string such as 'cpu' or 'cuda', got {device!r}")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"device: {device!r} is not a torch device ({exc})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device: {device!r} was asked for but CUDA is not available on this machine "
            "(torch.cuda.is_available() is False); use --device cpu"
        )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device: {device!r} was asked for but MPS is not available")
    return device


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
            thr[index[t]] = _check_unit(v)
        return thr
    return np.full(len(vocabulary), _check_unit(threshold))


def _check_unit(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise TypeError(
            f"threshold: expected a number in [0, 1] or a mapping tag -> number, got {value!r}"
        )
    if not 0 <= float(value) <= 1:
        raise ValueError(f"threshold: must lie in [0, 1], got {value}")
    return float(value)


def scores_to_long(
    ids: Sequence[str],
    scores: np.ndarray,
    vocabulary: Sequence[str],
    thresholds: np.ndarray,
    *,
    min_score: float | None = None,
) -> pd.DataFrame:
    """Long ``id, tag, score`` rows: tags scoring above their threshold (or ``>= min_score``).

    Rows are sorted by id, then tag, so the table is identical however it was computed.
    """
    scores = np.asarray(scores, dtype=np.float64)
    keep = scores > thresholds[None, :] if min_score is None else scores >= min_score
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


def tag_images(
    source: str | os.PathLike | pd.DataFrame,
    tagger: Tagger | str,
    *,
    out: str | os.PathLike | None = None,
    batch_size: int = 32,
    device: str | None = "cpu",
    num_workers: int = 0,
    threshold: float | Mapping[str, float] | None = None,
    min_score: float | None = None,
    cache_dir: str | os.PathLike | None = None,
    amp: bool = True,
    progress: bool = True,
) -> pd.DataFrame:
    """Tag every image of ``source`` with ``tagger`` and return (and write) the long tag table.

    Parameters
    ----------
    source : path-like or DataFrame
        Image folder, manifest or image table (see :func:`primekit.images.read_image_source`).
    tagger : Tagger or str
        A tagger or a spec (``"ram++:PATH"``, ``"ram:PATH"``, ``"clip:ViT-B-16:openai"``,
        ``"clip:toyworld"``, ``"clip:local-dir:PATH"``; see :func:`primekit.tagging.load_tagger`).
    out : path-like, optional
        Parquet (with metadata) or CSV file to write. Images that could not be read are listed in
        ``<out stem>.errors.csv`` beside it.
    batch_size, num_workers : int
        DataLoader settings.
    device : str
        ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"``. Mixed precision is used on CUDA.
    threshold : float or mapping tag -> float, optional
        Decision threshold: the tagger's own per-tag thresholds (RAM's class thresholds; 0.5 for
        calibrated CLIP scores) by default, one global value, or per-tag overrides.
    min_score : float, optional
        Also keep rows of absent tags scoring at least this (to study thresholds later); the
        thresholds used are in the metadata under ``thresholds``.
    cache_dir : path-like, optional
        Cache root (default ``$PRIMEKIT_HOME/cache``). A re-run over cached images is instant and
        an interrupted run resumes. The threshold is not part of the cache key.
    amp : bool
        Mixed precision (``torch.autocast``) on CUDA (ignored on CPU); ``False`` for float32
        numbers that match a float32 reference bit for bit. Part of the cache key.

    Returns
    -------
    DataFrame
        Columns ``id, tag, score`` sorted by id, tag; ``attrs["metadata"]`` holds the metadata and
        ``attrs["errors"]`` the failed images (``id, path, reason``).
    """
    from . import load_tagger

    if out is not None:
        _check_out(out)
    if min_score is not None:
        min_score = _check_unit(min_score)
    images = read_image_source(source)  # a bad source fails before a model is loaded
    if isinstance(tagger, str):
        tagger = load_tagger(tagger, device=device)
    elif not isinstance(tagger, Tagger):
        raise TypeError(f"tagger: expected a Tagger or a spec string, got {type(tagger).__name__}")
    else:
        resolve_device(device)
    thresholds = resolve_thresholds(tagger.vocabulary, tagger.thresholds, threshold)
    job = run_image_job(
        images["path"].tolist(),
        forward=tagger.forward,
        transform=tagger.transform,
        settings={**tagger.cache_settings(), "amp": bool(amp) and tagger.device.startswith("cuda")},
        amp=amp,
        kind="tags",
        cache_dir=cache_dir,
        batch_size=batch_size,
        num_workers=num_workers,
        device=tagger.device,
        progress=progress,
        desc=f"tag {tagger.name}",
    )
    ok = job.ok
    scores = tagger.calibrate(job.values[ok]) if ok.any() else np.zeros((0, len(tagger.vocabulary)))
    table = scores_to_long(
        images["id"][ok].tolist(), scores, tagger.vocabulary, thresholds, min_score=min_score
    )
    errors = _error_table(images, job.errors)
    metadata = {
        **tagger.metadata(),
        "thresholds": dict(zip(tagger.vocabulary, thresholds.tolist(), strict=False)),
        "threshold_rule": "present when score > threshold",
        "min_score": min_score,
        "n_images": int(len(images)),
        "n_tagged": int(ok.sum()),
        "n_errors": int(len(errors)),
        "cache": str(Path(cache_dir or default_cache_dir()) / "tags" / job.fingerprint),
    }
    return _finish("tag", table, job, errors, out, metadata, n_images=len(images),
                   write=lambda t, path, meta: write_tags(t, path, metadata=meta))


def _finish(what: str, table: pd.DataFrame, job, errors: pd.DataFrame, out, metadata: dict, *,
            n_images: int, write=None) -> pd.DataFrame:
    """The common end of an image job: log a summary, write the table and its errors file
    (atomically) when ``out`` is given, and attach metadata and errors to ``table.attrs``."""
    from ..io import write_table

    _summarise(what, n_images, job, errors, out)
    if out is not None:
        if write is None:
            write_table(table, out, metadata=metadata, argument="out")
        else:
            write(table, out, metadata)
        write_errors(errors, out)
    table.attrs["metadata"] = metadata
    table.attrs["errors"] = errors
    return table


def _check_out(out: str | os.PathLike, argument: str = "out") -> None:
    from ..io import TABLE_SUFFIXES

    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"{argument}: expected a path, got {type(out).__name__}")
    if Path(out).suffix.lower() not in TABLE_SUFFIXES:
        raise ValueError(f"{argument}: {str(out)!r} must end in one of {', '.join(TABLE_SUFFIXES)}")


def _error_table(images: pd.DataFrame, errors: pd.DataFrame) -> pd.DataFrame:
    idx = errors["index"].to_numpy(dtype=np.int64)
    return pd.DataFrame(
        {
            "id": images["id"].to_numpy()[idx],
            "path": images["path"].to_numpy()[idx],
            "reason": errors["reason"].to_numpy(),
        }
    )


def _summarise(what: str, n: int, job, errors: pd.DataFrame, out) -> None:
    msg = (
        f"{what}: {n} images, {job.n_cached} from cache, {job.n_computed} computed, "
        f"{len(errors)} skipped in {job.seconds:.1f}s"
    )
    if len(errors):
        where = (
            f"; see {Path(out).with_name(Path(out).name.rsplit('.', 1)[0] + '.errors.csv')}"
            if out
            else ""
        )
        logger.warning("%s (unreadable images%s)", msg, where)
    else:
        logger.info(msg)
