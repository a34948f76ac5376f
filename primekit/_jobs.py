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
from tqdm.auto import tqdm

from ._validation import check_int
from .images import ImageDataset, collate_images, read_image_source
from .io import TABLE_SUFFIXES, atomic_path, write_table

__all__ = [
    "JobResult",
    "run_image_job",
    "write_errors",
    "default_cache_dir",
    "fingerprint_of",
    "file_identity",
    "resolve_device",
    "check_out",
    "error_table",
    "finish_job",
    "open_job_source",
    "ready_model",
    "run_table_job",
    "sha256_file",
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


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file's content (hex), read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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
            return sha256_file(paths[i])[:32]
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


def _progress_bar(progress: Any, total: int, desc: str) -> tuple[Any, bool]:
    """(bar or None, whether the job owns it): a new tqdm bar, none, or the caller's shared bar
    (``primekit study`` shows one bar for all its jobs), which is updated and left open."""
    if isinstance(progress, bool):
        bar = tqdm(total=total, unit="img", desc=desc, smoothing=0.1) if progress else None
        return bar, bar is not None
    progress.set_postfix_str(desc)
    return progress, False


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
    progress: Any = True,
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
    progress : bool or tqdm
        Show a tqdm bar (images/s), or update one shared by several jobs.

    Returns
    -------
    JobResult
        One row of values per path (NaN rows for failures), the errors, and cache counts.
    """
    check_int(batch_size, "batch_size", 1)
    check_int(num_workers, "num_workers", 0)
    start = time.perf_counter()
    paths = [str(p) for p in paths]
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    fp = fingerprint_of(settings)
    folder = _job_folder(root / kind / fp, settings)
    keys = _hash_files(paths, root)
    cached, cached_errors = _load_shards(folder)
    pending, n_cached = _pending(keys, cached, cached_errors)
    pending = _record_missing(folder, keys, pending, cached_errors)
    width = next(iter(cached.values())).shape[0] if cached else None
    if pending:
        shards = _Shards(folder, shard_images or max(8 * batch_size, 256), shard_seconds, width)
        loader = _loader([paths[i] for i in pending], transform, batch_size, num_workers, device)
        bar, own_bar = _progress_bar(progress, len(pending), desc or kind)
        try:
            for local_idx, batch, errs in loader:
                for j, reason in errs:
                    shards.add_error(keys[pending[j]], reason)
                    cached_errors[keys[pending[j]]] = reason
                if batch is not None:
                    rows = _forward(forward, batch, device, amp, len(local_idx))
                    for j, row in zip(local_idx.tolist(), rows, strict=False):
                        shards.add_row(keys[pending[j]], row)
                        cached[keys[pending[j]]] = row
                if bar is not None:
                    bar.update(len(local_idx) + len(errs))
                shards.flush_if_due()
            shards.flush()
        finally:
            if own_bar:
                bar.close()
        width = shards.width
    values, errors = _assemble(keys, cached, cached_errors, width or 0)
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


def _job_folder(folder: Path, settings: Mapping[str, Any]) -> Path:
    """The job's cache folder, with its settings written beside the shards once."""
    folder.mkdir(parents=True, exist_ok=True)
    meta = folder / "settings.json"
    if not meta.exists():
        with atomic_path(meta) as tmp:
            tmp.write_text(json.dumps(settings, sort_keys=True, indent=1, default=str))
    return folder


def _pending(
    keys: Sequence[str], cached: Mapping[str, np.ndarray], cached_errors: Mapping[str, str]
) -> tuple[list[int], int]:
    """First input index of every key still to compute, and how many inputs the cache answers."""
    pending: list[int] = []
    seen: set[str] = set()
    for i, k in enumerate(keys):
        if k in cached or k in cached_errors or k in seen:
            continue
        seen.add(k)
        pending.append(i)
    return pending, len(keys) - sum(1 for k in keys if k in seen)


def _record_missing(
    folder: Path, keys: Sequence[str], pending: list[int], cached_errors: dict[str, str]
) -> list[int]:
    """A missing file has no content to compute: record it without a forward pass."""
    missing = [i for i in pending if keys[i].startswith("missing:")]
    if not missing:
        return pending
    reason = "missing or unreadable file"
    for i in missing:
        cached_errors[keys[i]] = reason
    _write_shard(folder, [], [], 0, [keys[i] for i in missing], [reason] * len(missing))
    return [i for i in pending if not keys[i].startswith("missing:")]


def _loader(paths: list[str], transform: Callable, batch_size: int, num_workers: int, device: str):
    from torch.utils.data import DataLoader  # torch is heavy: imported when a job computes

    return DataLoader(
        ImageDataset(paths, transform),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=collate_images,
        pin_memory=str(device).startswith("cuda"),
    )


def _forward(forward: Callable, batch: Any, device: str, amp: bool, n: int) -> np.ndarray:
    """``forward`` on one batch (mixed precision on CUDA when ``amp``), as float32 (n, width)."""
    import torch  # heavy: imported when a job computes

    dev = torch.device(device)
    batch = batch.to(dev, non_blocking=True)
    with torch.inference_mode(), torch.autocast(dev.type, enabled=amp and dev.type == "cuda"):
        out = forward(batch)
    out = out.float().cpu().numpy() if torch.is_tensor(out) else np.asarray(out)
    return out.astype(np.float32).reshape(n, -1)


class _Shards:
    """Rows and errors of a running job, written as a new shard every ``every`` images or
    ``seconds`` (whichever comes first), so a kill loses at most the batches since the last one."""

    def __init__(self, folder: Path, every: int, seconds: float, width: int | None) -> None:
        self.folder, self.every, self.seconds, self.width = folder, every, seconds, width
        self._clear()

    def _clear(self) -> None:
        self.keys: list[str] = []
        self.rows: list[np.ndarray] = []
        self.error_keys: list[str] = []
        self.error_reasons: list[str] = []
        self.last_flush = time.monotonic()

    def add_row(self, key: str, row: np.ndarray) -> None:
        self.keys.append(key)
        self.rows.append(row)
        self.width = row.shape[0]

    def add_error(self, key: str, reason: str) -> None:
        self.error_keys.append(key)
        self.error_reasons.append(reason)

    def flush_if_due(self) -> None:
        if (
            len(self.keys) + len(self.error_keys) >= self.every
            or time.monotonic() - self.last_flush >= self.seconds
        ):
            self.flush()

    def flush(self) -> None:
        if self.keys or self.error_keys:
            _write_shard(
                self.folder, self.keys, self.rows, self.width or 0, self.error_keys,
                self.error_reasons,
            )
        self._clear()


def _assemble(
    keys: Sequence[str], cached: Mapping[str, np.ndarray], cached_errors: Mapping[str, str],
    width: int,
) -> tuple[np.ndarray, pd.DataFrame]:
    """One row of values per input (NaN where it failed) and the ``index, reason`` errors."""
    values = np.full((len(keys), width), np.nan, dtype=np.float32)
    err_rows = []
    for i, k in enumerate(keys):
        if k in cached:
            values[i] = cached[k]
        else:
            err_rows.append((i, cached_errors.get(k, "not computed")))
    return values, pd.DataFrame(err_rows, columns=["index", "reason"])


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


def resolve_device(device: str | None) -> str:
    """Return a usable torch device string; ``ValueError`` naming ``device`` if CUDA is absent."""
    import torch  # heavy: imported when a model is placed on a device

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


def check_out(out: str | os.PathLike, argument: str = "out") -> None:
    """``out`` must be a path ending in a table suffix (checked before a job starts)."""
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"{argument}: expected a path, got {type(out).__name__}")
    if Path(out).suffix.lower() not in TABLE_SUFFIXES:
        raise ValueError(f"{argument}: {str(out)!r} must end in one of {', '.join(TABLE_SUFFIXES)}")


