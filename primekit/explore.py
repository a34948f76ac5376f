"""Look at failure modes interactively: an ipywidgets explorer for notebooks.

:class:`FailureModeExplorer` shows, for a class and one of its failure modes, a random sample of the
mode's images beside images of the same class outside the mode, the accuracy of the mode against
each subset of its tags (paper Fig. 3), and the mode card (counts and description, the same card
as the HTML report's); sliders for ``min_size``, ``min_drop`` and ``max_tags`` re-run the search
live. It uses plain ipywidgets (no custom front-end), so it works in JupyterLab, VS Code and Colab.

The widgets are attributes and every piece of state is a plain attribute ending in ``_``, so the
explorer can be driven and tested without a browser: set a widget's ``.value`` and read the state.
Its decisions are the pure functions of :mod:`primekit._explore`. It looks at a run folder that
exists already: ``primekit demo`` (or :func:`primekit.demo.ensure_run`) makes one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from numbers import Integral
from typing import Any

import ipywidgets as w
import pandas as pd

from . import _explore as ex
from ._render import thumbnail_bytes
from .run_folder import Run, load_run, search_settings
from .search import DEFAULT_NECESSITY
from .split import TaggedSplit, as_split
from .statistics import RECOMMENDED_MAX_Q, check_max_q

__all__ = ["FailureModeExplorer"]

_WIDE = {"description_width": "initial"}
_SEARCH_OPTIONS = ("min_size", "min_drop", "max_tags", "min_tag_count", "necessity")


def _check_options(n_images: Any, thumb_size: Any, columns: Any, seed: Any) -> None:
    for name, value, minimum in (
        ("n_images", n_images, 1),
        ("thumb_size", thumb_size, 8),
        ("columns", columns, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
            raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, Integral):
        raise TypeError(f"seed: expected an integer, got {seed!r}")


def _sliders(min_size: int, min_drop: float, max_tags: int, *, largest: int, depth: int) -> tuple:
    size = w.IntSlider(value=int(min_size), min=1, max=max(int(min_size), largest), step=1,
                       description="min_size (s)", continuous_update=False, style=_WIDE)
    drop = w.FloatSlider(value=float(min_drop), min=0.0, max=1.0, step=0.01,
                         readout_format=".2f", description="min_drop (a)",
                         continuous_update=False, style=_WIDE)
    tags = w.IntSlider(value=int(max_tags), min=1, max=max(int(max_tags), depth),
                       description="max_tags (l)", continuous_update=False, style=_WIDE)
    return size, drop, tags


class FailureModeExplorer:
    """Interactive view of PRIME failure modes (ipywidgets).

    Parameters
    ----------
    tags : DataFrame of bool, shape (n_samples, n_tags), or TaggedSplit
        Tag matrix, index = sample id; or a :class:`~primekit.split.TaggedSplit` (a study's
        ``val``, a :class:`~primekit.run_folder.Run`) standing for all three tables.
    labels : Series
        Class of each sample, indexed by sample id (not with a TaggedSplit).
    correct : Series of bool
        Whether the classifier is right on each sample, indexed by sample id (not with a
        TaggedSplit).
    images : Series of str, optional
        Image file of each sample, indexed by sample id; without it no image grids are shown.
    predictions : Series, optional
        Predicted class of each sample (shown under the thumbnails).
    min_size, min_drop, max_tags, necessity, min_tag_count
        Initial search settings, as in :func:`primekit.find_failure_modes`; the first three have
        sliders.
    max_q : float or None, default None
        Keep only modes whose q-value is at most this (a toggle and a slider); None (default)
        starts with the filter off (the paper's definition), the slider at
        :data:`primekit.statistics.RECOMMENDED_MAX_Q`.
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
    filter_toggle, max_q_slider : ipywidgets Checkbox and FloatSlider
        The q-value filter: on, only modes with ``q_value <= max_q_slider.value`` are kept.
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
        The run folder's contents, when built by :meth:`from_run`.
    """

    def __init__(
        self,
        tags: pd.DataFrame | TaggedSplit,
        labels: pd.Series | None = None,
        correct: pd.Series | None = None,
        *,
        images: pd.Series | None = None,
        predictions: pd.Series | None = None,
        min_size: int = 30,
        min_drop: float = 0.30,
        max_tags: int = 4,
        necessity: Mapping[int, float] | Sequence[float] = DEFAULT_NECESSITY,
        min_tag_count: int | None = None,
        max_q: float | None = None,
        n_images: int = 8,
        thumb_size: int = 80,
        columns: int = 4,
        seed: int = 0,
    ):
        _check_options(n_images, thumb_size, columns, seed)
        self.necessity = necessity
        self.min_tag_count = min_tag_count
        self.n_images = int(n_images)
        self.thumb_size = int(thumb_size)
        self.columns = int(columns)
        # validates every data argument and setting, naming the argument, before any widget
        max_q = check_max_q(max_q)
        split = as_split(tags, labels, correct)
        self.modes_, self.search_seconds_ = ex.timed_search(
            split, min_size=min_size, min_drop=min_drop, max_tags=max_tags,
            necessity=necessity, min_tag_count=min_tag_count, max_q=max_q,
        )
        self.data = ex.align_data(split, images=images, predictions=predictions)
        self.classes_ = self.data.classes
        self.seed_ = int(seed)
        self._view = ex.mode_view(self.data, self.modes_, None, None)
        self.shown_mode_ids_: list = []
        self.shown_other_ids_: list = []
        self._thumbs: dict[Any, bytes] = {}
        self._syncing = False
        self.run: Run | None = None
        self._build(min_size, min_drop, max_tags, max_q)
        self._sync_pickers(previous=None)

    # -----------------------------------------------------------------------------------------
    # the data, as attributes

    split = property(lambda self: self.data.split, doc="The samples (a TaggedSplit).")
    tags = property(lambda self: self.data.split.tags, doc="Tag matrix (index = sample id).")
    labels = property(lambda self: self.data.split.labels, doc="Class of each sample.")
    correct = property(lambda self: self.data.split.correct, doc="Whether the classifier is right.")
    images = property(lambda self: self.data.images, doc="Image path of each sample, or None.")
    predictions = property(lambda self: self.data.predictions, doc="Predicted class, or None.")
    mode_ = property(lambda self: self._view.mode, doc="The selected mode, or None.")
    subsets_ = property(lambda self: self._view.subsets, doc="Subset accuracies of the mode.")
    mode_ids_ = property(lambda self: self._view.mode_ids, doc="Ids inside the selected mode.")
    other_ids_ = property(lambda self: self._view.other_ids, doc="Ids of the class outside it.")

    # -----------------------------------------------------------------------------------------
    # widgets

    def _build(self, min_size: int, min_drop: float, max_tags: int, max_q: float | None) -> None:
        sizes = self.labels.value_counts()
        self.min_size_slider, self.min_drop_slider, self.max_tags_slider = _sliders(
            min_size, min_drop, max_tags, largest=int(sizes.max()) if len(sizes) else 1,
            depth=ex.necessity_depth(self.necessity),
        )
        self.filter_toggle = w.Checkbox(value=max_q is not None, description="only q-value <=",
                                        indent=False, layout=w.Layout(width="auto"))
        self.max_q_slider = w.FloatSlider(value=RECOMMENDED_MAX_Q if max_q is None else max_q,
                                          min=0.01, max=1.0, step=0.01, readout_format=".2f",
                                          continuous_update=False, disabled=max_q is None)
        self.class_picker = w.Dropdown(description="class", options=[], style=_WIDE)
        self.mode_picker = w.Select(description="mode", options=[], rows=6, style=_WIDE,
                                    layout=w.Layout(width="auto", max_width="960px"))
        self.reseed_button = w.Button(description="new random images", icon="refresh",
                                      tooltip="draw other images", layout=w.Layout(width="auto"))
        self.status = w.HTML()
        self.info = w.HTML(layout=w.Layout(flex="1 1 0%", min_width="320px"))
        self.chart = w.Image(format="png", layout=w.Layout(max_width="480px"))
        grid = {"grid_template_columns": f"repeat({self.columns}, {self.thumb_size + 10}px)",
                "grid_gap": "4px"}
        self.mode_grid = w.GridBox(layout=w.Layout(**grid))
        self.other_grid = w.GridBox(layout=w.Layout(**grid))
        self.mode_grid_title = w.HTML()
        self.other_grid_title = w.HTML()
        self.widget = self._layout()
        self._observe()

    def _layout(self) -> w.VBox:
        row = w.Layout(flex_flow="row wrap")
        box = w.VBox(
            [
                w.HTML(ex.header_html()),
                w.HBox([self.min_size_slider, self.min_drop_slider, self.max_tags_slider,
                        self.filter_toggle, self.max_q_slider], layout=row),
                w.HBox([self.class_picker, self.status]),
                self.mode_picker,
                w.HBox([self.info, self.chart], layout=row),
                w.HBox([self.reseed_button]),
                w.HBox([w.VBox([self.mode_grid_title, self.mode_grid]),
                        w.VBox([self.other_grid_title, self.other_grid])],
                       layout=w.Layout(flex_flow="row wrap", grid_gap="24px")),
            ],
            layout=w.Layout(width="100%"),
        )
        box.add_class("primekit-explorer")
        return box

    def _observe(self) -> None:
        for slider in (self.min_size_slider, self.min_drop_slider, self.max_tags_slider,
                       self.filter_toggle, self.max_q_slider):
            slider.observe(self._on_settings, names="value")
        self.class_picker.observe(self._on_class, names="value")
        self.mode_picker.observe(self._on_mode, names="value")
        self.reseed_button.on_click(self.reseed)

    # -----------------------------------------------------------------------------------------
    # construction from a run folder

    @classmethod
    def from_run(
        cls,
        path: str | os.PathLike | Run,
        *,
        split: str | None = None,
        threshold: float | Mapping[str, float] | None = None,
        **options: Any,
    ) -> FailureModeExplorer:
        """An explorer over a run folder (``primekit demo --out DIR``) or a loaded :class:`Run`.

        The search settings the run recorded in ``summary.json`` (``"search"``: ``min_size``,
        ``min_drop``, ``max_tags``, ``min_tag_count``, ``necessity``; see
        :func:`primekit.run_folder.search_settings`) are the defaults, so the explorer starts on
        the run's own failure modes; ``options`` (any keyword of the constructor) override them.
        ``split`` and ``threshold`` go to :func:`primekit.run_folder.load_run`. The run is kept as
        the attribute ``run``.
        """
        run = path if isinstance(path, Run) else load_run(path, split=split, threshold=threshold)
        for key, value in search_settings(run.summary).items():
            if key in _SEARCH_OPTIONS:
                options.setdefault(key, value)
        # start on the run's own modes: its filter level, or none when it recorded none
        recorded = run.summary.get("search")
        options.setdefault("max_q", recorded.get("max_q") if isinstance(recorded, Mapping) else None)
        explorer = cls(run, images=run.images, predictions=run.predictions, **options)
        explorer.run = run
        return explorer

    # -----------------------------------------------------------------------------------------
    # pure computations

    def search(
        self, *, min_size: int, min_drop: float, max_tags: int, max_q: float | None = None
    ) -> pd.DataFrame:
        """Failure modes at these settings (the explorer's data and other settings)."""
        modes, _ = self._search(min_size=min_size, min_drop=min_drop, max_tags=max_tags, max_q=max_q)
        return modes

    def _search(self, **settings: Any) -> tuple[pd.DataFrame, float]:
        return ex.timed_search(self.split, necessity=self.necessity,
                               min_tag_count=self.min_tag_count, **settings)

    def class_modes(self, cls: Any) -> pd.DataFrame:
        """Rows of ``modes_`` for class ``cls`` (index = row position in ``modes_``)."""
        return self.modes_[self.modes_["class"] == cls]

    def pick_images(self, cls: Any, mode_tags: Sequence[str], *, seed: int) -> tuple[list, list]:
        """A random sample of ``n_images`` ids inside the mode and as many outside it (same class).

        The same seed gives the same images; different seeds give independent samples.
        """
        inside = self.data.members(cls, mode_tags)
        whole = self.data.members(cls)
        return ex.pick_images(inside, whole.difference(inside, sort=False), self.n_images,
                              seed=seed)

    # -----------------------------------------------------------------------------------------
    # callbacks and their effects

    def _on_settings(self, change: Mapping[str, Any] | None = None) -> None:
        self.refresh()

    def refresh(self) -> None:
        """Re-run the search at the sliders' settings and update the pickers and the view."""
        previous = self.mode_
        self.max_q_slider.disabled = not self.filter_toggle.value
        self.modes_, self.search_seconds_ = self._search(
            min_size=int(self.min_size_slider.value),
            min_drop=float(self.min_drop_slider.value),
            max_tags=int(self.max_tags_slider.value),
            max_q=float(self.max_q_slider.value) if self.filter_toggle.value else None,
        )
        self._sync_pickers(previous=previous)

    def _set_quietly(self, picker: w.ValueWidget, options: list, value: Any) -> None:
        """Set a picker's options and value without running its callback."""
        self._syncing = True
        try:
            picker.options = options
            picker.value = value
        finally:
            self._syncing = False

    def _sync_pickers(self, previous: Mapping[str, Any] | None) -> None:
        """Fill both pickers from ``modes_``, keeping the previous class and mode when they exist."""
        current = self.class_picker.value if self.class_picker.options else None
        if previous is not None:
            current = previous["class"]
        current = ex.initial_class(self.classes_, self.modes_, current)
        self._set_quietly(self.class_picker, ex.class_options(self.classes_, self.modes_), current)
        self._fill_modes(keep=previous)
        self.status.value = str(ex.html().status(
            n_modes=len(self.modes_), n_classes=int(self.modes_["class"].nunique()),
            milliseconds=f"{1000 * self.search_seconds_:.0f}",
        ))

    def _fill_modes(self, keep: Mapping[str, Any] | None = None) -> None:
        cls = self.class_picker.value
        value = ex.kept_mode(self.modes_, cls, keep)
        self._set_quietly(self.mode_picker, ex.mode_options(self.modes_, cls), value)
        self.show_mode(value)

    def _on_class(self, change: Mapping[str, Any]) -> None:
        if not self._syncing:
            self._fill_modes()

    def _on_mode(self, change: Mapping[str, Any]) -> None:
        if not self._syncing:
            self.show_mode(change["new"])

    def show_mode(self, row: int | None) -> None:
        """Show mode ``row`` of ``modes_`` (None: the class has no mode at these settings)."""
        self._view = ex.mode_view(self.data, self.modes_, row, self.class_picker.value)
        self.info.value = self._view.info
        self.chart.value = b"" if self.mode_ is None else self._chart_png()
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
            row = ex.strongest_mode(self.modes_)
            if row is None:
                return self
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
        threshold (class accuracy - ``min_drop``). Without a selected mode (the class has none at
        these settings) the axes say so.
        """
        from .plots import plot_subset_accuracies  # matplotlib: only when plotting

        if self.mode_ is None or self.subsets_ is None:
            if ax is None:
                import matplotlib.pyplot as plt

                _, ax = plt.subplots(figsize=(5, 2))
            ax.text(0.5, 0.5, "no failure mode at these settings", ha="center", va="center")
            ax.set_axis_off()
            return ax
        class_accuracy = float(self.mode_["class_accuracy"])
        ax = plot_subset_accuracies(self.subsets_, class_accuracy=class_accuracy,
                                    title=str(self.mode_["description"]), ax=ax)
        # the failure threshold: a mode's accuracy is at most class accuracy - min_drop
        threshold = class_accuracy - float(self.min_drop_slider.value)
        ax.axvline(threshold, color=ex.BAD, linestyle=":", linewidth=1)
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

    def _chart_png(self) -> bytes:
        return ex.chart_png(self.plot_subsets, len(self.subsets_))

    def _thumb(self, sid: Any) -> bytes:
        path = self.images.loc[sid] if self.images is not None else None
        key = path if path is not None else ("missing", sid)
        if key not in self._thumbs:
            self._thumbs[key] = thumbnail_bytes(path, size=self.thumb_size)
        return self._thumbs[key]

    def _cell(self, sid: Any) -> w.VBox:
        ok = bool(self.correct.loc[sid])
        image = w.Image(value=self._thumb(sid), format="png", width=self.thumb_size,
                        height=self.thumb_size,
                        layout=w.Layout(border=f"3px solid {ex.GOOD if ok else ex.BAD}"))
        pred = self.predictions.loc[sid] if self.predictions is not None else None
        caption = w.HTML(str(ex.html().caption(sample_id=sid, ok=ok, pred=pred,
                                               width=self.thumb_size + 6)))
        cell = w.VBox([image, caption], layout=w.Layout(align_items="center"))
        cell.add_class("primekit-thumb")
        return cell

    def _show_images(self) -> None:
        inside = self.mode_ids_ if self.mode_ is not None else None
        self.shown_mode_ids_, self.shown_other_ids_ = ex.pick_images(
            inside, self.other_ids_, self.n_images, seed=self.seed_
        )
        if self.images is None:
            self.mode_grid_title.value = str(ex.html().no_images())
            self.other_grid_title.value = ""
            self.mode_grid.children, self.other_grid.children = (), ()
            return
        for title, heading, shown, ids in (
            (self.mode_grid_title, "In the mode", self.shown_mode_ids_, self.mode_ids_),
            (self.other_grid_title, "Same class, outside the mode", self.shown_other_ids_,
             self.other_ids_),
        ):
            title.value = str(ex.html().grid_title(heading=heading, shown=len(shown),
                                                   total=len(ids),
                                                   accuracy=self.data.accuracy(ids)))
        self.mode_grid.children = tuple(self._cell(s) for s in self.shown_mode_ids_)
        self.other_grid.children = tuple(self._cell(s) for s in self.shown_other_ids_)

    # -----------------------------------------------------------------------------------------
    # display

    def _ipython_display_(self) -> None:
        from IPython.display import display  # IPython is there whenever this is called

        display(self.widget)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return (
            f"FailureModeExplorer({len(self.tags)} samples, {self.tags.shape[1]} tags, "
            f"{len(self.modes_)} modes)"
        )
