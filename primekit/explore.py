"""Look at failure modes interactively: an ipywidgets explorer for notebooks.

:class:`FailureModeExplorer` shows, for a class and one of its failure modes, a random sample of the
mode's images beside images of the same class outside the mode, the accuracy of the mode against
each subset of its tags (paper Fig. 3), its counts and its description; sliders for ``min_size``,
``min_drop`` and ``max_tags`` re-run the search live. It uses plain ipywidgets (no custom
front-end), so it works in JupyterLab, VS Code and Colab.

The widgets are attributes and every piece of state is a plain attribute ending in ``_``, so the
explorer can be driven and tested without a browser: set a widget's ``.value`` and read the state.
"""

from __future__ import annotations

import html
import io
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._validation import sorted_classes
from .report import (
    RUN_FILES,
    Run,
    _read_summary,
    _sample,
    load_run,
    mode_members,
    search_settings,
    thumbnail_bytes,
)
from .search import DEFAULT_NECESSITY, find_failure_modes, subset_accuracies

__all__ = ["FailureModeExplorer", "ensure_run"]

logger = logging.getLogger(__name__)

_BAD = "#c0392b"
_GOOD = "#1e8449"


def ensure_run(run_dir: str | os.PathLike, *, smoke: bool = False) -> Path:
    """A run directory to look at: ``run_dir``, created with the demo when it holds no run.

    - ``run_dir`` holds a run: it is returned as it is (but a run recorded as a smoke run,
      ``"smoke": true`` or ``"world": {"smoke": true}`` in ``summary.json``, is rebuilt in full
      when ``smoke`` is False);
    - it holds none and ``smoke`` is False: ``primekit.demo.run_demo(run_dir)`` creates it;
    - it holds none and ``smoke`` is True: the tiny demo run is made (once) under
      ``$PRIMEKIT_HOME/runs/demo-smoke`` and that folder is returned, so that a CI run never leaves
      a toy-sized run where the real one belongs.

    Parameters
    ----------
    run_dir : path-like
        A run directory (see :mod:`primekit.report`).
    smoke : bool, default False
        Tiny demo run (seconds instead of minutes), for CI.

    Returns
    -------
    Path
        The run directory to load.
    """
    if not isinstance(run_dir, (str, os.PathLike)):
        raise TypeError(f"run_dir: expected a directory path, got {type(run_dir).__name__}")
    path = Path(run_dir).expanduser()
    if _is_run(path):
        # a smoke run (e.g. left by CI) is not what someone asking for the full run wants to see
        if smoke or not _is_smoke_run(_read_summary(path / RUN_FILES["summary"])):
            return path
        logger.info("%s holds a smoke run; running the full demo", path)
    if smoke:
        from .toyworld.world import primekit_home

        path = primekit_home() / "runs" / "demo-smoke"
        if _is_run(path):
            return path
    from .demo import run_demo  # heavy (trains the toy world's models); only when needed

    logger.info("no run in %s: running the demo (smoke=%s)", path, smoke)
    run_demo(path, smoke=smoke)
    return path


def _is_smoke_run(summary: Mapping[str, Any]) -> bool:
    world = summary.get("world")
    return bool(summary.get("smoke") or (isinstance(world, Mapping) and world.get("smoke")))


def _is_run(path: Path) -> bool:
    return all((path / RUN_FILES[key]).is_file() for key in ("samples", "tags", "modes"))


def _necessity_depth(necessity: Mapping[int, float] | Sequence[float]) -> int:
    """Largest ``max_tags`` the necessity margins cover (sizes 2..k all present)."""
    if isinstance(necessity, Mapping):
        k = 1
        while k + 1 in necessity:
            k += 1
        return k
    return len(necessity) + 1


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _pct(value: float) -> str:
    return "–" if value is None or math.isnan(float(value)) else f"{100 * float(value):.1f}%"


