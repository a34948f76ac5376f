"""Real data nobody here made: scikit-learn's 8x8 handwritten digits as a user's image folder.

What a user brings to ``primekit study``, built from an image set that ships with scikit-learn
(no download), for notebook ``10_your_data`` and the end-to-end tests:

- :func:`digits_example`: all of the below in one folder, returning the study's inputs;
- :func:`write_digit_folders`: the digits upscaled to 32 x 32 grey PNG files in class folders;
- :func:`fit_digit_classifier`: a tiny classifier (logistic regression on the 8 x 8 grey input,
  as the study's preprocessing gives it) fit on a disjoint part, saved as TorchScript;
- :func:`digit_attributes`: honest per-image attribute tags measured on the PNG pixels (ink area,
  stroke width, slant, centroid, aspect), each the lower or upper third within its class.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "digits_example",
    "study_inputs",
    "write_digit_folders",
    "split_indices",
    "fit_digit_classifier",
    "api_accuracy",
    "digit_attributes",
    "PREPROCESSING",
    "CLI_PREPROCESSING",
]

# classifier input: what `primekit study --image-size 8 --resize 8 --normalize none --grayscale` feeds
PREPROCESSING = {"image_size": 8, "resize": 8, "normalize": "none", "grayscale": True}
CLI_PREPROCESSING = ["--image-size", "8", "--resize", "8", "--normalize", "none", "--grayscale"]
# (measure, tag of the lower third, tag of the upper third)
MEASURES = (
    ("ink", "little ink", "much ink"),
    ("stroke", "thin strokes", "thick strokes"),
    ("slant", "slanted left", "slanted right"),
    ("x", "left of centre", "right of centre"),
    ("y", "high", "low"),
    ("aspect", "narrow", "wide"),
)


def write_digit_folders(root: Path, indices: np.ndarray, *, size: int = 32) -> Path:
    """Write the digits ``indices`` of ``load_digits()`` as ``root/<digit>/<index>.png``."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for i in indices:
        folder = root / str(digits.target[i])
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (digits.images[i] / 16 * 255).astype(np.uint8)
        Image.fromarray(pixels).resize((size, size), Image.BILINEAR).save(folder / f"{i:04d}.png")
    return root


def split_indices(n_train: int = 500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint (classifier training, study) indices of the 1,797 digits."""
    from sklearn.datasets import load_digits

    order = np.random.default_rng(seed).permutation(len(load_digits().target))
    return np.sort(order[:n_train]), np.sort(order[n_train:])


def _inputs(folder: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(features (n, 64), labels, ids) of a class-folder tree through the study's preprocessing."""
    from primekit.images import open_image, read_image_source
    from primekit.models import build_transform

    transform, _ = build_transform(**PREPROCESSING)
    table = read_image_source(folder)
    x = np.stack([transform(open_image(p)).numpy().ravel() for p in table["path"]])
    return x, table["label"].to_numpy(), table["id"].tolist()


def fit_digit_classifier(train_folder: Path, out: Path) -> Path:
    """Fit logistic regression on ``train_folder``; save it as a TorchScript module at ``out``.

    Outputs are in the order of the sorted class names (the ImageFolder convention).
    """
    import torch
    from sklearn.linear_model import LogisticRegression

    x, y, _ = _inputs(train_folder)
    fit = LogisticRegression(C=0.1, max_iter=2000).fit(x, y)
    assert list(fit.classes_) == sorted(fit.classes_)
    linear = torch.nn.Linear(x.shape[1], len(fit.classes_))
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(fit.coef_).float())
        linear.bias.copy_(torch.from_numpy(fit.intercept_).float())
    model = torch.nn.Sequential(torch.nn.Flatten(), linear).eval()
    torch.jit.script(model).save(str(out))
    return out


