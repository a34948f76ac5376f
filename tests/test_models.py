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
    with pytest.raises(ValueError, match=r"not a weights-only file.*trust_pickle=True.*--trust-checkpoint"):
        load_classifier(f"checkpoint:{path}")
    with pytest.raises(ValueError, match="trust_pickle=True"):  # a bare .pth path: the same rule
        load_classifier(str(path))
    trusted = load_classifier(f"checkpoint:{path}", trust_pickle=True)
    table = predict(manifest, trusted, class_names=names, cache_dir=tmp_path / "c", progress=False)
    assert set(table["pred"]) <= {"warm", "cold"} and not table["correct"].any()
    assert (table["split"] == "val").all()
    with pytest.raises(ValueError, match="class_names: 3 names for a model with 2 outputs"):
        predict(
            manifest,
            trusted,
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
    with pytest.raises(ValueError, match=r"holds a \w*Dict \(a state dict\?\), not a model"):
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


class _GreyThreshold(torch.nn.Module):
    """A 'grey digit' model: one input channel of side 12, trained on pixels in [0, 1] scaled by
    (x - 0.5) / 0.25: 'ink' when the centre is dark, else 'paper'."""

    def forward(self, x):
        assert x.shape[1:] == (1, 12, 12)
        centre = x[:, 0, 4:8, 4:8].mean(dim=(1, 2))
        return torch.stack([-centre, centre], dim=1) * 5


def _grey_folder(root, n=6):
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, level in (("ink", 30), ("paper", 220)):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            arr = np.full((12, 12), 255 - level, np.uint8)
            arr[4:8, 4:8] = level + rng.integers(-20, 20)
            Image.fromarray(arr).convert("RGB").save(root / label / f"{i}.png")
    return root


def test_preprocessing_is_the_users_and_is_recorded(tmp_path, caplog):
    folder = _grey_folder(tmp_path / "grey")
    path = tmp_path / "grey.pt"
    torch.jit.script(_GreyThreshold()).save(str(path))
    clf = load_classifier(f"jit:{path}", image_size=12, resize=12, normalize="0.5,0.25", grayscale=True)
    assert clf.preprocessing["source"] == "user" and clf.preprocessing["grayscale"]
    table = predict(folder, clf, cache_dir=tmp_path / "c", progress=False, expect_accuracy=1.0)
    assert table["correct"].all()
    meta = table.attrs["metadata"]
    assert meta["preprocessing"]["normalize"] == {"mean": [0.5], "std": [0.25]}
    assert meta["accuracy"] == 1.0 and meta["warnings"] == []
    # the numbers are the model's on the tensor the user described
    from PIL import Image

    im = np.asarray(Image.open(folder / "ink" / "0.png").convert("L"), dtype=np.float32) / 255
    x = torch.from_numpy((im - 0.5) / 0.25)[None, None]
    p = torch.softmax(clf.model(x), 1)[0].max().item()
    assert table.loc[table["id"] == "ink/0.png", "confidence"].item() == pytest.approx(p, rel=1e-5)
    # without options a TorchScript model gets the ImageNet default, and is told so
    with caplog.at_level("WARNING", logger="primekit.models"):
        default = load_classifier(f"jit:{path}")
    assert default.preprocessing["source"] == "imagenet default"
    assert "carries no preprocessing: applying the ImageNet default" in caplog.text
    # ... which this grey 12 px model cannot take: the error says why, not a traceback
    with pytest.raises(ValueError, match=r"model: fails on the preprocessed images \(batch of shape \(\d+, 3, 224, 224\); preprocessing imagenet default"):
        predict(folder, default, cache_dir=tmp_path / "c", progress=False)


def test_accuracy_near_chance_or_far_below_expectation_warns_with_the_cause(images, tmp_path, caplog):
    from primekit.models import accuracy_warning

    samples = pd.DataFrame({"label": ["a", "b"] * 50, "correct": [True, False] * 25 + [False, True] * 25})
    default = {"source": "imagenet default", "steps": ["resize shorter side to 256"]}
    text = accuracy_warning(samples, preprocessing=default)
    assert "near chance (0.50" in text and "only a default" in text and "--normalize" in text
    assert "--class-names" in text
    good = samples.assign(correct=[True] * 90 + [False] * 10)
    assert accuracy_warning(good, preprocessing=default) is None
    text = accuracy_warning(good, preprocessing={"source": "user", "steps": []}, expect_accuracy=0.99)
    assert text is None
    text = accuracy_warning(samples.assign(correct=[True] * 70 + [False] * 30),
                            preprocessing={"source": "user", "steps": []}, expect_accuracy=0.92)
    assert text.startswith("accuracy 0.700 on 100 labelled images is far below the expected 0.92")
    # predict logs it and keeps it in the metadata
    path = tmp_path / "model.pt"
    torch.jit.script(_MeanColour()).save(str(path))
    with caplog.at_level("WARNING", logger="primekit.models"):
        table = predict(images, str(path), cache_dir=tmp_path / "c", progress=False, expect_accuracy=1.0)
    assert table.attrs["metadata"]["warnings"] and "far below the expected 1.00" in caplog.text


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("normalize", "0.5", "normalize: expected 'imagenet', 'none', 'MEAN,STD'"),
        ("normalize", "0.5,0", "normalize: standard deviations must be > 0"),
        ("image_size", 0, "image_size: expected a positive integer"),
        ("resize", 2.5, "resize: expected a positive integer"),
        ("grayscale", "yes", "grayscale: expected True or False"),
    ],
)
def test_bad_preprocessing_is_refused_before_loading(option, value, message, tmp_path):
    with pytest.raises((ValueError, TypeError), match=message):
        load_classifier(f"jit:{tmp_path / 'never-read.pt'}", **{option: value})


def test_cli_predict_prints_the_preprocessing_and_trusts_only_on_request(images, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PRIMEKIT_CACHE", str(tmp_path / "c"))
    path = tmp_path / "whole.pth"
    torch.save(_MeanColour(), path)
    args = ["predict", "--images", str(images), "--model", f"checkpoint:{path}", "--out",
            str(tmp_path / "s.csv"), "--no-progress"]
    assert main(args) == 2
    assert "--trust-checkpoint" in capsys.readouterr().err
    assert main(args + ["--trust-checkpoint", "--image-size", "16", "--normalize", "none"]) == 0
    err = capsys.readouterr().err
    assert err.count("preprocessing (user: resize shorter side to 18 -> centre crop 16x16 -> pixels to [0, 1])") == 1
    assert main(args + ["--normalize", "0.5"]) == 2
    assert "--normalize: expected" in capsys.readouterr().err


class _TrainingConfig:
    """An object a training script pickles beside the weights (unpickling it runs code)."""


def test_timm_weights_files_load_weights_only(tmp_path):
    import timm

    torch.manual_seed(0)
    net = timm.create_model("test_resnet", pretrained=False)
    path = tmp_path / "w.pth"
    torch.save({"state_dict": net.state_dict()}, path)
    clf = load_classifier(f"timm:test_resnet:{path}")
    assert clf.preprocessing["source"] == "model"
    torch.testing.assert_close(clf.model.state_dict(), net.state_dict())
    torch.save({"state_dict": net.state_dict(), "config": _TrainingConfig()}, path)
    with pytest.raises(ValueError, match="not a weights-only file.*--trust-checkpoint"):
        load_classifier(f"timm:test_resnet:{path}")
    assert load_classifier(f"timm:test_resnet:{path}", trust_pickle=True).model is not None
