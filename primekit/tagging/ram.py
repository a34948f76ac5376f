"""RAM and RAM++ (recognize-anything) as primekit taggers, with per-tag probabilities.

What the upstream package does not give, and this adapter does (DESIGN.md "Third-party facts"):

- **Probabilities, batched.** ``inference_ram`` returns only the first image of a batch and
  ``generate_tag`` returns ' | '-joined strings. The adapter runs the model's own ``generate_tag``
  on the whole batch and captures the logits of its tagging head (``model.fc``) with a forward
  hook: probabilities are ``sigmoid(logits)``, exactly the numbers ``generate_tag`` thresholds.
- **Thresholds under the user's control.** The defaults are the model's ``class_threshold``
  (read by RAM from ``ram/data/ram_tag_list_threshold.txt``; RAM's own ``threshold`` argument has
  no effect on them). ``tag_images(threshold=...)`` replaces them globally or per tag. A tag is
  present when its probability is *strictly* greater than its threshold, as in ``generate_tag``.
- **Offline construction.** RAM builds a ``bert-base-uncased`` tokenizer, downloading it unless
  ``text_encoder_type`` is a local folder with a ``vocab.txt``. Tagging never tokenizes text, so
  by default the adapter writes a placeholder ``vocab.txt`` of BERT's size (30,522 entries, the
  special tokens at BERT's positions), which gives the checkpoint's embedding shapes. Pass
  ``tokenizer_dir`` to use the real one (needed only for RAM's captioning, not for tags).
- **Loud checkpoint loading.** RAM loads with ``strict=False`` and discards the result. The
  adapter uses RAM's own loaders (which remap and interpolate keys) and raises on missing or
  unexpected keys, except the buffers RAM deliberately rebuilds (``relative_position_index``,
  ``attn_mask``).
- **transformers versions.** RAM imports helpers that transformers 4.56 moved to
  ``transformers.pytorch_utils``; for 4.56-4.57 they are copied back into
  ``transformers.modeling_utils`` before import. transformers >= 5 is refused with a message.

Weights: RAM++ ``ram_plus_swin_large_14m.pth`` from
https://huggingface.co/xinyu1205/recognize-anything-plus-model, RAM ``ram_swin_large_14m.pth`` from
https://huggingface.co/xinyu1205/recognize_anything_model (both Swin-L, 384 px).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._jobs import default_cache_dir, file_identity
from .base import Tagger, resolve_device

__all__ = [
    "RamTagger",
    "import_ram",
    "apply_transformers_shim",
    "placeholder_vocab_dir",
    "check_transformers_version",
    "check_load_result",
    "WEIGHTS_URLS",
]

logger = logging.getLogger(__name__)

WEIGHTS_URLS = {
    "ram++": "https://huggingface.co/xinyu1205/recognize-anything-plus-model/resolve/main/ram_plus_swin_large_14m.pth",
    "ram": "https://huggingface.co/xinyu1205/recognize_anything_model/resolve/main/ram_swin_large_14m.pth",
}
_SHIM_NAMES = (
    "apply_chunking_to_forward",
    "find_pruneable_heads_and_indices",
    "prune_linear_layer",
)
# buffers RAM's own loaders drop from the checkpoint and the model rebuilds
_REBUILT_BUFFERS = ("relative_position_index", "attn_mask")
_INSTALL = "pip install 'primekit[ram]' (recognize-anything from GitHub, timm, fairscale, scipy, transformers<4.58)"


def check_transformers_version(version: str) -> str:
    """Classify a transformers version for RAM: ``"ok"`` (< 4.56), ``"shim"`` (4.56-4.57).

    Raises ``ValueError`` for versions RAM cannot import with (4.58 and later, including 5.x).
    """
    from packaging.version import Version

    v = Version(version)
    if v < Version("4.56"):
        return "ok"
    if v < Version("4.58"):
        return "shim"
    raise ValueError(
        f"transformers {version} is installed, but RAM/RAM++ needs transformers<4.56 (4.56-4.57 "
        "work with primekit's shim; 5.x breaks RAM's BERT code): pip install 'transformers<4.58'"
    )


def apply_transformers_shim() -> list[str]:
    """Copy RAM's missing helpers from ``transformers.pytorch_utils`` into
    ``transformers.modeling_utils``; returns the names copied (empty when nothing was missing)."""
    import transformers.modeling_utils as modeling_utils
    import transformers.pytorch_utils as pytorch_utils

    copied = []
    for name in _SHIM_NAMES:
        if not hasattr(modeling_utils, name) and hasattr(pytorch_utils, name):
            setattr(modeling_utils, name, getattr(pytorch_utils, name))
            copied.append(name)
    return copied


def import_ram():
    """Import the ``ram`` package, after checking transformers; ``ValueError`` with the fix if not."""
    try:
        import transformers
    except ImportError:
        raise ValueError(f"tagger: RAM needs transformers; {_INSTALL}") from None
    if check_transformers_version(transformers.__version__) == "shim":
        copied = apply_transformers_shim()
        if copied:
            logger.info(
                "transformers %s: copied %s into transformers.modeling_utils for RAM",
                transformers.__version__,
                ", ".join(copied),
            )
    try:
        import ram
        import ram.models.ram  # noqa: F401
        import ram.models.ram_plus  # noqa: F401
        import ram.models.utils  # noqa: F401
    except ModuleNotFoundError as exc:
        if exc.name == "ram":
            raise ValueError(
                f"tagger: the 'ram' package (recognize-anything) is not installed; {_INSTALL}"
            ) from None
        raise ValueError(
            f"tagger: RAM cannot be imported: missing module {exc.name!r}; {_INSTALL}"
        ) from None
    except ImportError as exc:
        raise ValueError(
            f"tagger: RAM cannot be imported with transformers "
            f"{transformers.__version__} ({exc}); pip install 'transformers<4.56'"
        ) from None
    return ram


def placeholder_vocab_dir(folder: str | os.PathLike | None = None) -> Path:
    """A folder with a BERT-sized placeholder ``vocab.txt`` (30,522 entries) for RAM's tokenizer."""
    folder = (
        Path(folder) if folder is not None else default_cache_dir() / "ram_placeholder_tokenizer"
    )
    vocab = folder / "vocab.txt"
    if not vocab.is_file():
        from ..io import atomic_path

        tokens = (
            ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        )
        tokens += [f"placeholder{i}" for i in range(30522 - len(tokens))]
        with atomic_path(vocab) as tmp:
            tmp.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return folder


