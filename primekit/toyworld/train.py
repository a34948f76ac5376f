"""The toy world's learned models: the classifier under study and the learned multi-label tagger.

Both are small CNNs on the CPU. The classifier sees images average-pooled to 32x32, which keeps
its training within a minute on 2 cores (36-49 s measured, rendering included); the tagger's
three networks see the full 64x64 images (textures, blur and grain do not survive the pooling).
Trained weights and their predictions are cached in the world folder under a key of their settings.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import time

import numpy as np
import pandas as pd

from ..io import read_table, write_table
from ..tags import matrix_to_tags
from ._shipped import file_digest, load_weights, save_weights, shipped_weights
from .render import ATTRIBUTES, CLASSES, n_threads, render
from .world import IMAGE_SPLITS, SPLITS, ToyWorld

__all__ = [
    "ClassifierConfig",
    "TaggerConfig",
    "train_classifier",
    "load_classifier",
    "predict",
    "predict_images",
    "train_tagger",
    "learned_tags",
]

log = logging.getLogger(__name__)

_CHUNK = 2048


def _torch():
    import torch

    return torch


@contextlib.contextmanager
def _threads(n: int | None = None):
    """Run torch on ``n`` threads (default :func:`~primekit.toyworld.render.n_threads`).

    On an idle 2-core machine two threads train ~1.6x faster than one; on a busy one two OpenMP
    threads can run several times slower (set ``PRIMEKIT_THREADS=1``)."""
    torch = _torch()
    n = n_threads(n)
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


#: Bump when :func:`_net` changes (every cached classifier and tagger is then retrained).
_NET_VERSION = 2
#: Bump when the tagger's assembly or training changes (:func:`_tagger_net`, its losses in
#: :func:`train_tagger`); :data:`TEXTURE_TAGS` and :data:`POSE_TAGS` are part of its key by themselves.
_TAGGER_VERSION = 3


def _net(n_out: int, width: int = 16, size: int = 32, *, fine: bool = False):
    """Small CNN: a strided stem, conv/max-pool stages and a global max pool (so a small object
    anywhere in the frame still drives the logits). ``size=64`` (full resolution, for blur and
    grain) adds one stage in front. ``fine=True``: a stem without stride (3x3 convolutions at the
    input resolution, each followed by 2x2 max pooling), so that one-pixel detail (the spots of a
    small object are ~2 px across, its stripes ~3 px) reaches the first features intact."""
    torch = _torch()
    nn = torch.nn

    def block(c_in, c_out, **kw):
        return [nn.Conv2d(c_in, c_out, kw.pop("k", 3), padding=kw.pop("p", 1), **kw), nn.BatchNorm2d(c_out), nn.ReLU()]

    stem = block(3, width, k=5, p=2, stride=2)
    if fine:
        stem = [*block(3, width), nn.MaxPool2d(2), *([*block(width, width), nn.MaxPool2d(2)] if size == 64 else [])]
    elif size == 64:
        stem = [*block(3, width, stride=2), *block(width, width), nn.MaxPool2d(2)]
    return nn.Sequential(
        *stem,
        *block(width, 2 * width),
        nn.MaxPool2d(2),
        *block(2 * width, 4 * width),
        nn.MaxPool2d(2),
        *block(4 * width, 4 * width),
        nn.AdaptiveMaxPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(4 * width, n_out),
    )


def _prep(images: np.ndarray, size: int = 32):
    """uint8 (n, 64, 64, 3) -> float tensor (n, 3, size, size) in [-1, 1] (2x2 average pooling
    for ``size=32``)."""
    torch = _torch()
    if images.ndim != 4 or images.shape[1:] != (64, 64, 3):
        raise ValueError(f"images: expected shape (n, 64, 64, 3), got {images.shape}")
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8)).permute(0, 3, 1, 2).float()
    if size == 32:
        with _threads():
            x = torch.nn.functional.avg_pool2d(x, 2)
    return (x / 127.5 - 1.0).contiguous()


def _chunks(table: pd.DataFrame, progress: bool, desc: str):
    """The rendered images of a table, chunk by chunk, with a tqdm bar."""
    from tqdm.auto import tqdm

    for start in tqdm(range(0, len(table), _CHUNK), desc=desc, disable=not progress, leave=False):
        yield render(table.iloc[start : start + _CHUNK])


def _split_chunks(world: ToyWorld, split: str, progress: bool, desc: str):
    """The images of a split, chunk by chunk: val and test from their cached array
    (:meth:`ToyWorld.split_images`), the others rendered."""
    from tqdm.auto import tqdm

    if split not in IMAGE_SPLITS:
        yield from _chunks(world.table(split), progress, desc)
        return
    images = world.split_images(split)
    for start in tqdm(range(0, len(images), _CHUNK), desc=desc, disable=not progress, leave=False):
        yield np.array(images[start : start + _CHUNK])  # a writable copy of the memory-mapped rows


def _render_prep(table: pd.DataFrame, progress: bool, desc: str, size: int = 32):
    """Render a table chunk by chunk and keep only the pooled tensors (memory-light)."""
    torch = _torch()
    parts = [_prep(images, size) for images in _chunks(table, progress, desc)]
    return torch.cat(parts) if parts else torch.empty(0, 3, size, size)


def _render_u8(table: pd.DataFrame, progress: bool, desc: str):
    """Render a table into one uint8 tensor (n, 3, 64, 64); :func:`_scaled` turns a batch of it
    into what ``_prep(images, 64)`` gives (a quarter of the memory of float images)."""
    torch = _torch()
    parts = [torch.from_numpy(images).permute(0, 3, 1, 2).contiguous() for images in _chunks(table, progress, desc)]
    return torch.cat(parts) if parts else torch.empty(0, 3, 64, 64, dtype=torch.uint8)


def _scaled(x):
    return x.float() / 127.5 - 1.0


def _mirrored(x, generator):
    """A batch (n, c, h, w) with a random half of its images mirrored left-right."""
    torch = _torch()
    flip = torch.rand(len(x), generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def _positive_ints(**values) -> None:
    for name, value in values.items():
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")


class ClassifierConfig(dict):
    """Settings of the classifier (a dict, so it is hashed and stored as JSON).

    ``size`` is the input resolution the network sees: 32 (2x2-pooled images) or 64 (full).
    """

    def __init__(self, *, epochs: int = 10, batch_size: int = 128, lr: float = 3e-3, width: int = 16, seed: int = 0, size: int = 32):
        if size not in (32, 64):
            raise ValueError(f"size: expected 32 or 64, got {size!r}")
        _positive_ints(epochs=epochs, batch_size=batch_size, width=width)
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < 1:
            raise ValueError(f"lr: expected a learning rate in (0, 1), got {lr!r}")
        super().__init__(epochs=int(epochs), batch_size=int(batch_size), lr=float(lr), width=int(width), seed=int(seed), size=int(size))

    @property
    def key(self) -> str:
        payload = json.dumps({**self, "net": _NET_VERSION}, sort_keys=True)
        return hashlib.sha1(payload.encode()).hexdigest()[:10]


class TaggerConfig(ClassifierConfig):
    """Settings of the learned tagger's three networks (see :func:`train_tagger`): the fields of
    :class:`ClassifierConfig` for its appearance network (by default at full resolution: blur and
    grain do not survive 2x2 pooling), ``texture_*`` for its texture network and ``pose_*`` for its
    pose network (epochs, input resolution 32 or 64, width)."""

    def __init__(
        self,
        *,
        epochs: int = 8,
        batch_size: int = 128,
        lr: float = 3e-3,
        width: int = 16,
        seed: int = 1,
        size: int = 64,
        texture_epochs: int = 6,
        texture_size: int = 64,
        texture_width: int = 16,
        pose_epochs: int = 8,
        pose_size: int = 64,
        pose_width: int = 16,
    ):
        super().__init__(epochs=epochs, batch_size=batch_size, lr=lr, width=width, seed=seed, size=size)
        for branch, (n_epochs, n_size, n_width) in {"texture": (texture_epochs, texture_size, texture_width), "pose": (pose_epochs, pose_size, pose_width)}.items():
            if n_size not in (32, 64):
                raise ValueError(f"{branch}_size: expected 32 or 64, got {n_size!r}")
            _positive_ints(**{f"{branch}_epochs": n_epochs, f"{branch}_width": n_width})
            self.update({f"{branch}_epochs": int(n_epochs), f"{branch}_size": int(n_size), f"{branch}_width": int(n_width)})

    @classmethod
    def smoke(cls, seed: int = 1) -> TaggerConfig:
        """A cheap tagger for tiny worlds (tests, ``smoke`` runs): every network at 32 pixels."""
        return cls(size=32, texture_size=32, pose_size=32, seed=seed)

    @property
    def key(self) -> str:
        payload = json.dumps(
            {**self, "net": _NET_VERSION, "tagger": _TAGGER_VERSION, "texture_tags": TEXTURE_TAGS, "pose_tags": POSE_TAGS}, sort_keys=True
        )
        return hashlib.sha1(payload.encode()).hexdigest()[:10]


#: Tags the learned tagger predicts with its texture and its pose network (see :func:`train_tagger`).
TEXTURE_TAGS: tuple[str, ...] = ("striped", "spotted")
POSE_TAGS: tuple[str, ...] = ("upside down",)
#: The tagger's networks: name -> the prefix of its settings in :class:`TaggerConfig` ("" for the
#: appearance network's) and whether its stem keeps full resolution (``_net(fine=True)``).
_BRANCHES = {"appearance": ("", False), "texture": ("texture_", True), "pose": ("pose_", True)}


def _tagger_net(config):
    """The learned tagger: one :func:`_net` per entry of :data:`_BRANCHES` (appearance for every tag
    but :data:`TEXTURE_TAGS` and :data:`POSE_TAGS`, texture and pose for those), each on the
    images at its own resolution (``config["size"]``, ``["texture_size"]``, ``["pose_size"]``).
    The forward pass takes full-resolution tensors (see :func:`_prep` with ``size=64``), pools
    them for each network and returns logits in :data:`ATTRIBUTES` order."""
    torch = _torch()
    nn = torch.nn
    texture, pose = [ATTRIBUTES.index(t) for t in TEXTURE_TAGS], [ATTRIBUTES.index(t) for t in POSE_TAGS]
    tags = {"appearance": [i for i in range(len(ATTRIBUTES)) if i not in texture + pose], "texture": texture, "pose": pose}
    order = torch.as_tensor(np.argsort([i for name in _BRANCHES for i in tags[name]]))

    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            for name, (prefix, fine) in _BRANCHES.items():
                setattr(self, name, _net(len(tags[name]), config[f"{prefix}width"], config[f"{prefix}size"], fine=fine))
            self.register_buffer("order", order, persistent=False)

        @staticmethod
        def at(x, size):
            if x.shape[-1] < size or x.shape[-1] % size:
                raise ValueError(f"images: the tagger needs {size}-pixel multiples (64 x 64 images), got {tuple(x.shape)}")
            return x if x.shape[-1] == size else torch.nn.functional.avg_pool2d(x, x.shape[-1] // size)

        def forward(self, x):
            logits = [getattr(self, name)(self.at(x, config[f"{prefix}size"])) for name, (prefix, _) in _BRANCHES.items()]
            return torch.cat(logits, dim=1)[:, self.order]

    model = _sized(Tagger(), 64)
    model.tag_idx_ = tags  # network name -> indices into ATTRIBUTES of its tags
    return model


def _fit(model, x, y, *, loss_fn, epochs: int, batch_size: int, lr: float, seed: int, progress: bool, desc: str, transform=None):
    """Train ``model`` on ``(x, y)`` (``transform`` maps a batch of ``x`` to the model's input)."""
    torch = _torch()
    from tqdm.auto import tqdm

    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * ((len(x) + batch_size - 1) // batch_size)
    if steps >= 10:
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.2)
    else:  # too few steps for a one-cycle warm-up (it divides by zero at 5): a constant rate
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    model.train()
    stack = contextlib.ExitStack()
    stack.enter_context(_threads())
    bar = tqdm(total=steps, desc=desc, disable=not progress, leave=False)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), batch_size):
            idx = order[start : start + batch_size]
            opt.zero_grad(set_to_none=True)
            batch = x[idx] if transform is None else transform(x[idx])
            loss = loss_fn(model(batch), y[idx])
            loss.backward()
            opt.step()
            sched.step()
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    bar.close()
    stack.close()
    model.eval()
    return model


