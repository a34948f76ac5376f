"""Resumable, sharded, cached batch jobs over images (shared by tagging, embedding and prediction).

How a job loses nothing
-----------------------
1. Every image gets a *key*: the SHA-256 of its bytes (``missing:<path>`` when it cannot be read).
   File hashes are memoised by (path, size, mtime) so a re-run does not re-read unchanged files.
2. The job's *fingerprint* hashes the model, its weights and every setting that changes the
   numbers; results live in ``cache_dir/<kind>/<fingerprint>/shard-*.npz``.
3. Keys already in the cache are skipped. The others run in batches through a DataLoader; every
   few batches the finished rows (and the images that failed, with their reason) are written as a
   new shard, atomically (temporary file, then rename). A kill at any moment, even SIGKILL, loses at
   most the batches since the last shard.
4. Shards always hold whole batches and the pending list is the same on a re-run, so a resumed run
   feeds the model exactly the same batches as an uninterrupted one: the final table is identical.
5. With everything cached, a re-run only stats files and reads shards: it is instant.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .images import ImageDataset, collate_images
from .io import atomic_path

__all__ = [
    "JobResult",
    "run_image_job",
    "write_errors",
    "default_cache_dir",
    "fingerprint_of",
    "file_identity",
]

logger = logging.getLogger(__name__)

_HASH_INDEX = "file_hashes.parquet"


def default_cache_dir() -> Path:
    """``$PRIMEKIT_CACHE``, else ``$PRIMEKIT_HOME/cache``, else ``~/.cache/primekit``."""
    if os.environ.get("PRIMEKIT_CACHE"):
        return Path(os.environ["PRIMEKIT_CACHE"]).expanduser()
    if os.environ.get("PRIMEKIT_HOME"):
        return Path(os.environ["PRIMEKIT_HOME"]).expanduser() / "cache"
    return Path("~/.cache/primekit").expanduser()


def file_identity(path: str | os.PathLike) -> dict[str, Any]:
    """A cheap identity of a weights file or folder (resolved path, size, mtime) for fingerprints."""
    p = Path(path).expanduser().resolve()
    files = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
    return {
        "path": str(p),
        "files": [(q.name, q.stat().st_size, q.stat().st_mtime_ns) for q in files if q.exists()],
    }


def fingerprint_of(settings: Mapping[str, Any]) -> str:
    """Stable 16-hex-digit hash of a JSON-serialisable settings mapping."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class JobResult:
    """Outcome of :func:`run_image_job`.

    ``values`` has one row per input path (NaN rows where the image failed); ``errors`` has columns
    ``index, reason`` (index into the input paths).
    """

    values: np.ndarray
    errors: pd.DataFrame
    n_cached: int = 0
    n_computed: int = 0
    seconds: float = 0.0
    fingerprint: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> np.ndarray:
        """Boolean mask of the inputs that produced a row."""
        mask = np.ones(len(self.values), dtype=bool)
        mask[self.errors["index"].to_numpy(dtype=np.int64)] = False
        return mask


def _sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:32]


def _hash_files(paths: Sequence[str], cache_root: Path) -> list[str]:
    """Content keys of ``paths``, memoised by (path, size, mtime_ns) in ``cache_root``."""
    index_path = cache_root / _HASH_INDEX
    memo: dict[tuple[str, int, int], str] = {}
    if index_path.is_file():
        with contextlib.suppress(Exception):  # a damaged memo only costs re-hashing
            df = pd.read_parquet(index_path)
            memo = dict(
                zip(zip(df["path"], df["size"], df["mtime"], strict=False), df["key"], strict=False)
            )
    stats: list[tuple[str, int, int] | None] = []
    for p in paths:
        try:
            st = os.stat(p)
            stats.append((p, st.st_size, st.st_mtime_ns))
        except OSError:
            stats.append(None)
    todo = [i for i, s in enumerate(stats) if s is not None and s not in memo]

    def one(i: int) -> str | None:
        try:
            return _sha256_file(paths[i])
        except OSError:
            return None

    keys: list[str] = [""] * len(paths)
    if todo:
        with ThreadPoolExecutor(max_workers=8) as pool:
            for i, key in zip(todo, pool.map(one, todo), strict=False):
                if key is not None:
                    memo[stats[i]] = key
    for i, s in enumerate(stats):
        keys[i] = memo.get(s) if s is not None and s in memo else f"missing:{paths[i]}"
    if todo:
        df = pd.DataFrame(
            [(k[0], k[1], k[2], v) for k, v in memo.items()],
            columns=["path", "size", "mtime", "key"],
        )
        with contextlib.suppress(OSError), atomic_path(index_path) as tmp:
            df.to_parquet(tmp, index=False)
    return keys


