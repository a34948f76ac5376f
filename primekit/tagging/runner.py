"""Build a tagger from a spec string and run it over an image source (:func:`tag_images`)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._jobs import (
    default_cache_dir,
    finish_job,
    open_job_source,
    ready_model,
    resolve_device,
    run_table_job,
)
from ..tags import write_tags
from .base import THRESHOLD_RULE, Tagger, check_unit, resolve_thresholds, scores_to_long
from .clip_tagger import ClipTagger
from .ram import RamTagger

__all__ = ["TAGGER_SPECS", "load_tagger", "tag_images"]

logger = logging.getLogger(__name__)

TAGGER_SPECS = (
    "ram++:PATH",
    "ram:PATH",
    "clip:ViT-B-16:openai",
    "clip:toyworld",
    "clip:local-dir:PATH",
)


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
        raise TypeError(f"tagger: expected a Tagger or a spec string, got {type(spec).__name__}")
    device = resolve_device(device)
    kind, _, rest = spec.partition(":")
    if kind in ("ram++", "ram") and rest:
        return RamTagger(Path(rest), variant=kind, device=device, **options)
    if kind == "clip" and rest:
        return ClipTagger(rest, device=device, **options)
    raise ValueError(f"tagger: unknown spec {spec!r}; expected one of {', '.join(TAGGER_SPECS)}")


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
    if min_score is not None:
        min_score = check_unit(min_score, "min_score")
    images = open_job_source(source, out)  # a bad source fails before a model is loaded
    tagger = ready_model(tagger, Tagger, load_tagger, device)
    thresholds = resolve_thresholds(tagger.vocabulary, tagger.thresholds, threshold)
    job, errors = run_table_job(
        images,
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
    metadata = {
        **tagger.metadata(),
        "thresholds": dict(zip(tagger.vocabulary, thresholds.tolist(), strict=False)),
        "threshold_rule": THRESHOLD_RULE,
        "min_score": min_score,
        "n_images": int(len(images)),
        "n_tagged": int(ok.sum()),
        "n_errors": int(len(errors)),
        "cache": str(Path(cache_dir or default_cache_dir()) / "tags" / job.fingerprint),
    }
    return finish_job("tag", table, job, errors, out, metadata, n_images=len(images),
                   write=lambda t, path, meta: write_tags(t, path, metadata=meta))
