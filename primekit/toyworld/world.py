"""The toy world on disk: seeded splits, cached under ``$PRIMEKIT_HOME/toyworld/<key>/``.

Layout of a world folder (``key`` is a hash of :class:`WorldConfig` and the renderer version, so
any change of the world's settings builds a new folder)::

    config.json                 the settings (written last: its presence marks a complete build)
    attributes/<split>.parquet  one row per sample: id, label, split, scene, attributes, nuisance
    images/<split>/<id>.png     val and test images (a real image collection for the taggers)
    images/<split>.npy          the same images as one uint8 array (classified and tagged from it)
    manifest.csv                id, path, label, split of every saved image
    models/, predictions/, tags/, clip/   written by the training and tagging functions

Splits: ``train`` (classifier, biased distribution with the planted failures), ``tagger`` (the
learned tagger's training split), ``val`` (where PRIME searches), ``test`` (unseen data of paper
4.1) and ``oracle`` (>= 10x val; attributes only, its images are re-rendered on demand).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import atomic_path, read_table, write_table
from .render import ATTRIBUTES, CLASSES, render
from .sampling import check_tags, sample_attributes

__all__ = [
    "RENDER_VERSION",
    "SPLITS",
    "WorldConfig",
    "ToyWorld",
    "primekit_home",
    "build_world",
    "load_world",
    "render_matching",
]

log = logging.getLogger(__name__)

#: Bump when the renderer or the distributions change: the cache key changes with it.
RENDER_VERSION = 1
SPLITS = ("train", "tagger", "val", "test", "oracle")
IMAGE_SPLITS = ("val", "test")
_SPLIT_SEED = {s: i + 1 for i, s in enumerate(SPLITS)}


def primekit_home(home: str | os.PathLike | None = None) -> Path:
    """The data folder: ``home``, else ``$PRIMEKIT_HOME``, else ``~/.cache/primekit``."""
    if home is not None:
        return Path(home).expanduser()
    env = os.environ.get("PRIMEKIT_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "primekit"


@dataclasses.dataclass(frozen=True)
class WorldConfig:
    """Sizes and seed of a toy world (everything else is fixed by the code version).

    Attributes
    ----------
    seed : int
        Seed of every split.
    n_train, n_tagger, n_val, n_test, n_oracle : int
        Split sizes. The oracle must be at least 10x val.
    """

    seed: int = 0
    n_train: int = 12000
    n_tagger: int = 30000
    n_val: int = 12000
    n_test: int = 4000
    n_oracle: int = 120000

    @classmethod
    def smoke(cls, seed: int = 0) -> WorldConfig:
        """Tiny sizes for tests (builds in a few seconds)."""
        return cls(seed=seed, n_train=1800, n_tagger=600, n_val=600, n_test=300, n_oracle=6000)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{f.name}: expected a non-negative integer, got {value!r}")
        if self.n_val < 1 or self.n_train < len(CLASSES):
            raise ValueError("n_val/n_train: the world needs a non-empty val split and a train split")
        if self.n_oracle < 10 * self.n_val:
            raise ValueError(f"n_oracle: must be at least 10 x n_val = {10 * self.n_val}, got {self.n_oracle}")

    def size(self, split: str) -> int:
        return int(getattr(self, f"n_{split}"))

    @property
    def key(self) -> str:
        payload = json.dumps(
            {"config": dataclasses.asdict(self), "version": RENDER_VERSION, "code": _code_hash()},
            sort_keys=True,
        )
        return hashlib.sha1(payload.encode()).hexdigest()[:12]


def _code_hash() -> str:
    """Hash of the renderer and the distributions: editing either builds a new world."""
    here = Path(__file__).parent
    h = hashlib.sha1()
    for name in ("render.py", "sampling.py"):
        h.update((here / name).read_bytes())
    return h.hexdigest()


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
    return split


class ToyWorld:
    """A built toy world: read its splits, attributes and images.

    Use :func:`build_world` to get one. ``root`` is the world's cache folder.
    """

    def __init__(self, root: str | os.PathLike, config: WorldConfig) -> None:
        self.root = Path(root)
        self.config = config
        self._tables: dict[str, pd.DataFrame] = {}

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}={self.config.size(s)}" for s in SPLITS)
        return f"ToyWorld({str(self.root)!r}, {sizes})"

    # ------------------------------------------------------------------ tables
    def table(self, split: str) -> pd.DataFrame:
        """Full attribute table of a split (id, label, split, path, scene, attributes, nuisance)."""
        _check_split(split)
        if split not in self._tables:
            self._tables[split] = read_table(self.root / "attributes" / f"{split}.parquet")
        return self._tables[split]

    def samples(self, split: str) -> pd.DataFrame:
        """Samples table of a split: ``id, label, split, path`` (path is None without saved images)."""
        return self.table(split)[["id", "label", "split", "path"]].copy()

    def attributes(self, split: str) -> pd.DataFrame:
        """Ground-truth attributes: boolean DataFrame, index ``id``, one column per attribute."""
        t = self.table(split)
        return pd.DataFrame(t[list(ATTRIBUTES)].to_numpy(bool), index=pd.Index(t["id"], name="id"), columns=list(ATTRIBUTES))

    def labels(self, split: str) -> pd.Series:
        """True class of every sample, indexed by id."""
        t = self.table(split)
        return pd.Series(t["label"].to_numpy(), index=pd.Index(t["id"], name="id"), name="label")

    def images(self, split: str, ids: Sequence[str] | None = None) -> np.ndarray:
        """Images of a split (uint8, shape (n, 64, 64, 3)), re-rendered from their attribute rows."""
        t = self.table(split)
        pos = None
        if ids is not None:
            pos = pd.Index(t["id"]).get_indexer([str(i) for i in ids])
            if (pos < 0).any():
                raise ValueError(f"ids: {int((pos < 0).sum())} id(s) are not in split {split!r}")
        if split in IMAGE_SPLITS and (self.root / "images" / f"{split}.npy").is_file():
            images = self.split_images(split)
            return np.array(images if pos is None else images[pos])
        return render(t if pos is None else t.iloc[pos])

    def split_images(self, split: str) -> np.ndarray:
        """Every image of a split in row order (uint8, (n, 64, 64, 3)).

        The val and test images are rendered once and kept as ``images/<split>.npy`` (memory-mapped
        on later reads), so classifying and tagging them does not render them again; the other
        splits are rendered on each call (the oracle's would take 1.5 GB).
        """
        _check_split(split)
        if split not in IMAGE_SPLITS:
            return render(self.table(split))
        path = self.root / "images" / f"{split}.npy"
        if not path.is_file():
            _save_array(path, render(self.table(split)))
        return np.load(path, mmap_mode="r")

    def captions(self, split: str, ids: Sequence[str]) -> list[str]:
        """One ``"label: tag, tag, ..."`` string per id (titles for image grids)."""
        attrs = self.attributes(split).loc[[str(i) for i in ids]]
        labels = self.labels(split).loc[attrs.index]
        cols = np.asarray(attrs.columns)
        return [f"{lab}: {', '.join(cols[row])}" for lab, row in zip(labels, attrs.to_numpy(bool), strict=True)]

    def mode_ids(
        self,
        split: str,
        cls: str,
        tags: Sequence[str],
        *,
        n: int | None = None,
        seed: int = 0,
        matrix: pd.DataFrame | None = None,
    ) -> list[str]:
        """Ids of the samples of class ``cls`` carrying every tag (a random ``n`` of them).

        ``matrix`` is the boolean tag matrix to use (default: the ground-truth attributes).
        """
        matrix = self.attributes(split) if matrix is None else matrix
        labels = self.labels(split).reindex(matrix.index)
        mask = (labels == cls).to_numpy().copy()
        for t in tags:
            if t not in matrix.columns:
                raise ValueError(f"tags: {t!r} is not a column of the tag matrix")
            mask &= matrix[t].to_numpy(bool)
        ids = matrix.index[mask].astype(str).tolist()
        if n is not None and len(ids) > n:
            rng = np.random.default_rng(seed)
            ids = [ids[i] for i in sorted(rng.choice(len(ids), n, replace=False))]
        return ids

    def mode_images(self, split: str, cls: str, tags: Sequence[str], *, n: int = 6, seed: int = 0, matrix: pd.DataFrame | None = None) -> np.ndarray:
        """Images (uint8, (k<=n, 64, 64, 3)) of the samples in a mode, for grids like paper Fig. 1."""
        ids = self.mode_ids(split, cls, tags, n=n, seed=seed, matrix=matrix)
        return self.images(split, ids) if ids else np.zeros((0, 64, 64, 3), np.uint8)

    def manifest(self) -> pd.DataFrame:
        """Every saved image: ``id, path, label, split`` (paths are absolute)."""
        return read_table(self.root / "manifest.csv")

    # ------------------------------------------------------------------ cache paths
    def path(self, *parts: str) -> Path:
        """A path inside the world folder (parents created)."""
        p = self.root.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p


def _save_array(path: Path, images: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:  # a file object: np.save would append ".npy" to the temp name
            np.save(fh, images)


def _save_images(world_root: Path, split: str, table: pd.DataFrame, images: np.ndarray) -> None:
    from PIL import Image

    final = world_root / "images" / split
    if final.is_dir() and len(os.listdir(final)) == len(table):
        return
    tmp = world_root / "images" / f".{split}.tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    for sample_id, img in zip(table["id"], images, strict=False):
        Image.fromarray(img).save(tmp / f"{sample_id}.png", compress_level=1)
    if final.exists():
        import shutil

        shutil.rmtree(final)
    os.replace(tmp, final)


def build_world(
    *,
    home: str | os.PathLike | None = None,
    smoke: bool = False,
    seed: int = 0,
    config: WorldConfig | None = None,
    progress: bool = False,
) -> ToyWorld:
    """Build the toy world's splits (or reuse the cached ones) and return it.

    Parameters
    ----------
    home : path-like, optional
        Data folder (default ``$PRIMEKIT_HOME`` or ``~/.cache/primekit``); the world lives in
        ``home/toyworld/<key>/``.
    smoke : bool
        Tiny sizes (:meth:`WorldConfig.smoke`), for tests.
    seed : int
        Seed of the world (ignored when ``config`` is given).
    config : WorldConfig, optional
        Full settings; overrides ``smoke`` and ``seed``.
    progress : bool
        Show tqdm bars.

    Returns
    -------
    ToyWorld
    """
    if config is None:
        config = WorldConfig.smoke(seed) if smoke else WorldConfig(seed=seed)
    if not isinstance(config, WorldConfig):
        raise TypeError(f"config: expected a WorldConfig, got {type(config).__name__}")
    root = primekit_home(home) / "toyworld" / config.key
    world = ToyWorld(root, config)
    if (root / "config.json").is_file():
        return world
    from tqdm.auto import tqdm

    log.info("building toy world in %s", root)
    manifest = []
    for split in tqdm(SPLITS, desc="toy world splits", disable=not progress):
        path = root / "attributes" / f"{split}.parquet"
        distribution = "train" if split == "train" else "natural"
        table = sample_attributes(config.size(split), seed=config.seed * 100 + _SPLIT_SEED[split], distribution=distribution)
        table.insert(0, "id", [f"{split}-{i:06d}" for i in range(len(table))])
        table.insert(2, "split", split)
        if split in IMAGE_SPLITS:
            table.insert(3, "path", [str(root / "images" / split / f"{i}.png") for i in table["id"]])
            images = render(table)
            _save_array(root / "images" / f"{split}.npy", images)
            _save_images(root, split, table, images)
            manifest.append(table[["id", "path", "label", "split"]])
        else:
            table.insert(3, "path", None)
            table["path"] = table["path"].astype(object)
        if not path.is_file():
            write_table(table, path)
    write_table(pd.concat(manifest, ignore_index=True), root / "manifest.csv")
    with atomic_path(root / "config.json") as tmp:
        tmp.write_text(json.dumps({**dataclasses.asdict(config), "version": RENDER_VERSION}, indent=1))
    return world


def load_world(path: str | os.PathLike) -> ToyWorld:
    """Open a built world folder (one that has ``config.json``)."""
    root = Path(path)
    cfg = root / "config.json"
    if not cfg.is_file():
        raise ValueError(f"path: {str(path)!r} is not a built toy world (no config.json)")
    data = json.loads(cfg.read_text())
    data.pop("version", None)
    return ToyWorld(root, WorldConfig(**data))


def render_matching(cls: str, tags: Sequence[str], n: int, *, seed: int = 0) -> tuple[np.ndarray, pd.DataFrame]:
    """Render ``n`` new images of class ``cls`` that carry every attribute in ``tags``.

    The toy world's "text-to-image generator" (paper 4.2): the other attributes follow the natural
    distribution given the forced ones.

    Parameters
    ----------
    cls : str
        A class of :data:`CLASSES`.
    tags : sequence of str
        Attributes of :data:`ATTRIBUTES` the images must have (e.g. a failure mode's tags).
    n : int
        Number of images.
    seed : int
        Seed of the draw.

    Returns
    -------
    images : ndarray of uint8, shape (n, 64, 64, 3)
    attributes : DataFrame
        Their attribute rows (``label``, attributes, nuisance), as from ``sample_attributes``.
    """
    if cls not in CLASSES:
        raise ValueError(f"cls: unknown class {cls!r}; expected one of {CLASSES}")
    tags = check_tags(tags)
    table = sample_attributes(n, seed=seed, cls=cls, force={t: True for t in tags})
    return render(table), table
