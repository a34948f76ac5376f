"""HTML shared by the report and the explorer: jinja2 templates, the mode card, thumbnails.

The templates, the CSS and the report's script are package data in ``primekit/templates``. They are
rendered by jinja2 with autoescape on, so every value that comes from data (class names, tags,
paths, summary keys and values) is escaped by the template engine: tags are model output and may
contain markup. Python code here formats numbers into plain strings; it writes no HTML.

The columns of the failure-mode table and the figures of the mode card are driven by one list,
:data:`MODE_COLUMNS`: a new column of the mode table (a q-value, an interval) is shown in the
report's table, and in the mode card of the report and the explorer when ``card=True``, by adding
one :class:`ModeColumn` (with, if needed, a formatter in :data:`FORMATS`).
"""

from __future__ import annotations

import base64
import io
import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from types import ModuleType
from typing import Any

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup

from .mode_table import describe

__all__ = [
    "ModeColumn",
    "MODE_COLUMNS",
    "FORMATS",
    "mode_columns",
    "pct",
    "render",
    "macros",
    "asset",
    "mode_card",
    "data_uri",
    "thumbnail_bytes",
    "sample_ids",
]

logger = logging.getLogger(__name__)


def _float_text(value: Any, fmt: Callable[[float], str]) -> str:
    """``fmt`` of a number; NaN or None -> ``"–"``; a non-number as text."""
    if value is None:
        return "–"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    return "–" if math.isnan(v) else fmt(v)


def pct(value: Any) -> str:
    """``0.259`` -> ``"25.9%"``; NaN or None -> ``"–"``; a non-number as text."""
    return _float_text(value, lambda v: f"{100 * v:.1f}%")


def _integer(value: Any) -> str:
    try:
        return str(int(value))
    except (TypeError, ValueError):
        return str(value)


def _tags(value: Any) -> str:
    return " + ".join(str(t) for t in value)


#: Formatter of each kind of column: value -> plain text (escaped by the template).
FORMATS: dict[str, Callable[[Any], str]] = {
    "text": str,
    "tags": _tags,
    "int": _integer,
    "pct": pct,
    "number": lambda value: _float_text(value, lambda v: f"{v:.3g}"),
}


@dataclass(frozen=True)
class ModeColumn:
    """One column of the failure-mode table, as the report and the mode card show it.

    Attributes
    ----------
    key : str
        Column of the mode table.
    label : str
        Header of the column.
    kind : str
        Key of :data:`FORMATS`; every kind but ``"text"`` and ``"tags"`` sorts as a number.
    card : bool
        Also listed under the mode card's sentence (the core numbers are in the sentence).
    upper : str, optional
        Column of the upper end of an interval whose lower end is ``key``: the cell reads
        ``"low – high"`` (each end formatted by ``kind``) and sorts by the lower end.

    Examples
    --------
    A q-value and an interval, shown wherever a mode table has these columns::

        MODE_COLUMNS.append(ModeColumn("q_value", "q-value", "number", card=True))
        MODE_COLUMNS.append(
            ModeColumn("accuracy_low", "accuracy 95% CI", "pct", card=True, upper="accuracy_high")
        )
    """

    key: str
    label: str
    kind: str = "text"
    card: bool = False
    upper: str | None = None

    @property
    def numeric(self) -> bool:
        return self.kind not in ("text", "tags")

    @property
    def keys(self) -> tuple[str, ...]:
        """The mode-table columns this column shows."""
        return (self.key,) if self.upper is None else (self.key, self.upper)

    def text(self, mode: Mapping[str, Any]) -> str:
        """The cell of ``mode`` in this column."""
        return " – ".join(FORMATS[self.kind](mode[key]) for key in self.keys)

    def sort_value(self, mode: Mapping[str, Any]) -> str:
        """What the report's table sorts by: a plain number ('' for NaN), or the text."""
        if not self.numeric:
            return self.text(mode)
        try:
            v = float(mode[self.key])
        except (TypeError, ValueError):
            return ""
        return "" if math.isnan(v) else repr(v)


