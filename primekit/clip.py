"""open_clip models by spec; image and text embeddings, cached to disk.

Model specs (the ``clip:`` prefix is optional here):

- ``ViT-B-16:openai`` - an open_clip architecture and pretrained tag (the paper's CLIP; OpenAI
  weights use QuickGELU, which is forced for the ``openai`` tag). Weights come from the Hugging
  Face hub on first use (``timm/vit_base_patch16_clip_224.openai``) and are cached under
  ``~/.cache/huggingface``; without internet they must already be there.
- ``ViT-B-16:/path/to/open_clip_pytorch_model.bin`` - an architecture and a weights file.
- ``local-dir:PATH`` - a folder with ``open_clip_config.json`` and weights (open_clip's format).
- ``hf-hub:org/repo`` - an open_clip model on the Hugging Face hub.
- ``toyworld`` - the toy world's tiny CLIP (``primekit.toyworld.clip_dir()``).

The embeddings table has one row per image: ``id`` then ``emb_0 ... emb_{d-1}`` (float32,
L2-normalised), with the model in the Parquet metadata.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
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
from .io import read_table
from .toyworld.clip import clip_dir as toyworld_clip_dir

__all__ = [
    "ClipModel",
    "load_clip",
    "parse_clip_spec",
    "embed_images",
    "embed_texts",
    "read_embeddings",
    "DEFAULT_CLIP",
]

logger = logging.getLogger(__name__)

DEFAULT_CLIP = "ViT-B-16:openai"
_WEIGHTS_HELP = (
    "open_clip downloads them from the Hugging Face hub on first use (e.g. ViT-B-16 'openai' from "
    "https://huggingface.co/timm/vit_base_patch16_clip_224.openai, cached in ~/.cache/huggingface): "
    "run once on a machine with internet, copy that cache, or pass a weights file as "
    "clip:ViT-B-16:/path/to/open_clip_pytorch_model.bin"
)


@dataclass
class ClipModel:
    """A loaded open_clip model with its preprocessing and tokenizer.

    ``model_name`` is what open_clip was given, ``weights`` the pretrained tag, file or folder,
    ``identity`` what keys the cache (name, weights and file sizes/mtimes).
    """

    model: Any
    preprocess: Any
    tokenizer: Any
    spec: str
    model_name: str
    weights: str
    identity: dict
    device: str = "cpu"

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return int(self.encode_texts(["x"]).shape[1])

    def encode_images(self, batch):
        """L2-normalised image embeddings (tensor (b, d)) of a preprocessed batch on ``device``."""
        import torch  # heavy: imported on first use

        feats = self.model.encode_image(batch)
        return torch.nn.functional.normalize(feats.float(), dim=-1)

    def encode_texts(self, texts: Sequence[str]):
        """L2-normalised text embeddings (tensor (n, d))."""
        import torch  # heavy: imported on first use

        tokens = self.tokenizer(list(texts)).to(self.device)
        with torch.inference_mode():
            feats = self.model.encode_text(tokens)
        return torch.nn.functional.normalize(feats.float(), dim=-1)

    @property
    def logit_scale(self) -> float:
        return float(self.model.logit_scale.exp()) if hasattr(self.model, "logit_scale") else 100.0

    @property
    def logit_bias(self) -> float | None:
        """SigLIP's learned bias (None for softmax-trained CLIP models)."""
        bias = getattr(self.model, "logit_bias", None)
        return None if bias is None else float(bias)


def parse_clip_spec(spec: str, *, argument: str = "model") -> tuple[str, str | None]:
    """Split a CLIP spec into (open_clip model name, pretrained tag/file or None)."""
    if not isinstance(spec, str) or not spec.strip():
        raise TypeError(
            f"{argument}: expected a CLIP spec string such as 'ViT-B-16:openai', got {spec!r}"
        )
    s = spec.strip()
    if s.startswith("clip:"):
        s = s[len("clip:") :]
    if s == "toyworld":
        try:
            folder = Path(toyworld_clip_dir())
        except (OSError, RuntimeError) as exc:
            raise ValueError(f"{argument}: the toy world's CLIP is not available ({exc})") from None
        s = f"local-dir:{folder}"
    if s.startswith("local-dir:"):
        folder = Path(s[len("local-dir:") :]).expanduser()
        if not (folder / "open_clip_config.json").is_file():
            raise ValueError(
                f"{argument}: {str(folder)!r} is not an open_clip folder (no open_clip_config.json)"
            )
        return f"local-dir:{folder.resolve()}", None
    if s.startswith("hf-hub:"):
        return s, None
    name, _, pretrained = s.partition(":")
    import open_clip  # heavy: imported on first use

    if name not in open_clip.list_models():
        raise ValueError(
            f"{argument}: unknown CLIP architecture {name!r} in spec {spec!r}; expected e.g. "
            "'clip:ViT-B-16:openai', 'clip:toyworld' or 'clip:local-dir:PATH' "
            "(open_clip.list_models() lists architectures)"
        )
    if pretrained and not Path(pretrained).expanduser().is_file():
        tags = open_clip.list_pretrained_tags_by_model(name)
        if pretrained not in tags:
            raise ValueError(
                f"{argument}: {pretrained!r} is neither a weights file nor a pretrained "
                f"tag of {name} ({', '.join(tags) or 'none'})"
            )
    return name, pretrained or None


