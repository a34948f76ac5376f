"""The run folder: its file names, reading it back, writing its summary.

A **run folder** (written by ``primekit demo --out DIR``, read by the report and the explorer) holds

- ``samples.parquet``: the samples table (``id, label, pred, correct, confidence, split, path``;
  ``path`` is an image file, absolute or relative to the run folder);
- ``tags.parquet``: the long tag table ``id, tag, score``;
- ``failure_modes.csv``: the failure-mode table (``tags`` joined by ``" + "``);
- ``filtered_out.csv`` (optional): the paper's modes the q-value filter left out (``max_q``);
- ``summary.json``: headline numbers (classifier accuracy, number of modes, precision, ...) and,
  under ``"search"``, the settings the modes were found with;
- ``figures/*.png``; and, from the demo, the oracle check tables and ``report.html``.

This module is the one place that spells these names (:data:`RUN_FILES`). :func:`load_run` reads a
folder into a :class:`Run`; :func:`write_summary` writes ``summary.json`` atomically (the tables
are written with :func:`primekit.io.write_table`, atomic too).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from .io import atomic_path
from .mode_table import read_modes
from .samples import read_samples, search_inputs
from .split import TaggedSplit
from .tags import read_tags

__all__ = [
    "RUN_FILES",
    "FIGURES_DIR",
    "Run",
    "load_run",
    "is_run",
    "is_smoke_run",
    "read_summary",
    "write_summary",
    "search_settings",
]

#: File of each part of a run folder, by key.
RUN_FILES: Mapping[str, str] = MappingProxyType(
    {
        "samples": "samples.parquet",
        "tags": "tags.parquet",
        "modes": "failure_modes.csv",
        "filtered_out": "filtered_out.csv",
        "summary": "summary.json",
        "report": "report.html",
        "oracle_check": "oracle_check.csv",
        "oracle_missed": "oracle_missed.csv",
        "tagger_quality": "tagger_quality.csv",
        "clip_auroc": "clip_auroc.csv",
    }
)
#: Folder of a run's figures (``*.png``).
FIGURES_DIR = "figures"
#: The parts without which a folder is not a run.
REQUIRED = ("samples", "tags", "modes")
_SETTING_KEYS = ("min_size", "min_drop", "max_tags", "min_tag_count", "threshold", "split")


@dataclass(eq=False)
class Run(TaggedSplit):
    """The contents of a run folder, aligned on sample id.

    A :class:`~primekit.split.TaggedSplit` (``tags``, ``labels``, ``correct``, ``ids``), so the
    search takes it whole (``find_failure_modes(run)``), with the rest of the folder beside it.

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
    filtered_out : DataFrame or None
        The paper's modes whose q-value is above the run's ``max_q`` (``filtered_out.csv``), or
        None when the run did not filter.
    path : Path or None
        The run folder.
    figures : list of Path
        ``figures/*.png``, sorted by name.
    labels, correct : Series
        Class of each sample and whether the classifier is right (bool), index = sample id.
    """

    samples: pd.DataFrame
    tags: pd.DataFrame
    modes: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    figures: list[Path] = field(default_factory=list)
    filtered_out: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        TaggedSplit.__init__(self, self.tags, self.samples["label"], self.samples["correct"])

    @property
    def images(self) -> pd.Series | None:
        """Image path of each sample, or None when the samples table has no ``path`` column."""
        return self.samples["path"] if "path" in self.samples.columns else None

    @property
    def predictions(self) -> pd.Series | None:
        """Predicted class of each sample, or None when the samples table has no ``pred``."""
        return self.samples["pred"] if "pred" in self.samples.columns else None


def is_run(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder holding every required part of a run."""
    root = Path(path)
    return all((root / RUN_FILES[key]).is_file() for key in REQUIRED)


def is_smoke_run(summary: Mapping[str, Any]) -> bool:
    """Whether a summary records a smoke run (``"smoke": true`` or ``"world": {"smoke": true}``)."""
    world = summary.get("world")
    return bool(summary.get("smoke") or (isinstance(world, Mapping) and world.get("smoke")))


def read_summary(run_dir: str | os.PathLike) -> dict[str, Any]:
    """``summary.json`` of a run folder as a dict ({} when the file is absent).

    Raises
    ------
    ValueError
        Naming ``path`` when the file is not JSON or does not hold an object.
    """
    path = Path(run_dir) / RUN_FILES["summary"]
    if not path.is_file():
        return {}
    try:
        summary = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"path: cannot read {str(path)!r}: {exc}") from exc
    if not isinstance(summary, dict):
        raise ValueError(f"path: {str(path)!r} does not hold a JSON object")
    return summary


def write_summary(run_dir: str | os.PathLike, summary: Mapping[str, Any]) -> dict[str, Any]:
    """Write ``summary.json`` into a run folder, atomically; returns what was written.

    Values are made JSON-safe first: NumPy scalars become Python numbers, tuples lists, keys
    strings, floats are rounded to 6 decimals (NaN/inf become ``null``: JSON has no NaN) and
    other objects their ``str``.
    """
    if not isinstance(summary, Mapping):
        raise TypeError(f"summary: expected a mapping, got {type(summary).__name__}")
    clean = _jsonable(dict(summary))
    with atomic_path(Path(run_dir) / RUN_FILES["summary"]) as tmp:
        # anything else JSON cannot hold (a path, a date) is written as its text
        tmp.write_text(json.dumps(clean, indent=1, default=str))
    return clean


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return round(float(value), 6) if math.isfinite(value) else None
    return value


def search_settings(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The search settings a run recorded in ``summary.json`` (under ``"search"``), cleaned.

    Recognised keys: ``min_size``, ``min_drop``, ``max_tags``, ``min_tag_count``, ``necessity``
    (``{"2": 0.1, ...}``; JSON keys become ints), ``threshold``, ``split``. Others are dropped.
    """
    raw = summary.get("search") if isinstance(summary, Mapping) else None
    if not isinstance(raw, Mapping):
        return {}
    out = {k: raw[k] for k in _SETTING_KEYS if raw.get(k) is not None}
    necessity = raw.get("necessity")
    if isinstance(necessity, Mapping):
        out["necessity"] = {int(k): float(v) for k, v in necessity.items()}
    elif isinstance(necessity, (list, tuple)):
        out["necessity"] = tuple(float(v) for v in necessity)
    return out


def load_run(
    path: str | os.PathLike,
    *,
    threshold: float | Mapping[str, float] | None = None,
    split: str | None = None,
) -> Run:
    """Read a run folder (see the module docstring) into a :class:`Run`.

    Parameters
    ----------
    path : path-like
        The run folder.
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
        Naming ``path`` when the folder or one of its required files is missing, and
        ``split`` when no sample belongs to the requested split.
    """
    root = _run_root(path)
    summary = read_summary(root)
    recorded = search_settings(summary)
    if threshold is None:
        threshold = recorded.get("threshold", 0.5)
    samples = read_samples(root / RUN_FILES["samples"], argument="samples")
    long = read_tags(root / RUN_FILES["tags"], argument="tags")
    samples = _keep_split(samples, long, split=split or recorded.get("split"), root=root)
    long = long[long["id"].isin(samples["id"])]
    matrix, _, _ = search_inputs(samples, long, threshold=threshold)
    samples = samples.set_index("id", drop=True)
    samples.index.name = "id"
    if "path" in samples.columns:
        samples["path"] = [
            _resolve(root, p) if isinstance(p, str) and p else None for p in samples["path"]
        ]
    modes = _align_classes(read_modes(root / RUN_FILES["modes"]), samples["label"])
    filtered_path = root / RUN_FILES["filtered_out"]
    filtered = _align_classes(read_modes(filtered_path), samples["label"]) if filtered_path.is_file() else None
    figures_dir = root / FIGURES_DIR
    figures = sorted(figures_dir.glob("*.png")) if figures_dir.is_dir() else []
    return Run(
        samples=samples, tags=matrix, modes=modes, summary=summary, path=root, figures=figures,
        filtered_out=filtered,
    )


def _run_root(path: Any) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a run directory path, got {type(path).__name__}")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise ValueError(f"path: run directory {str(root)!r} does not exist")
    for key in REQUIRED:
        if not (root / RUN_FILES[key]).is_file():
            raise ValueError(
                f"path: {str(root)!r} is not a run directory: {RUN_FILES[key]} is missing"
            )
    return root


def _keep_split(
    samples: pd.DataFrame, long: pd.DataFrame, *, split: str | None, root: Path
) -> pd.DataFrame:
    """The samples of ``split``; without one, those of the splits that carry tags."""
    if split is None:
        if "split" in samples.columns:
            # splits none of whose samples carry a tag were never tagged (e.g. a held-out test
            # split kept for its predictions): the failure modes cannot have been found on them
            tagged = samples["split"][samples["id"].isin(long["id"])].astype(str).unique()
            if 0 < len(tagged) < samples["split"].astype(str).nunique():
                keep = samples["split"].astype(str).isin(tagged)
                return samples[keep].reset_index(drop=True)
        return samples
    if "split" not in samples.columns:
        raise ValueError(f"split: the samples of {str(root)!r} have no 'split' column")
    keep = samples["split"].astype(str) == str(split)
    if not keep.any():
        found = sorted(samples["split"].astype(str).unique())
        raise ValueError(f"split: no sample has split {split!r}; found {found}")
    return samples[keep].reset_index(drop=True)


def _resolve(root: Path, path: str) -> str:
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else (root / p).resolve())


def _align_classes(modes: pd.DataFrame, labels: pd.Series) -> pd.DataFrame:
    """Give the CSV's ``class`` column the labels' own values (CSV turns ``3`` and ``"3"`` alike)."""
    by_text = {str(v): v for v in pd.unique(labels)}
    modes = modes.copy()
    modes["class"] = [by_text.get(str(c), c) for c in modes["class"]]
    return modes
