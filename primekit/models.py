"""Run an image classifier over an image source into the samples table.

Classifier specs:

- ``torchvision:NAME[:WEIGHTS]`` - e.g. ``torchvision:resnet50:IMAGENET1K_V2`` (weights from
  download.pytorch.org, cached in ``~/.cache/torch/hub/checkpoints``); without ``WEIGHTS`` the
  architecture's ``DEFAULT`` weights;
- ``timm:NAME[:PATH]`` - a timm model, pretrained from the Hugging Face hub or from a file;
- ``jit:PATH`` - a TorchScript file (``torch.jit.save``);
- ``checkpoint:PATH`` - a whole pickled ``nn.Module`` (``torch.save(model)``). Unpickling a module
  runs code from the file, so it is refused unless the caller opts in with ``trust_pickle=True``
  (CLI ``--trust-checkpoint``); a weights-only file (a state dict) is read safely and refused with
  what to do instead;
- a bare path ending in ``.pt``/``.pth``/``.ts`` - TorchScript if it is one, else as ``checkpoint:``.

The samples table (DESIGN.md) has ``id, label, pred, correct, confidence[, split, path]``; ``pred``
is a class name (``class_names``; for TorchScript/checkpoints default: the sorted labels of the
source, the ImageFolder convention) and ``confidence`` the softmax probability of ``pred``.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._jobs import (
    file_identity,
    finish_job,
    open_job_source,
    ready_model,
    resolve_device,
    run_table_job,
)
from ._torch_files import is_weights_only_error, load_torch_file, pickle_refusal, weights_only_loads
from ._validation import check_int

__all__ = [
    "Classifier",
    "load_classifier",
    "predict",
    "build_transform",
    "parse_normalize",
    "describe_preprocessing",
    "accuracy_warning",
    "imagenet_transform",
    "image_predictor",
]

logger = logging.getLogger(__name__)

_SPECS = (
    "torchvision:NAME[:WEIGHTS], timm:NAME[:PATH], jit:PATH, checkpoint:PATH or a .pt/.pth file"
)


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class Classifier:
    """A classifier ready for :func:`predict`: module, preprocessing, class names, identity.

    ``preprocessing`` describes the transform (``{"source": "model" | "user" | "imagenet
    default", "steps": ...}``); it goes into the samples' metadata.
    """

    model: Any
    transform: Callable[[Any], Any]
    class_names: list[str] | None
    spec: str
    identity: dict
    device: str = "cpu"
    preprocessing: dict = field(default_factory=dict)


def parse_normalize(text: str | Sequence[float] | None) -> str | tuple[tuple[float, ...], tuple[float, ...]]:
    """``"imagenet"``, ``"none"``, ``"MEAN,STD"`` (one value for every channel) or
    ``"M1,M2,M3,S1,S2,S3"`` -> ``"imagenet"``, ``"none"`` or ``(mean, std)``; ``ValueError``
    naming ``normalize`` otherwise."""
    if text is None or (isinstance(text, str) and text.strip().lower() == "imagenet"):
        return "imagenet"
    if isinstance(text, str) and text.strip().lower() == "none":
        return "none"
    try:
        values = [float(v) for v in text.split(",")] if isinstance(text, str) else [float(v) for v in text]
    except (TypeError, ValueError):
        values = []
    if not values or len(values) % 2:
        raise ValueError(
            f"normalize: expected 'imagenet', 'none', 'MEAN,STD' or 'M1,M2,M3,S1,S2,S3', got {text!r}"
        )
    mean, std = tuple(values[: len(values) // 2]), tuple(values[len(values) // 2 :])
    if min(std) <= 0:
        raise ValueError(f"normalize: standard deviations must be > 0, got {std}")
    return mean, std


def _positive(value: Any, argument: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{argument}: expected a positive integer, got {value!r}")
    return int(value)


def build_transform(
    *,
    image_size: int | None = 224,
    resize: int | None = None,
    normalize: str | Sequence[float] | None = "imagenet",
    grayscale: bool = False,
) -> tuple[Callable[[Any], Any], dict]:
    """The preprocessing of an image classifier, and its description.

    Parameters
    ----------
    image_size : int or None
        Side of the centre crop fed to the model (None: no crop).
    resize : int, optional
        Shorter side after resizing, before the crop. Default ``round(image_size * 8/7)`` (the
        ImageNet convention, 256 for 224); pass ``resize=image_size`` to resize without cropping
        a square image.
    normalize : {"imagenet", "none"}, "MEAN,STD" or a sequence of floats
        Channel normalisation after scaling pixels to [0, 1].
    grayscale : bool
        Convert to one grey channel (models trained on grey images take (1, H, W)).

    Returns
    -------
    (transform, description)
        A torchvision transform (PIL image -> tensor) and a JSON-able dict of its steps.
    """
    from torchvision import transforms as T  # heavy: imported on first use

    image_size = _positive(image_size, "image_size")
    resize = _positive(resize, "resize")
    norm = parse_normalize(normalize)
    if not isinstance(grayscale, bool):
        raise TypeError(f"grayscale: expected True or False, got {grayscale!r}")
    steps, desc = [], []
    size = resize or (int(round(image_size * 8 / 7)) if image_size else None)
    if size:
        steps.append(T.Resize(size))
        desc.append(f"resize shorter side to {size}")
    if image_size:
        steps.append(T.CenterCrop(image_size))
        desc.append(f"centre crop {image_size}x{image_size}")
    if grayscale:
        steps.append(T.Grayscale(num_output_channels=1))
        desc.append("grayscale (1 channel)")
    steps.append(T.ToTensor())
    desc.append("pixels to [0, 1]")
    if norm == "imagenet":
        mean, std = IMAGENET_MEAN, IMAGENET_STD
        if grayscale:  # one channel: the luminance-weighted ImageNet statistics
            mean, std = (float(np.dot([0.299, 0.587, 0.114], mean)),), (float(np.dot([0.299, 0.587, 0.114], std)),)
        steps.append(T.Normalize(mean, std))
        desc.append("normalize ImageNet mean/std")
    elif norm != "none":
        mean, std = norm
        steps.append(T.Normalize(mean, std))
        desc.append(f"normalize mean {list(mean)} std {list(std)}")
    description = {
        "image_size": image_size,
        "resize": size,
        "normalize": norm if isinstance(norm, str) else {"mean": list(norm[0]), "std": list(norm[1])},
        "grayscale": grayscale,
        "steps": desc,
    }
    return T.Compose(steps), description


def imagenet_transform(image_size: int = 224, *, resize: int | None = None):
    """Resize (shorter side ``image_size * 8/7``), centre crop, ImageNet normalisation."""
    return build_transform(image_size=image_size, resize=resize)[0]


def describe_preprocessing(preprocessing: Mapping[str, Any]) -> str:
    """One line: where the preprocessing comes from and its steps."""
    steps = preprocessing.get("steps") or [preprocessing.get("transform", "?")]
    return f"{preprocessing.get('source', '?')}: " + " -> ".join(str(s) for s in steps)


def load_classifier(
    spec: str | Any,
    *,
    device: str | None = "cpu",
    image_size: int | None = None,
    resize: int | None = None,
    normalize: str | Sequence[float] | None = None,
    grayscale: bool = False,
    transform: Callable | None = None,
    trust_pickle: bool = False,
) -> Classifier:
    """Load a classifier from a spec (module docstring) or wrap an ``nn.Module``.

    Parameters
    ----------
    spec : str or nn.Module
    device : str
    image_size, resize, normalize, grayscale :
        The preprocessing (:func:`build_transform`). torchvision and timm models bring their own,
        used unless one of these is given. TorchScript files, checkpoints and modules carry none:
        without these options they get the ImageNet default (224 px crop, ImageNet mean/std),
        and ``preprocessing["source"]`` says ``"imagenet default"`` (logged as a warning).
    transform : callable, optional
        A ready transform (PIL image -> tensor), instead of the options above.
    trust_pickle : bool
        Allow unpickling a whole module from a ``checkpoint:`` file (runs code from the file:
        only for files you trust). Default: weights-only loading, which refuses such files.

    Raises ``ValueError`` naming ``model`` for unknown specs, missing weights and pickles loaded
    without the opt-in, and naming the option for bad preprocessing values.
    """
    import torch  # heavy: imported on first use

    device = resolve_device(device)
    options = {"image_size": image_size, "resize": resize, "normalize": normalize, "grayscale": grayscale}
    user = {k: v for k, v in options.items() if v is not None and v is not False}
    if transform is not None and user:
        raise ValueError(f"transform: give a transform or {sorted(user)[0]}, not both")
    if user:  # checked before any model is loaded
        transform, described = build_transform(**{"image_size": 224, "normalize": "imagenet", **user})
        preprocessing = {"source": "user", **described}
    elif transform is not None:
        preprocessing = {"source": "user", "transform": repr(transform)}
    else:
        preprocessing = {}
    if isinstance(spec, torch.nn.Module):
        model, class_names, identity, own = spec, None, {"module": repr(spec)}, None
        name = type(spec).__name__
    elif isinstance(spec, str):
        model, class_names, identity, own = _load_spec(spec, device, trust_pickle=trust_pickle)
        name = spec
    else:
        raise TypeError(f"model: expected a spec string or an nn.Module, got {type(spec).__name__}")
    if transform is None and own is not None:
        transform, preprocessing = own, {"source": "model", "transform": repr(own)}
    elif transform is None:
        transform, described = build_transform()
        preprocessing = {"source": "imagenet default", **described}
        logger.warning(
            "model %s carries no preprocessing: applying the ImageNet default (%s); if it was "
            "trained otherwise, pass image_size/resize/normalize/grayscale (CLI --image-size, "
            "--resize, --normalize, --grayscale)",
            name,
            " -> ".join(described["steps"]),
        )
    else:
        logger.info("model %s: preprocessing %s", name, describe_preprocessing(preprocessing))
    model = model.eval().to(device)
    return Classifier(
        model,
        transform,
        class_names,
        name,
        {**identity, "transform": repr(transform)},
        device,
        preprocessing,
    )


def _load_spec(spec: str, device: str, *, trust_pickle: bool) -> tuple[Any, list[str] | None, dict, Any]:
    """(module, class names, identity, the model's own transform or None) of a spec string."""
    kind, _, rest = spec.partition(":")
    if kind == "torchvision" and rest:
        return _load_torchvision(spec, rest)
    if kind == "timm" and rest:
        return _load_timm(rest, trust_pickle=trust_pickle)
    if kind in ("jit", "checkpoint") and rest or spec.endswith((".pt", ".pth", ".ts")):
        path = Path(rest if kind in ("jit", "checkpoint") else spec).expanduser()
        model = _load_file(path, kind, device, trust_pickle=trust_pickle)
        return model, None, {"file": file_identity(path)}, None
    raise ValueError(f"model: unknown classifier spec {spec!r}; expected {_SPECS}")


def _load_torchvision(spec: str, rest: str):
    import torchvision  # heavy: imported on first use

    name, _, weights_name = rest.partition(":")
    try:
        builder = torchvision.models.get_model_builder(name)
        weights = torchvision.models.get_model_weights(name)[weights_name or "DEFAULT"]
    except (ValueError, KeyError) as exc:
        raise ValueError(f"model: unknown torchvision model or weights in {spec!r} ({exc})") from None
    try:
        model = builder(weights=weights)
    except Exception as exc:
        raise ValueError(
            f"model: cannot get weights {weights} for {name} ({type(exc).__name__}); "
            f"they download from {weights.url} into ~/.cache/torch/hub/checkpoints"
        ) from None
    class_names = list(weights.meta.get("categories") or []) or None
    return model, class_names, {"torchvision": name, "weights": str(weights)}, weights.transforms()


def _load_timm(rest: str, *, trust_pickle: bool = False):
    import timm  # heavy: imported on first use

    name, _, path = rest.partition(":")
    if name not in timm.list_models(pretrained=False) and name.split(".")[0] not in timm.list_models():
        raise ValueError(f"model: unknown timm model {name!r}")
    if path and not Path(path).is_file():
        raise ValueError(f"model: weights file {path!r} not found")
    try:
        if path:
            model = timm.create_model(name, pretrained=False)
            # timm's own loader (EMA / 'state_dict' keys, 'module.' prefixes), weights-only
            with weights_only_loads(trust_pickle=trust_pickle):
                timm.models.load_checkpoint(model, path, weights_only=not trust_pickle)
            identity = {"timm": name, **file_identity(path)}
        else:
            model = timm.create_model(name, pretrained=True)
            identity = {"timm": name, "pretrained": True}
    except ValueError:
        raise
    except Exception as exc:
        if path and not trust_pickle and is_weights_only_error(exc):
            raise ValueError(pickle_refusal(path, argument="model")) from None
        raise ValueError(
            f"model: cannot load timm weights for {name!r} ({type(exc).__name__}: {exc}); timm "
            "downloads them from the Hugging Face hub (cache ~/.cache/huggingface), or pass "
            "timm:NAME:/path/to/weights"
        ) from None
    cfg = timm.data.resolve_data_config({}, model=model)
    return model, None, identity, timm.data.create_transform(**cfg)


def _load_file(path: Path, kind: str, device: str, *, trust_pickle: bool):
    """A TorchScript file, else (not for ``jit:``) a whole pickled module (needs the opt-in)."""
    import torch  # heavy: imported on first use

    if not path.is_file():
        raise ValueError(f"model: file {str(path)!r} not found")
    if kind != "checkpoint":
        try:
            with warnings.catch_warnings():  # torch 2.9+ deprecates TorchScript loudly
                warnings.simplefilter("ignore", FutureWarning)
                return torch.jit.load(str(path), map_location=device)
        except Exception as exc:
            if kind == "jit":
                raise ValueError(f"model: {str(path)!r} is not a TorchScript file ({exc})") from None
    model = load_torch_file(path, trust_pickle=trust_pickle, map_location=device, argument="model")
    if not isinstance(model, torch.nn.Module):
        raise ValueError(
            f"model: {str(path)!r} holds a {type(model).__name__} (a state dict?), not a model; "
            "build the architecture, load the dict and pass the module (Python API), use "
            "timm:NAME:PATH for a timm architecture's weights, or save with torch.jit.save"
        )
    return model


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
    expect_accuracy: float | None = None,
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
    expect_accuracy : float, optional
        The accuracy you measured elsewhere (e.g. through your own pipeline). With labels, a
        warning names the likely causes when the accuracy comes out more than 0.1 below it, or
        near chance (within 0.1 of always predicting the commonest class).

    Returns
    -------
    DataFrame
        ``id, label, pred, correct, confidence`` (+ ``split``, ``path``); ``label``/``correct``
        only when the source has labels. Failed images are in ``attrs["errors"]``;
        ``attrs["metadata"]`` holds the model, class names, the preprocessing applied, the
        accuracy and any warnings.
    """
    if expect_accuracy is not None and not 0 < expect_accuracy <= 1:
        raise ValueError(f"expect_accuracy: must lie in (0, 1], got {expect_accuracy}")
    if isinstance(class_names, (str, os.PathLike)):
        p = Path(class_names)
        if not p.is_file():
            raise ValueError(f"class_names: {str(p)!r} is not a file with one class name per line")
        class_names = [t.strip() for t in p.read_text().splitlines() if t.strip()]
    images = open_job_source(source, out)
    clf = ready_model(model, Classifier, load_classifier, device)
    job, errors = run_table_job(
        images,
        forward=_guarded_forward(clf),
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
    table, names = _samples_table(images, job, class_names, clf.class_names)
    metadata = {
        "model": clf.spec,
        "class_names": list(names),
        "preprocessing": clf.preprocessing,
        "n_images": int(len(images)),
        "n_errors": int(len(errors)),
    }
    if "correct" in table.columns and len(table):
        metadata["accuracy"] = float(table["correct"].mean())
        warning = accuracy_warning(table, preprocessing=clf.preprocessing, expect_accuracy=expect_accuracy)
        metadata["warnings"] = [warning] if warning else []
        if warning:
            logger.warning(warning)
    return finish_job("predict", table, job, errors, out, metadata, n_images=len(images))


def _samples_table(images: pd.DataFrame, job: Any, class_names: Sequence[str] | None,
                   model_names: list[str] | None) -> tuple[pd.DataFrame, list[str]]:
    """The samples table of a finished prediction job, and the class names used."""
    ok = job.ok
    logits = job.values[ok].astype(np.float64)
    n_out = logits.shape[1] if logits.ndim == 2 and len(logits) else 0
    names = list(class_names) if class_names is not None else model_names
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
    return table, list(names)


def _guarded_forward(clf: Classifier) -> Callable[[Any], Any]:
    """The model, with its shape errors turned into a ``ValueError`` that names the preprocessing
    (the usual cause: a model trained on other sizes or channels than it is fed)."""

    def forward(batch: Any) -> Any:
        try:
            return clf.model(batch)
        except Exception as exc:  # RuntimeError, torch.jit.Error, a model's own assertions
            lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
            # TorchScript puts the interpreter's traceback first and the cause last
            first = (lines[-1] if "TorchScript" in lines[0] else lines[0]) if lines else type(exc).__name__
            raise ValueError(
                f"model: fails on the preprocessed images (batch of shape {tuple(batch.shape)}; "
                f"preprocessing {describe_preprocessing(clf.preprocessing)}): {first}. Set "
                "--image-size/--resize/--normalize/--grayscale to what it was trained on"
            ) from None

    return forward


def accuracy_warning(
    samples: pd.DataFrame, *, preprocessing: Mapping[str, Any], expect_accuracy: float | None = None
) -> str | None:
    """A loud sentence when accuracy is near chance or far below ``expect_accuracy``, else None.

    Near chance: within 0.1 of the share of the commonest label (what always predicting it
    scores). Far below: more than 0.1 under ``expect_accuracy``. The sentence names the likely
    causes: preprocessing other than the model's training (the one applied is quoted) and class
    names in another order than the model's outputs.
    """
    accuracy = float(samples["correct"].mean())
    chance = float(samples["label"].value_counts(normalize=True).max())
    n_classes = int(samples["label"].nunique())
    if expect_accuracy is not None and accuracy < expect_accuracy - 0.1:
        what = f"far below the expected {expect_accuracy:.2f}"
    elif n_classes > 1 and accuracy < chance + 0.1:
        what = f"near chance ({chance:.2f}, always predicting the commonest of {n_classes} classes)"
    else:
        return None
    default = preprocessing.get("source") == "imagenet default"
    return (
        f"accuracy {accuracy:.3f} on {len(samples)} labelled images is {what}. Likely causes: "
        f"preprocessing that differs from the model's training (applied "
        f"{describe_preprocessing(preprocessing)}"
        + ("; this is only a default, nothing told primekit how the model was trained" if default else "")
        + "; set --image-size/--resize/--normalize/--grayscale), or class names in another order "
        "than the model's outputs (default: the sorted folder names; set --class-names)"
    )


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
    import torch  # heavy: imported on first use
    from PIL import Image

    clf = ready_model(model, Classifier, load_classifier, device)
    names = list(class_names) if class_names is not None else clf.class_names
    if not names:
        raise ValueError("class_names: the model has no class names; pass one name per output")
    check_int(batch_size, "batch_size", 1)

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