class FailureModeExplorer:
    """Interactive view of PRIME failure modes (ipywidgets).

    Parameters
    ----------
    tags : DataFrame of bool, shape (n_samples, n_tags)
        Tag matrix, index = sample id.
    labels : Series
        Class of each sample, indexed by sample id.
    correct : Series of bool
        Whether the classifier is right on each sample, indexed by sample id.
    images : Series of str, optional
        Image file of each sample, indexed by sample id; without it no image grids are shown.
    predictions : Series, optional
        Predicted class of each sample (shown under the thumbnails).
    min_size, min_drop, max_tags, necessity, min_tag_count
        Initial search settings, as in :func:`primekit.find_failure_modes`; the first three have
        sliders.
    n_images : int, default 8
        Images per grid (inside the mode, and same class outside the mode).
    thumb_size : int, default 80
        Thumbnail edge in pixels.
    columns : int, default 4
        Thumbnails per grid row.
    seed : int, default 0
        Seed of the random choice of images; the reseed button increments it.

    Attributes
    ----------
    widget : ipywidgets.VBox
        The whole explorer (displaying the explorer displays this).
    min_size_slider, min_drop_slider, max_tags_slider : ipywidgets sliders
        Search settings; changing one re-runs the search.
    class_picker : ipywidgets.Dropdown
        The class (value: the class label).
    mode_picker : ipywidgets.Select
        The mode of that class (value: row of ``modes_``, or None when the class has no mode).
    reseed_button : ipywidgets.Button
        Draws new random images.
    modes_ : DataFrame
        Failure modes found at the current settings.
    search_seconds_ : float
        Time of the last search.
    mode_ : dict or None
        The selected mode (a row of ``modes_``).
    subsets_ : DataFrame or None
        Accuracy on each subset of the selected mode's tags.
    mode_ids_, other_ids_ : Index
        Ids of the class's samples inside / outside the selected mode.
    shown_mode_ids_, shown_other_ids_ : list
        Ids of the images shown in the two grids.
    seed_ : int
        Current image seed.
    run : Run or None
        The run directory's contents, when built by :meth:`from_run`.
    """

    def __init__(
        self,
        tags: pd.DataFrame,
        labels: pd.Series,
        correct: pd.Series,
        *,
        images: pd.Series | None = None,
        predictions: pd.Series | None = None,
        min_size: int = 30,
        min_drop: float = 0.30,
        max_tags: int = 4,
        necessity: Mapping[int, float] | Sequence[float] = DEFAULT_NECESSITY,
        min_tag_count: int | None = None,
        n_images: int = 8,
        thumb_size: int = 80,
        columns: int = 4,
        seed: int = 0,
    ):
        import ipywidgets as w

        for name, value, minimum in (
            ("n_images", n_images, 1),
            ("thumb_size", thumb_size, 8),
            ("columns", columns, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
                raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
        if isinstance(seed, bool) or not isinstance(seed, Integral):
            raise TypeError(f"seed: expected an integer, got {seed!r}")
        self.tags = tags
        self.labels = labels
        self.correct = correct
        self.necessity = necessity
        self.min_tag_count = min_tag_count
        self.n_images = int(n_images)
        self.thumb_size = int(thumb_size)
        self.columns = int(columns)
        # validates every data argument and setting, naming the argument, before any widget
        started = time.perf_counter()
        modes = find_failure_modes(
            tags,
            labels,
            correct,
            min_size=min_size,
            min_drop=min_drop,
            max_tags=max_tags,
            necessity=necessity,
            min_tag_count=min_tag_count,
        )
        self.search_seconds_ = time.perf_counter() - started
        self.labels = (
            pd.Series(labels).reindex(tags.index)
            if isinstance(labels, pd.Series)
            else pd.Series(np.asarray(labels), index=tags.index)
        )
        self.correct = (
            pd.Series(correct).reindex(tags.index)
            if isinstance(correct, pd.Series)
            else pd.Series(np.asarray(correct), index=tags.index)
        ).astype(bool)
        self.images = self._aligned(images, "images")
        self.predictions = self._aligned(predictions, "predictions")
        self.classes_ = sorted_classes(pd.unique(self.labels))
        self.class_sizes_ = self.labels.value_counts()
        self.seed_ = int(seed)
        self.modes_ = modes
        self.mode_: dict | None = None
        self.subsets_: pd.DataFrame | None = None
        self.mode_ids_ = pd.Index([])
        self.other_ids_ = pd.Index([])
        self.shown_mode_ids_: list = []
        self.shown_other_ids_: list = []
        self._thumbs: dict[Any, bytes] = {}
        self._syncing = False
        self.run: Run | None = None

        wide = {"description_width": "initial"}
        largest = int(self.class_sizes_.max()) if len(self.class_sizes_) else 1
        self.min_size_slider = w.IntSlider(
            value=int(min_size),
            min=1,
            max=max(int(min_size), largest),
            step=1,
            description="min_size (s)",
            continuous_update=False,
            style=wide,
        )
        self.min_drop_slider = w.FloatSlider(
            value=float(min_drop),
            min=0.0,
            max=1.0,
            step=0.01,
            readout_format=".2f",
            description="min_drop (a)",
            continuous_update=False,
            style=wide,
        )
        self.max_tags_slider = w.IntSlider(
            value=int(max_tags),
            min=1,
            max=max(int(max_tags), _necessity_depth(necessity)),
            description="max_tags (l)",
            continuous_update=False,
            style=wide,
        )
        self.class_picker = w.Dropdown(description="class", options=[], style=wide)
        self.mode_picker = w.Select(
            description="mode",
            options=[],
            rows=6,
            style=wide,
            layout=w.Layout(width="auto", max_width="960px"),
        )
        self.reseed_button = w.Button(
            description="new random images",
            icon="refresh",
            tooltip="draw other images",
            layout=w.Layout(width="auto"),
        )
        self.status = w.HTML()
        self.info = w.HTML(layout=w.Layout(flex="1 1 0%", min_width="320px"))
        self.chart = w.Image(format="png", layout=w.Layout(max_width="480px"))
        grid_layout = {
            "grid_template_columns": f"repeat({self.columns}, {self.thumb_size + 10}px)",
            "grid_gap": "4px",
        }
        self.mode_grid = w.GridBox(layout=w.Layout(**grid_layout))
        self.other_grid = w.GridBox(layout=w.Layout(**grid_layout))
        self.mode_grid_title = w.HTML()
        self.other_grid_title = w.HTML()
        self.widget = w.VBox(
            [
                w.HTML("<h3 style='margin:0'>PRIME failure-mode explorer</h3>"),
                w.HBox(
                    [self.min_size_slider, self.min_drop_slider, self.max_tags_slider],
                    layout=w.Layout(flex_flow="row wrap"),
                ),
                w.HBox([self.class_picker, self.status]),
                self.mode_picker,
                w.HBox([self.info, self.chart], layout=w.Layout(flex_flow="row wrap")),
                w.HBox([self.reseed_button]),
                w.HBox(
                    [
                        w.VBox([self.mode_grid_title, self.mode_grid]),
                        w.VBox([self.other_grid_title, self.other_grid]),
                    ],
                    layout=w.Layout(flex_flow="row wrap", grid_gap="24px"),
                ),
            ],
            layout=w.Layout(width="100%"),
        )
        self.widget.add_class("primekit-explorer")

        for slider in (self.min_size_slider, self.min_drop_slider, self.max_tags_slider):
            slider.observe(self._on_settings, names="value")
        self.class_picker.observe(self._on_class, names="value")
        self.mode_picker.observe(self._on_mode, names="value")
        self.reseed_button.on_click(self.reseed)
        self._sync_pickers(previous=None)

    # -----------------------------------------------------------------------------------------
    # construction from a run directory

    @classmethod
    def from_run(
        cls,
        path: str | os.PathLike | Run,
        *,
        split: str | None = None,
        threshold: float | Mapping[str, float] | None = None,
        **options: Any,
    ) -> FailureModeExplorer:
        """An explorer over a run directory (``primekit demo --out DIR``) or a loaded :class:`Run`.

        The search settings the run recorded in ``summary.json`` (``"search"``: ``min_size``,
        ``min_drop``, ``max_tags``, ``min_tag_count``, ``necessity``; see
        :func:`primekit.report.search_settings`) are the defaults, so the explorer starts on the
        run's own failure modes; ``options`` (any keyword of the constructor) override them.
        ``split`` and ``threshold`` go to :func:`primekit.report.load_run`. The run is kept as
        the attribute ``run``.
        """
        run = path if isinstance(path, Run) else load_run(path, split=split, threshold=threshold)
        for key, value in search_settings(run.summary).items():
            if key in ("min_size", "min_drop", "max_tags", "min_tag_count", "necessity"):
                options.setdefault(key, value)
        predictions = run.samples["pred"] if "pred" in run.samples.columns else None
        explorer = cls(
            run.tags, run.labels, run.correct, images=run.images, predictions=predictions, **options
        )
        explorer.run = run
        return explorer

    def _aligned(self, values: pd.Series | None, argument: str) -> pd.Series | None:
        if values is None:
            return None
        if not isinstance(values, pd.Series):
            raise TypeError(
                f"{argument}: expected a pandas Series indexed by sample id, "
                f"got {type(values).__name__}"
            )
        missing = self.tags.index.difference(values.index)
        if len(missing):
            raise ValueError(
                f"{argument}: {len(missing)} sample id(s) of tags are missing, e.g. {missing[0]!r}"
            )
        return values.reindex(self.tags.index)

    # -----------------------------------------------------------------------------------------
    # pure computations

    def search(self, *, min_size: int, min_drop: float, max_tags: int) -> pd.DataFrame:
        """Failure modes at these settings (the explorer's data and other settings)."""
        return find_failure_modes(
            self.tags,
            self.labels,
            self.correct,
            min_size=min_size,
            min_drop=min_drop,
            max_tags=max_tags,
            necessity=self.necessity,
            min_tag_count=self.min_tag_count,
        )

    def class_modes(self, cls: Any) -> pd.DataFrame:
        """Rows of ``modes_`` for class ``cls`` (index = row position in ``modes_``)."""
        return self.modes_[self.modes_["class"] == cls]

    def pick_images(self, cls: Any, mode_tags: Sequence[str], *, seed: int) -> tuple[list, list]:
        """A random sample of ``n_images`` ids inside the mode and as many outside it (same class).

        The same seed gives the same images; different seeds give independent samples.
        """
        inside = mode_members(self.tags, self.labels, cls=cls, mode_tags=mode_tags)
        outside = mode_members(self.tags, self.labels, cls=cls, mode_tags=()).difference(
            inside, sort=False
        )
        rng = np.random.default_rng([int(seed), 1])
        return _sample(inside, self.n_images, rng), _sample(outside, self.n_images, rng)

    # -----------------------------------------------------------------------------------------
    # callbacks and their effects

    def _on_settings(self, change: Mapping[str, Any] | None = None) -> None:
        self.refresh()

    def refresh(self) -> None:
        """Re-run the search at the sliders' settings and update the pickers and the view."""
        previous = self.mode_
        started = time.perf_counter()
        self.modes_ = self.search(
            min_size=int(self.min_size_slider.value),
            min_drop=float(self.min_drop_slider.value),
            max_tags=int(self.max_tags_slider.value),
        )
        self.search_seconds_ = time.perf_counter() - started
        self._sync_pickers(previous=previous)

    def _sync_pickers(self, previous: Mapping[str, Any] | None) -> None:
        """Fill both pickers from ``modes_``, keeping the previous class and mode when they exist."""
        counts = self.modes_["class"].value_counts()
        current = self.class_picker.value if self.class_picker.options else None
        if previous is not None:
            current = previous["class"]
        if current is None or current not in self.classes_:
            with_modes = [c for c in self.classes_ if counts.get(c, 0) > 0]
            current = with_modes[0] if with_modes else (self.classes_[0] if self.classes_ else None)
        self._syncing = True
        try:
            self.class_picker.options = [
                (f"{c} ({_plural(int(counts.get(c, 0)), 'mode')})", c) for c in self.classes_
            ]
            self.class_picker.value = current
        finally:
            self._syncing = False
        self._fill_modes(keep=previous)
        n_classes = int((counts > 0).sum())
        self.status.value = (
            f"<span style='margin-left:1em'><b>{len(self.modes_)}</b> failure modes in "
            f"<b>{n_classes}</b> classes (search: {1000 * self.search_seconds_:.0f} ms)</span>"
        )

    def _fill_modes(self, keep: Mapping[str, Any] | None = None) -> None:
        rows = self.class_modes(self.class_picker.value)
        options = [
            (
                f"{' + '.join(r['tags'])}  —  {_pct(r['accuracy'])} vs {_pct(r['class_accuracy'])}"
                f"  (n={int(r['size'])})",
                int(i),
            )
            for i, r in zip(rows.index, rows.to_dict("records"), strict=True)
        ]
        value = options[0][1] if options else None
        if keep is not None:
            same = [
                i
                for i, r in zip(rows.index, rows["tags"], strict=True)
                if tuple(r) == tuple(keep["tags"])
            ]
            if same:
                value = int(same[0])
        self._syncing = True
        try:
            self.mode_picker.options = options
            self.mode_picker.value = value
        finally:
            self._syncing = False
        self.show_mode(value)

    def _on_class(self, change: Mapping[str, Any]) -> None:
        if not self._syncing:
            self._fill_modes()

    def _on_mode(self, change: Mapping[str, Any]) -> None:
        if not self._syncing:
            self.show_mode(change["new"])

    def show_mode(self, row: int | None) -> None:
        """Show mode ``row`` of ``modes_`` (None: the class has no mode at these settings)."""
        cls = self.class_picker.value
        if row is None:
            self.mode_ = None
            self.subsets_ = None
            self.mode_ids_ = pd.Index([])
            self.other_ids_ = mode_members(self.tags, self.labels, cls=cls, mode_tags=())
            n = len(self.other_ids_)
            acc = self.correct.loc[self.other_ids_].mean() if n else float("nan")
            self.info.value = (
                f"<p>No failure mode of class <b>{html.escape(str(cls))}</b> at these settings "
                f"({n} images, accuracy {_pct(acc)}). Try a smaller <code>min_size</code> or "
                f"<code>min_drop</code>.</p>"
            )
            self.chart.value = b""
        else:
            mode = self.modes_.loc[row].to_dict()
            self.mode_ = mode
            self.subsets_ = subset_accuracies(
                self.tags, self.labels, self.correct, cls=mode["class"], mode_tags=mode["tags"]
            )
            self.mode_ids_ = mode_members(
                self.tags, self.labels, cls=mode["class"], mode_tags=mode["tags"]
            )
            self.other_ids_ = mode_members(
                self.tags, self.labels, cls=mode["class"], mode_tags=()
            ).difference(self.mode_ids_, sort=False)
            self.info.value = self._info_html(mode)
            self.chart.value = self._chart_png()
        self._show_images()

    def reseed(self, _button: Any = None) -> None:
        """Draw new random images for the current mode."""
        self.seed_ += 1
        self._show_images()

    def select_mode(self, row: int | None = None) -> FailureModeExplorer:
        """Show mode ``row`` of ``modes_`` (sets both pickers, as a click would); returns self.

        Without ``row``: the mode with the most tags, then the largest drop (the paper's Fig. 3
        kind of example); when there is no mode at all, nothing changes.
        """
        if row is None:
            if self.modes_.empty:
                return self
            order = self.modes_.sort_values(["n_tags", "drop"], kind="stable")
            row = int(order.index[-1])
        if isinstance(row, bool) or not isinstance(row, Integral) or row not in self.modes_.index:
            raise ValueError(
                f"row: expected a row of modes_ (0..{len(self.modes_) - 1}), got {row!r}"
            )
        self.class_picker.value = self.modes_.loc[row, "class"]
        self.mode_picker.value = int(row)
        return self

    def plot_subsets(self, *, ax: Any = None) -> Any:
        """Draw the selected mode against each subset of its tags (paper Fig. 3); returns ``ax``.

        See :func:`primekit.plots.plot_subset_accuracies`; the dotted red line is the failure
        threshold (class accuracy - ``min_drop``). Without a selected mode (the class has none at these
        settings) the axes say so.
        """
        if self.mode_ is None or self.subsets_ is None:
            if ax is None:
                import matplotlib.pyplot as plt

                _, ax = plt.subplots(figsize=(5, 2))
            ax.text(0.5, 0.5, "no failure mode at these settings", ha="center", va="center")
            ax.set_axis_off()
            return ax
        from .plots import plot_subset_accuracies

        ax = plot_subset_accuracies(
            self.subsets_,
            class_accuracy=float(self.mode_["class_accuracy"]),
            title=str(self.mode_["description"]),
            ax=ax,
        )
        # the failure threshold: a mode's accuracy is at most class accuracy - min_drop
        threshold = float(self.mode_["class_accuracy"]) - float(self.min_drop_slider.value)
        ax.axvline(threshold, color=_BAD, linestyle=":", linewidth=1)
        return ax

    def summary(self) -> dict[str, Any]:
        """Key numbers of the current view: settings, counts and the selected mode (or None)."""
        mode = self.mode_ or {}
        return {
            "min_size": int(self.min_size_slider.value),
            "min_drop": float(self.min_drop_slider.value),
            "max_tags": int(self.max_tags_slider.value),
            "n_failure_modes": int(len(self.modes_)),
            "n_classes_with_modes": int(self.modes_["class"].nunique()),
            "search_seconds": float(self.search_seconds_),
            "shown_mode": mode.get("description"),
            "shown_mode_size": None if not mode else int(mode["size"]),
            "shown_mode_accuracy": None if not mode else float(mode["accuracy"]),
            "shown_mode_class_accuracy": None if not mode else float(mode["class_accuracy"]),
        }

    # -----------------------------------------------------------------------------------------
    # rendering

    def _info_html(self, mode: Mapping[str, Any]) -> str:
        e = html.escape
        n_class = int(self.class_sizes_.get(mode["class"], 0))
        tags = "".join(
            f"<code style='background:#eef;padding:0 4px;margin-right:4px'>{e(str(t))}</code>"
            for t in mode["tags"]
        )
        margin = mode["necessity_margin"]
        margin_text = (
            ""
            if margin is None or math.isnan(float(margin))
            else (f"; removing any one tag raises accuracy by at least {_pct(margin)}")
        )
        return (
            f"<p style='font-size:1.1em'><b>{e(str(mode['description']))}</b></p>"
            f"<p>class <b>{e(str(mode['class']))}</b> &middot; tags {tags}</p>"
            f"<p><b style='color:{_BAD}'>{_pct(mode['accuracy'])}</b> accuracy on "
            f"<b>{int(mode['size'])}</b> of the class's {n_class} images, vs "
            f"<b style='color:{_GOOD}'>{_pct(mode['class_accuracy'])}</b> on the whole class "
            f"(drop {_pct(mode['drop'])}){margin_text}.</p>"
        )

    def _chart_png(self) -> bytes:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(4.8, 0.28 * len(self.subsets_) + 1.0), dpi=90)
        FigureCanvasAgg(fig)
        self.plot_subsets(ax=fig.add_subplot())
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()

    def _thumb(self, sid: Any) -> bytes:
        path = self.images.loc[sid] if self.images is not None else None
        key = path if path is not None else ("missing", sid)
        if key not in self._thumbs:
            self._thumbs[key] = thumbnail_bytes(path, size=self.thumb_size)
        return self._thumbs[key]

    def _cell(self, sid: Any) -> Any:
        import ipywidgets as w

        ok = bool(self.correct.loc[sid])
        image = w.Image(
            value=self._thumb(sid),
            format="png",
            width=self.thumb_size,
            height=self.thumb_size,
            layout=w.Layout(border=f"3px solid {_GOOD if ok else _BAD}"),
        )
        pred = f" {self.predictions.loc[sid]}" if self.predictions is not None else ""
        caption = w.HTML(
            f"<div style='font-size:11px;text-align:center;line-height:1.2;white-space:nowrap;"
            f"overflow:hidden;text-overflow:ellipsis;width:{self.thumb_size + 6}px' "
            f"title='{html.escape(str(sid))}'>"
            f"{'&#10003;' if ok else '&#10007;'}{html.escape(str(pred))}</div>"
        )
        cell = w.VBox([image, caption], layout=w.Layout(align_items="center"))
        cell.add_class("primekit-thumb")
        return cell

    def _show_images(self) -> None:
        cls = self.class_picker.value
        tags = self.mode_["tags"] if self.mode_ is not None else ()
        if self.mode_ is None:
            inside: list = []
            outside = _sample(
                self.other_ids_, self.n_images, np.random.default_rng([self.seed_, 1])
            )
        else:
            inside, outside = self.pick_images(cls, tags, seed=self.seed_)
        self.shown_mode_ids_, self.shown_other_ids_ = inside, outside
        if self.images is None:
            self.mode_grid_title.value = "<i>no image paths given (images=...)</i>"
            self.other_grid_title.value = ""
            self.mode_grid.children, self.other_grid.children = (), ()
            return
        acc_in = self.correct.loc[self.mode_ids_].mean() if len(self.mode_ids_) else float("nan")
        acc_out = self.correct.loc[self.other_ids_].mean() if len(self.other_ids_) else float("nan")
        self.mode_grid_title.value = (
            f"<b>In the mode</b>: {len(inside)} random of {len(self.mode_ids_)} "
            f"(accuracy {_pct(acc_in)})"
        )
        self.other_grid_title.value = (
            f"<b>Same class, outside the mode</b>: {len(outside)} random of "
            f"{len(self.other_ids_)} (accuracy {_pct(acc_out)})"
        )
        self.mode_grid.children = tuple(self._cell(s) for s in inside)
        self.other_grid.children = tuple(self._cell(s) for s in outside)

    # -----------------------------------------------------------------------------------------
    # display

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return (
            f"FailureModeExplorer({len(self.tags)} samples, {self.tags.shape[1]} tags, "
            f"{len(self.modes_)} modes)"
        )