def _fold_batch_norms(module) -> None:
    """Fold every ``Conv2d`` followed by a ``BatchNorm2d`` inside the ``Sequential`` blocks of an
    eval-mode ``module`` into one convolution, in place (``fuse_conv_bn_eval``: the same function
    up to float rounding, one pass less over the activations)."""
    torch = _torch()
    nn = torch.nn
    for child in module.children():
        _fold_batch_norms(child)
    if not isinstance(module, nn.Sequential):
        return
    names = list(module._modules)
    for a, b in zip(names, names[1:], strict=False):
        conv, norm = module._modules[a], module._modules[b]
        if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
            module._modules[a] = nn.utils.fusion.fuse_conv_bn_eval(conv, norm)
            module._modules[b] = nn.Identity()


def _inference_copy(model):
    """A copy of an eval-mode network for inference: batch norms folded into their convolutions
    (:func:`_fold_batch_norms`) and channels-last memory layout, oneDNN's fast path for these
    small convolutions. Together they halve the CPU time of classifying the oracle split (0.80
    instead of 1.66 CPU-seconds per 4,096 images on one core); the logits agree to ~1e-5."""
    torch = _torch()
    if model.training:
        return model
    fast = copy.deepcopy(model)
    _fold_batch_norms(fast)
    return fast.to(memory_format=torch.channels_last)


