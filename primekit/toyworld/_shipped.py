"""Weights files of the toy world's models, and the pretrained ones shipped with primekit.

Every toy-world model (classifier, learned tagger, tiny CLIP) is stored weights only, as a
safetensors file: loading one never unpickles anything. The package ships one of each for the
default world of seed 0 in ``primekit/toyworld/weights/``: ``{kind}-s{seed}.safetensors`` beside
``{kind}-s{seed}.json``, which records the command that made it, the world and settings it was
trained for (``world_key``, ``config_key``), the SHA-256 of the weights, the machine, and the
training metrics (see :mod:`primekit.toyworld.pretrained`). A shipped model is used only for the
world and settings it was trained for: any change of the renderer, the distributions or the
model's settings changes a key, and the model is then trained here as before.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from ..io import atomic_path

__all__ = ["WEIGHTS_DIR", "KINDS", "shipped_record", "shipped_weights", "save_weights", "load_weights", "file_digest"]

log = logging.getLogger(__name__)

#: Folder of the shipped weights (package data).
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: The toy-world models that can be shipped.
KINDS = ("classifier", "tagger", "clip")


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
    return kind


def record_path(kind: str, seed: int, folder: str | os.PathLike = WEIGHTS_DIR) -> Path:
    """``folder/{kind}-s{seed}.json``: the record beside a weights file."""
    return Path(folder) / f"{_check_kind(kind)}-s{int(seed)}.json"


def weights_path(kind: str, seed: int, folder: str | os.PathLike = WEIGHTS_DIR) -> Path:
    """``folder/{kind}-s{seed}.safetensors``."""
    return Path(folder) / f"{_check_kind(kind)}-s{int(seed)}.safetensors"


def shipped_record(kind: str, seed: int, folder: str | os.PathLike = WEIGHTS_DIR) -> dict | None:
    """The JSON record of a shipped model (None when primekit ships none for this seed)."""
    path = record_path(kind, seed, folder)
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def shipped_weights(kind: str, *, seed: int, world_key: str, config_key: str, folder: str | os.PathLike = WEIGHTS_DIR) -> Path | None:
    """The shipped weights file of ``kind`` if it was trained for this world and these settings.

    Returns None when none is shipped for ``seed`` or when its recorded ``world_key`` /
    ``config_key`` differ from the given ones (the caller then trains the model). A file whose
    SHA-256 does not match its record raises ``ValueError`` (a damaged install).
    """
    record = shipped_record(kind, seed, folder)
    if record is None:
        return None
    if record.get("world_key") != world_key or record.get("config_key") != config_key:
        log.info("shipped %s-s%d is for another world or settings; training it here", kind, seed)
        return None
    path = weights_path(kind, seed, folder)
    if not path.is_file():
        raise ValueError(f"{path}: the shipped weights are missing (the package data is incomplete)")
    digest = file_digest(path)
    if digest != record.get("sha256"):
        raise ValueError(f"{path}: SHA-256 {digest[:12]}... does not match its record {str(record.get('sha256'))[:12]}...")
    return path


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (hex)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def save_weights(state_dict, path: str | os.PathLike, *, metadata: dict[str, str] | None = None) -> str:
    """Write a torch state dict as safetensors, atomically; returns the file's SHA-256."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().contiguous() for k, v in state_dict.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return file_digest(path)


def load_weights(path: str | os.PathLike) -> dict:
    """Read a safetensors file into a state dict of float32 (or integer) CPU tensors."""
    import torch
    from safetensors.torch import load_file

    state = load_file(str(path))
    return {k: (v.float() if v.is_floating_point() and v.dtype != torch.float32 else v) for k, v in state.items()}


def compact_clip_state(state: dict, used_tokens: np.ndarray) -> dict:
    """A tiny-CLIP state dict as shipped: float16 tensors, and only the rows of the token
    embedding of tokens the world's captions use (``token_embedding.rows`` holds their ids).

    The other 49,000 rows of open_clip's vocabulary are never trained by the world's captions
    (:func:`~primekit.toyworld.clip.train_clip` sets them to zero), and storing them would be 25 MB
    of zeros; float16 halves the rest (3.6 MB instead of 7.1 MB).
    """
    import torch

    out = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items() if k != "token_embedding.weight"}
    rows = torch.as_tensor(np.asarray(used_tokens, dtype=np.int64))
    out["token_embedding.weight"] = state["token_embedding.weight"][rows].half()
    out["token_embedding.rows"] = rows
    out["token_embedding.vocab_size"] = torch.tensor([state["token_embedding.weight"].shape[0]], dtype=torch.int64)
    return out


def expand_clip_state(state: dict) -> dict:
    """Inverse of :func:`compact_clip_state`: the full float32 state dict open_clip loads."""
    import torch

    state = dict(state)
    rows = state.pop("token_embedding.rows")
    vocab = int(state.pop("token_embedding.vocab_size")[0])
    values = state.pop("token_embedding.weight").float()
    full = torch.zeros(vocab, values.shape[1])
    full[rows] = values
    state["token_embedding.weight"] = full
    return {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
