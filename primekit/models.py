"""Run an image classifier over an image source into the samples table.

Classifier specs:

- ``torchvision:NAME[:WEIGHTS]`` - e.g. ``torchvision:resnet50:IMAGENET1K_V2`` (weights from
  download.pytorch.org, cached in ``~/.cache/torch/hub/checkpoints``); without ``WEIGHTS`` the
  architecture's ``DEFAULT`` weights;
- ``timm:NAME[:PATH]`` - a timm model, pretrained from the Hugging Face hub or from a file;
- ``jit:PATH`` - a TorchScript file (``torch.jit.save``);
- ``checkpoint:PATH`` - a whole pickled ``nn.Module`` (``torch.save(model)``; trusted files only);
- a bare path ending in ``.pt``/``.pth``/``.ts`` - TorchScript if it is one, else a pickled module.

The samples table (DESIGN.md) has ``id, label, pred, correct, confidence[, split, path]``; ``pred``
is a class name (``class_names``; for TorchScript/checkpoints default: the sorted labels of the
source, the ImageFolder convention) and ``confidence`` the softmax probability of ``pred``.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._jobs import file_identity, run_image_job
from .images import read_image_source

__all__ = ["Classifier", "load_classifier", "predict", "imagenet_transform", "image_predictor"]

logger = logging.getLogger(__name__)

_SPECS = (
    "torchvision:NAME[:WEIGHTS], timm:NAME[:PATH], jit:PATH, checkpoint:PATH or a .pt/.pth file"
)


@dataclass
class Classifier:
    """A classifier ready for :func:`predict`: module, preprocessing, class names, identity."""

    model: Any
    transform: Callable[[Any], Any]
    class_names: list[str] | None
    spec: str
    identity: dict
    device: str = "cpu"


def imagenet_transform(image_size: int = 224, *, resize: int | None = None):
    """Resize (shorter side ``image_size * 8/7``), centre crop, ImageNet normalisation."""
    from torchvision import transforms as T

    return T.Compose(
        [
            T.Resize(resize or int(round(image_size * 8 / 7))),
            T.CenterCrop(image_size),
            T.ToTensor(),
            T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ]
    )


def load_classifier(
    spec: str | Any,
    *,
    device: str | None = "cpu",
    image_size: int = 224,
    transform: Callable | None = None,
) -> Classifier:
    """Load a classifier from a spec (module docstring) or wrap an ``nn.Module``.

    Raises ``ValueError`` naming ``model`` for unknown specs and missing weights.
    """
    import torch

    from .tagging.base import resolve_device

    device = resolve_device(device)
    if isinstance(spec, torch.nn.Module):
        model = spec.eval().to(device)
        return Classifier(
            model,
            transform or imagenet_transform(image_size),
            None,
            type(spec).__name__,
            {"module": repr(spec)},
            device,
        )
    if not isinstance(spec, str):
        raise TypeError(f"model: expected a spec string or an nn.Module, got {type(spec).__name__}")
    kind, _, rest = spec.partition(":")
    class_names = None
    if kind == "torchvision" and rest:
        import torchvision

        name, _, weights_name = rest.partition(":")
        try:
            builder = torchvision.models.get_model_builder(name)
            weights = torchvision.models.get_model_weights(name)[weights_name or "DEFAULT"]
        except (ValueError, KeyError) as exc:
            raise ValueError(
                f"model: unknown torchvision model or weights in {spec!r} ({exc})"
            ) from None
        try:
            model = builder(weights=weights)
        except Exception as exc:
            raise ValueError(
                f"model: cannot get weights {weights} for {name} ({type(exc).__name__}); "
                f"they download from {weights.url} into ~/.cache/torch/hub/checkpoints"
            ) from None
        class_names = list(weights.meta.get("categories") or []) or None
        transform = transform or weights.transforms()
        identity = {"torchvision": name, "weights": str(weights)}
    elif kind == "timm" and rest:
        import timm

        name, _, path = rest.partition(":")
        if (
            name not in timm.list_models(pretrained=False)
            and name.split(".")[0] not in timm.list_models()
        ):
            raise ValueError(f"model: unknown timm model {name!r}")
        try:
            if path:
                if not Path(path).is_file():
                    raise ValueError(f"model: weights file {path!r} not found")
                model = timm.create_model(name, pretrained=False, checkpoint_path=path)
                identity = {"timm": name, **file_identity(path)}
            else:
                model = timm.create_model(name, pretrained=True)
                identity = {"timm": name, "pretrained": True}
        except ValueError:
            raise
        except Exception as exc:
            raise ValueError(
                f"model: cannot load timm weights for {name!r} ({type(exc).__name__}); "
                "timm downloads them from the Hugging Face hub (cache ~/.cache/huggingface)"
                ", or pass timm:NAME:/path/to/weights"
            ) from None
        if transform is None:
            cfg = timm.data.resolve_data_config({}, model=model)
            transform = timm.data.create_transform(**cfg)
    elif kind in ("jit", "checkpoint") and rest or spec.endswith((".pt", ".pth", ".ts")):
        path = Path(rest if kind in ("jit", "checkpoint") else spec).expanduser()
        if not path.is_file():
            raise ValueError(f"model: file {str(path)!r} not found")
        model = None
        if kind != "checkpoint":
            try:
                with warnings.catch_warnings():  # torch 2.9+ deprecates TorchScript loudly
                    warnings.simplefilter("ignore", FutureWarning)
                    model = torch.jit.load(str(path), map_location=device)
            except Exception as exc:
                if kind == "jit":
                    raise ValueError(
                        f"model: {str(path)!r} is not a TorchScript file ({exc})"
                    ) from None
        if model is None:
            try:
                model = torch.load(str(path), map_location=device, weights_only=False)
            except Exception as exc:
                raise ValueError(
                    f"model: cannot load {str(path)!r} ({type(exc).__name__}: {exc})"
                ) from None
            if isinstance(model, dict):
                raise ValueError(
                    f"model: {str(path)!r} holds a state dict, not a model; build the "
                    "architecture, load the dict and pass the module, or save with "
                    "torch.jit.save / torch.save(model)"
                )
        identity = {"file": file_identity(path)}
        transform = transform or imagenet_transform(image_size)
    else:
        raise ValueError(f"model: unknown classifier spec {spec!r}; expected {_SPECS}")
    model = model.eval().to(device)
    return Classifier(
        model, transform, class_names, spec, {**identity, "transform": repr(transform)}, device
    )


def predict(
    source: str | os.PathLike | pd.DataFrame,
    model: Classifier | str | Any,
    *,
    out: str | os.PathLike | None = None,
    class_names: Sequence[str] | str | os.PathLike | None = None,
    batch_size: int = 64,
    device: str | None = "cpu",
    num_workers: int = 0,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Classify every image of ``source`` into the samples table (cached, resumable).

    Parameters
    ----------
    source : path-like or DataFrame
        Image folder, manifest or image table.
    model : Classifier, spec or nn.Module
    class_names : sequence of str or text file, optional
        Name of each output index. Default: the model's categories (torchvision), else the
        sorted distinct labels of ``source`` when their number equals the number of outputs,
        else the index as a string.

    Returns
    -------
    DataFrame
        ``id, label, pred, correct, confidence`` (+ ``split``, ``path``); ``label``/``correct``
        only when the source has labels. Failed images are in ``attrs["errors"]``.
    """
    from .tagging.base import _check_out, _error_table, _finish

    if out is not None:
        _check_out(out)
    if isinstance(class_names, (str, os.PathLike)):
        p = Path(class_names)
        if not p.is_file():
            raise ValueError(f"class_names: {str(p)!r} is not a file with one class name per line")
        class_names = [t.strip() for t in p.read_text().splitlines() if t.strip()]
    images = read_image_source(source)
    clf = model if isinstance(model, Classifier) else load_classifier(model, device=device)
    job = run_image_job(
        images["path"].tolist(),
        forward=clf.model,
        transform=clf.transform,
        settings={"classifier": clf.identity},
        kind="predictions",
        cache_dir=cache_dir,
        batch_size=batch_size,
        num_workers=num_workers,
        device=clf.device,
        progress=progress,
        desc="predict",
    )
    ok = job.ok
    logits = job.values[ok].astype(np.float64)
    n_out = logits.shape[1] if logits.ndim == 2 and len(logits) else 0
    names = list(class_names) if class_names is not None else clf.class_names
    if names is None and "label" in images.columns:
        labels = sorted(images["label"].dropna().astype(str).unique())
        names = labels if len(labels) == n_out else None
    if names is None:
        names = [str(i) for i in range(n_out)]
    if n_out and len(names) != n_out:
        raise ValueError(f"class_names: {len(names)} names for a model with {n_out} outputs")
    prob = np.exp(logits - logits.max(axis=1, keepdims=True)) if n_out else logits
    if n_out:
        prob /= prob.sum(axis=1, keepdims=True)
    idx = prob.argmax(axis=1) if n_out else np.zeros(0, dtype=int)
    kept = images[ok].reset_index(drop=True)
    table = pd.DataFrame({"id": kept["id"]})
    if "label" in kept.columns:
        table["label"] = kept["label"].astype(str)
    table["pred"] = np.asarray(names, dtype=object)[idx] if n_out else []
    if "label" in kept.columns:
        table["correct"] = table["label"] == table["pred"]
    table["confidence"] = prob[np.arange(len(idx)), idx] if n_out else []
    for col in ("split", "path"):
        if col in kept.columns:
            table[col] = kept[col]
    errors = _error_table(images, job.errors)
    metadata = {
        "model": clf.spec,
        "class_names": list(names),
        "n_images": int(len(images)),
        "n_errors": int(len(errors)),
    }
    return _finish("predict", table, job, errors, out, metadata, n_images=len(images))