def ready_model(model: Any, loaded: type, load: Callable[..., Any], device: str | None) -> Any:
    """How every image job takes its model: ``model`` itself when it is already ``loaded`` (an
    instance; ``device`` is still checked, so a bad one fails the same way), else
    ``load(model, device=device)``, which names a wrong type."""
    if isinstance(model, loaded):
        resolve_device(device)
        return model
    return load(model, device=device)


def open_job_source(source: Any, out: str | os.PathLike | None) -> pd.DataFrame:
    """The image table of a job's ``source`` (:func:`primekit.images.read_image_source`), after
    checking ``out``: a bad source or output path fails before any model is loaded."""
    if out is not None:
        check_out(out)
    return read_image_source(source)


def run_table_job(
    images: pd.DataFrame, *, device: str, **job: Any
) -> tuple[JobResult, pd.DataFrame]:
    """:func:`run_image_job` over an image table's paths on a model's (resolved) ``device``, with
    ``job`` its other options; the result and the failed images as ``id, path, reason`` rows."""
    result = run_image_job(images["path"].tolist(), device=device, **job)
    return result, error_table(images, result.errors)


def error_table(images: pd.DataFrame, errors: pd.DataFrame) -> pd.DataFrame:
    """A job's ``index, reason`` errors as ``id, path, reason`` rows of the image table."""
    idx = errors["index"].to_numpy(dtype=np.int64)
    return pd.DataFrame(
        {
            "id": images["id"].to_numpy()[idx],
            "path": images["path"].to_numpy()[idx],
            "reason": errors["reason"].to_numpy(),
        }
    )


def finish_job(
    what: str,
    table: pd.DataFrame,
    job: JobResult,
    errors: pd.DataFrame,
    out: str | os.PathLike | None,
    metadata: dict,
    *,
    n_images: int,
    write: Callable[[pd.DataFrame, Any, dict], Any] | None = None,
) -> pd.DataFrame:
    """The common end of an image job: log a summary, write the table and its errors file
    (atomically) when ``out`` is given, and attach metadata and errors to ``table.attrs``."""
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


def _summarise(what: str, n: int, job: JobResult, errors: pd.DataFrame, out: Any) -> None:
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
