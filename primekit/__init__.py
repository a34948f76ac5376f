"""primekit: PRIME (ICLR 2024), failure modes of image classifiers in human-readable tags.

The flat public API. Modules that pull in heavy dependencies (torch, open_clip, scikit-learn,
ipywidgets) are imported on first use of one of their names, so ``import primekit`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from .io import read_table, write_table
from .samples import read_samples, search_inputs, validate_samples
from .search import (
    find_failure_modes,
    mode_subsets,
    modes_by_class,
    paper_search,
    read_modes,
    search_defaults,
    subset_accuracies,
    tag_lattice,
    write_modes,
)
from .split import TaggedSplit
from .tags import matrix_to_tags, read_tags, tag_frequencies, tags_to_matrix, write_tags

__version__ = "0.1.0"

# name -> module that defines it (imported lazily)
_LAZY: dict[str, str] = {
    # tagging and embedding
    "tag_images": "primekit.tagging",
    "load_tagger": "primekit.tagging",
    "Tagger": "primekit.tagging",
    "ClipTagger": "primekit.tagging",
    "RamTagger": "primekit.tagging",
    "builtin_vocabulary": "primekit.tagging",
    "attributes_to_tags": "primekit.tagging",
    "read_celeba_attributes": "primekit.tagging",
    "read_cub_attributes": "primekit.tagging",
    "read_waterbirds_metadata": "primekit.tagging",
    "tag_images_ray": "primekit.tagging.ray",
    "find_failure_modes_ray": "primekit.search_ray",
    "load_clip": "primekit.clip",
    "embed_images": "primekit.clip",
    "embed_texts": "primekit.clip",
    "read_embeddings": "primekit.clip",
    "load_classifier": "primekit.models",
    "predict": "primekit.models",
    "read_image_source": "primekit.images",
    # experiments
    "load_study": "primekit.study",
    "run_demo": "primekit.demo",
    # metrics and baselines
    "mode_similarity_stats": "primekit.metrics",
    "description_quality": "primekit.metrics",
    "summarize_description_quality": "primekit.metrics",
    "recover_groups": "primekit.metrics",
    "generalization_summary": "primekit.metrics",
    "generalization_sweep": "primekit.metrics",
    "tag_combination_accuracies": "primekit.metrics",
    "tag_combination_summary": "primekit.metrics",
    "distance_by_shared_tags": "primekit.metrics",
    "neighbour_shared_tags": "primekit.metrics",
    "success_modes": "primekit.metrics",
    "generated_validation": "primekit.metrics",
    "generation_gap": "primekit.metrics",
    "DominoSlicer": "primekit.baselines",
    "FailureDirections": "primekit.baselines",
    "domino_slices": "primekit.baselines",
    "failure_direction_slices": "primekit.baselines",
    # looking at the results
    "FailureModeExplorer": "primekit.explore",
    "ensure_run": "primekit.demo",
    "load_run": "primekit.run_folder",
    "write_report": "primekit.report",
}

__all__ = [
    "find_failure_modes",
    "TaggedSplit",
    "search_defaults",
    "paper_search",
    "tag_lattice",
    "subset_accuracies",
    "mode_subsets",
    "modes_by_class",
    "read_modes",
    "write_modes",
    "read_table",
    "write_table",
    "read_samples",
    "validate_samples",
    "search_inputs",
    "read_tags",
    "write_tags",
    "tags_to_matrix",
    "matrix_to_tags",
    "tag_frequencies",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'primekit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