def image_predictor(
    model: Classifier | str | Any,
    *,
    class_names: Sequence[str] | None = None,
    device: str | None = "cpu",
    batch_size: int = 32,
) -> Callable[[np.ndarray], pd.DataFrame]:
    """A classifier as a function of in-memory images (for generated images, paper 4.2).

    Parameters
    ----------
    model : Classifier, spec or nn.Module
        As in :func:`predict`.
    class_names : sequence of str, optional
        Name of each output index (default: the model's categories; required when it has none).
    device, batch_size :
        Where and how many images at a time.

    Returns
    -------
    callable
        ``f(images)`` with ``images`` uint8 (n, H, W, 3) returns a DataFrame ``pred, confidence``
        (one row per image), through the classifier's own preprocessing.
    """
    import torch
    from PIL import Image

    clf = model if isinstance(model, Classifier) else load_classifier(model, device=device)
    names = list(class_names) if class_names is not None else clf.class_names
    if not names:
        raise ValueError("class_names: the model has no class names; pass one name per output")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size!r}")

    def run(images: np.ndarray) -> pd.DataFrame:
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(f"images: expected uint8 (n, H, W, 3), got {images.dtype} {images.shape}")
        probs = []
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                batch = torch.stack([clf.transform(Image.fromarray(im)) for im in images[start : start + batch_size]])
                logits = clf.model(batch.to(clf.device)).float().cpu()
                if logits.shape[1] != len(names):
                    raise ValueError(f"class_names: {len(names)} names for a model with {logits.shape[1]} outputs")
                probs.append(torch.softmax(logits, dim=1).numpy())
        p = np.concatenate(probs) if probs else np.zeros((0, len(names)))
        return pd.DataFrame({"pred": np.asarray(names, dtype=object)[p.argmax(1)] if len(p) else [], "confidence": p.max(1) if len(p) else []})

    return run
