"""The self-contained HTML report of a run folder.

:func:`write_report` renders one HTML file that needs nothing else to be viewed: thumbnails and
figures are embedded as base64 ``data:`` URIs, the CSS and the small table-sorting script are inline,
and a Content-Security-Policy forbids every network request and every script but that one. The
page is rendered from the jinja2 templates ``primekit/templates/report.html.j2`` (with the mode
card ``mode_card.html.j2`` the explorer shows too) with autoescape on: every string that comes
from data (class names, tags, paths, summary keys and values) is escaped by the template engine.
The run folder itself is read by :func:`primekit.run_folder.load_run`.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import logging
import math
import os
import sys
from collections.abc import Mapping, Sequence
from importlib.metadata import version
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from markupsafe import Markup

from ._render import (
    asset,
    data_uri,
    mode_card,
    mode_columns,
    pct,
    render,
    sample_ids,
    thumbnail_bytes,
)
from .io import atomic_path
from .run_folder import Run, load_run
from .search import subset_accuracies

__all__ = ["render_report", "write_report", "add_subparser"]

logger = logging.getLogger(__name__)


class _Thumbs:
    """Thumbnails as data URIs, encoded once per path."""

    def __init__(self, size: int):
        self.size = size
        self._cache: dict[Any, str] = {}

    def uri(self, path: Any) -> str:
        if path not in self._cache:
            # JPEG: a quarter of the PNG's bytes for photos, and a report embeds thousands
            data = thumbnail_bytes(path, size=self.size, fmt="jpeg")
            self._cache[path] = data_uri(data, "image/jpeg")
        return self._cache[path]


def _summary_value(value: Any) -> tuple[str, bool]:
    """A summary.json value as text, and whether it is shown as code (nested JSON)."""
    if isinstance(value, bool) or value is None:
        return str(value), False
    if isinstance(value, Integral):
        return f"{int(value):,}", False
    if isinstance(value, Real):
        v = float(value)
        return (f"{v:.4g}" if not math.isnan(v) else "–"), False
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str), True
    return str(value), False


def _cards(run: Run) -> list[tuple[str, str]]:
    cards = [
        ("samples", f"{len(run.samples):,}"),
        ("classes", f"{run.samples['label'].nunique():,}"),
        ("tags", f"{run.tags.shape[1]:,}"),
        ("classifier accuracy", pct(run.correct.mean()) if len(run.samples) else "–"),
        ("failure modes", f"{len(run.modes):,}"),
    ]
    for key in ("precision", "recall"):
        if isinstance(run.summary.get(key), Real) and not isinstance(run.summary[key], bool):
            cards.append((f"{key} (vs the oracle split)", pct(run.summary[key])))
    return cards


def _subset_bars(subsets: pd.DataFrame) -> list[dict[str, Any]]:
    full = max(subsets["n_tags"]) if len(subsets) else 0
    bars = []
    for sub in subsets.itertuples(index=False):
        acc = float(sub.accuracy)
        bars.append(
            {
                "label": " + ".join(sub.tags) if sub.tags else "(whole class)",
                "size": int(sub.size),
                "width": 0.0 if math.isnan(acc) else 100 * acc,
                "kind": "all" if sub.n_tags == 0 else ("mode" if sub.n_tags == full else ""),
                "accuracy": acc,
            }
        )
    return bars


def _thumbs(run: Run, ids: Sequence, thumbs: _Thumbs) -> list[dict[str, Any]]:
    paths = run.images
    has_pred = "pred" in run.samples.columns
    out = []
    for sid in ids:
        row = run.samples.loc[sid]
        ok = bool(row["correct"])
        verdict = "right" if ok else "wrong"
        detail = f", pred: {row['pred']}" if has_pred else ""
        out.append(
            {
                "id": sid,
                "ok": ok,
                "uri": thumbs.uri(paths.loc[sid] if paths is not None else None),
                "title": f"{sid} ({verdict}{detail})",
                "pred": row["pred"] if has_pred else "",
            }
        )
    return out


def _section(
    run: Run, number: int, mode: Mapping[str, Any], thumbs: _Thumbs, n_thumbs: int, rng: Any
) -> dict[str, Any]:
    cls, tags = mode["class"], tuple(mode["tags"])
    whole = run.ids[run.class_mask(cls)]
    section: dict[str, Any] = {
        "number": number,
        "card": mode_card(mode, class_size=len(whole), number=number),
        "subsets": None,
        "grids": None,
    }
    if not (all(t in run.column for t in tags) and len(run.samples)):
        return section
    section["subsets"] = _subset_bars(subset_accuracies(run, cls=cls, mode_tags=tags))
    members = run.ids[run.group_mask(cls, tags)]
    others = whole.difference(members, sort=False)
    if run.images is not None and n_thumbs > 0:
        groups = (("In the mode", members), ("Same class, outside the mode", others))
        section["grids"] = [
            (heading, {"thumbs": _thumbs(run, sample_ids(ids, n_thumbs, rng), thumbs), "total": len(ids)})
            for heading, ids in groups
        ]
    return section


def _figures(run: Run, max_bytes: int = 3_000_000) -> list[tuple[str, str]]:
    items = []
    for fig in run.figures:
        try:
            data = fig.read_bytes()
        except OSError as exc:
            logger.warning("report: figure %s left out, it cannot be read (%s)", fig, exc)
            continue
        if len(data) <= max_bytes:
            items.append((data_uri(data, "image/png"), fig.name))
        else:
            logger.warning("report: figure %s left out, %d bytes > %d", fig, len(data), max_bytes)
    return items


def _as_run(run: Run | str | os.PathLike, argument: str = "run") -> Run:
    if isinstance(run, Run):
        return run
    if isinstance(run, (str, os.PathLike)):
        return load_run(run)
    raise TypeError(f"{argument}: expected a Run or a run directory, got {type(run).__name__}")


def _check_options(n_thumbs: Any, thumb_size: Any, max_modes: Any) -> None:
    for name, value, minimum in (("n_thumbs", n_thumbs, 0), ("thumb_size", thumb_size, 8)):
        if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
            raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    if max_modes is not None and (
        isinstance(max_modes, bool) or not isinstance(max_modes, Integral) or max_modes < 0
    ):
        raise ValueError(f"max_modes: expected None or an integer >= 0, got {max_modes!r}")


def render_report(
    run: Run | str | os.PathLike,
    *,
    title: str | None = None,
    n_thumbs: int = 8,
    thumb_size: int = 72,
    max_modes: int | None = None,
    figures: bool = True,
    seed: int = 0,
) -> str:
    """Render the HTML report of a run as one self-contained string.

    Parameters
    ----------
    run : Run or path-like
        A :class:`primekit.run_folder.Run` or a run folder.
    title : str, optional
        Page title (default: "primekit failure modes: <folder name>").
    n_thumbs : int, default 8
        Thumbnails per grid (inside the mode, and same class outside it); 0 for none.
    thumb_size : int, default 72
        Thumbnail edge in pixels.
    max_modes : int, optional
        Detail sections for at most this many modes (the table always lists all).
    figures : bool, default True
        Embed the run's ``figures/*.png``.
    seed : int, default 0
        Seed of the random choice of thumbnails (the same seed gives the same page).

    Returns
    -------
    str
        The HTML document.
    """
    run = _as_run(run)
    _check_options(n_thumbs, thumb_size, max_modes)
    if title is None:
        title = "primekit failure modes" + (f": {run.path.name}" if run.path else "")
    rng = np.random.default_rng(seed)
    thumbs = _Thumbs(int(thumb_size))
    modes = run.modes.reset_index(drop=True).to_dict("records")
    shown = modes if max_modes is None else modes[: int(max_modes)]
    js = asset("report.js")
    script_hash = base64.b64encode(hashlib.sha256(js.encode()).digest()).decode()
    return render(
        "report.html.j2",
        title=title,
        # no network at all; the only script allowed is the sorting script, by its hash (our
        # constants and a base64 digest: markup-free, and kept verbatim for the reader)
        csp=Markup(
            "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
            f"script-src 'sha256-{script_hash}'; base-uri 'none'; form-action 'none'"
        ),
        css=asset("report.css") + asset("mode_card.css"),
        js=js,
        version=version("primekit"),
        run_path=str(run.path) if run.path else None,
        cards=_cards(run),
        summary_rows=[(key, *_summary_value(value)) for key, value in run.summary.items()],
        modes=modes,
        columns=mode_columns(run.modes.columns),
        filtered=[] if run.filtered_out is None else run.filtered_out.to_dict("records"),
        filtered_columns=[] if run.filtered_out is None else mode_columns(run.filtered_out.columns),
        max_q=(run.summary.get("search") or {}).get("max_q"),
        n_shown=len(shown),
        sections=[
            _section(run, i + 1, mode, thumbs, int(n_thumbs), rng) for i, mode in enumerate(shown)
        ],
        thumb_size=int(thumb_size),
        figures=_figures(run) if figures else [],
    )


def write_report(
    run: Run | str | os.PathLike,
    out: str | os.PathLike,
    *,
    title: str | None = None,
    n_thumbs: int = 8,
    thumb_size: int = 72,
    max_modes: int | None = None,
    figures: bool = True,
    seed: int = 0,
) -> Path:
    """Write the self-contained HTML report of a run to ``out``, atomically.

    Parameters
    ----------
    run : Run or path-like
        A :class:`primekit.run_folder.Run` or a run folder.
    out : path-like
        Destination ``.html`` file (its folder is created).
    title, n_thumbs, thumb_size, max_modes, figures, seed
        As in :func:`render_report`.

    Returns
    -------
    Path
        ``out``.
    """
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out: expected a file path, got {type(out).__name__}")
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"out: expected a .html file, got {str(out)!r}")
    text = render_report(
        run,
        title=title,
        n_thumbs=n_thumbs,
        thumb_size=thumb_size,
        max_modes=max_modes,
        figures=figures,
        seed=seed,
    )
    with atomic_path(out) as tmp:  # with the usual permissions of a shareable file
        tmp.write_text(text, encoding="utf-8")
    return out


# ---------------------------------------------------------------------------------------------
# command line


def add_subparser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``primekit report``."""
    p = subparsers.add_parser(
        "report",
        help="write a self-contained HTML report of a run directory",
        description=(
            "Write one HTML file (thumbnails embedded, no network needed to view it) with the "
            "summary, the sortable failure-mode table and, per mode, its accuracies and images."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--run", required=True, metavar="DIR", help="run directory (primekit demo --out)"
    )
    p.add_argument("--out", required=True, metavar="HTML", help="output .html file")
    p.add_argument("--title", default=None, help="page title")
    p.add_argument("--n-thumbs", type=int, default=8, help="thumbnails per grid")
    p.add_argument("--thumb-size", type=int, default=72, help="thumbnail edge in pixels")
    p.add_argument(
        "--max-modes", type=int, default=None, help="detail sections for at most N modes"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random thumbnails")
    p.add_argument(
        "--split",
        default=None,
        help="only the samples of this split (default: the split recorded in summary.json, else "
        "the splits that carry tags)",
    )
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    if not str(args.out).lower().endswith((".html", ".htm")):
        raise ValueError(f"--out: expected a .html file, got {args.out!r}")
    out = write_report(
        load_run(args.run, split=args.split),
        args.out,
        title=args.title,
        n_thumbs=args.n_thumbs,
        thumb_size=args.thumb_size,
        max_modes=args.max_modes,
        seed=args.seed,
    )
    print(f"report -> {out}", file=sys.stderr)
    return 0
