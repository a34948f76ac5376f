"""Image sources: an ImageFolder-style folder or a CSV/Parquet manifest, and a forgiving Dataset.

A *source* is read into the image table, one row per image, columns ``id, path`` and, when known,
``label`` and ``split``:

- a folder whose sub-folders are classes (``root/cat/001.png`` -> id ``cat/001.png``, label
  ``cat``); images directly under the root get no label;
- a manifest ``.csv``/``.parquet``/``.pq`` with columns ``id, path[, label, split]``; relative paths
  are resolved against the manifest's folder;
- a DataFrame with the same columns.

:class:`ImageDataset` decodes images lazily and never raises on a corrupt, truncated or missing
file: it returns the failure with its reason, :func:`collate_images` drops it from the batch, and
the caller records it (see ``primekit._jobs``), so a long run always completes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .io import TABLE_SUFFIXES, read_table

__all__ = [
    "IMAGE_EXTENSIONS",
    "read_image_source",
    "ImageDataset",
    "collate_images",
    "open_image",
]

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")


def read_image_source(
    source: str | os.PathLike | pd.DataFrame, *, argument: str = "images"
) -> pd.DataFrame:
    """Read an image source into the image table.

    Parameters
    ----------
    source : path-like or DataFrame
        A folder (ImageFolder layout), a manifest file (``.csv``, ``.parquet``, ``.pq``) or a
        DataFrame, each with columns ``id, path[, label, split]``.
    argument : str
        Name used in error messages.

    Returns
    -------
    DataFrame
        Columns ``id`` (str, unique), ``path`` (str, absolute) and, when present, ``label`` and
        ``split``; rows in source order (folders: sorted by id).
    """
    if isinstance(source, pd.DataFrame):
        frame, base = source.copy(), Path.cwd()
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if path.is_dir():
            return _read_folder(path, argument=argument)
        if path.suffix.lower() in TABLE_SUFFIXES:
            frame, base = read_table(path, argument=argument), path.parent
        elif not path.exists():
            raise ValueError(f"{argument}: {str(source)!r} does not exist")
        else:
            raise ValueError(
                f"{argument}: {str(source)!r} is neither a folder nor a manifest "
                f"({', '.join(TABLE_SUFFIXES)})"
            )
    else:
        raise TypeError(
            f"{argument}: expected a folder, a manifest path or a DataFrame, got {type(source).__name__}"
        )
    missing = [c for c in ("id", "path") if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{argument}: manifest lacks column(s) {missing}; expected id, path[, label, split]"
        )
    if frame["id"].isna().any() or frame["path"].isna().any():
        raise ValueError(f"{argument}: columns 'id' and 'path' must not have missing values")
    frame["id"] = frame["id"].astype(str)
    if frame["id"].duplicated().any():
        dup = frame.loc[frame["id"].duplicated(), "id"].iloc[0]
        raise ValueError(f"{argument}: id {dup!r} occurs more than once")
    frame["path"] = [
        str(p if Path(p).is_absolute() else (base / p)) for p in frame["path"].astype(str)
    ]
    keep = ["id", "path"] + [c for c in ("label", "split") if c in frame.columns]
    return frame[keep].reset_index(drop=True)


def _read_folder(root: Path, *, argument: str) -> pd.DataFrame:
    rows = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith(".") or Path(name).suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            full = Path(dirpath) / name
            rel = full.relative_to(root)
            label = rel.parts[0] if len(rel.parts) > 1 else None
            rows.append((rel.as_posix(), str(full.resolve()), label))
    if not rows:
        raise ValueError(
            f"{argument}: folder {str(root)!r} holds no images ({', '.join(IMAGE_EXTENSIONS)})"
        )
    frame = pd.DataFrame(rows, columns=["id", "path", "label"]).sort_values("id", kind="stable")
    if frame["label"].isna().all():
        frame = frame.drop(columns="label")
    return frame.reset_index(drop=True)


def open_image(path: str | os.PathLike):
    """Open an image file fully decoded as RGB; raises ``OSError``/``ValueError`` if it cannot."""
    from PIL import Image

    with Image.open(path) as im:
        im.load()  # decode now, so a truncated file fails here and not in the transform
        return im.convert("RGB")


class ImageDataset:
    """A map-style torch Dataset over image paths that reports failures instead of raising.

    ``dataset[i]`` is ``(i, tensor, None)`` on success and ``(i, None, reason)`` when the file is
    missing, unreadable or corrupt, or the transform fails.

    Parameters
    ----------
    paths : sequence of str
        Image files.
    transform : callable
        PIL image -> tensor (e.g. the model's preprocessing).
    """

    def __init__(self, paths: Sequence[str], transform: Callable[[Any], Any]):
        self.paths = list(paths)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        path = self.paths[index]
        try:
            image = open_image(path)
        except FileNotFoundError:
            return index, None, "missing file"
        except Exception as exc:  # PIL raises many types for bad files; all mean "cannot decode"
            return index, None, f"cannot decode image: {type(exc).__name__}: {exc}"
        try:
            return index, self.transform(image), None
        except Exception as exc:
            return index, None, f"transform failed: {type(exc).__name__}: {exc}"


def collate_images(items: list) -> tuple[np.ndarray, Any, list[tuple[int, str]]]:
    """Collate ``ImageDataset`` items into ``(indices, stacked tensor or None, errors)``."""
    import torch

    good = [(i, x) for i, x, err in items if err is None]
    errors = [(i, err) for i, x, err in items if err is not None]
    indices = np.array([i for i, _ in good], dtype=np.int64)
    batch = torch.stack([x for _, x in good]) if good else None
    return indices, batch, errors
