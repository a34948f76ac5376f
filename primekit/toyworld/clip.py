"""A tiny CLIP of the toy world, trained here and loaded through open_clip's ``local-dir:`` schema.

The model is an open_clip custom config (open_clip's ModifiedResNet image tower, the RN50
architecture shrunk to width 16 and one block per stage, on the 64x64 images, and a 2-layer text
transformer using open_clip's own tokenizer), trained contrastively on image/caption
pairs whose captions are bags of the image's true attributes ("a photo of a bird night red grass").
It is saved as a folder holding ``open_clip_config.json`` and ``open_clip_model.safetensors``, so

>>> import open_clip
>>> model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{clip_dir()}")
>>> tokenizer = open_clip.get_tokenizer(f"local-dir:{clip_dir()}")

is the same code path that loads ViT-B/16 for real data.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ._shipped import expand_clip_state, file_digest, load_weights, shipped_weights
from .render import ATTRIBUTES, render
from .sampling import sample_attributes
from .world import ToyWorld, build_world

__all__ = ["CLIP_CONFIG", "clip_dir", "clip_key", "write_clip_folder", "train_clip", "load_clip", "clip_zero_shot_auroc", "caption", "attribute_prompt"]

log = logging.getLogger(__name__)

CLIP_CONFIG: dict = {
    "model_cfg": {
        "embed_dim": 128,
        # a tuple of layers selects open_clip's ModifiedResNet; a 2-layer ViT with 8x8 patches on
        # 32x32 inputs trained as fast but left textures, blur and grain at chance (AUROC 0.80)
        "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 16, "head_width": 32},
        "text_cfg": {"context_length": 24, "vocab_size": 49408, "width": 128, "heads": 4, "layers": 2},
    },
    "preprocess_cfg": {
        "mean": [0.5, 0.5, 0.5],
        "std": [0.5, 0.5, 0.5],
        "interpolation": "bilinear",
        "resize_mode": "shortest",
    },
}
_CLIP_VERSION = 2


def attribute_prompt(tag: str) -> str:
    """The zero-shot prompt of an attribute: ``"a photo of {tag}"``."""
    return f"a photo of {tag}"


def caption(row: pd.Series, rng: np.random.Generator, *, keep: float = 0.8) -> str:
    """A training caption: "a photo of a" + the class and a random subset of the true attributes, shuffled."""
    words = [a for a in ATTRIBUTES if bool(row[a]) and rng.random() < keep]
    words.append(str(row["label"]))
    rng.shuffle(words)
    return "a photo of a " + " ".join(words)


def _captions(table: pd.DataFrame, rng: np.random.Generator, keep: float = 0.8) -> list[str]:
    values = table[list(ATTRIBUTES)].to_numpy(bool)
    labels = table["label"].to_numpy()
    names = np.asarray(ATTRIBUTES, dtype=object)
    out = []
    for row, label in zip(values, labels, strict=False):
        words = list(names[row & (rng.random(len(row)) < keep)]) + [label]
        rng.shuffle(words)
        out.append("a photo of a " + " ".join(words))
    return out


def _to_tensor(images: np.ndarray):
    """uint8 (n, 64, 64, 3) -> float (n, 3, 64, 64) normalised like CLIP_CONFIG's preprocess
    (mean = std = 0.5 on [0, 1] is the classifier's [-1, 1] scaling, so its ``_prep`` serves)."""
    from .train import _prep

    return _prep(images, CLIP_CONFIG["model_cfg"]["vision_cfg"]["image_size"])


def train_clip(
    out: str | os.PathLike,
    *,
    n_images: int = 12000,
    epochs: int = 6,
    batch_size: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    progress: bool = False,
) -> Path:
    """Train the tiny CLIP on freshly sampled natural images of the world and save it to ``out``.

    Parameters
    ----------
    out : path-like
        Destination folder (replaced atomically: written beside it, then renamed).
    n_images : int
        Training images (natural distribution, their own seed; not any split of the world).
    epochs, batch_size, lr, seed :
        Training settings; every epoch draws fresh captions.
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    Path
        ``out``, loadable with ``open_clip.create_model_and_transforms(f"local-dir:{out}")``.
    """
    import open_clip
    import torch
    from tqdm.auto import tqdm

    from .train import _threads

    if n_images < batch_size:
        raise ValueError(f"n_images: must be at least batch_size={batch_size}, got {n_images}")
    out = Path(out)
    t0 = time.perf_counter()
    table = sample_attributes(n_images, seed=10_000 + seed)
    x = torch.cat([_to_tensor(render(table.iloc[i : i + 2048])) for i in range(0, len(table), 2048)])
    torch.manual_seed(seed)
    model_cfg = json.loads(json.dumps(CLIP_CONFIG["model_cfg"]))
    model = open_clip.CLIP(**model_cfg)
    tokenizer = open_clip.get_tokenizer("ViT-B-32", context_length=model_cfg["text_cfg"]["context_length"])
    rng = np.random.default_rng(seed)
    used = torch.zeros(model_cfg["text_cfg"]["vocab_size"], dtype=torch.bool)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    steps_per_epoch = n_images // batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.15)
    gen = torch.Generator().manual_seed(seed)
    bar = tqdm(total=epochs * steps_per_epoch, desc="train tiny CLIP", disable=not progress, leave=False)
    model.train()
    with _threads():
        for _ in range(epochs):
            tokens = tokenizer(_captions(table, rng))
            used[tokens.unique()] = True
            order = torch.randperm(n_images, generator=gen)
            for step in range(steps_per_epoch):
                idx = order[step * batch_size : (step + 1) * batch_size]
                img_f, txt_f, scale = model(x[idx], tokens[idx])
                logits = scale * img_f @ txt_f.T
                target = torch.arange(len(idx))
                loss = (torch.nn.functional.cross_entropy(logits, target) + torch.nn.functional.cross_entropy(logits.T, target)) / 2
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                with torch.no_grad():
                    model.logit_scale.clamp_(0, np.log(100))
                bar.update()
                bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    bar.close()
    model.eval()
    with torch.no_grad():  # rows of tokens no caption uses were never trained: zero, not noise
        model.token_embedding.weight[~used] = 0.0
    write_clip_folder(out, model.state_dict(), {"version": _CLIP_VERSION, "n_images": n_images, "epochs": epochs, "seed": seed, "seconds": time.perf_counter() - t0})
    log.info("tiny CLIP trained in %.1f s", time.perf_counter() - t0)
    return out


def write_clip_folder(out: Path, state: dict, info: dict) -> None:
    """Write an open_clip ``local-dir:`` folder (config and safetensors), replacing ``out`` whole."""
    from safetensors.torch import save_file

    tmp = out.parent / f".{out.name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp / "open_clip_model.safetensors"))
    (tmp / "open_clip_config.json").write_text(json.dumps(dict(CLIP_CONFIG, primekit=info), indent=1))
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)


