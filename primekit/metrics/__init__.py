"""The paper's evaluation of failure modes (PRIME, ICLR 2024, sections 4-5), one module a section.

- Description quality (4.3, Fig. 5), :mod:`.description`: :func:`mode_similarity_stats`,
  :func:`description_quality`, :func:`summarize_description_quality`, :func:`mode_members`. One
  function serves PRIME's modes and the baselines' slices alike: a *slice* is a row with
  ``class``, ``description`` and either ``members`` (sample ids) or ``tags`` (members recovered
  from a tag matrix).
- Generalization to unseen data (4.1, Fig. 9/10, Table 4), :mod:`.generalization`:
  :func:`recover_groups`, :func:`generalization_summary`, :func:`generalization_sweep`.
- Tag combinations (5.1, Tables 1/2), :mod:`.combinations`: :func:`tag_combination_accuracies`,
  :func:`tag_combination_summary`.
- Latent vs semantic space (5.2, Tables 3/6), :mod:`.latent`: :func:`distance_by_shared_tags`,
  :func:`neighbour_shared_tags`.
- Generated images (4.2, Fig. 4, A.10), :mod:`.generated`: :func:`success_modes`,
  :func:`select_generation_modes`, :func:`generated_validation`, :func:`generation_gap`.

Embeddings are plain arrays of shape (n, d) whose rows are aligned with a sequence of sample ids;
tag matrices, labels and correctness follow the contract of :func:`primekit.find_failure_modes`.
A new metric goes into the module of its paper section (or a new module for a new section) and
is re-exported here.
"""

from .combinations import tag_combination_accuracies, tag_combination_summary
from .description import (
    QUALITY_COLUMNS,
    description_quality,
    mode_members,
    mode_similarity_stats,
    summarize_description_quality,
)
from .generalization import (
    RECOVERED_COLUMNS,
    generalization_summary,
    generalization_sweep,
    recover_groups,
)
from .generated import (
    generated_validation,
    generation_gap,
    select_generation_modes,
    success_modes,
)
from .latent import distance_by_shared_tags, neighbour_shared_tags

__all__ = [
    "mode_similarity_stats",
    "mode_members",
    "description_quality",
    "summarize_description_quality",
    "recover_groups",
    "generalization_summary",
    "generalization_sweep",
    "tag_combination_accuracies",
    "tag_combination_summary",
    "distance_by_shared_tags",
    "neighbour_shared_tags",
    "success_modes",
    "select_generation_modes",
    "generated_validation",
    "generation_gap",
    "QUALITY_COLUMNS",
    "RECOVERED_COLUMNS",
]
