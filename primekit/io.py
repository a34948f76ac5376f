"""Reading and writing primekit tables (Parquet or CSV, chosen by extension), atomically.

Every file primekit writes goes to a temporary file in the destination folder first and is then
renamed over the destination, so a crash or Ctrl-C never leaves a half-written table behind.
Parquet files carry a JSON metadata dictionary (for example the tagger's name and settings) under
the schema key ``primekit``; CSV files carry none.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = [
    "atomic_path",
    "read_table",
    "write_table",
    "read_metadata",
    "TABLE_SUFFIXES",
    "table_suffix",
]

TABLE_SUFFIXES = (".parquet", ".pq", ".csv")
_META_KEY = b"primekit"


def table_suffix(path: str | os.PathLike, argument: str) -> str:
    """The lower-case suffix of ``path`` if it is a table's; ``ValueError`` naming ``argument``."""
    suffix = Path(path).suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise ValueError(
            f"{argument}: {str(path)!r} has extension {suffix or '(none)'!r}; "
            f"expected one of {', '.join(TABLE_SUFFIXES)}"
        )
    return suffix


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    The temporary file lives in the same folder, so the final ``os.replace`` is atomic on POSIX
    and Windows. On any exception (including ``KeyboardInterrupt``) the temporary file is removed
    and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates 0600 files; give the result the permissions a plain open() would
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp_path, 0o666 & ~umask)
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def write_table(
    df: pd.DataFrame,
    path: str | os.PathLike,
    *,
    metadata: Mapping[str, Any] | None = None,
    argument: str = "path",
) -> Path:
    """Write ``df`` to ``path`` (Parquet or CSV by extension) atomically.

    Parameters
    ----------
    df : DataFrame
        The table. Its index is not written; reset it first if it carries data.
    path : path-like
        Destination ending in ``.parquet``, ``.pq`` or ``.csv``.
    metadata : mapping, optional
        JSON-serialisable dictionary stored in the Parquet schema metadata (ignored for CSV).
    argument : str
        Name used in error messages.

    Returns
    -------
    Path
        The written path.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df: expected a pandas DataFrame, got {type(df).__name__}")
    suffix = table_suffix(path, argument)
    with atomic_path(path) as tmp:
        if suffix == ".csv":
            df.to_csv(tmp, index=False)
        else:
            import pyarrow as pa  # heavy: imported on first use
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(df, preserve_index=False)
            if metadata:
                merged = dict(table.schema.metadata or {})
                merged[_META_KEY] = json.dumps(dict(metadata), default=str).encode()
                table = table.replace_schema_metadata(merged)
            pq.write_table(table, tmp)
    return Path(path)


def read_table(path: str | os.PathLike, *, argument: str = "path") -> pd.DataFrame:
    """Read a Parquet or CSV table, raising a ``ValueError`` that names ``argument`` on failure."""
    suffix = table_suffix(path, argument)
    if not Path(path).is_file():
        raise ValueError(f"{argument}: file {str(path)!r} does not exist")
    try:
        if suffix == ".csv":
            return pd.read_csv(path, keep_default_na=True)
        return pd.read_parquet(path)
    except Exception as exc:  # any parser error becomes one clear line
        raise ValueError(f"{argument}: cannot read {str(path)!r}: {exc}") from exc


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Return the primekit metadata dictionary stored in a Parquet file ({} for CSV or none)."""
    if Path(path).suffix.lower() == ".csv":
        return {}
    import pyarrow.parquet as pq  # heavy: imported on first use

    meta = pq.read_schema(path).metadata or {}
    raw = meta.get(_META_KEY)
    return json.loads(raw) if raw else {}
