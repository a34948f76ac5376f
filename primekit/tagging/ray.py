"""Tagging beyond one machine: the same taggers under Ray Data, writing the same tag table.

``tag_images_ray`` reads the image table on the driver, turns it into a Ray Dataset of
``id, path`` rows and runs ``map_batches`` with an actor class: each actor builds the tagger once
(on its GPU when ``num_gpus > 0``) and turns batches of paths into ``id, tag, score`` rows; images
that cannot be read come back as error rows. The driver collects the rows (only present tags, or
those ``>= min_score``) and writes the Parquet table with the tagger's metadata, exactly as
:func:`primekit.tag_images` does (up to float rounding of different batch compositions).

Pointing it at a cluster
------------------------
Start Ray on the cluster (``ray start --head`` on one node, ``ray start --address=HEAD:6379`` on
the others, or KubeRay / ``ray up``), install primekit (with ``[ram]`` for RAM++) and the weights
at the same path on every node, and make the images readable at the same paths everywhere (a
shared or mounted file system). Then, on the head node or any machine that can reach it::

    from primekit.tagging.ray import tag_images_ray
    tag_images_ray("manifest.parquet", "ram++:/models/ram_plus_swin_large_14m.pth",
                   out="tags.parquet", address="auto", num_gpus=1, concurrency=8, batch_size=64)

``address="auto"`` joins the running cluster (``ray://HEAD:10001`` for Ray Client); without an
address a local Ray instance is started. ``concurrency`` is the number of tagger actors (e.g. one
per GPU), ``num_gpus`` the GPUs per actor (fractions share a GPU). The driver also builds the
tagger once on its CPU, to record its vocabulary, thresholds and settings in the metadata. Ray retries failed tasks; unlike
the single-machine path there is no on-disk cache, so an interrupted Ray run starts over.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from .._jobs import check_out, write_errors
from ..images import open_image, read_image_source
from ..tags import validate_tag_table, write_tags
from .base import THRESHOLD_RULE, Tagger, check_unit, resolve_thresholds, scores_to_long
from .runner import load_tagger

__all__ = ["tag_images_ray", "TagActor"]

logger = logging.getLogger(__name__)


def _build(tagger: str | Tagger | Callable[[], Tagger], device: str) -> Tagger:
    if isinstance(tagger, Tagger):
        return tagger
    if isinstance(tagger, str):
        return load_tagger(tagger, device=device)
    return tagger()


class TagActor:
    """Ray Data actor: builds the tagger once, then tags batches of ``id, path`` rows.

    Returns a pandas batch ``id, tag, score, error``: tag rows (``error`` empty) and one row per
    unreadable image (``tag`` empty, ``error`` = reason).
    """

    def __init__(self, tagger, *, threshold=None, min_score=None, num_threads: int | None = None):
        import torch  # heavy: imported on first use

        if num_threads:
            torch.set_num_threads(num_threads)
        device = "cuda" if torch.cuda.is_available() and torch.cuda.device_count() else "cpu"
        self.tagger = _build(tagger, device)
        if getattr(self.tagger, "calibration", None) == "dataset":
            raise ValueError(
                "tagger: calibration='dataset' needs the whole collection; use 'image' with Ray"
            )
        self.thresholds = resolve_thresholds(
            self.tagger.vocabulary, self.tagger.thresholds, threshold
        )
        self.min_score = min_score

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        images, ids, errors = [], [], []
        for id_, path in zip(batch["id"], batch["path"], strict=False):
            try:
                images.append(self.tagger.transform(open_image(path)))
                ids.append(id_)
            except FileNotFoundError:
                errors.append((id_, "missing file"))
            except Exception as exc:
                errors.append((id_, f"cannot decode image: {type(exc).__name__}: {exc}"))
        parts = []
        if images:
            import torch  # heavy: imported on first use

            scores = self.tagger.tag_batch(torch.stack(images))
            rows = scores_to_long(
                ids, scores, self.tagger.vocabulary, self.thresholds, min_score=self.min_score
            )
            parts.append(
                pd.DataFrame(
                    {
                        "id": rows["id"].astype(str),
                        "tag": rows["tag"].astype(str),
                        "score": rows["score"].astype(float),
                        "error": "",
                    }
                )
            )
        if errors:
            parts.append(
                pd.DataFrame(
                    {
                        "id": [e[0] for e in errors],
                        "tag": "",
                        "score": np.nan,
                        "error": [e[1] for e in errors],
                    }
                )
            )
        if not parts:
            return pd.DataFrame(
                {
                    "id": pd.Series(dtype=str),
                    "tag": pd.Series(dtype=str),
                    "score": pd.Series(dtype=float),
                    "error": pd.Series(dtype=str),
                }
            )
        return pd.concat(parts, ignore_index=True)


def _describe(tagger) -> dict[str, Any]:
    t = _build(tagger, "cpu")
    return {
        "metadata": t.metadata(),
        "vocabulary": list(t.vocabulary),
        "thresholds": np.asarray(t.thresholds).tolist(),
    }


def tag_images_ray(
    source: str | os.PathLike | pd.DataFrame,
    tagger: str | Tagger | Callable[[], Tagger],
    *,
    out: str | os.PathLike | None = None,
    batch_size: int = 32,
    num_gpus: float = 0.0,
    num_cpus: float = 1.0,
    concurrency: int = 1,
    threshold: float | Mapping[str, float] | None = None,
    min_score: float | None = None,
    address: str | None = None,
    init_kwargs: Mapping[str, Any] | None = None,
    num_threads: int | None = None,
) -> pd.DataFrame:
    """Tag ``source`` with Ray Data actors and return (and write) the long tag table.

    Parameters
    ----------
    source : path-like or DataFrame
        Image folder, manifest or image table; paths must be readable on every node.
    tagger : str, Tagger or callable
        A spec (``"ram++:PATH"``, ``"clip:ViT-B-16:openai"``, ...; built inside each actor), a
        Tagger (shipped to the actors) or a zero-argument factory.
    out : path-like, optional
        Parquet/CSV tag table; failed images go to ``<out stem>.errors.csv``.
    batch_size : int
        Images per ``map_batches`` call.
    num_gpus, num_cpus : float
        Resources per actor.
    concurrency : int
        Number of actors.
    threshold, min_score
        As in :func:`primekit.tag_images`.
    address : str, optional
        Ray cluster address (``"auto"``, ``"ray://host:10001"``); default: the running instance,
        else a new local one.
    init_kwargs : mapping, optional
        Extra ``ray.init`` arguments (e.g. ``{"num_cpus": 2}`` for a local instance).
    num_threads : int, optional
        ``torch.set_num_threads`` inside each actor.

    Returns
    -------
    DataFrame
        ``id, tag, score`` sorted by id, tag, with ``attrs["metadata"]`` and ``attrs["errors"]``.
    """
    _check_options(out, batch_size, concurrency, num_gpus, tagger)
    if min_score is not None:
        min_score = check_unit(min_score, "min_score")
    try:
        import ray  # heavy: imported on first use
    except ImportError:
        raise ValueError("ray: Ray is not installed; pip install 'primekit[ray]'") from None
    images = read_image_source(source)
    # The driver builds the tagger once on its CPU to record vocabulary, thresholds and settings
    # (a separate Ray task would pay the model import and load a second time); bad specs and
    # thresholds fail here, before Ray starts.
    description = _describe(tagger)
    resolve_thresholds(description["vocabulary"], np.asarray(description["thresholds"]), threshold)
    if not ray.is_initialized():
        ray.init(address=address, **dict(init_kwargs or {}))
    blocks = max(1, min(len(images), concurrency * 4, -(-len(images) // batch_size)))
    rows = ray.data.from_pandas(images[["id", "path"]]).repartition(blocks).map_batches(
        TagActor,
        fn_constructor_kwargs={
            "tagger": tagger,
            "threshold": threshold,
            "min_score": min_score,
            "num_threads": num_threads,
        },
        batch_size=batch_size,
        batch_format="pandas",
        num_gpus=num_gpus,
        num_cpus=num_cpus,
        concurrency=concurrency,
    ).to_pandas()
    table, errors = _tags_and_errors(rows, images)
    thresholds = resolve_thresholds(
        description["vocabulary"], np.asarray(description["thresholds"]), threshold
    )
    metadata = {
        **description["metadata"],
        "thresholds": dict(zip(description["vocabulary"], thresholds.tolist(), strict=False)),
        "threshold_rule": THRESHOLD_RULE,
        "min_score": min_score,
        "n_images": int(len(images)),
        "n_tagged": int(len(images) - len(errors)),
        "n_errors": int(len(errors)),
        "runner": "ray",
    }
    logger.info("ray tag: %d images, %d skipped", len(images), len(errors))
    if out is not None:
        write_tags(table, out, metadata=metadata)
        write_errors(errors, out)
    table.attrs["metadata"] = metadata
    table.attrs["errors"] = errors
    return table


def _check_options(out: Any, batch_size: Any, concurrency: Any, num_gpus: Any, tagger: Any) -> None:
    """Bad options fail before Ray starts."""
    if out is not None:
        check_out(out)
    if batch_size < 1:
        raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
    if concurrency < 1:
        raise ValueError(f"concurrency: must be >= 1, got {concurrency}")
    if num_gpus < 0:
        raise ValueError(f"num_gpus: must be >= 0, got {num_gpus}")
    if not (isinstance(tagger, (str, Tagger)) or callable(tagger)):
        raise TypeError(
            f"tagger: expected a spec, a Tagger or a factory, got {type(tagger).__name__}"
        )


def _tags_and_errors(rows: pd.DataFrame, images: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The actors' rows as the long tag table and the ``id, path, reason`` errors."""
    failed = rows["error"].fillna("") != ""
    lookup = images.set_index("id")["path"]
    errors = pd.DataFrame(
        {
            "id": rows.loc[failed, "id"].astype(str).to_numpy(),
            "path": lookup.reindex(rows.loc[failed, "id"].astype(str)).to_numpy(),
            "reason": rows.loc[failed, "error"].to_numpy(),
        }
    )
    errors = errors.sort_values("id").reset_index(drop=True)
    table = scores_to_long([], np.zeros((0, 0)), [], np.zeros(0))  # typed empty table
    if (~failed).any():
        table = rows.loc[~failed, ["id", "tag", "score"]].sort_values(["id", "tag"], kind="stable")
        table = scores_to_long_validated(table)
    return table, errors


def scores_to_long_validated(table: pd.DataFrame) -> pd.DataFrame:
    return validate_tag_table(table.reset_index(drop=True))
