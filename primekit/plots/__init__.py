"""Plots of PRIME's results, one place for all of them.

Every function draws into the ``ax=`` (or ``fig=``/``axes=``) it is given, or a new one, and
returns it; none shows or saves (the caller, usually a notebook, saves under its own file name).

- failure modes (paper Fig. 1/3): :func:`plot_image_grid`, :func:`plot_mode_grid`,
  :func:`plot_subset_accuracies`, :func:`plot_mode_accuracy`, :func:`plot_mode_subsets`,
  :func:`plot_lattice`;
- tags (notebook 01): :func:`plot_tag_count_distribution`, :func:`plot_tag_heatmap`,
  :func:`plot_threshold_sweep`, :func:`plot_tag_quality`;
- the paper's evaluation (Fig. 4, 5, 9/10, Tables 1/2): :func:`plot_description_quality`,
  :func:`plot_generalization`, :func:`plot_tag_combinations`,
  :func:`plot_combination_accuracies`, :func:`plot_generated_accuracy`;
- hyperparameter sweeps (appendix A.5/A.6, Fig. 10): :func:`plot_sweep_heatmap`,
  :func:`plot_generalization_panels`, :func:`plot_search_comparison`.
"""

from .evaluation import (
    plot_combination_accuracies,
    plot_description_quality,
    plot_generalization,
    plot_generated_accuracy,
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
    "plot_generalization",
    "plot_tag_combinations",
    "plot_combination_accuracies",
    "plot_generated_accuracy",
    "plot_sweep_heatmap",
    "plot_generalization_panels",
    "plot_search_comparison",
]