def load_clip(spec: str = DEFAULT_CLIP, *, device: str = "cpu") -> ClipModel:
    """Load an open_clip model from a spec (see the module docstring), in eval mode on ``device``.

    Raises ``ValueError`` naming ``model`` for unknown specs and for weights that are not on this
    machine (saying where to get them).
    """
    import open_clip  # heavy: imported on first use

    device = resolve_device(device)
    name, pretrained = parse_clip_spec(spec)
    kwargs: dict[str, Any] = {}
    if pretrained == "openai" or (pretrained and "openai" in Path(pretrained).name):
        kwargs["force_quick_gelu"] = True  # OpenAI's weights were trained with QuickGELU
    if pretrained is None and not name.startswith(("local-dir:", "hf-hub:")):
        raise ValueError(
            f"model: spec {spec!r} names no weights; use e.g. 'clip:{name}:openai' "
            f"or 'clip:{name}:/path/to/weights.bin'"
        )
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            name, pretrained=pretrained, device=device, **kwargs
        )
    except Exception as exc:  # offline hub errors come in many types; all mean "no weights here"
        raise ValueError(
            f"model: cannot load CLIP weights for {spec!r} ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); {_WEIGHTS_HELP}"
        ) from None
    if name.startswith("local-dir:"):
        folder = name[len("local-dir:") :]
        if not any(any(Path(folder).glob(p)) for p in ("*.safetensors", "*.bin", "*.pth", "*.pt")):
            raise ValueError(f"model: {folder!r} has an open_clip config but no weights file")
        weights, identity = folder, file_identity(folder)
    elif pretrained and Path(pretrained).expanduser().is_file():
        weights, identity = str(Path(pretrained).expanduser().resolve()), file_identity(pretrained)
    else:
        weights, identity = pretrained or name, {"tag": pretrained or name}
    model.eval()
    tokenizer = open_clip.get_tokenizer(name)
    return ClipModel(
        model=model,
        preprocess=preprocess,
        tokenizer=tokenizer,
        spec=spec,
        model_name=name,
        weights=weights,
        identity={"model": name, **identity, **kwargs},
        device=device,
    )


@functools.lru_cache(maxsize=8)
def _cached_clip(spec: str, device: str) -> ClipModel:
    return load_clip(spec, device=device)


def _cached_spec(spec: Any, *, device: str | None) -> ClipModel:
    if not isinstance(spec, str):
        raise TypeError(f"model: expected a ClipModel or a spec string, got {type(spec).__name__}")
    return _cached_clip(spec, resolve_device(device or "cpu"))


def _as_clip(model: ClipModel | str, device: str | None) -> ClipModel:
    return ready_model(model, ClipModel, _cached_spec, device)


def embed_texts(
    texts: Sequence[str], *, model: ClipModel | str = DEFAULT_CLIP, device: str | None = None
) -> np.ndarray:
    """L2-normalised text embeddings, array of shape (len(texts), d)."""
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise TypeError("texts: expected a sequence of strings")
    clip = _as_clip(model, device)
    if not len(texts):
        return np.zeros((0, clip.encode_texts(["x"]).shape[1]), dtype=np.float32)
    return clip.encode_texts(texts).cpu().numpy().astype(np.float32)


def embed_images(
    source: str | os.PathLike | pd.DataFrame,
    *,
    model: ClipModel | str = DEFAULT_CLIP,
    out: str | os.PathLike | None = None,
    batch_size: int = 64,
    device: str | None = "cpu",
    num_workers: int = 0,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Embed every image of ``source`` with a CLIP model (cached, resumable).

    Returns
    -------
    DataFrame
        ``id`` then ``emb_0 ... emb_{d-1}`` (float32, unit norm), one row per readable image in
        source order; unreadable images are in ``attrs["errors"]`` and ``<out stem>.errors.csv``.
    """
    images = open_job_source(source, out)
    clip = _as_clip(model, device)
    job, errors = run_table_job(
        images,
        forward=clip.encode_images,
        transform=clip.preprocess,
        settings={"clip": clip.identity, "preprocess": repr(clip.preprocess)},
        kind="embeddings",
        cache_dir=cache_dir,
        batch_size=batch_size,
        num_workers=num_workers,
        device=clip.device,
        progress=progress,
        desc="embed",
    )
    ok = job.ok
    values = job.values[ok]
    table = pd.DataFrame(values, columns=[f"emb_{i}" for i in range(values.shape[1])])
    table.insert(0, "id", images["id"][ok].to_numpy())
    metadata = {
        "model": clip.spec,
        "weights": clip.weights,
        "dim": int(values.shape[1]),
        "normalized": True,
        "n_images": int(len(images)),
        "n_errors": int(len(errors)),
    }
    return finish_job("embed", table, job, errors, out, metadata, n_images=len(images))


def read_embeddings(path: str | os.PathLike) -> tuple[pd.Index, np.ndarray]:
    """Read an embeddings table: (ids as an Index named ``id``, float32 array (n, d))."""
    df = read_table(path, argument="path")
    cols = [c for c in df.columns if c.startswith("emb_")]
    if "id" not in df.columns or not cols:
        raise ValueError(f"path: {str(path)!r} is not an embeddings table (id, emb_0, ...)")
    return pd.Index(df["id"].astype(str), name="id"), df[cols].to_numpy(dtype=np.float32)