#: The columns of the failure-mode table (see ``primekit.search.MODE_COLUMNS``), in order.
MODE_COLUMNS: list[ModeColumn] = [
    ModeColumn("class", "class"),
    ModeColumn("tags", "tags", "tags"),
    ModeColumn("n_tags", "n_tags", "int"),
    ModeColumn("size", "size", "int"),
    ModeColumn("accuracy", "accuracy", "pct"),
    ModeColumn("class_accuracy", "class_accuracy", "pct"),
    ModeColumn("drop", "drop", "pct"),
    ModeColumn("necessity_margin", "necessity_margin", "pct"),
    # the statistics of primekit.statistics (present when the modes were found with max_q)
    ModeColumn("drop_low", "drop 95% CI", "pct", card=True, upper="drop_high"),
    ModeColumn("expected_drop", "expected drop", "pct", card=True),
    ModeColumn("q_value", "q-value", "number", card=True),
]


def mode_columns(columns: Iterable[str]) -> list[ModeColumn]:
    """The entries of :data:`MODE_COLUMNS` whose key is among ``columns`` (a table's columns)."""
    present = set(columns)
    return [c for c in MODE_COLUMNS if set(c.keys) <= present]


_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("primekit", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters["pct"] = pct


def render(name: str, **context: Any) -> str:
    """Render template ``name`` of ``primekit/templates`` (autoescaped) with ``context``."""
    return _ENV.get_template(name).render(**context)


def macros(name: str) -> ModuleType:
    """The macros of template ``name`` as callables (each returns escaped markup)."""
    return _ENV.get_template(name).module


def asset(name: str) -> Markup:
    """The text of a static file of ``primekit/templates`` (CSS, JS), trusted as it is."""
    text = resources.files("primekit").joinpath("templates", name).read_text(encoding="utf-8")
    return Markup(text)


def mode_card(
    mode: Mapping[str, Any], *, class_size: int, number: int | None = None
) -> Markup:
    """The mode card: description, class, tags and numbers of one failure mode.

    Parameters
    ----------
    mode : mapping
        A row of a failure-mode table (``class, tags, size, accuracy, class_accuracy, drop,
        necessity_margin``; ``description`` optional).
    class_size : int
        Number of samples of the mode's class.
    number : int, optional
        Shown before the description ("3. a photo of ...").
    """
    tags = tuple(mode["tags"])
    margin = mode.get("necessity_margin")
    if margin is not None and math.isnan(float(margin)):
        margin = None
    extra = [c for c in mode_columns(mode) if c.card]
    return Markup(
        render(
            "mode_card.html.j2",
            mode=mode,
            tags=tags,
            description=mode.get("description") or describe(mode["class"], tags),
            size=int(mode["size"]),
            class_size=int(class_size),
            margin=margin,
            number=number,
            extra=extra,
        )
    )


def data_uri(data: bytes, mime: str) -> str:
    """``data:`` URI of some bytes (base64)."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


_PLACEHOLDER_COLOUR = (200, 200, 200)


def thumbnail_bytes(path: str | os.PathLike | None, *, size: int = 96, fmt: str = "png") -> bytes:
    """A square-bounded thumbnail of an image file, encoded as PNG or JPEG bytes.

    A missing or unreadable file gives a grey placeholder instead of an error, so one bad image
    never breaks a grid.
    """
    from PIL import Image  # Pillow is a dependency; imported here to keep module import light

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


def sample_ids(ids: pd.Index | Sequence, n: int, rng: np.random.Generator) -> list:
    """A random sample of at most ``n`` ids, in a random order (not cherry-picked)."""
    ids = pd.Index(ids)
    if len(ids) <= n:
        return list(ids[rng.permutation(len(ids))])
    return list(ids[rng.choice(len(ids), size=n, replace=False)])
