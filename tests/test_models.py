"""Running a classifier into the samples table: TorchScript, pickled modules, specs and errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from _tiny_models import make_images, make_manifest

from primekit.cli import main
from primekit.models import load_classifier, predict

torch.set_num_threads(1)


class _MeanColour(torch.nn.Module):
    """'cat' when the red channel dominates, else 'dog': a fixed, explainable classifier."""

    def forward(self, x):
        m = x.mean(dim=(2, 3))
        return torch.stack([m[:, 0] - m[:, 2], m[:, 2] - m[:, 0]], dim=1) * 10


@pytest.fixture
def images(tmp_path):
    make_images(tmp_path / "imgs", n_per_class=4, corrupt=True)
    return tmp_path / "imgs"


def test_predict_writes_the_samples_table(images, tmp_path):
    path = tmp_path / "model.pt"
    torch.jit.script(_MeanColour()).save(str(path))
    out = tmp_path / "samples.parquet"
    table = predict(
        images, str(path), out=out, cache_dir=tmp_path / "c", batch_size=3, progress=False
    )
    assert list(table.columns) == ["id", "label", "pred", "correct", "confidence", "path"]
    assert len(table) == 8 and set(table["pred"]) <= {"cat", "dog"}  # names: sorted folder labels
    assert (table["correct"] == (table["label"] == table["pred"])).all()
    assert table["confidence"].between(0.5, 1).all()
    # the numbers are the model's own
    from primekit.images import open_image

    clf = load_classifier(f"jit:{path}")
    x = torch.stack([clf.transform(open_image(p)) for p in table["path"]])
    with torch.no_grad():
        p = torch.softmax(clf.model(x), 1).numpy()
    np.testing.assert_allclose(table["confidence"], p.max(1), rtol=1e-5)
    assert "zz_corrupt" in (tmp_path / "samples.errors.csv").read_text()
    pd.testing.assert_frame_equal(pd.read_parquet(out), table, check_dtype=False)


def test_pickled_modules_class_names_and_manifest_splits(images, tmp_path):
    path = tmp_path / "whole.pth"
    torch.save(_MeanColour(), path)
    manifest = make_manifest(images, tmp_path / "m.csv")
    names = tmp_path / "names.txt"
    names.write_text("warm\ncold\n")
    table = predict(
        manifest, f"checkpoint:{path}", class_names=names, cache_dir=tmp_path / "c", progress=False
    )
    assert set(table["pred"]) <= {"warm", "cold"} and not table["correct"].any()
    assert (table["split"] == "val").all()
    with pytest.raises(ValueError, match="class_names: 3 names for a model with 2 outputs"):
        predict(
            manifest,
            f"checkpoint:{path}",
            class_names=["a", "b", "c"],
            cache_dir=tmp_path / "c",
            progress=False,
        )


def test_spec_errors(tmp_path):
    with pytest.raises(ValueError, match="model: unknown classifier spec 'keras:x'"):
        load_classifier("keras:x")
    with pytest.raises(ValueError, match="model: file .* not found"):
        load_classifier(f"jit:{tmp_path / 'none.pt'}")
    torch.save(_MeanColour().state_dict(), tmp_path / "sd.pth")
    with pytest.raises(ValueError, match="holds a state dict, not a model"):
        load_classifier(f"checkpoint:{tmp_path / 'sd.pth'}")
    with pytest.raises(ValueError, match="model: unknown torchvision model"):
        load_classifier("torchvision:resnet9000")


def test_torchvision_models_load_by_name(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no weights here, no internet
    with pytest.raises(ValueError, match="download.pytorch.org"):
        load_classifier("torchvision:resnet18:IMAGENET1K_V1")


def test_cli_predict(images, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PRIMEKIT_CACHE", str(tmp_path / "c"))
    path = tmp_path / "model.pt"
    torch.jit.script(_MeanColour()).save(str(path))
    assert (
        main(
            [
                "predict",
                "--images",
                str(images),
                "--model",
                str(path),
                "--out",
                str(tmp_path / "s.csv"),
                "--no-progress",
            ]
        )
        == 0
    )
    assert len(pd.read_csv(tmp_path / "s.csv")) == 8