def _logits(model, x, batch_size: int = 4096):
    torch = _torch()
    if not len(x):
        return torch.empty(0)
    fast = _inference_copy(model)
    with torch.inference_mode(), _threads():
        parts = [fast(x[i : i + batch_size].contiguous(memory_format=torch.channels_last)) for i in range(0, len(x), batch_size)]
    return torch.cat(parts).contiguous()


def _seed_all(seed: int) -> None:
    torch = _torch()
    torch.manual_seed(seed)


def train_classifier(world: ToyWorld, *, config: ClassifierConfig | None = None, retrain: bool = False, progress: bool = False):
    """The toy world's classifier: the shipped one, else the cached one, else trained on ``train``.

    Parameters
    ----------
    world : ToyWorld
    config : ClassifierConfig, optional
        Epochs, batch size, learning rate, width, seed.
    retrain : bool
        Train it here from scratch (and cache it) even when primekit ships it or it is cached.
    progress : bool
        Show tqdm bars.

    Returns
    -------
    torch.nn.Module
        The network (eval mode); it maps pooled images (see :func:`predict_images`) to logits over
        :data:`CLASSES`. ``model.train_seconds_`` holds the training time (NaN when loaded),
        ``model.source_`` is ``"shipped"``, ``"cache"`` or ``"trained"`` and ``model.weights_id_``
        the first 12 hex digits of its weights file's SHA-256 (``model.weights_file_``).
    """
    torch = _torch()
    config = ClassifierConfig() if config is None else config

    def fit(model, table):
        x = _render_prep(table, progress, "render train", config["size"])
        y = torch.as_tensor(pd.Categorical(table["label"], categories=CLASSES).codes.astype(np.int64))
        _fit(model, x, y, loss_fn=torch.nn.functional.cross_entropy, progress=progress, desc="train classifier", **_opts(config))

    return _train_cached(
        world, "classifier", config, split="train",
        build=lambda: _sized(_net(len(CLASSES), config["width"], config["size"]), config["size"]), fit=fit,
        retrain=retrain,
    )


