"""Attribute tables as tags: boolean and categorical columns become hard tags (score 1.0).

- boolean columns (``True/False``, ``0/1``, CelebA's ``-1/1``): the column name is a tag on the rows
  where it is true;
- categorical columns (strings, categories, or columns you name in ``categorical``): every value
  becomes a tag, ``"{column}={value}"`` by default (``tag_format`` changes it, e.g. ``"{value}"``).

Readers for the attribute files of CelebA (``list_attr_celeba.txt``), CUB-200-2011
(``attributes/image_attribute_labels.txt``) and Waterbirds (``metadata.csv``) return tables ready
for :func:`attributes_to_tags`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..tags import validate_tag_table

__all__ = [
    "attributes_to_tags",
    "read_celeba_attributes",
    "read_cub_attributes",
    "read_waterbirds_metadata",
]

_TRUE = {True, "1", "true", "True", "yes"}
_FALSE = {False, -1, "0", "-1", "false", "False", "no"}


def _is_boolean(col: pd.Series) -> bool:
    values = set(pd.unique(col.dropna()))
    return bool(values) and values <= (_TRUE | _FALSE)


def attributes_to_tags(
    table: pd.DataFrame,
    *,
    id_column: str = "id",
    columns: Sequence[str] | None = None,
    categorical: Sequence[str] = (),
    value_names: Mapping[str, Mapping] | None = None,
    tag_format: str = "{column}={value}",
) -> pd.DataFrame:
    """Turn attribute columns into the long tag table ``id, tag, score`` (score 1.0).

    Parameters
    ----------
    table : DataFrame
        One row per sample, with ``id_column``.
    columns : sequence of str, optional
        Columns to use (default: every column but ``id_column``, ``label``, ``split``, ``path``).
    categorical : sequence of str
        Columns to treat as categorical even if they look boolean (e.g. Waterbirds' 0/1 ``place``).
    value_names : mapping column -> {value: name}, optional
        Readable names for categorical values (``{"place": {0: "land", 1: "water"}}``).
    tag_format : str
        Tag of a categorical value, with fields ``column`` and ``value``.

    Returns
    -------
    DataFrame
        ``id, tag, score`` sorted by id, tag; missing values give no tag.
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table: expected a pandas DataFrame, got {type(table).__name__}")
    if id_column not in table.columns:
        raise ValueError(f"id_column: {id_column!r} is not a column of table")
    if columns is None:
        columns = [c for c in table.columns if c not in (id_column, "label", "split", "path")]
    unknown = [c for c in list(columns) + list(categorical) if c not in table.columns]
    if unknown:
        raise ValueError(f"columns: {unknown} are not columns of table")
    if "{value}" not in tag_format:
        raise ValueError("tag_format: must contain '{value}'")
    value_names = dict(value_names or {})
    ids = table[id_column].astype(str).to_numpy()
    parts = []
    for col in columns:
        series = table[col]
        if (
            col not in categorical
            and col not in value_names
            and (series.dtype == bool or _is_boolean(series))
        ):
            present = series.isin(list(_TRUE)).to_numpy()
            parts.append(pd.DataFrame({"id": ids[present], "tag": str(col)}))
            continue
        if pd.api.types.is_float_dtype(series) and series.dropna().nunique() > 50:
            raise ValueError(f"columns: {col!r} looks continuous; bin it first (e.g. pd.cut)")
        names = value_names.get(col, {})
        keep = series.notna().to_numpy()
        values = series[keep].map(lambda v, n=names: n.get(v, v))
        tags = [tag_format.format(column=col, value=v) for v in values]
        parts.append(pd.DataFrame({"id": ids[keep], "tag": tags}))
    if not parts:
        return validate_tag_table(pd.DataFrame({"id": [], "tag": [], "score": []}))
    out = pd.concat(parts, ignore_index=True)
    out["score"] = 1.0
    out = validate_tag_table(out.drop_duplicates(["id", "tag"]))
    return out.sort_values(["id", "tag"], kind="stable").reset_index(drop=True)


def read_celeba_attributes(path: str | os.PathLike) -> pd.DataFrame:
    """Read CelebA's ``list_attr_celeba.txt`` (count line, 40 names, ``file -1/1 ...`` rows).

    Returns a DataFrame with ``id`` (the image file name) and 40 boolean columns.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path: {str(path)!r} does not exist (CelebA: Anno/list_attr_celeba.txt)")
    with open(path, encoding="utf-8") as f:
        first = f.readline().split()
        header = f.readline().split()
        if len(first) != 1 or not first[0].isdigit() or not header:
            raise ValueError(f"path: {str(path)!r} is not in list_attr_celeba.txt format")
        rows = [line.split() for line in f if line.strip()]
    bad = next((r for r in rows if len(r) != len(header) + 1), None)
    if bad is not None:
        raise ValueError(
            f"path: row {bad[:3]}... has {len(bad) - 1} values, expected {len(header)}"
        )
    values = np.array([r[1:] for r in rows], dtype=np.int8)
    if not np.isin(values, [-1, 1]).all():
        raise ValueError("path: attribute values must be -1 or 1")
    out = pd.DataFrame(values == 1, columns=header)
    out.insert(0, "id", [r[0] for r in rows])
    return out


def read_cub_attributes(root: str | os.PathLike, *, min_certainty: int = 1) -> pd.DataFrame:
    """Read CUB-200-2011's 312 binary attributes into ``id`` (image path as in ``images.txt``)
    plus one boolean column per attribute, named readably (``"bill shape: curved"``).

    ``min_certainty`` (1 not visible ... 4 definitely) drops less certain positive labels.
    """
    root = Path(root)
    need = [root / "images.txt", root / "attributes" / "image_attribute_labels.txt"]
    names_file = (
        root / "attributes.txt"
        if (root / "attributes.txt").is_file()
        else root / "attributes" / "attributes.txt"
    )
    missing = [str(p) for p in need + [names_file] if not p.is_file()]
    if missing:
        raise ValueError(f"root: not a CUB_200_2011 folder, missing {missing}")
    images = pd.read_csv(need[0], sep=" ", header=None, names=["image_id", "path"])
    names = {}
    for line in names_file.read_text().splitlines():
        if line.strip():
            idx, raw = line.split(maxsplit=1)
            group, _, value = raw.partition("::")
            names[int(idx)] = (
                f"{group.removeprefix('has_').replace('_', ' ')}: {value.replace('_', ' ')}"
            )
    rows = []
    with open(need[1]) as f:  # some lines carry an extra field: read the first four only
        for line in f:
            parts = line.split()
            if len(parts) >= 4:
                rows.append((int(parts[0]), int(parts[1]), int(parts[2]), int(parts[3])))
    labels = pd.DataFrame(rows, columns=["image_id", "attribute_id", "present", "certainty"])
    labels["present"] = (labels["present"] == 1) & (labels["certainty"] >= min_certainty)
    wide = labels.pivot_table(
        index="image_id", columns="attribute_id", values="present", aggfunc="max", fill_value=False
    ).astype(bool)
    wide.columns = [names.get(int(c), str(c)) for c in wide.columns]
    wide = wide.reindex(images["image_id"], fill_value=False)
    wide.insert(0, "id", images["path"].to_numpy())
    return wide.reset_index(drop=True)


def read_waterbirds_metadata(path: str | os.PathLike) -> pd.DataFrame:
    """Read Waterbirds' ``metadata.csv`` into ``id, label, split, place`` (place: land/water;
    label: landbird/waterbird; split: train/val/test). Use ``attributes_to_tags(t, columns=["place"])``."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path: {str(path)!r} does not exist (Waterbirds: metadata.csv)")
    df = pd.read_csv(path)
    need = {"img_filename", "y", "split", "place"}
    if not need <= set(df.columns):
        raise ValueError(f"path: metadata lacks columns {sorted(need - set(df.columns))}")
    return pd.DataFrame(
        {
            "id": df["img_filename"].astype(str),
            "label": df["y"].map({0: "landbird", 1: "waterbird"}),
            "split": df["split"].map({0: "train", 1: "val", 2: "test"}),
            "place": df["place"].map({0: "land", 1: "water"}),
        }
    )