def check_load_result(
    missing: list[str], unexpected: list[str], *, checkpoint: str, strict: bool = True
) -> None:
    """Raise ``ValueError`` naming ``checkpoint`` if keys are missing or unexpected.

    Buffers that RAM's loaders drop on purpose and the model rebuilds are ignored. With
    ``strict=False`` the problem is logged as a warning instead.
    """
    missing = [k for k in missing if not k.endswith(_REBUILT_BUFFERS)]
    unexpected = list(unexpected)
    if not missing and not unexpected:
        return
    msg = (
        f"checkpoint: {checkpoint!r} does not match the model: {len(missing)} missing key(s) "
        f"{missing[:5]}, {len(unexpected)} unexpected key(s) {unexpected[:5]} "
        "(wrong variant ram/ram++, backbone or image size?)"
    )
    if strict:
        raise ValueError(msg)
    logger.warning(msg)


class RamTagger(Tagger):
    """RAM or RAM++ over its 4,585-tag vocabulary, with per-tag probabilities.

    Parameters
    ----------
    checkpoint : path-like
        ``ram_plus_swin_large_14m.pth`` (RAM++) or ``ram_swin_large_14m.pth`` (RAM); see
        ``WEIGHTS_URLS``.
    variant : {"ram++", "ram"}
    image_size : int
        384 for the released checkpoints (224 variants exist for Swin-B).
    vit : {"swin_l", "swin_b", "base", "large"}
        Backbone; the released checkpoints are ``swin_l``.
    tokenizer_dir : path-like, optional
        Folder with BERT's ``vocab.txt``; default a placeholder (tagging never tokenizes).
    device : str
    strict : bool
        Raise (default) or only warn on missing/unexpected checkpoint keys.
    model_kwargs : dict, optional
        Extra arguments for RAM's model class (e.g. ``tag_list``).
    """

    def __init__(
        self,
        checkpoint: str | os.PathLike,
        *,
        variant: str = "ram++",
        image_size: int = 384,
        vit: str = "swin_l",
        tokenizer_dir: str | os.PathLike | None = None,
        device: str = "cpu",
        strict: bool = True,
        model_kwargs: dict[str, Any] | None = None,
    ):
        if variant not in WEIGHTS_URLS:
            raise ValueError(f"variant: expected 'ram++' or 'ram', got {variant!r}")
        if vit not in ("swin_l", "swin_b", "base", "large"):
            raise ValueError(f"vit: expected swin_l, swin_b, base or large, got {vit!r}")
        checkpoint = Path(checkpoint).expanduser()
        if not checkpoint.is_file():
            raise ValueError(
                f"tagger: {variant} weights {str(checkpoint)!r} not found; download "
                f"{WEIGHTS_URLS[variant]} (e.g. huggingface-cli download "
                f"{WEIGHTS_URLS[variant].split('/resolve')[0].split('huggingface.co/')[1]} "
                f"{WEIGHTS_URLS[variant].rsplit('/', 1)[1]})"
            )
        if tokenizer_dir is not None and not (Path(tokenizer_dir) / "vocab.txt").is_file():
            raise ValueError(f"tokenizer_dir: {str(tokenizer_dir)!r} has no vocab.txt")
        self.device = resolve_device(device)
        ram = import_ram()
        tok = str(tokenizer_dir) if tokenizer_dir is not None else str(placeholder_vocab_dir())
        kwargs = {
            "image_size": image_size,
            "vit": vit,
            "text_encoder_type": tok,
            **(model_kwargs or {}),
        }
        # ram.models.ram_plus is shadowed by the function of that name: go through sys.modules
        cls = (
            importlib.import_module("ram.models.ram_plus").RAM_plus
            if variant == "ram++"
            else importlib.import_module("ram.models.ram").RAM
        )
        out = io.StringIO()
        with contextlib.redirect_stdout(out):  # RAM prints progress; keep it in the log
            model = cls(**kwargs)
            model, msg = _load_checkpoint(ram, model, str(checkpoint), kwargs)
        logger.debug("RAM: %s", out.getvalue())
        check_load_result(
            list(msg.missing_keys),
            list(msg.unexpected_keys),
            checkpoint=str(checkpoint),
            strict=strict,
        )
        self.model = model.eval().to(self.device)
        self.name = variant
        self.variant = variant
        self.weights = str(checkpoint.resolve())
        self.vocabulary = [str(t) for t in model.tag_list]
        self.thresholds = model.class_threshold.detach().cpu().numpy().astype(np.float64)
        self.settings = {
            "variant": variant,
            "image_size": image_size,
            "vit": vit,
            **{k: v for k, v in (model_kwargs or {}).items()},
        }
        self._identity = file_identity(checkpoint)
        self._transform = ram.get_transform(image_size=image_size)

    def transform(self, image):
        return self._transform(image)

    def cache_settings(self) -> dict:
        return {"tagger": self.name, "weights": self._identity, "settings": self.settings}

    def forward(self, batch):
        """Probabilities (b, n_tags): sigmoid of the tagging head's logits in ``generate_tag``."""
        return ram_probabilities(self.model, batch)


