"""Run the numbered notebooks with papermill and collect their key numbers.

``python -m primekit.notebooks run-all --out build/notebooks`` (what ``make figures`` calls)
executes every ``notebooks/NN_*.ipynb`` top to bottom into ``--out``, never onto the source
notebook, and the notebooks write their figures to ``figures/``. A notebook reports its key numbers
with :func:`key_numbers`; the runner copies them into the executed notebook's metadata
(``metadata.primekit.key_numbers``) where :func:`read_key_numbers` finds them.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .io import atomic_path

__all__ = [
    "KEY_NUMBERS_MIME",
    "NOTEBOOK_DIR",
    "list_notebooks",
    "key_numbers",
    "run_notebook",
    "read_key_numbers",
    "main",
]

logger = logging.getLogger(__name__)

KEY_NUMBERS_MIME = "application/vnd.primekit.key-numbers+json"
NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"


def list_notebooks(folder: str | os.PathLike = NOTEBOOK_DIR) -> list[Path]:
    """The numbered notebooks ``NN_name.ipynb`` of ``folder``, in order."""
    folder = Path(folder)
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb") if p.is_file())


def _plain(value: Any) -> Any:
    """JSON-safe copy of numbers/containers (numpy scalars, NaN -> None)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def key_numbers(numbers: Mapping[str, Any]) -> None:
    """Show a notebook's key numbers as a table and tag them for the runner.

    Call it in the last cell: ``key_numbers({"n_failure_modes": 42, ...})``. In Jupyter it renders
    as a small table; papermill's runner copies the numbers into the executed notebook's metadata.
    """
    import pandas as pd
    from IPython.display import display

    plain = _plain(dict(numbers))
    table = pd.DataFrame({"value": [plain[k] for k in plain]}, index=list(plain))
    display(
        {KEY_NUMBERS_MIME: plain, "text/html": table.to_html(), "text/plain": repr(table)},
        raw=True,
    )


def _collect_key_numbers(nb: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if KEY_NUMBERS_MIME in data:
                found.update(data[KEY_NUMBERS_MIME])
    return found


def run_notebook(
    notebook: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    parameters: Mapping[str, Any] | None = None,
    timeout: int = 1800,
) -> dict[str, Any]:
    """Execute one notebook with papermill into ``out_dir``; return its key numbers.

    The notebook runs with its own folder as working directory (so its relative ``fig_dir`` and
    data paths mean what they say); the executed copy is written to ``out_dir/<name>`` with the key
    numbers in ``metadata.primekit``.
    """
    import nbformat
    import papermill as pm

    notebook = Path(notebook)
    if not notebook.is_file():
        raise ValueError(f"notebook: {str(notebook)!r} does not exist")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / notebook.name
    started = time.perf_counter()
    pm.execute_notebook(
        str(notebook),
        str(target),
        parameters=dict(parameters or {}),
        cwd=str(notebook.parent),
        kernel_name="python3",
        progress_bar=False,
        execution_timeout=timeout,
    )
    nb = nbformat.read(target, as_version=4)
    numbers = _collect_key_numbers(nb)
    nb.metadata.setdefault("primekit", {})
    nb.metadata["primekit"]["key_numbers"] = numbers
    nb.metadata["primekit"]["seconds"] = round(time.perf_counter() - started, 2)
    nbformat.write(nb, target)
    return numbers


def read_key_numbers(executed: str | os.PathLike) -> dict[str, Any]:
    """The key numbers stored in an executed notebook's metadata by :func:`run_notebook`."""
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    return dict(nb.metadata.get("primekit", {}).get("key_numbers", {}))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m primekit.notebooks run-all [--out DIR] [--smoke] [--only NN ...]``."""
    parser = argparse.ArgumentParser(prog="python -m primekit.notebooks")
    sub = parser.add_subparsers(dest="command", required=True)
    run_all = sub.add_parser("run-all", help="execute every numbered notebook with papermill")
    run_all.add_argument("--out", default="build/notebooks", help="folder for executed copies")
    run_all.add_argument("--smoke", action="store_true", help="pass smoke=True (tiny, for CI)")
    run_all.add_argument("--only", nargs="*", default=None, help="notebook numbers, e.g. 00 02")
    run_all.add_argument("--notebooks", default=str(NOTEBOOK_DIR), help="notebook folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    books = list_notebooks(args.notebooks)
    if args.only:
        books = [b for b in books if b.name[:2] in set(args.only)]
    if not books:
        print("no notebooks to run", file=sys.stderr)
        return 2
    summary = {}
    t_all = time.perf_counter()
    for book in books:
        print(f"== {book.name}", file=sys.stderr, flush=True)
        started = time.perf_counter()
        params = {"smoke": True} if args.smoke else {}
        summary[book.name] = run_notebook(book, Path(args.out).resolve(), parameters=params)
        print(f"   done in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    with atomic_path(Path(args.out) / "key_numbers.json") as tmp:  # creates the folder
        tmp.write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    print(f"{len(books)} notebooks in {time.perf_counter() - t_all:.1f} s", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