def _sized(model, size: int):
    """``model`` with ``input_size_ = size`` (the resolution :func:`_prep` must produce for it)."""
    model.input_size_ = size
    return model


def _opts(config) -> dict:
    return {k: config[k] for k in ("epochs", "batch_size", "lr", "seed")}


def _train_cached(world, name: str, config, *, split: str, build, fit, retrain: bool = False):
    """Load ``name`` into ``build()`` from the shipped weights (if trained for this world and
    ``config``), else from ``models/{name}-{config.key}.safetensors``, else train it with
    ``fit(model, table)`` on ``split`` and save it there atomically (``retrain``: train anyway).
    Sets ``model.train_seconds_`` (NaN when loaded), ``source_`` and ``weights_id_``; ``build``
    sets ``model.input_size_``, the resolution of the images it is fed."""
    path = world.path("models", f"{name}-{config.key}.safetensors")
    source, origin = None, None
    if not retrain:
        shipped = shipped_weights(name, seed=world.config.seed, world_key=world.config.key, config_key=config.key)
        source, origin = (shipped, "shipped") if shipped is not None else ((path, "cache") if path.is_file() else (None, None))
    if source is not None:
        model = build()
        model.load_state_dict(load_weights(source))
        model.eval()
        model.train_seconds_, model.source_, model.weights_id_ = float("nan"), origin, file_digest(source)[:12]
        model.weights_file_ = source
        return model
    t0 = time.perf_counter()
    _seed_all(config["seed"])
    model = build()
    fit(model, world.table(split))
    model.eval()
    digest = save_weights(model.state_dict(), path)
    model.train_seconds_, model.source_, model.weights_id_ = time.perf_counter() - t0, "trained", digest[:12]
    model.weights_file_ = path
    log.info("%s trained in %.1f s", name, model.train_seconds_)
    return model