def clip_key(*, seed: int = 0, smoke: bool = False) -> str:
    """Key of the tiny CLIP's settings (architecture, version, training size and seed)."""
    payload = json.dumps({"config": CLIP_CONFIG, "version": _CLIP_VERSION, "smoke": bool(smoke), "seed": int(seed)}, sort_keys=True)
    return hashlib.sha1(payload.encode()).hexdigest()[:10]


def clip_dir(
    home: str | os.PathLike | None = None,
    *,
    world: ToyWorld | None = None,
    smoke: bool = False,
    seed: int = 0,
    retrain: bool = False,
    progress: bool = False,
) -> Path:
    """Folder of the toy world's tiny CLIP: the shipped one, else the cached one, else trained.

    Parameters
    ----------
    home : path-like, optional
        Data folder (default ``$PRIMEKIT_HOME`` or ``~/.cache/primekit``).
    world : ToyWorld, optional
        The world whose folder holds the model (default: ``build_world(home=home, smoke=smoke,
        seed=seed)``).
    smoke : bool
        Tiny training run (seconds; poor quality), for tests.
    seed : int
        Seed of the world and of the training.
    retrain : bool
        Train it here from scratch even when primekit ships it or it is cached.

    Returns
    -------
    Path
        A folder for ``open_clip.create_model_and_transforms(f"local-dir:{path}")``. The shipped
        model (weights only, float16, see :mod:`primekit.toyworld._shipped`) is unpacked into the
        world folder as ``clip-v{version}-s{seed}-shipped-{digest}``.
    """
    world = world if world is not None else build_world(home=home, smoke=smoke, seed=seed)
    shipped = None if retrain or smoke else shipped_weights("clip", seed=seed, world_key=world.config.key, config_key=clip_key(seed=seed))
    if shipped is not None:
        digest = file_digest(shipped)[:12]
        path = world.root / f"clip-v{_CLIP_VERSION}-s{seed}-shipped-{digest}"
        if not (path / "open_clip_config.json").is_file():
            write_clip_folder(path, expand_clip_state(load_weights(shipped)), {"version": _CLIP_VERSION, "seed": seed, "shipped": digest})
        return path
    settings = dict(n_images=512, epochs=2) if smoke else {}
    path = world.root / f"clip-v{_CLIP_VERSION}{'-smoke' if smoke else ''}-s{seed}"
    if retrain or not (path / "open_clip_config.json").is_file():
        train_clip(path, seed=seed, progress=progress, **settings)
    return path


def load_clip(path: str | os.PathLike):
    """Load a CLIP folder through open_clip: returns ``(model, preprocess, tokenizer)``."""
    import open_clip

    name = f"local-dir:{Path(path)}"
    model, _, preprocess = open_clip.create_model_and_transforms(name)
    model.eval()
    return model, preprocess, open_clip.get_tokenizer(name)


def clip_zero_shot_auroc(path: str | os.PathLike, world: ToyWorld, *, split: str = "test", max_images: int = 4000) -> pd.DataFrame:
    """Zero-shot quality of a CLIP folder on a split of the world.

    For every attribute, the AUROC of the image/prompt cosine similarity
    (prompt :func:`attribute_prompt`) against the attribute's ground truth.

    Returns
    -------
    DataFrame
        Index tag; columns ``auroc, positives``. Its mean is the headline number.
    """
    import torch
    from sklearn.metrics import roc_auc_score

    from .train import _threads

    model, _, tokenizer = load_clip(path)
    table = world.table(split).iloc[:max_images]
    with torch.no_grad(), _threads():
        img = torch.cat([model.encode_image(_to_tensor(render(table.iloc[i : i + 2048])), normalize=True) for i in range(0, len(table), 2048)])
        txt = model.encode_text(tokenizer([attribute_prompt(a) for a in ATTRIBUTES]), normalize=True)
    sims = (img @ txt.T).numpy()
    rows = {}
    for j, a in enumerate(ATTRIBUTES):
        truth = table[a].to_numpy(bool)
        rows[a] = (roc_auc_score(truth, sims[:, j]) if 0 < truth.sum() < len(truth) else np.nan, int(truth.sum()))
    return pd.DataFrame.from_dict(rows, orient="index", columns=["auroc", "positives"]).rename_axis("tag")