def ram_probabilities(model, batch):
    """Run ``model.generate_tag(batch)`` and return ``sigmoid`` of its head's logits (b, n_tags)."""
    import torch

    captured = []
    handle = model.fc.register_forward_hook(lambda mod, inp, out: captured.append(out))
    try:
        with torch.inference_mode():
            model.generate_tag(batch)
    finally:
        handle.remove()
    if len(captured) != 1:
        raise RuntimeError(
            f"RAM's tagging head ran {len(captured)} times in generate_tag; expected once"
        )
    return torch.sigmoid(captured[0].squeeze(-1).float())


def _load_checkpoint(ram, model, path: str, kwargs: dict):
    """RAM's own loader for the backbone (key remapping, interpolation); returns (model, msg)."""
    utils = importlib.import_module("ram.models.utils")
    loader = {
        "swin_b": lambda: utils.load_checkpoint_swinbase(model, path, kwargs),
        "swin_l": lambda: utils.load_checkpoint_swinlarge(model, path, kwargs),
    }.get(kwargs["vit"], lambda: utils.load_checkpoint(model, path))
    try:
        return loader()
    except Exception as exc:
        if "weights_only" not in str(exc):
            raise ValueError(
                f"checkpoint: cannot load {path!r}: {type(exc).__name__}: {exc}"
            ) from None
    # torch >= 2.6 defaults to weights_only=True; RAM's checkpoints are plain pickles
    logger.warning(
        "checkpoint %s is not a weights-only file; loading it as a full pickle "
        "(only do this with files you trust)",
        path,
    )
    old = os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
    os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        return loader()
    finally:
        if old is None:
            os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
        else:
            os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = old