def load_classifier(world: ToyWorld, *, config: ClassifierConfig | None = None):
    """The cached classifier (trained first if missing); same as :func:`train_classifier`."""
    return train_classifier(world, config=config)


def predict_images(model, images: np.ndarray) -> pd.DataFrame:
    """Classify images (uint8, (n, 64, 64, 3)); returns ``pred, confidence`` (one row per image)."""
    torch = _torch()
    size = getattr(model, "input_size_", 32)
    probs = torch.softmax(_logits(model, _prep(images, size)), dim=1).numpy() if len(images) else np.zeros((0, len(CLASSES)))
    return pd.DataFrame(
        {"pred": np.asarray(CLASSES, dtype=object)[probs.argmax(1)] if len(probs) else [], "confidence": probs.max(1)}
    )


def predict(
    world: ToyWorld, split: str, *, config: ClassifierConfig | None = None, model=None, progress: bool = False
) -> pd.DataFrame:
    """The classifier's predictions on a split (cached): the samples table of the data contract.

    ``model`` is the classifier to run (default: :func:`train_classifier` with ``config``); the
    cache is keyed by its weights, so a retrained classifier never reuses another's predictions.

    Returns
    -------
    DataFrame
        ``id, label, pred, correct, confidence, split, path`` (one row per sample of the split).
    """
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
    config = ClassifierConfig() if config is None else config
    model = train_classifier(world, config=config, progress=progress) if model is None else model
    path = world.path("predictions", f"{split}-{config.key}-{model.weights_id_}.parquet")
    if path.is_file():
        return read_table(path)
    table = world.table(split)
    torch = _torch()
    probs = np.concatenate(
        [torch.softmax(_logits(model, _prep(images, model.input_size_)), dim=1).numpy() for images in _split_chunks(world, split, progress, f"predict {split}")]
    )
    out = pd.DataFrame(
        {
            "id": table["id"].to_numpy(),
            "label": table["label"].to_numpy(),
            "pred": np.asarray(CLASSES, dtype=object)[probs.argmax(1)],
        }
    )
    out["correct"] = out["label"] == out["pred"]
    out["confidence"] = probs.max(1)
    out["split"] = split
    out["path"] = table["path"].to_numpy()
    write_table(out, path)
    return out