def api_accuracy(model_path: Path, folder: Path) -> tuple[float, pd.Series]:
    """Accuracy of the TorchScript model on ``folder`` through the Python API (no primekit.predict):
    the preprocessing the model was fit with, applied by hand; also ``correct`` by id."""
    import torch

    x, y, ids = _inputs(folder)
    model = torch.jit.load(str(model_path))
    with torch.no_grad():
        pred = model(torch.from_numpy(x).reshape(-1, 1, 8, 8)).argmax(1).numpy()
    names = np.array(sorted(set(y)))
    correct = pd.Series(names[pred] == y, index=ids)
    return float(correct.mean()), correct


def _measures(pixels: np.ndarray) -> dict[str, float]:
    ink = pixels > 0.5
    padded = np.pad(ink, 1)
    inside = (padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1]
              & padded[1:-1, :-2] & padded[1:-1, 2:])
    boundary = int((ink & ~inside).sum())
    rows, cols = np.nonzero(ink)
    dy, dx = rows - rows.mean(), cols - cols.mean()
    side = pixels.shape[0] - 1
    return {
        "ink": float(ink.mean()),
        "stroke": 2.0 * ink.sum() / max(boundary, 1),  # area / half the outline: the mean width
        "slant": float(-(dx * dy).mean() / max((dy * dy).mean(), 1e-9)),  # x moves right going up
        "x": float(cols.mean() / side),
        "y": float(rows.mean() / side),
        "aspect": float((np.ptp(cols) + 1) / (np.ptp(rows) + 1)),
    }


def digit_attributes(folder: Path) -> pd.DataFrame:
    """``id`` + one boolean column per tag of ``MEASURES``, measured on every PNG of ``folder``;
    a tag marks the lower (upper) third of its measure within the image's class."""
    from PIL import Image

    from primekit.images import read_image_source

    table = read_image_source(folder)
    values = pd.DataFrame(
        [_measures(np.asarray(Image.open(p).convert("L"), np.float32) / 255) for p in table["path"]]
    )
    out = pd.DataFrame({"id": table["id"]})
    for measure, low, high in MEASURES:
        rank = values[measure].groupby(table["label"].to_numpy()).rank(pct=True)
        out[low] = rank <= 1 / 3
        out[high] = rank > 2 / 3
    return out


def digits_example(folder: str | os.PathLike, *, n_train: int = 500, seed: int = 0) -> dict[str, Any]:
    """Write the digits example into ``folder`` (``images/``, ``train/``, ``model.pt``,
    ``attributes.csv``; kept if already there) and return :func:`primekit.study_build.build_study`'s
    inputs for it: ``images``, ``model``, ``attributes`` and the preprocessing options."""
    root = Path(folder).expanduser()
    model, attributes = root / "model.pt", root / "attributes.csv"
    if not (model.is_file() and attributes.is_file() and (root / "images").is_dir()):
        train_idx, study_idx = split_indices(n_train=n_train, seed=seed)
        fit_digit_classifier(write_digit_folders(root / "train", train_idx), model)
        write_digit_folders(root / "images", study_idx)
        digit_attributes(root / "images").to_csv(attributes, index=False)
    return {"images": str(root / "images"), "model": f"jit:{model}", "attributes": str(attributes),
            **PREPROCESSING}


def study_inputs(
    images: str | None,
    model: str | None,
    *,
    attributes: str | None = None,
    preprocessing: dict[str, Any] | None = None,
    example_dir: str | os.PathLike = "build/digits_example",
) -> dict[str, Any]:
    """The inputs of :func:`~primekit.study_build.build_study` for a notebook's parameters: the
    user's ``images`` and ``model`` (and ``attributes``, ``preprocessing``), or, when ``images`` is
    None, the digits example written to ``example_dir``."""
    if images is None:
        if model is not None:
            raise ValueError("model: give images too (or neither, for the digits example)")
        return digits_example(example_dir)
    if model is None:
        raise ValueError("model: your classifier's spec (jit:PATH, torchvision:NAME, ...)")
    return {"images": images, "model": model, "attributes": attributes, **(preprocessing or {})}
