"""The explorer's pure part: its data lined up, the search, what each picker lists, the HTML.

:class:`primekit.explore.FailureModeExplorer` holds widgets and wires their callbacks to the
functions here; nothing here knows ipywidgets, so every decision the explorer makes (which class
and mode to show after a search, which images, what the text says) is a plain function of data.
"""

from __future__ import annotations

import io
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ._render import asset, macros, mode_card, pct, sample_ids
from ._validation import align
from .search import find_failure_modes, subset_accuracies
from .split import TaggedSplit

__all__ = [
    "ExplorerData",
    "align_data",
    "timed_search",
    "necessity_depth",
    "class_options",
    "initial_class",
    "mode_options",
    "kept_mode",
    "strongest_mode",
    "ModeView",
    "mode_view",
    "pick_images",
    "chart_png",
    "html",
]

#: Colours of a right / wrong thumbnail border (those of the report and the mode card).
GOOD, BAD = "#1e8449", "#c0392b"


@dataclass(frozen=True)
class ExplorerData:
    """The explorer's samples: a checked :class:`~primekit.split.TaggedSplit` and, on its ids,
    the optional image paths and predictions."""

    split: TaggedSplit
    images: pd.Series | None
    predictions: pd.Series | None

    @property
    def classes(self) -> list:
        """The classes, sorted."""
        return self.split.classes

    def members(self, cls: Any, mode_tags: Sequence[str] | None = None) -> pd.Index:
        """Ids of the samples of ``cls`` carrying every tag of ``mode_tags`` (None: the class)."""
        split = self.split
        return split.ids[split.class_mask(cls) if mode_tags is None else split.group_mask(cls, mode_tags)]

    def accuracy(self, ids: pd.Index) -> float:
        return float(self.split.correct.loc[ids].mean()) if len(ids) else float("nan")


def _optional(values: pd.Series | None, index: pd.Index, argument: str) -> pd.Series | None:
    if values is None:
        return None
    if not isinstance(values, pd.Series):
        raise TypeError(
            f"{argument}: expected a pandas Series indexed by sample id, "
            f"got {type(values).__name__}"
        )
    return align(values, index, argument, allow_extra=True)


def align_data(
    split: TaggedSplit,
    *,
    images: pd.Series | None = None,
    predictions: pd.Series | None = None,
) -> ExplorerData:
    """``images`` and ``predictions`` lined up on the ids of ``split`` (they must cover them)."""
    return ExplorerData(
        split=split,
        images=_optional(images, split.ids, "images"),
        predictions=_optional(predictions, split.ids, "predictions"),
    )


def timed_search(split: TaggedSplit, **settings: Any) -> tuple[pd.DataFrame, float]:
    """:func:`primekit.find_failure_modes` and the seconds it took."""
    started = time.perf_counter()
    modes = find_failure_modes(split, **settings)
    return modes, time.perf_counter() - started


def necessity_depth(necessity: Mapping[int, float] | Sequence[float]) -> int:
    """Largest ``max_tags`` the necessity margins cover (sizes 2..k all present)."""
    if isinstance(necessity, Mapping):
        k = 1
        while k + 1 in necessity:
            k += 1
        return k
    return len(necessity) + 1


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def class_options(classes: Sequence, modes: pd.DataFrame) -> list[tuple[str, Any]]:
    """``(label, class)`` of the class picker: each class with its number of modes."""
    counts = modes["class"].value_counts()
    return [(f"{c} ({_plural(int(counts.get(c, 0)), 'mode')})", c) for c in classes]


def initial_class(classes: Sequence, modes: pd.DataFrame, current: Any) -> Any:
    """``current`` when it is a class, else the first class with a mode (else the first class)."""
    if current is not None and current in classes:
        return current
    counts = modes["class"].value_counts()
    with_modes = [c for c in classes if counts.get(c, 0) > 0]
    return with_modes[0] if with_modes else (classes[0] if len(classes) else None)


def mode_options(modes: pd.DataFrame, cls: Any) -> list[tuple[str, int]]:
    """``(label, row of modes)`` of the mode picker for class ``cls``."""
    rows = modes[modes["class"] == cls]
    return [
        (
            f"{' + '.join(r['tags'])}  —  {pct(r['accuracy'])} vs {pct(r['class_accuracy'])}"
            f"  (n={int(r['size'])})",
            int(i),
        )
        for i, r in zip(rows.index, rows.to_dict("records"), strict=True)
    ]


def kept_mode(modes: pd.DataFrame, cls: Any, previous: Mapping[str, Any] | None) -> int | None:
    """The row to show for ``cls``: the previous mode when it is still found, else the first."""
    rows = modes[modes["class"] == cls]
    if previous is not None:
        same = [i for i, t in zip(rows.index, rows["tags"], strict=True)
                if tuple(t) == tuple(previous["tags"])]
        if same:
            return int(same[0])
    return int(rows.index[0]) if len(rows) else None


def strongest_mode(modes: pd.DataFrame) -> int | None:
    """Row of the mode with the most tags, then the largest drop (the paper's Fig. 3 kind)."""
    if modes.empty:
        return None
    return int(modes.sort_values(["n_tags", "drop"], kind="stable").index[-1])


@dataclass(frozen=True)
class ModeView:
    """What the explorer shows for one class: a mode (or none) and its groups of samples."""

    cls: Any
    mode: dict | None
    subsets: pd.DataFrame | None
    mode_ids: pd.Index
    other_ids: pd.Index
    info: str


def mode_view(data: ExplorerData, modes: pd.DataFrame, row: int | None, cls: Any) -> ModeView:
    """The view of mode ``row`` of ``modes`` (None: class ``cls`` has no mode here)."""
    if row is None:
        whole = data.members(cls)
        info = html().no_mode(cls=cls, n=len(whole), accuracy=data.accuracy(whole))
        return ModeView(cls, None, None, pd.Index([]), whole, str(info))
    mode = modes.loc[row].to_dict()
    cls, tags = mode["class"], mode["tags"]
    whole = data.members(cls)
    inside = data.members(cls, tags)
    subsets = subset_accuracies(data.split, cls=cls, mode_tags=tags)
    card = mode_card(mode, class_size=len(whole))
    return ModeView(cls, mode, subsets, inside, whole.difference(inside, sort=False), str(card))


def pick_images(
    inside: pd.Index | None, outside: pd.Index, n: int, *, seed: int
) -> tuple[list, list]:
    """A random sample of ``n`` ids of ``inside`` (the mode; None: no mode) and of ``outside``.

    The same seed gives the same images; different seeds give independent samples.
    """
    rng = np.random.default_rng([int(seed), 1])
    shown_inside = sample_ids(inside, n, rng) if inside is not None else []
    return shown_inside, sample_ids(outside, n, rng)


def chart_png(plot: Any, n_rows: int) -> bytes:
    """PNG of ``plot(ax=...)`` on a figure sized for ``n_rows`` bars (no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # heavy: only when drawing
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.8, 0.28 * n_rows + 1.0), dpi=90)
    FigureCanvasAgg(fig)
    plot(ax=fig.add_subplot())
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def html() -> Any:
    """The explorer's HTML pieces (macros of ``templates/explorer.html.j2``)."""
    return macros("explorer.html.j2")


def header_html() -> str:
    """Title of the explorer, with the mode card's stylesheet."""
    return str(html().header(css=asset("mode_card.css")))
