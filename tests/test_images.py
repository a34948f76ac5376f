"""Image sources: folders, manifests, and a Dataset that reports broken files instead of raising."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _tiny_models import make_images, make_manifest

from primekit.images import ImageDataset, collate_images, read_image_source


def test_a_folder_gives_ids_paths_and_labels_from_subfolders(tmp_path):
    make_images(tmp_path / "imgs", n_per_class=2)
    table = read_image_source(tmp_path / "imgs")
    assert list(table.columns) == ["id", "path", "label"]
    assert table["id"].tolist() == ["cat/000.png", "cat/001.png", "dog/000.png", "dog/001.png"]
    assert table["label"].tolist() == ["cat", "cat", "dog", "dog"]


def test_a_flat_folder_has_no_labels(tmp_path):
    from PIL import Image

    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    (tmp_path / "notes.txt").write_text("not an image")
    assert list(read_image_source(tmp_path).columns) == ["id", "path"]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_manifest_resolves_relative_paths_against_its_folder(tmp_path, suffix):
    make_images(tmp_path / "imgs", n_per_class=1)
    csv = make_manifest(tmp_path / "imgs", tmp_path / "manifest.csv")
    path = csv if suffix == ".csv" else tmp_path / "m.parquet"
    if suffix == ".parquet":
        pd.read_csv(csv).to_parquet(path)
    table = read_image_source(path)
    assert list(table.columns) == ["id", "path", "label", "split"]
    assert all(p.startswith(str(tmp_path)) for p in table["path"])


def test_bad_sources_name_the_argument(tmp_path):
    with pytest.raises(ValueError, match="images: .* does not exist"):
        read_image_source(tmp_path / "nope")
    with pytest.raises(ValueError, match="images: folder .* holds no images"):
        read_image_source(tmp_path)
    pd.DataFrame({"id": ["a", "a"], "path": ["x", "y"]}).to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(ValueError, match="images: id 'a' occurs more than once"):
        read_image_source(tmp_path / "m.csv")
    pd.DataFrame({"file": ["a"]}).to_csv(tmp_path / "m2.csv", index=False)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['id', 'path'\]"):
        read_image_source(tmp_path / "m2.csv")
    with pytest.raises(TypeError, match="images:"):
        read_image_source(3)


def test_the_dataset_returns_reasons_for_broken_files_and_collate_drops_them(tmp_path):
    import torch

    make_images(tmp_path / "imgs", n_per_class=1, corrupt=True)
    paths = sorted(str(p) for p in (tmp_path / "imgs").rglob("*.png")) + [
        str(tmp_path / "ghost.png")
    ]
    ds = ImageDataset(paths, lambda im: torch.from_numpy(np.asarray(im, dtype=np.float32)))
    idx, batch, errors = collate_images([ds[i] for i in range(len(ds))])
    assert idx.tolist() == [0, 2] and batch.shape == (2, 24, 24, 3)
    assert errors[0][0] == 1 and errors[0][1].startswith("cannot decode image")
    assert errors[1] == (3, "missing file")
    bad_transform = ImageDataset(paths[:1], lambda im: 1 / 0)
    assert bad_transform[0][2].startswith("transform failed: ZeroDivisionError")