def _load_shards(folder: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    values: dict[str, np.ndarray] = {}
    errors: dict[str, str] = {}
    for shard in sorted(folder.glob("shard-*.npz")):
        with np.load(shard, allow_pickle=False) as z:
            for k, row in zip(z["keys"].tolist(), z["values"], strict=False):
                values[k] = row
            for k, reason in zip(
                z["error_keys"].tolist(), z["error_reasons"].tolist(), strict=False
            ):
                errors[k] = reason
    return values, errors


def _write_shard(
    folder: Path,
    keys: list[str],
    rows: list[np.ndarray],
    width: int,
    error_keys: list[str],
    error_reasons: list[str],
) -> None:
    name = f"shard-{time.time_ns():020d}-{os.getpid()}.npz"
    values = np.stack(rows).astype(np.float32) if rows else np.zeros((0, width), np.float32)
    with atomic_path(folder / name) as tmp, open(tmp, "wb") as f:
        np.savez(
            f,
            keys=np.array(keys, dtype=str),
            values=values,
            error_keys=np.array(error_keys, dtype=str),
            error_reasons=np.array(error_reasons, dtype=str),
        )


def run_image_job(
    paths: Sequence[str],
    *,
    forward: Callable[[Any], Any],
    transform: Callable[[Any], Any],
    settings: Mapping[str, Any],
    kind: str,
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = 32,
    num_workers: int = 0,
    device: str = "cpu",
    amp: bool = True,
    shard_images: int | None = None,
    shard_seconds: float = 60.0,
    progress: bool = True,
    desc: str | None = None,
) -> JobResult:
    """Run ``forward`` over images in cached, resumable batches.

    Parameters
    ----------
    paths : sequence of str
        Image files, one per output row.
    forward : callable
        ``forward(batch)`` with ``batch`` a float tensor (b, 3, H, W) on ``device``; returns a
        tensor or array of shape (b, width).
    transform : callable
        PIL image -> tensor (3, H, W).
    settings : mapping
        Everything that determines the numbers (model, weights identity, settings); hashed into
        the cache key. Must be JSON-serialisable.
    kind : str
        Cache sub-folder (``"tags"``, ``"embeddings"``, ``"predictions"``).
    cache_dir : path-like, optional
        Cache root; default :func:`default_cache_dir`.
    batch_size, num_workers : int
        DataLoader settings; memory is pinned when ``device`` is CUDA.
    device : str
        Torch device of ``forward``'s input.
    amp : bool
        Mixed precision (``torch.autocast``) on CUDA; ignored on CPU.
    shard_images : int, optional
        Write a shard at least every this many images (default ``max(8 * batch_size, 256)``), and
        also every ``shard_seconds``.
    progress : bool
        Show a tqdm bar (images/s).

    Returns
    -------
    JobResult
    """
    import torch
    from torch.utils.data import DataLoader

    if batch_size < 1:
        raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
    if num_workers < 0:
        raise ValueError(f"num_workers: must be >= 0, got {num_workers}")
    start = time.perf_counter()
    paths = [str(p) for p in paths]
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    fp = fingerprint_of(settings)
    folder = root / kind / fp
    folder.mkdir(parents=True, exist_ok=True)
    meta = folder / "settings.json"
    if not meta.exists():
        with atomic_path(meta) as tmp:
            tmp.write_text(json.dumps(settings, sort_keys=True, indent=1, default=str))

    keys = _hash_files(paths, root)
    cached, cached_errors = _load_shards(folder)
    pending: list[int] = []  # first input index of every key still to compute
    seen: set[str] = set()
    for i, k in enumerate(keys):
        if k in cached or k in cached_errors or k in seen:
            continue
        seen.add(k)
        pending.append(i)
    n_cached = len(paths) - sum(1 for k in keys if k in seen)
    # A missing file has no content to compute: record it without a forward pass.
    missing = [i for i in pending if keys[i].startswith("missing:")]
    if missing:
        for i in missing:
            cached_errors[keys[i]] = "missing or unreadable file"
        _write_shard(
            folder,
            [],
            [],
            0,
            [keys[i] for i in missing],
            ["missing or unreadable file"] * len(missing),
        )
        pending = [i for i in pending if not keys[i].startswith("missing:")]

    width = next(iter(cached.values())).shape[0] if cached else None
    if pending:
        dev = torch.device(device)
        loader = DataLoader(
            ImageDataset([paths[i] for i in pending], transform),
            batch_size=batch_size,
            shuffle=False,
            num_workers=num_workers,
            collate_fn=collate_images,
            pin_memory=dev.type == "cuda",
        )
        shard_images = shard_images or max(8 * batch_size, 256)
        buf_keys: list[str] = []
        buf_rows: list[np.ndarray] = []
        err_keys: list[str] = []
        err_reasons: list[str] = []
        last_flush = time.monotonic()
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(pending), unit="img", desc=desc or kind, smoothing=0.1)
        use_amp = amp and dev.type == "cuda"
        try:
            for local_idx, batch, errs in loader:
                for j, reason in errs:
                    err_keys.append(keys[pending[j]])
                    err_reasons.append(reason)
                    cached_errors[keys[pending[j]]] = reason
                if batch is not None:
                    batch = batch.to(dev, non_blocking=True)
                    with torch.inference_mode(), torch.autocast(dev.type, enabled=use_amp):
                        out = forward(batch)
                    out = out.float().cpu().numpy() if torch.is_tensor(out) else np.asarray(out)
                    out = out.astype(np.float32).reshape(len(local_idx), -1)
                    width = out.shape[1]
                    for j, row in zip(local_idx.tolist(), out, strict=False):
                        buf_keys.append(keys[pending[j]])
                        buf_rows.append(row)
                        cached[keys[pending[j]]] = row
                if bar is not None:
                    bar.update(len(local_idx) + len(errs))
                if (
                    len(buf_keys) + len(err_keys) >= shard_images
                    or time.monotonic() - last_flush >= shard_seconds
                ):
                    _write_shard(folder, buf_keys, buf_rows, width or 0, err_keys, err_reasons)
                    buf_keys, buf_rows, err_keys, err_reasons = [], [], [], []
                    last_flush = time.monotonic()
            if buf_keys or err_keys:
                _write_shard(folder, buf_keys, buf_rows, width or 0, err_keys, err_reasons)
        finally:
            if bar is not None:
                bar.close()

    if width is None:  # nothing succeeded at all
        width = 0
    values = np.full((len(paths), width), np.nan, dtype=np.float32)
    err_rows = []
    for i, k in enumerate(keys):
        if k in cached:
            values[i] = cached[k]
        else:
            err_rows.append((i, cached_errors.get(k, "not computed")))
    errors = pd.DataFrame(err_rows, columns=["index", "reason"])
    seconds = time.perf_counter() - start
    logger.info(
        "%s: %d images (%d cached, %d computed, %d failed) in %.1fs",
        kind,
        len(paths),
        n_cached,
        len(pending),
        len(errors),
        seconds,
    )
    return JobResult(
        values, errors, n_cached=n_cached, n_computed=len(pending), seconds=seconds, fingerprint=fp
    )


def write_errors(errors: pd.DataFrame, out: str | os.PathLike) -> Path | None:
    """Write ``id, path, reason`` rows to ``<out stem>.errors.csv`` beside ``out``.

    Removes a stale errors file when there are no errors; returns the path written (or None).
    """
    out = Path(out)
    path = out.with_name(out.name.rsplit(".", 1)[0] + ".errors.csv")
    if errors.empty:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return None
    with atomic_path(path) as tmp:
        errors.to_csv(tmp, index=False)
    return path
