"""Plots of PRIME's results, one place for all of them.

The convention (every function here follows it):

- A plot is a plain function ``plot_x(data, *, options..., ax=None)``. It draws into ``ax`` and
  returns the Axes it drew on; it never shows or saves, and computes nothing a metric should
  (it takes the table a :mod:`primekit.metrics`/:mod:`primekit.search` function returns).
- ``ax=None`` makes a new figure of a size that suits the data.
- A plot of several panels (image grids, one panel per mode or per (s, a)) returns the array of
  its panel Axes. Its ``ax`` may be one Axes, whose place in the figure is divided into the
  panels, or as many Axes as panels; with ``ax=None`` it also lays out the figure it made.
- Statistical figures use seaborn where it does the statistics or the layout: the annotated
  heat maps (:func:`plot_tag_heatmap`, :func:`plot_sweep_heatmap`), the grouped bars of
  :func:`plot_tag_count_distribution` and the least-squares trend of Fig. 9/10
  (:func:`plot_generalization`). Colours are matplotlib's
  default cycle and colour maps; no function sets a global seaborn theme.
- :func:`save_figure` saves what a plot returned (a Figure, an Axes, an array of Axes, or a
  scikit-learn style Display) as ``{fig_dir}/{name}.png``; notebooks name figures after their
  own number (``save_figure(ax, "02_lattice", fig_dir)``).

The plots:

- failure modes (paper Fig. 1/3): :func:`plot_image_grid`, :func:`plot_mode_grid`,
  :func:`plot_subset_accuracies`, :func:`plot_mode_accuracy`, :func:`plot_mode_subsets`,
  :func:`plot_lattice`;
- tags (notebook 01): :func:`plot_tag_count_distribution`, :func:`plot_tag_heatmap`,
  :func:`plot_threshold_sweep`, :func:`plot_tag_quality`;
- the paper's evaluation (Fig. 4, 5, 9/10, Tables 1/2): :func:`plot_description_quality`,
  :func:`plot_quality_distribution`, :func:`plot_generalization`, :func:`plot_tag_combinations`,
  :func:`plot_combination_accuracies`, :func:`plot_generated_accuracy`;
- hyperparameter sweeps (appendix A.5/A.6, Fig. 10): :func:`plot_sweep_heatmap`,
  :func:`plot_generalization_panels`, :func:`plot_search_comparison`.
"""

from ._base import save_figure
from .evaluation import (
    plot_combination_accuracies,
    plot_description_quality,
    plot_generalization,
    plot_generated_accuracy,
    plot_quality_distribution,
    plot_tag_combinations,
)
from .modes import (
    plot_image_grid,
    plot_lattice,
    plot_mode_accuracy,
    plot_mode_grid,
    plot_mode_subsets,
    plot_subset_accuracies,
)
from .sweeps import plot_generalization_panels, plot_search_comparison, plot_sweep_heatmap
from .tags import (
    plot_tag_count_distribution,
    plot_tag_heatmap,
    plot_tag_quality,
    plot_threshold_sweep,
)

__all__ = [
    "plot_image_grid",
    "plot_mode_grid",
    "plot_subset_accuracies",
    "plot_mode_accuracy",
    "plot_mode_subsets",
    "plot_lattice",
    "plot_tag_count_distribution",
    "plot_tag_heatmap",
    "plot_threshold_sweep",
    "plot_tag_quality",
    "plot_description_quality",
    "plot_quality_distribution",
    "plot_generalization",
    "plot_tag_combinations",
    "plot_combination_accuracies",
    "plot_generated_accuracy",
    "plot_sweep_heatmap",
    "plot_generalization_panels",
    "plot_search_comparison",
    "save_figure",
]
