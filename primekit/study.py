"""One object that holds everything an experiment notebook needs about a data set.

The notebooks of ``notebooks/`` take a ``dataset`` parameter and call :func:`load_study`; what
they get back has the same shape for the embedded toy world and for a real data set, so that a
notebook never branches on where its data came from.

- ``"toyworld"``: the embedded world (built, trained and tagged on first use, cached under
  ``$PRIMEKIT_HOME``), with ground-truth tags, its tiny CLIP and its renderer as the generator of
  paper 4.2.
- a folder: ``samples.parquet`` (or ``.csv``; the samples contract with a ``split`` column holding
  ``val`` and ``test``), ``tags.parquet`` (the long tag table, e.g. from ``primekit tag``),
  optionally ``embeddings.parquet`` (from ``primekit embed``), ``truth.parquet`` (ground-truth
  attributes as a long tag table) and ``study.json`` with ``{"clip": "clip:ViT-B-16:openai",
  "threshold": 0.5, "search": {...}}``; ``primekit study`` writes such a folder. For the generated images of paper 4.2,
  pass ``generator="diffusers:<model>"`` (:class:`primekit.generate.DiffusersGenerator`) and the
  ``classifier`` under study (a :mod:`primekit.models` spec or module).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .samples import search_inputs, validate_samples
from .search import find_failure_modes, paper_search, search_defaults
from .split import TaggedSplit

__all__ = [
    "Split",
    "Study",
    "Availability",
    "FEATURES",
    "load_study",
    "search_defaults",
    "generated_examples",
]


@dataclass(eq=False)  # identity equality: == on DataFrame fields would raise
class Split(TaggedSplit):
    """One split of a study: samples, the tag matrix used by the search, and ground truth if any.

    A :class:`~primekit.split.TaggedSplit` (``tags``, ``labels``, ``correct``, ``ids``), so the
    search and the metrics take it whole: ``find_failure_modes(study.val)``.

    Attributes
    ----------
    name : str
    samples : DataFrame
        The samples contract (``id, label, correct`` and, where known, ``pred, confidence, path``).
    tags : DataFrame of bool
        Sample x tag matrix, index = ``samples.id`` (same order).
    truth : DataFrame of bool or None
        Ground-truth attributes on the same index (toy world, attribute data sets).
    labels : Series
        Class of each sample, indexed by id.
    correct : Series of bool
        Whether the classifier is right on each sample, indexed by id.
    """

    name: str
    samples: pd.DataFrame
    tags: pd.DataFrame
    truth: pd.DataFrame | None = None
    scores: pd.DataFrame | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        labels = pd.Series(self.samples["label"].to_numpy(), index=self.tags.index, name="label")
        correct = pd.Series(
            self.samples["correct"].to_numpy(dtype=bool), index=self.tags.index, name="correct"
        )
        TaggedSplit.__init__(self, self.tags, labels, correct)

    @property
    def paths(self) -> pd.Series:
        """Image path of each sample (None where unknown), indexed by id."""
        paths = self.samples["path"] if "path" in self.samples else None
        values = paths.to_numpy() if paths is not None else [None] * len(self.samples)
        return pd.Series(values, index=self.tags.index, name="path")

    @property
    def accuracy(self) -> float:
        """Overall accuracy on the split."""
        return float(self.samples["correct"].mean()) if len(self.samples) else float("nan")


# what a notebook section may need -> (what it is, how a user adds it to a study folder)
FEATURES: dict[str, tuple[str, str]] = {
    "truth": (
        "ground-truth attributes",
        "write truth.parquet (a long tag table id, tag[, score] of attributes you trust, e.g. "
        "annotations) beside samples.parquet; the toy world has them",
    ),
    "embeddings": (
        "CLIP image embeddings",
        "rerun primekit study with --embed clip:ViT-B-16:openai (or primekit embed --images ... "
        "--out DIR/embeddings.parquet and put {\"clip\": SPEC} in study.json)",
    ),
    "clip": (
        "a CLIP model for text",
        "rerun primekit study with --embed clip:ViT-B-16:openai, or put {\"clip\": SPEC} in "
        "study.json",
    ),
    "generator": (
        "an image generator and the classifier under study",
        "pass generator='diffusers:<model>' and classifier=SPEC (this notebook's parameters)",
    ),
    "world": (
        "the true failure modes (an oracle)",
        "only the embedded toy world knows them; on your data the test split is the check",
    ),
    "modes": (
        "failure modes at these search settings",
        "lower min_size / min_drop (this notebook's parameters), or add tags",
    ),
}


@dataclass(frozen=True)
class Availability:
    """Whether a notebook section can run on a study, and the one sentence that says so.

    True when nothing is missing. In a notebook, show it (the last expression of a cell) and
    wrap the section in ``if ok:``; the sentence names what is missing and how to add it.
    """

    section: str
    missing: tuple[str, ...]
    study: str

    def __bool__(self) -> bool:
        return not self.missing

    @property
    def sentence(self) -> str:
        if not self.missing:
            return f"Runs: {self.section}."
        what = " and ".join(FEATURES[m][0] for m in self.missing)
        how = "; ".join(FEATURES[m][1] for m in self.missing)
        return f"Skipped: {self.section} needs {what}, which study {self.study!r} lacks. To add: {how}."

    def __repr__(self) -> str:
        return self.sentence

    def _repr_markdown_(self) -> str:
        return f"**{self.sentence.split(':', 1)[0]}:**{self.sentence.split(':', 1)[1]}"


class Study:
    """A data set ready for PRIME's experiments: val (searched) and test (unseen) splits.

    Build it with :func:`load_study`. Attributes: ``name``, ``val``, ``test`` (:class:`Split`),
    ``threshold`` (tag score threshold), ``clip_spec`` (CLIP used by the metrics and baselines, or
    None), ``world`` (the toy world, or None), ``search`` (the search settings a study folder
    recorded, or None).
    """

    def __init__(
        self,
        name: str,
        val: Split,
        test: Split,
        *,
        threshold: float,
        clip_spec: str | None = None,
        embeddings_path: Path | None = None,
        world: Any = None,
        generator: Callable[..., tuple[np.ndarray, Any]] | None = None,
        classifier: Callable[[np.ndarray], pd.DataFrame] | None = None,
        search: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.search = dict(search) if search else None
        self.val = val
        self.test = test
        self.threshold = threshold
        self.clip_spec = clip_spec
        self.embeddings_path = embeddings_path
        self.world = world
        self._generator = generator
        self._classifier = classifier
        self._clip: Any = None

    def __repr__(self) -> str:
        return (
            f"Study({self.name!r}: val {len(self.val.samples)} samples, test "
            f"{len(self.test.samples)}, {self.val.tags.shape[1]} tags, "
            f"val accuracy {self.val.accuracy:.3f})"
        )

    def split(self, name: str) -> Split:
        """The split called ``name`` (``"val"`` or ``"test"``)."""
        if name not in ("val", "test"):
            raise ValueError(f"split: expected 'val' or 'test', got {name!r}")
        return self.val if name == "val" else self.test

    def has(self, feature: str) -> bool:
        """Whether the study has ``feature`` (a key of :data:`FEATURES` but ``"modes"``)."""
        if feature not in FEATURES or feature == "modes":
            raise ValueError(f"feature: expected one of {sorted(set(FEATURES) - {'modes'})}, got {feature!r}")
        if feature == "truth":
            return self.val.truth is not None and self.test.truth is not None
        if feature == "embeddings":
            return self.embeddings_path is not None or (
                self.clip_spec is not None and self.val.paths.notna().all()
            )
        if feature == "clip":
            return self.clip_spec is not None
        if feature == "generator":
            return self.can_generate
        return self.world is not None

    def check(self, *features: str, section: str, modes: pd.DataFrame | None = None) -> Availability:
        """Which of ``features`` the study lacks for a notebook ``section`` (:class:`Availability`);
        with ``modes``, an empty mode table counts as missing ``"modes"``."""
        missing = tuple(f for f in features if not self.has(f))
        if modes is not None and len(modes) == 0:
            missing += ("modes",)
        return Availability(section, missing, self.name)

    def search_defaults(self, smoke: bool = False, *, paper: bool = False, **overrides: Any) -> dict[str, Any]:
        """Search settings for this study with the caller's non-None ``overrides``: a study folder's
        recorded ones (``primekit study``), else the toy world's (:func:`primekit.search.
        search_defaults`, or :func:`~primekit.search.paper_search` with ``paper``)."""
        if self.search is None:
            return (paper_search if paper else search_defaults)(smoke, **overrides)
        out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in self.search.items() if v is not None}
        if isinstance(out.get("necessity"), dict):
            out["necessity"] = {int(k): float(v) for k, v in out["necessity"].items()}
        unknown = set(overrides) - set(search_defaults())
        if unknown:
            raise ValueError(f"overrides: unknown search setting(s) {sorted(unknown)}")
        out.update({k: v for k, v in overrides.items() if v is not None})
        return out

    # -- the search ------------------------------------------------------------------------
    def find_failure_modes(self, split: str = "val", **search: Any) -> pd.DataFrame:
        """:func:`primekit.find_failure_modes` on a split; keyword arguments are the search's."""
        s = self.split(split)
        return find_failure_modes(s.tags, s.labels, s.correct, **search)

    # -- images -----------------------------------------------------------------------------
    def images(self, split: str, ids: Sequence[str]) -> np.ndarray:
        """Images of the given sample ids as uint8 arrays (n, H, W, 3).

        The toy world re-renders them; a folder data set reads ``path`` (resized to the first
        image's size so they stack).
        """
        s = self.split(split)
        ids = [str(i) for i in ids]
        if self.world is not None:
            return self.world.images(split, ids=ids)
        from PIL import Image

        paths = s.paths.loc[ids]
        if paths.isna().any():
            raise ValueError(f"samples: no 'path' for some of the {len(ids)} requested ids")
        arrays, size = [], None
        for path in paths:
            with Image.open(path) as image:
                image = image.convert("RGB")
                size = size or image.size
                arrays.append(np.asarray(image.resize(size)))
        return np.stack(arrays) if arrays else np.zeros((0, 1, 1, 3), np.uint8)

    def mode_ids(
        self, split: str, cls: Any, tags: Sequence[str], *, n: int | None = None, seed: int = 0
    ) -> list[str]:
        """Ids of class ``cls`` carrying every tag of ``tags`` in a split (a random ``n``)."""
        s = self.split(split)
        inside = (s.labels == cls).to_numpy().copy()
        for tag in tags:
            if tag not in s.tags.columns:
                raise ValueError(f"tags: unknown tag {tag!r}")
            inside &= s.tags[tag].to_numpy()
        ids = list(s.tags.index[inside])
        if n is not None and len(ids) > n:
            rng = np.random.default_rng(seed)
            ids = [ids[i] for i in sorted(rng.choice(len(ids), n, replace=False))]
        return ids

    def mode_images(self, modes: pd.DataFrame, *, split: str = "val", n: int = 6,
                    seed: int = 0) -> list[np.ndarray]:
        """Random example images of every mode of ``modes`` (one array per row), for grids."""
        return [
            self.images(split, self.mode_ids(split, cls, tags, n=n, seed=seed))
            for cls, tags in zip(modes["class"], modes["tags"])
        ]

    def example_images(self, split: str = "val", *, n: int = 16, seed: int = 0
                       ) -> tuple[np.ndarray, list[str]]:
        """``n`` random images of a split and titles ``"class: tag, tag"`` from its tag matrix."""
        s = self.split(split)
        rng = np.random.default_rng(seed)
        pick = sorted(rng.choice(len(s.tags), min(n, len(s.tags)), replace=False))
        ids = list(s.tags.index[pick])
        titles = [
            f"{label}: " + ", ".join(s.tags.columns[s.tags.loc[i].to_numpy()])
            for i, label in zip(ids, s.labels.loc[ids])
        ]
        return self.images(split, ids), titles

    def class_accuracy(self, split: str = "val") -> pd.DataFrame:
        """Per-class size and accuracy of a split."""
        s = self.split(split)
        frame = pd.DataFrame({"class": s.labels.to_numpy(), "correct": s.correct.to_numpy()})
        out = frame.groupby("class")["correct"].agg(size="size", accuracy="mean")
        return out.reset_index()

    # -- CLIP ------------------------------------------------------------------------------
    def _clip_model(self) -> Any:
        if self.clip_spec is None:
            raise ValueError(
                f"dataset {self.name!r} has no CLIP model: add {{\"clip\": SPEC}} to its study.json"
            )
        if self._clip is None:
            from .clip import load_clip

            self._clip = load_clip(self.clip_spec)
        return self._clip

    def image_embeddings(self, split: str = "val") -> np.ndarray:
        """L2-normalised CLIP image embeddings of a split, rows in ``split.samples`` order.

        Read from ``embeddings.parquet`` when the data set has one, else computed (and cached on
        disk by :func:`primekit.clip.embed_images`).
        """
        s = self.split(split)
        if self.embeddings_path is not None:
            from .clip import read_embeddings

            ids, emb = read_embeddings(self.embeddings_path)
            frame = pd.DataFrame(emb, index=ids)
        else:
            from .clip import embed_images

            source = s.samples[["id", "path"]]
            table = embed_images(source, model=self._clip_model(), progress=False)
            frame = table.set_index("id")
        missing = s.tags.index.difference(frame.index)
        if len(missing):
            raise ValueError(f"embeddings: {len(missing)} sample(s) of {split} have none")
        return frame.loc[s.tags.index].to_numpy(dtype=np.float32)

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised CLIP text embeddings, shape (len(texts), d)."""
        from .clip import embed_texts

        return embed_texts(list(texts), model=self._clip_model())

    # -- generated images (paper 4.2) --------------------------------------------------------
    @property
    def can_generate(self) -> bool:
        """Whether the study has an image generator (the toy world's renderer, or a hook)."""
        return self._generator is not None and self._classifier is not None

    def generate(self, cls: Any, tags: Sequence[str], n: int, *, seed: int = 0) -> np.ndarray:
        """``n`` new images of class ``cls`` showing every tag of ``tags``."""
        if self._generator is None:
            raise ValueError(f"dataset {self.name!r} has no image generator")
        out = self._generator(cls, tags, n, seed=seed)
        return out[0] if isinstance(out, tuple) else out

    def predict_images(self, images: np.ndarray) -> pd.DataFrame:
        """The study's classifier on raw images: DataFrame with ``pred`` (and ``confidence``)."""
        if self._classifier is None:
            raise ValueError(f"dataset {self.name!r} has no classifier to run on new images")
        return self._classifier(images)


def _toyworld_study(
    *, smoke: bool, seed: int, tagger: str, threshold: float, home: str | None, noise: float
) -> Study:
    from . import toyworld as tw
    from .toyworld.train import load_classifier

    world = tw.build_world(home=home, smoke=smoke, seed=seed)
    splits = {}
    for name in ("val", "test"):
        samples = validate_samples(tw.predict(world, name))
        if tagger == "learned":
            long = tw.learned_tags(world, name, config=tw.TaggerConfig.smoke() if smoke else None)
        else:
            long = tw.ground_truth_tags(world, name, drop_rate=noise, add_rate=noise / 10, seed=seed)
        matrix, _, _ = search_inputs(samples, long, threshold=threshold)
        truth = world.attributes(name).reindex(matrix.index)
        scores = long.pivot(index="id", columns="tag", values="score").reindex(matrix.index)
        splits[name] = Split(name, samples, matrix, truth=truth.astype(bool),
                             scores=scores.fillna(0.0))
    clip_folder = tw.clip_dir(world=world, smoke=smoke, seed=seed)
    model = load_classifier(world)

    def classify(images: np.ndarray) -> pd.DataFrame:
        return tw.predict_images(model, images)

    return Study(
        "toyworld" + ("-smoke" if smoke else ""),
        splits["val"],
        splits["test"],
        threshold=threshold,
        clip_spec=f"clip:local-dir:{clip_folder}",
        world=world,
        generator=tw.render_matching,
        classifier=classify,
    )


def _first(folder: Path, stem: str) -> Path | None:
    for suffix in (".parquet", ".csv"):
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    return None


def _folder_study(folder: Path, *, threshold: float | None, generator: Any = None, classifier: Any = None,
                  class_names: Sequence[str] | None = None) -> Study:
    from .io import read_table
    from .tags import read_tags

    samples_path = _first(folder, "samples")
    tags_path = _first(folder, "tags")
    if samples_path is None or tags_path is None:
        raise ValueError(
            f"dataset: folder {str(folder)!r} needs samples.parquet|csv and tags.parquet|csv"
        )
    config = json.loads((folder / "study.json").read_text()) if (folder / "study.json").is_file() else {}
    threshold = float(config.get("threshold", 0.5)) if threshold is None else threshold
    samples = validate_samples(read_table(samples_path, argument="samples"))
    if "split" not in samples.columns:
        raise ValueError("samples: needs a 'split' column with 'val' and 'test' rows")
    tags = read_tags(tags_path)
    truth_path = _first(folder, "truth")
    truth = read_tags(truth_path, argument="truth") if truth_path is not None else None
    splits = {}
    for name in ("val", "test"):
        part = samples[samples["split"] == name].reset_index(drop=True)
        if part.empty:
            raise ValueError(f"samples: no row has split == {name!r}")
        long = tags[tags["id"].isin(part["id"])]
        matrix, _, _ = search_inputs(part, long, threshold=threshold)
        scores = long.pivot_table(index="id", columns="tag", values="score", aggfunc="max")
        true = None
        if truth is not None:
            true, _, _ = search_inputs(part, truth[truth["id"].isin(part["id"])], threshold=0.5)
        splits[name] = Split(name, part, matrix, truth=true,
                             scores=scores.reindex(index=matrix.index, columns=matrix.columns).fillna(0.0))
    emb = _first(folder, "embeddings")
    from .generate import load_generator

    predictor = None
    if classifier is not None:
        from .models import image_predictor

        predictor = classifier if _is_predictor(classifier) else image_predictor(classifier, class_names=class_names)
    return Study(
        folder.name,
        splits["val"],
        splits["test"],
        threshold=threshold,
        clip_spec=config.get("clip"),
        embeddings_path=emb,
        generator=load_generator(generator),
        classifier=predictor,
        search=config.get("search"),
    )


def _is_predictor(obj: Any) -> bool:
    """A plain function of images (not an ``nn.Module`` or a models.Classifier)."""
    from .models import Classifier

    return callable(obj) and not isinstance(obj, Classifier) and not hasattr(obj, "parameters")


def load_study(
    dataset: str = "toyworld",
    *,
    smoke: bool = False,
    seed: int = 0,
    tagger: str = "learned",
    threshold: float | None = None,
    noise: float = 0.0,
    home: str | os.PathLike | None = None,
    generator: str | Callable | None = None,
    classifier: Any = None,
    class_names: Sequence[str] | None = None,
) -> Study:
    """Load a data set for the experiment notebooks.

    Parameters
    ----------
    dataset : str
        ``"toyworld"`` or a folder (see the module docstring).
    smoke : bool
        Toy world only: the tiny world used by the tests.
    seed : int
        Toy world only: seed of the world and its models.
    tagger : {"learned", "truth"}
        Toy world only: tags from the learned tagger or the (noisy) ground truth.
    threshold : float, optional
        Tag score threshold (default 0.5, or the folder's study.json).
    noise : float
        Toy world, ``tagger="truth"``: rate at which true tags are dropped (a tenth as many false
        tags are added).
    home : path-like, optional
        Toy world only: the data folder (default ``$PRIMEKIT_HOME``).
    generator : str or callable, optional
        Folder only: the text-to-image hook of paper 4.2, ``"diffusers:<hub id or folder>"`` or a
        callable ``(cls, tags, n, seed=) -> uint8 images`` (the toy world uses its renderer).
    classifier : spec, Classifier or nn.Module, optional
        Folder only: the classifier under study, run on generated images
        (:func:`primekit.models.image_predictor`).
    class_names : sequence of str, optional
        Folder only: the classifier's output names, when the model has none.
    """
    if not isinstance(dataset, str) or not dataset:
        raise TypeError(f"dataset: expected 'toyworld' or a folder path, got {dataset!r}")
    if tagger not in ("learned", "truth"):
        raise ValueError(f"tagger: expected 'learned' or 'truth', got {tagger!r}")
    if threshold is not None and not 0 <= threshold <= 1:
        raise ValueError(f"threshold: must lie in [0, 1], got {threshold}")
    if not 0 <= noise < 1:
        raise ValueError(f"noise: must lie in [0, 1), got {noise}")
    if dataset == "toyworld":
        given = [n for n, v in (("generator", generator), ("classifier", classifier), ("class_names", class_names)) if v is not None]
        if given:
            raise ValueError(f"{given[0]}: only for a folder dataset (the toy world has its renderer and classifier)")
        return _toyworld_study(
            smoke=smoke,
            seed=seed,
            tagger=tagger,
            threshold=0.5 if threshold is None else threshold,
            home=None if home is None else str(home),
            noise=noise,
        )
    folder = Path(dataset).expanduser()
    if not folder.is_dir():
        raise ValueError(f"dataset: expected 'toyworld' or an existing folder, got {dataset!r}")
    return _folder_study(folder, threshold=threshold, generator=generator, classifier=classifier, class_names=class_names)


def generated_examples(
    study: Study, modes: pd.DataFrame, *, n: int = 6, seed: int = 0
) -> list[np.ndarray]:
    """``n`` newly generated images of every mode of ``modes`` (paper 4.2, Fig. 4), for display.

    Parameters
    ----------
    study : Study with a generator (``study.can_generate``)
    modes : DataFrame with ``class`` and ``tags`` (e.g. from
        :func:`primekit.metrics.select_generation_modes`)
    n : int
        Images per mode.
    seed : int
        Mode number i (row position) is generated with seed ``seed + i``.

    Returns
    -------
    list of arrays (n, H, W, 3), one per row of ``modes``, in order.
    """
    if not isinstance(modes, pd.DataFrame) or not {"class", "tags"} <= set(modes.columns):
        raise ValueError("modes: expected a DataFrame with columns 'class' and 'tags'")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected a positive integer, got {n!r}")
    if not study.can_generate:
        raise ValueError(f"study: dataset {study.name!r} has no image generator")
    return [
        study.generate(cls, tuple(tags), n, seed=seed + i)
        for i, (cls, tags) in enumerate(zip(modes["class"], modes["tags"], strict=True))
    ]