# --------------------------------------------------------------------------- learned tagger
def train_tagger(world: ToyWorld, *, config: TaggerConfig | None = None, retrain: bool = False, progress: bool = False):
    """The learned multi-label tagger: shipped, else cached, else trained on the ``tagger`` split
    (``retrain``: trained here in any case; see :func:`train_classifier` for the attributes).

    Three small CNNs with one sigmoid output per attribute of :data:`ATTRIBUTES` between them,
    each trained with binary cross-entropy on the ground truth of a split the classifier never
    sees, positives up-weighted by sqrt(negatives / positives) (at most x5, so rare tags are not
    drowned by their negatives):

    - the appearance network (images at ``config["size"]``, 64 by default) for every tag but
      :data:`TEXTURE_TAGS` and :data:`POSE_TAGS`;
    - the texture network (``texture_size``, 64) for ``striped`` and ``spotted``, with a stem
      without stride (``_net(fine=True)``). Inside the appearance network these two were its
      weakest tags (val precision/recall 0.89/0.72 and 0.77/0.58, recall 0.00 on blurry spotted
      objects); a network of their own reached 0.86/0.79 for ``spotted``
      with the strided stem and 0.93/0.87 with the fine one (12,000 images, 4 epochs; the shipped
      tagger, 30,000 images, 6 epochs: 0.96/0.92);
    - the pose network (``pose_size``, 64, the same fine stem) for ``upside down``. Inside a
      shared network that tag stays near chance (AUROC 0.56 in the appearance network, 0.77
      beside the texture tags); alone it reaches AUROC 0.91 (0.62 at 32 px with the strided
      stem; 12,000 images, 4 epochs), and val precision/recall 0.90/0.88 in the shipped tagger.

    The texture and pose networks train on images mirrored left-right at random (a mirrored
    image keeps its texture and pose, not its left/right, so the appearance network does not).
    The returned module takes full-resolution images and gives logits in :data:`ATTRIBUTES`
    order.

    Returns
    -------
    torch.nn.Module
        The tagger (eval mode); ``model.train_seconds_`` holds the training time.
    """
    torch = _torch()
    config = TaggerConfig() if config is None else config
    if not isinstance(config, TaggerConfig):
        raise TypeError(f"config: expected a TaggerConfig, got {type(config).__name__}")

    def weighted_bce(y):
        pos = y.mean(0).clamp(min=1e-3)
        weight = ((1 - pos) / pos).sqrt().clamp(1.0, 5.0)
        return lambda logits, target: torch.nn.functional.binary_cross_entropy_with_logits(logits, target, pos_weight=weight)

    def fit(model, table):
        x = _render_u8(table, progress, "render tagger")  # uint8: 30,000 images in 370 MB
        y = torch.as_tensor(table[list(ATTRIBUTES)].to_numpy(np.float32).copy())
        flips = torch.Generator().manual_seed(config["seed"])
        for name, (prefix, _) in _BRANCHES.items():
            target, size, mirror = y[:, model.tag_idx_[name]], config[f"{prefix}size"], name != "appearance"
            _fit(
                getattr(model, name), x, target, loss_fn=weighted_bce(target), progress=progress, desc=f"train tagger ({name})",
                transform=lambda b, size=size, mirror=mirror: model.at(_mirrored(_scaled(b), flips) if mirror else _scaled(b), size),
                **{**_opts(config), "epochs": config[f"{prefix}epochs"]},
            )

    return _train_cached(world, "tagger", config, split="tagger", build=lambda: _tagger_net(config), fit=fit, retrain=retrain)


def learned_tags(
    world: ToyWorld,
    split: str,
    *,
    config: TaggerConfig | None = None,
    model=None,
    min_score: float = 0.01,
    progress: bool = False,
) -> pd.DataFrame:
    """Tag a split with the learned tagger: the long tag table ``id, tag, score`` (cached).

    ``model`` is the tagger (default: :func:`train_tagger` with ``config``; the cache is keyed by
    its weights). Scores are sigmoid probabilities; rows with ``score < min_score`` are dropped
    (they can never pass a sensible threshold) to keep the table small.
    """
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
    if not 0 <= min_score < 0.5:
        raise ValueError(f"min_score: must lie in [0, 0.5), got {min_score}")
    config = TaggerConfig() if config is None else config
    model = train_tagger(world, config=config, progress=progress) if model is None else model
    path = world.path("tags", f"learned-{split}-{config.key}-{model.weights_id_}.parquet")
    if path.is_file():
        return read_table(path)
    torch = _torch()
    parts = [torch.sigmoid(_logits(model, _prep(images, model.input_size_))).numpy() for images in _split_chunks(world, split, progress, f"tag {split}")]
    scores = np.concatenate(parts).astype(np.float64) if parts else np.zeros((0, len(ATTRIBUTES)))
    ids = world.table(split)["id"].to_numpy()
    matrix = pd.DataFrame(scores >= min_score, index=pd.Index(ids, name="id"), columns=list(ATTRIBUTES))
    long = matrix_to_tags(matrix, scores=pd.DataFrame(scores, index=matrix.index, columns=matrix.columns))
    write_table(long, path, metadata={"tagger": "toyworld-learned", "config": dict(config), "min_score": min_score, "weights": model.weights_id_, "source": model.source_})
    return long
