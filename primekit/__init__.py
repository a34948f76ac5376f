"""primekit: PRIME (ICLR 2024), failure modes of image classifiers in human-readable tags."""

from __future__ import annotations

from .io import read_table, write_table
from .search import find_failure_modes, subset_accuracies, tag_lattice
from .tags import matrix_to_tags, read_tags, tag_frequencies, tags_to_matrix, write_tags

__version__ = "0.1.0"

__all__ = [
    "find_failure_modes",
    "tag_lattice",
    "subset_accuracies",
    "read_table",
    "write_table",
    "read_tags",
    "write_tags",
    "tags_to_matrix",
    "matrix_to_tags",
    "tag_frequencies",
]
