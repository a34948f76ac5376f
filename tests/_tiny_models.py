"""Tiny random-weight models and image folders for the tagging/embedding/prediction tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

TINY_CLIP_CFG = {
    "model_cfg": {
        "embed_dim": 32,
        "quick_gelu": True,
        "vision_cfg": {
            "image_size": 32,
            "layers": 1,
            "width": 32,
            "patch_size": 8,
            "head_width": 16,
        },
        "text_cfg": {
            "context_length": 16,
            "vocab_size": 49408,
            "width": 32,
            "heads": 2,
            "layers": 1,
        },
    },
    "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]},
}


def make_tiny_clip(folder: Path, *, seed: int = 0, embed_dim: int = 32) -> Path:
    """Write an open_clip ``local-dir`` folder with a tiny random-weight CLIP (``embed_dim``-dim
    embeddings; RAM's open-set label embeddings need 512, ViT-B/16's)."""
    import open_clip
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    config = {**TINY_CLIP_CFG, "model_cfg": {**TINY_CLIP_CFG["model_cfg"], "embed_dim": embed_dim}}
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    torch.manual_seed(seed)
    cfg = dict(config["model_cfg"])
    model = open_clip.CLIP(
        embed_dim=cfg["embed_dim"],
        vision_cfg=cfg["vision_cfg"],
        text_cfg=cfg["text_cfg"],
        quick_gelu=True,
    )
    torch.save(model.state_dict(), folder / "open_clip_pytorch_model.bin")
    return folder


def make_images(
    folder: Path,
    *,
    n_per_class: int = 4,
    classes=("cat", "dog"),
    size: int = 24,
    seed: int = 0,
    corrupt: bool = False,
) -> Path:
    """Draw an ImageFolder of PNGs (random blocks of colour); optionally one corrupt file."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c in classes:
        (folder / c).mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            arr = rng.integers(0, 256, size=(size // 4, size // 4, 3), dtype=np.uint8)
            Image.fromarray(arr).resize((size, size), Image.NEAREST).save(
                folder / c / f"{i:03d}.png"
            )
    if corrupt:
        (folder / classes[0] / "zz_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    return folder


def make_manifest(folder: Path, out: Path, *, missing: bool = False) -> Path:
    """A CSV manifest id, path, label, split over an image folder (relative paths)."""
    rows = []
    for p in sorted(folder.rglob("*.png")):
        rel = p.relative_to(out.parent) if p.is_relative_to(out.parent) else p
        rows.append(
            {
                "id": p.stem + "_" + p.parent.name,
                "path": str(rel),
                "label": p.parent.name,
                "split": "val",
            }
        )
    if missing:
        rows.append({"id": "ghost", "path": "nowhere/ghost.png", "label": "cat", "split": "val"})
    pd.DataFrame(rows).to_csv(out, index=False)
    return out
