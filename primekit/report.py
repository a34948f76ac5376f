"""A run directory, and the self-contained HTML report of its failure modes.

A **run directory** (written by ``primekit demo --out DIR``) holds

- ``samples.parquet``: the samples table (``id, label, pred, correct, confidence, split, path``;
  ``path`` is an image file, absolute or relative to the run directory);
- ``tags.parquet``: the long tag table ``id, tag, score``;
- ``failure_modes.csv``: the failure-mode table (``tags`` joined by ``" + "``);
- ``summary.json``: headline numbers (classifier accuracy, number of modes, precision, ...);
- ``figures/*.png``.

:func:`load_run` reads it into a :class:`Run`, which both the report and
:class:`primekit.FailureModeExplorer` use. :func:`write_report` renders one HTML file that needs
nothing else to be viewed: thumbnails and figures are embedded as base64 ``data:`` URIs, CSS and the
small table-sorting script are inline, and a Content-Security-Policy forbids every network request
and every script but that one. Every string that comes from data (class names, tags, paths, summary
keys and values) is HTML-escaped: tags are model output and may contain markup.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import io
import json
import logging
import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .io import atomic_path
from .samples import read_samples, search_inputs
from .search import read_modes, subset_accuracies
from .tags import read_tags

__all__ = [
    "Run",
    "load_run",
    "search_settings",
    "mode_members",
    "thumbnail_bytes",
    "render_report",
    "write_report",
    "add_subparser",
]

logger = logging.getLogger(__name__)

RUN_FILES = {
    "samples": "samples.parquet",
    "tags": "tags.parquet",
    "modes": "failure_modes.csv",
    "summary": "summary.json",
}


# ---------------------------------------------------------------------------------------------
# the run directory


@dataclass
class Run:
    """The contents of a run directory, aligned on sample id.

    Attributes
    ----------
    samples : DataFrame
        One row per sample, index = sample id (str); columns ``label``, ``correct`` (bool) and,
        when present, ``pred``, ``confidence``, ``split``, ``path`` (absolute image path).
    tags : DataFrame of bool, shape (n_samples, n_tags)
        Tag matrix on the same index (a tag is present when its score is >= the threshold).
    modes : DataFrame
        The failure-mode table (``tags`` as sorted tuples), see ``primekit.search.MODE_COLUMNS``.
    summary : dict
        ``summary.json`` (empty when the file is absent).
    path : Path or None
        The run directory.
    figures : list of Path
        ``figures/*.png``, sorted by name.
    """

    samples: pd.DataFrame
    tags: pd.DataFrame
    modes: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    figures: list[Path] = field(default_factory=list)

    @property
    def labels(self) -> pd.Series:
        """Class of each sample (index = sample id)."""
        return self.samples["label"]

    @property
    def correct(self) -> pd.Series:
        """Whether the classifier is right on each sample (bool, index = sample id)."""
        return self.samples["correct"].astype(bool)

    @property
    def images(self) -> pd.Series | None:
        """Image path of each sample, or None when the samples table has no ``path`` column."""
        return self.samples["path"] if "path" in self.samples.columns else None


def load_run(
    path: str | os.PathLike,
    *,
    threshold: float | Mapping[str, float] | None = None,
    split: str | None = None,
) -> Run:
    """Read a run directory (see the module docstring) into a :class:`Run`.

    Parameters
    ----------
    path : path-like
        The run directory.
    threshold : float or mapping tag -> float, optional
        A tag is present when its score is >= this. Default: ``summary.json``'s
        ``search.threshold`` when recorded, else 0.5.
    split : str, optional
        Keep only the samples of this ``split`` (e.g. ``"val"``). Default: ``summary.json``'s
        ``search.split`` when recorded (the samples the failure modes were found on); else the
        splits that carry tags (a split without a single tag was never tagged, so never searched).

    Returns
    -------
    Run

    Raises
    ------
    ValueError
        Naming ``path`` when the directory or one of its required files is missing, and
        ``split`` when no sample belongs to the requested split.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a run directory path, got {type(path).__name__}")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise ValueError(f"path: run directory {str(root)!r} does not exist")
    for key in ("samples", "tags", "modes"):
        if not (root / RUN_FILES[key]).is_file():
            raise ValueError(
                f"path: {str(root)!r} is not a run directory: {RUN_FILES[key]} is missing"
            )
    summary = _read_summary(root / RUN_FILES["summary"])
    recorded = search_settings(summary)
    if threshold is None:
        threshold = recorded.get("threshold", 0.5)
    if split is None:
        split = recorded.get("split")
    samples = read_samples(root / RUN_FILES["samples"], argument="samples")
    long = read_tags(root / RUN_FILES["tags"], argument="tags")
    if split is None and "split" in samples.columns:
        # splits none of whose samples carry a tag were never tagged (e.g. a held-out test
        # split kept for its predictions): the failure modes cannot have been found on them
        tagged = samples["split"][samples["id"].isin(long["id"])].astype(str).unique()
        if 0 < len(tagged) < samples["split"].astype(str).nunique():
            samples = samples[samples["split"].astype(str).isin(tagged)].reset_index(drop=True)
    if split is not None:
        if "split" not in samples.columns:
            raise ValueError(f"split: the samples of {str(root)!r} have no 'split' column")
        keep = samples["split"].astype(str) == str(split)
        if not keep.any():
            found = sorted(samples["split"].astype(str).unique())
            raise ValueError(f"split: no sample has split {split!r}; found {found}")
        samples = samples[keep].reset_index(drop=True)
    long = long[long["id"].isin(samples["id"])]
    matrix, _, _ = search_inputs(samples, long, threshold=threshold)
    samples = samples.set_index("id", drop=True)
    samples.index.name = "id"
    if "path" in samples.columns:
        samples["path"] = [
            _resolve(root, p) if isinstance(p, str) and p else None for p in samples["path"]
        ]
    modes = _align_classes(read_modes(root / RUN_FILES["modes"]), samples["label"])
    figures = sorted((root / "figures").glob("*.png")) if (root / "figures").is_dir() else []
    return Run(
        samples=samples, tags=matrix, modes=modes, summary=summary, path=root, figures=figures
    )


def _read_summary(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        summary = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"path: cannot read {str(path)!r}: {exc}") from exc
    if not isinstance(summary, dict):
        raise ValueError(f"path: {str(path)!r} does not hold a JSON object")
    return summary


def search_settings(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The search settings a run recorded in ``summary.json`` (under ``"search"``), cleaned.

    Recognised keys: ``min_size``, ``min_drop``, ``max_tags``, ``min_tag_count``, ``necessity``
    (``{"2": 0.1, ...}``; JSON keys become ints), ``threshold``, ``split``. Others are dropped.
    """
    raw = summary.get("search") if isinstance(summary, Mapping) else None
    if not isinstance(raw, Mapping):
        return {}
    out = {
        k: raw[k]
        for k in ("min_size", "min_drop", "max_tags", "min_tag_count", "threshold", "split")
        if raw.get(k) is not None
    }
    necessity = raw.get("necessity")
    if isinstance(necessity, Mapping):
        out["necessity"] = {int(k): float(v) for k, v in necessity.items()}
    elif isinstance(necessity, (list, tuple)):
        out["necessity"] = tuple(float(v) for v in necessity)
    return out


def _resolve(root: Path, path: str) -> str:
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else (root / p).resolve())


def _align_classes(modes: pd.DataFrame, labels: pd.Series) -> pd.DataFrame:
    """Give the CSV's ``class`` column the labels' own values (CSV turns ``3`` and ``"3"`` alike)."""
    by_text = {str(v): v for v in pd.unique(labels)}
    modes = modes.copy()
    modes["class"] = [by_text.get(str(c), c) for c in modes["class"]]
    return modes


def mode_members(
    tags: pd.DataFrame, labels: pd.Series, *, cls: Any, mode_tags: Sequence[str]
) -> pd.Index:
    """Ids of the samples of class ``cls`` that carry every tag of ``mode_tags`` (I_S).

    Parameters
    ----------
    tags : DataFrame of bool, shape (n_samples, n_tags)
        Tag matrix, index = sample id.
    labels : Series
        Class of each sample, on the same index.
    cls : label
        The class.
    mode_tags : sequence of str
        The mode's tags; the empty sequence selects the whole class.

    Returns
    -------
    Index
        Sample ids, in the order of ``tags``.
    """
    if isinstance(mode_tags, str):
        raise TypeError("mode_tags: expected a sequence of tag names, got a single string")
    unknown = [t for t in mode_tags if t not in tags.columns]
    if unknown:
        raise ValueError(f"mode_tags: unknown tag(s) {unknown}")
    inside = (labels.reindex(tags.index) == cls).to_numpy(dtype=bool).copy()
    for tag in mode_tags:
        inside &= tags[tag].to_numpy(dtype=bool)
    return tags.index[inside]


_PLACEHOLDER_COLOUR = (200, 200, 200)


def thumbnail_bytes(path: str | os.PathLike | None, *, size: int = 96, fmt: str = "png") -> bytes:
    """A square-bounded thumbnail of an image file, encoded as PNG or JPEG bytes.

    A missing or unreadable file gives a grey placeholder instead of an error, so one bad image
    never breaks a grid.
    """
    from PIL import Image

    fmt = fmt.lower()
    if fmt not in ("png", "jpeg"):
        raise ValueError(f"fmt: expected 'png' or 'jpeg', got {fmt!r}")
    try:
        if path is None:
            raise FileNotFoundError("no path")
        with Image.open(path) as im:
            im.load()
            image = im.convert("RGB")
    except Exception as exc:  # PIL raises many types for bad files; all mean "show a placeholder"
        logger.debug("thumbnail of %r failed: %s", path, exc)
        image = Image.new("RGB", (size, size), _PLACEHOLDER_COLOUR)
    # upscale tiny images too (toy-world images are 64 px), with crisp nearest-neighbour pixels
    scale = size / max(image.size)
    new_size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    resample = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.LANCZOS
    image = image.resize(new_size, resample)
    buf = io.BytesIO()
    image.save(buf, format=fmt.upper(), **({"quality": 85} if fmt == "jpeg" else {}))
    return buf.getvalue()


def _sample(ids: pd.Index, n: int, rng: np.random.Generator) -> list:
    """A random sample of at most ``n`` ids, in a random order (not cherry-picked)."""
    if len(ids) <= n:
        return list(ids[rng.permutation(len(ids))])
    return list(ids[rng.choice(len(ids), size=n, replace=False)])


# ---------------------------------------------------------------------------------------------
# the report

_CSS = """
:root { --bad: #c0392b; --good: #1e8449; --muted: #666; --line: #ddd; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       margin: 0 auto; max-width: 1200px; padding: 1.5rem; color: #222; line-height: 1.4; }
h1 { margin: 0 0 .3rem; font-size: 1.7rem; }
h2 { border-bottom: 2px solid var(--line); padding-bottom: .2rem; margin-top: 2rem; }
.muted { color: var(--muted); }
table { border-collapse: collapse; font-size: .9rem; }
th, td { padding: .25rem .6rem; border-bottom: 1px solid var(--line); text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.modes th { cursor: pointer; user-select: none; background: #f4f4f4; position: sticky; top: 0; }
table.modes th[aria-sort="ascending"]::after { content: " \\25B2"; }
table.modes th[aria-sort="descending"]::after { content: " \\25BC"; }
table.modes tbody tr:hover { background: #fafafa; }
.cards { display: flex; flex-wrap: wrap; gap: 1rem; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: .6rem 1rem; min-width: 9rem; }
.card .value { font-size: 1.5rem; font-weight: 600; }
.card .name { color: var(--muted); font-size: .85rem; }
section.mode { border: 1px solid var(--line); border-radius: 8px; padding: .8rem 1.2rem;
               margin: 1.2rem 0; }
section.mode h3 { margin: 0 0 .4rem; }
.tag { display: inline-block; background: #eef; border: 1px solid #ccd; border-radius: 4px;
       padding: 0 .35rem; margin-right: .25rem; font-family: ui-monospace, monospace; }
.bars td { border: none; padding: .1rem .5rem; }
.bar { height: .9rem; background: #7f8c8d; border-radius: 2px; }
.bar.mode { background: var(--bad); }
.bar.all { background: var(--good); }
.grids { display: flex; flex-wrap: wrap; gap: 1.5rem; margin-top: .6rem; }
.grid { display: flex; flex-wrap: wrap; gap: 4px; }
figure.thumb { margin: 0; text-align: center; font-size: .7rem; }
figure.thumb figcaption { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
figure.thumb img { display: block; border: 3px solid var(--good); image-rendering: pixelated; }
figure.thumb.wrong img { border-color: var(--bad); }
.figures img { max-width: 100%; border: 1px solid var(--line); margin: .5rem 0; }
"""

# Sorts the failure-mode table by a clicked column (numbers by data-sort-value). It reads no data
# into code, so nothing from the data can be executed.
_JS = """
document.querySelectorAll("table.modes").forEach(function (table) {
  var heads = table.querySelectorAll("thead th");
  heads.forEach(function (th, col) {
    th.addEventListener("click", function () {
      var asc = th.getAttribute("aria-sort") !== "ascending";
      heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var numeric = th.classList.contains("num");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].getAttribute("data-sort-value");
        var y = b.cells[col].getAttribute("data-sort-value");
        var d;
        if (numeric) {
          x = x === "" ? Infinity : parseFloat(x); y = y === "" ? Infinity : parseFloat(y);
          d = x === y ? 0 : (x < y ? -1 : 1);
        } else { d = x.localeCompare(y); }
        return asc ? d : -d;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def _e(value: Any) -> str:
    """Escape any value for HTML text and attribute contexts."""
    return html.escape(str(value), quote=True)


def _pct(value: Any) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return _e(value)
    return "–" if math.isnan(v) else f"{100 * v:.1f}%"


def _num(value: Any) -> str:
    """The value for data-sort-value: a plain number, or '' for NaN."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return ""
    return "" if math.isnan(v) else repr(v)


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _summary_value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return _e(value)
    if isinstance(value, Integral):
        return f"{int(value):,}"
    if isinstance(value, Real):
        v = float(value)
        return _e(f"{v:.4g}") if not math.isnan(v) else "–"
    if isinstance(value, (dict, list, tuple)):
        return f"<code>{_e(json.dumps(value, default=str))}</code>"
    return _e(value)


def _cards(run: Run) -> str:
    n_classes = run.samples["label"].nunique()
    cards = [
        ("samples", f"{len(run.samples):,}"),
        ("classes", f"{n_classes:,}"),
        ("tags", f"{run.tags.shape[1]:,}"),
        ("classifier accuracy", _pct(run.correct.mean()) if len(run.samples) else "–"),
        ("failure modes", f"{len(run.modes):,}"),
    ]
    for key in ("precision", "recall"):
        if isinstance(run.summary.get(key), Real) and not isinstance(run.summary[key], bool):
            cards.append((f"{key} (vs the oracle split)", _pct(run.summary[key])))
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><div class="value">{value}</div><div class="name">{_e(name)}</div></div>'
            for name, value in cards
        )
        + "</div>"
    )


def _summary_table(summary: Mapping[str, Any]) -> str:
    if not summary:
        return ""
    rows = "".join(
        f"<tr><th>{_e(key)}</th><td>{_summary_value(value)}</td></tr>"
        for key, value in summary.items()
    )
    return (
        f'<details><summary>summary.json</summary><table class="summary">{rows}</table></details>'
    )


def _tags_html(tags: Sequence[str]) -> str:
    return "".join(f'<span class="tag">{_e(t)}</span>' for t in tags)


_MODE_TABLE_COLUMNS = (
    ("#", "num"),
    ("class", ""),
    ("tags", ""),
    ("n_tags", "num"),
    ("size", "num"),
    ("accuracy", "num"),
    ("class_accuracy", "num"),
    ("drop", "num"),
    ("necessity_margin", "num"),
)


def _mode_table(modes: pd.DataFrame) -> str:
    if modes.empty:
        return "<p>No failure modes were found at these settings.</p>"
    head = "".join(
        f'<th class="{cls}" scope="col" title="click to sort">{_e(name)}</th>'
        for name, cls in _MODE_TABLE_COLUMNS
    )
    rows = []
    for i, mode in enumerate(modes.to_dict("records")):
        joined = " + ".join(tuple(mode["tags"]))
        cells = [
            f'<td class="num" data-sort-value="{i + 1}"><a href="#mode-{i + 1}">{i + 1}</a></td>',
            f'<td data-sort-value="{_e(mode["class"])}">{_e(mode["class"])}</td>',
            f'<td data-sort-value="{_e(joined)}">{_e(joined)}</td>',
        ]
        for name in ("n_tags", "size"):
            cells.append(
                f'<td class="num" data-sort-value="{_num(mode[name])}">{int(mode[name])}</td>'
            )
        for name in ("accuracy", "class_accuracy", "drop", "necessity_margin"):
            cells.append(
                f'<td class="num" data-sort-value="{_num(mode[name])}">{_pct(mode[name])}</td>'
            )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<table class="modes"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def _subset_label(tags: Sequence[str]) -> str:
    return " + ".join(tags) if tags else "(whole class)"


def _subset_bars(subsets: pd.DataFrame) -> str:
    rows = []
    full = max(subsets["n_tags"]) if len(subsets) else 0
    for sub in subsets.itertuples(index=False):
        acc = float(sub.accuracy)
        width = 0.0 if math.isnan(acc) else 100 * acc
        kind = "all" if sub.n_tags == 0 else ("mode" if sub.n_tags == full else "")
        rows.append(
            f"<tr><td>{_e(_subset_label(sub.tags))}</td>"
            f'<td class="num">{int(sub.size)}</td>'
            f'<td style="width:220px"><div class="bar {kind}" style="width:{width:.1f}%"></div></td>'
            f'<td class="num">{_pct(acc)}</td></tr>'
        )
    return (
        '<table class="bars"><thead><tr><th>tags (subset of the mode)</th><th class="num">n</th>'
        "<th>accuracy</th><th></th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


class _Thumbs:
    """Thumbnails as data URIs, encoded once per path."""

    def __init__(self, size: int):
        self.size = size
        self._cache: dict[Any, str] = {}

    def uri(self, path: Any) -> str:
        if path not in self._cache:
            # JPEG: a quarter of the PNG's bytes for photos, and a report embeds thousands
            data = thumbnail_bytes(path, size=self.size, fmt="jpeg")
            self._cache[path] = _data_uri(data, "image/jpeg")
        return self._cache[path]


def _grid(run: Run, ids: Sequence, thumbs: _Thumbs) -> str:
    if not len(ids):
        return '<p class="muted">none</p>'
    figs = []
    paths = run.images
    for sid in ids:
        row = run.samples.loc[sid]
        ok = bool(row["correct"])
        path = paths.loc[sid] if paths is not None else None
        pred = f"pred: {row['pred']}" if "pred" in run.samples.columns else ""
        verdict = "right" if ok else "wrong"
        title = f"{sid} ({verdict}{', ' + pred if pred else ''})"
        figs.append(
            f'<figure class="thumb{"" if ok else " wrong"}" title="{_e(title)}" '
            f'style="width:{thumbs.size + 6}px">'
            f'<img src="{thumbs.uri(path)}" width="{thumbs.size}" height="{thumbs.size}" '
            f'alt="{_e(sid)}"><figcaption>{"&#10003;" if ok else "&#10007;"} '
            f"{_e(row['pred']) if 'pred' in run.samples.columns else ''}</figcaption></figure>"
        )
    # four thumbnails a row, so the two grids of a mode sit side by side
    width = 4 * (thumbs.size + 10)
    return f'<div class="grid" style="max-width:{width}px">' + "".join(figs) + "</div>"


def _mode_section(
    run: Run,
    i: int,
    mode: Mapping[str, Any],
    thumbs: _Thumbs,
    n_thumbs: int,
    rng: np.random.Generator,
) -> str:
    cls, tags = mode["class"], tuple(mode["tags"])
    known = all(t in run.tags.columns for t in tags)
    parts = [
        f'<section class="mode" id="mode-{i}">',
        f"<h3>{i}. {_e(mode.get('description') or ' '.join(['a photo of', str(cls), *tags]))}</h3>",
        f"<p>class <b>{_e(cls)}</b> &middot; tags {_tags_html(tags)}</p>",
        f"<p><b>{_pct(mode['accuracy'])}</b> accuracy on <b>{int(mode['size'])}</b> images, vs "
        f"{_pct(mode['class_accuracy'])} on the whole class (drop {_pct(mode['drop'])}; "
        f"necessity margin {_pct(mode['necessity_margin'])})</p>",
    ]
    if known and len(run.samples):
        subsets = subset_accuracies(run.tags, run.labels, run.correct, cls=cls, mode_tags=tags)
        parts.append(_subset_bars(subsets))
        inside = mode_members(run.tags, run.labels, cls=cls, mode_tags=tags)
        whole = mode_members(run.tags, run.labels, cls=cls, mode_tags=())
        outside = whole.difference(inside, sort=False)
        if run.images is not None and n_thumbs > 0:
            parts.append(
                '<div class="grids"><div><h4>In the mode '
                f'<span class="muted">({min(n_thumbs, len(inside))} random of {len(inside)})</span>'
                f"</h4>{_grid(run, _sample(inside, n_thumbs, rng), thumbs)}</div>"
                "<div><h4>Same class, outside the mode "
                f'<span class="muted">({min(n_thumbs, len(outside))} random of {len(outside)})'
                f"</span></h4>{_grid(run, _sample(outside, n_thumbs, rng), thumbs)}</div></div>"
            )
    else:
        parts.append('<p class="muted">(tags of this mode are not in the tag table)</p>')
    parts.append("</section>")
    return "".join(parts)


def _figures(run: Run, max_bytes: int = 3_000_000) -> str:
    items = []
    for fig in run.figures:
        try:
            data = fig.read_bytes()
        except OSError:
            continue
        if len(data) > max_bytes:
            continue
        items.append(
            f'<figure><img src="{_data_uri(data, "image/png")}" alt="{_e(fig.name)}">'
            f"<figcaption>{_e(fig.name)}</figcaption></figure>"
        )
    return '<h2>Figures</h2><div class="figures">' + "".join(items) + "</div>" if items else ""


def _as_run(run: Run | str | os.PathLike, argument: str = "run") -> Run:
    if isinstance(run, Run):
        return run
    if isinstance(run, (str, os.PathLike)):
        return load_run(run)
    raise TypeError(f"{argument}: expected a Run or a run directory, got {type(run).__name__}")


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
        A :class:`Run` or a run directory.
    title : str, optional
        Page title (default: "primekit failure modes: <directory name>").
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
    for name, value, minimum in (("n_thumbs", n_thumbs, 0), ("thumb_size", thumb_size, 8)):
        if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
            raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    if max_modes is not None and (
        isinstance(max_modes, bool) or not isinstance(max_modes, Integral) or max_modes < 0
    ):
        raise ValueError(f"max_modes: expected None or an integer >= 0, got {max_modes!r}")
    if title is None:
        title = "primekit failure modes" + (f": {run.path.name}" if run.path else "")
    rng = np.random.default_rng(seed)
    thumbs = _Thumbs(int(thumb_size))
    modes = run.modes.reset_index(drop=True)
    shown = modes if max_modes is None else modes.head(int(max_modes))
    sections = "".join(
        _mode_section(run, i + 1, row, thumbs, int(n_thumbs), rng)
        for i, row in enumerate(shown.to_dict("records"))
    )
    script_hash = base64.b64encode(hashlib.sha256(_JS.encode()).digest()).decode()
    # no network at all; the only script allowed is the sorting script, by its hash
    csp = (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{script_hash}'; base-uri 'none'; form-action 'none'"
    )
    source = f" &middot; run <code>{_e(run.path)}</code>" if run.path else ""
    from . import __version__

    more = (
        f'<p class="muted">Showing {len(shown)} of {len(modes)} modes.</p>'
        if len(shown) < len(modes)
        else ""
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_e(title)}</h1>"
        f'<p class="muted">PRIME failure modes (ICLR 2024): groups of images sharing a few '
        f"human-readable tags on which the classifier is much less accurate than on its class. "
        f"primekit {_e(__version__)}{source}</p>"
        f"<h2>Summary</h2>{_cards(run)}{_summary_table(run.summary)}"
        f"<h2>Failure modes</h2>"
        f'<p class="muted">Click a column header to sort.</p>{_mode_table(modes)}'
        f"<h2>Modes in detail</h2>{more}{sections or '<p>No failure modes.</p>'}"
        f"{_figures(run) if figures else ''}"
        f"<script>{_JS}</script></body></html>\n"
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
        A :class:`Run` or a run directory.
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
    with atomic_path(out) as tmp:
        tmp.write_text(text, encoding="utf-8")
        # a shareable file: the usual permissions, not the private ones of a temporary file
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)
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
        help="only the samples of this split (default: the split recorded in summary.json, else all)",
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
