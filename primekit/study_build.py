"""``primekit study``: from an image folder and a classifier to a study folder, in one command.

:func:`build_study` (CLI ``primekit study``) reads an image source (a folder of class sub-folders
or a manifest ``id,path,label[,split]``), splits it into ``val`` (searched) and ``test`` (unseen)
when the source has no ``split`` (``val_fraction``, seeded, stratified by class), and then

1. predicts with the classifier (``samples.parquet``; preprocessing recorded),
2. tags with every tagger (RAM++/RAM, CLIP over a vocabulary) and/or an attribute table joined by
   id (``tags.parquet``, one long table; the per-source tables beside it),
3. optionally embeds with CLIP (``embeddings.parquet``),
4. searches the val split (``failure_modes.csv``, ``summary.json``) and
5. writes the HTML report (``report.html``),

recording every setting and the SHA-256 of every file it wrote in ``study.json``. The folder is
what :func:`primekit.load_study`, the explorer, ``primekit report`` and every notebook read.

Resumable: every image job caches its results under ``FOLDER/cache`` in atomically written
shards, and a step whose inputs, settings and output files are unchanged since ``study.json``
recorded them is skipped without loading its model; killed and rerun, nothing is recomputed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._jobs import file_identity, fingerprint_of, sha256_file
from ._validation import check_fraction
from .images import read_image_source
from .io import atomic_path, read_table
from .report import write_report
from .run_folder import RUN_FILES, load_run, write_summary
from .samples import align_tags, read_samples, search_inputs
from .search import DEFAULT_NECESSITY, find_failure_modes, search_settings, write_modes
from .tags import read_tags, validate_tag_table, write_tags

__all__ = ["build_study", "resume_study", "assign_splits", "STUDY_FILES", "SEARCH_DEFAULTS"]

logger = logging.getLogger(__name__)

# a study folder is a run folder (the report and the explorer read it) with two files more
STUDY_FILES = {
    **{key: RUN_FILES[key] for key in ("samples", "tags", "modes", "summary", "report")},
    "embeddings": "embeddings.parquet",
    "study": "study.json",
}
SEARCH_DEFAULTS: dict[str, Any] = {
    "min_size": 30,
    "min_drop": 0.30,
    "necessity": dict(DEFAULT_NECESSITY),
    "max_tags": 4,
    "min_tag_count": None,
}


def assign_splits(
    images: pd.DataFrame, *, val_fraction: float | None = 0.5, seed: int = 0
) -> pd.DataFrame:
    """The image table with a ``split`` of ``val`` or ``test`` on every row it keeps.

    A source with its own ``split`` keeps it (rows of other splits, e.g. ``train``, are left
    out, with a log line) and must have both ``val`` and ``test`` rows. Without one, a fraction
    ``val_fraction`` of each class goes to ``val`` (stratified, ``seed``-ed), the rest to
    ``test``. Raises ``ValueError`` naming the problem: no labels, one class, a class too small
    to split, or ``val_fraction`` given for a source that has splits.
    """
    if "label" not in images.columns or images["label"].isna().any():
        raise ValueError(
            "images: every image needs a label (class sub-folders, or a manifest 'label' column)"
        )
    labels = images["label"].astype(str)
    if labels.nunique() < 2:
        raise ValueError(
            f"images: the label column has one class ({labels.iloc[0]!r}); a classifier study "
            "needs at least two"
        )
    if "split" in images.columns:
        if val_fraction is not None:
            raise ValueError(
                "val_fraction: the manifest has its own 'split' column; drop one of the two"
            )
        split = images["split"].astype(str)
        missing = [s for s in ("val", "test") if not (split == s).any()]
        if missing:
            raise ValueError(
                f"images: the manifest's split column has no {missing[0]!r} rows; a study "
                f"needs 'val' (searched) and 'test' (unseen) (found {sorted(split.unique())})"
            )
        kept = images[split.isin(["val", "test"])].reset_index(drop=True)
        if len(kept) < len(images):
            logger.info("images: %d rows of other splits left out", len(images) - len(kept))
        return kept.assign(split=kept["split"].astype(str))
    fraction = 0.5 if val_fraction is None else val_fraction
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise ValueError(f"val_fraction: must lie strictly between 0 and 1, got {val_fraction!r}")
    counts = labels.value_counts()
    if counts.min() < 2:
        raise ValueError(
            f"images: class {counts.idxmin()!r} has {counts.min()} image; every class needs two "
            "to be split into val and test"
        )
    from sklearn.model_selection import train_test_split

    try:
        val_idx, _ = train_test_split(
            np.arange(len(images)), train_size=fraction, stratify=labels, random_state=seed
        )
    except ValueError as exc:
        raise ValueError(f"val_fraction: {fraction} cannot split these classes ({exc})") from None
    split = np.full(len(images), "test", dtype=object)
    split[np.sort(val_idx)] = "val"
    return images.assign(split=split)


def _absolute(spec: Any) -> Any:
    """A spec string or path with every part that names an existing local file or folder made
    absolute (``jit:model.pt`` -> ``jit:/home/me/model.pt``): ``study.json`` then means the same
    from any working directory (a notebook runs in ``notebooks/``)."""
    if isinstance(spec, os.PathLike):
        spec = str(spec)
    if not isinstance(spec, str) or spec.startswith("torchvision:"):
        return spec
    parts = spec.split(":")
    return ":".join(
        str(Path(part).expanduser().resolve()) if part and Path(part).expanduser().exists() else part
        for part in parts
    )


def _spec_identity(spec: Any) -> Any:
    """A spec string with the identity (path, size, mtime) of every local file it names."""
    if not isinstance(spec, str):
        return repr(spec)
    files = [file_identity(part) for part in spec.split(":") if part and Path(part).expanduser().exists()]
    return {"spec": spec, "files": files}


class _Steps:
    """The steps recorded in ``study.json``: a step is fresh when its key and outputs match."""

    def __init__(self, folder: Path, record: Mapping[str, Any]):
        self.folder = folder
        self.record = dict(record.get("steps", {}))
        self.files = dict(record.get("files", {}))

    def fresh(self, name: str, key: str, outputs: Sequence[str]) -> bool:
        step = self.record.get(name)
        if not step or step.get("key") != key:
            return False
        for out in outputs:
            path = self.folder / out
            if not path.is_file() or self.files.get(out) != sha256_file(path):
                return False
        return True

    def done(self, name: str, key: str, outputs: Sequence[str], seconds: float, **info: Any) -> None:
        self.record[name] = {"key": key, "outputs": list(outputs), "seconds": round(seconds, 3), **info}
        for out in outputs:
            self.files[out] = sha256_file(self.folder / out)


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True, default=str) + "\n")


def _tagger_name(spec: str, index: int) -> str:
    kind = spec.split(":", 1)[0].replace("+", "p")
    return f"tags_{index}_{kind}.parquet"


@contextlib.contextmanager
def _named(argument: str) -> Iterator[None]:
    """Errors of a tagger's or CLIP's loader name their own argument (``model: cannot load CLIP
    weights``); in a study that is ``argument`` (CLI ``--tagger``/``--embed``), not the classifier."""
    try:
        yield
    except ValueError as exc:
        name, sep, rest = str(exc).partition(":")
        if sep and name in ("model", "tagger"):
            raise ValueError(f"{argument}:{rest}") from None
        raise


def _load_attributes(path: str | os.PathLike, images: pd.DataFrame) -> pd.DataFrame:
    """An attribute table (``id`` + boolean/categorical columns) as long tags of the images."""
    from .tagging import attributes_to_tags

    table = read_table(path, argument="attributes")
    if "id" not in table.columns:
        raise ValueError(f"attributes: {str(path)!r} needs an 'id' column matching the image ids")
    table = table.assign(id=table["id"].astype(str))
    long = attributes_to_tags(table.drop(columns=[c for c in ("label", "split", "path") if c in table]))
    return long[long["id"].isin(images["id"])].reset_index(drop=True)


class _Run:
    """What every step of one :func:`build_study` call shares."""

    def __init__(self, folder: Path, table: pd.DataFrame, options: dict[str, Any], progress: Any):
        self.folder = folder
        self.table = table
        self.options = options
        self.cache = folder / "cache"
        path = folder / STUDY_FILES["study"]
        self.record: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
        self.steps = _Steps(folder, self.record)
        stats = [(i, p, *_stat(p)) for i, p in zip(table["id"], table["path"], strict=True)]
        self.images_key = fingerprint_of({"images": stats, "split": table["split"].tolist()})
        self.bar = progress
        self.offset = 0
        self.computed: list[str] = []
        self.skipped: list[str] = []

    def step(self, name: str, key_settings: Mapping[str, Any], outputs: Sequence[str],
             work: Callable[[], dict[str, Any]], *, images: bool = False) -> dict[str, Any]:
        """Run ``work`` unless the step is fresh; record it; advance the shared progress bar."""
        key = fingerprint_of({"step": name, **key_settings})
        if self.steps.fresh(name, key, outputs):
            self.skipped.append(name)
            info = dict(self.steps.record[name])
        else:
            started = time.perf_counter()
            info = work() or {}
            self.steps.done(name, key, outputs, time.perf_counter() - started, **info)
            self.computed.append(name)
            self.save()
        if images and self.bar is not None:
            self.offset += len(self.table)
            self.bar.n = self.offset
            self.bar.refresh()
        return info

    def finish(self, predicted: Mapping[str, Any], searched: Mapping[str, Any], seconds: float) -> dict[str, Any]:
        """Record the accuracy, save ``study.json``; the result of :func:`build_study`."""
        self.record["accuracy"] = predicted.get("accuracy")
        self.save()
        logger.info("study %s: computed %s, up to date %s, %.1f s", self.folder, self.computed, self.skipped, seconds)
        return {**self.record, "computed": self.computed, "skipped": self.skipped, "seconds": seconds,
                "preprocessing": predicted.get("preprocessing"), "warnings": predicted.get("warnings", []),
                "join_warnings": searched.get("join_warnings", []), "folder": str(self.folder)}

    def save(self) -> None:
        self.record.update(self.options)
        self.record["steps"] = self.steps.record
        self.record["files"] = self.steps.files
        _write_json(self.folder / STUDY_FILES["study"], self.record)


def _bar(progress: bool, total: int) -> Any:
    """The one progress bar of a study (every image job updates it), or None."""
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="img", desc="study", smoothing=0.1)


def _stat(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return -1, -1
    return st.st_size, st.st_mtime_ns


def _predict_step(run: _Run, model: Any, classifier: Mapping[str, Any], *, trust_pickle: bool,
                  jobs: Mapping[str, Any]) -> dict[str, Any]:
    from .models import load_classifier, predict

    def work() -> dict[str, Any]:
        options = {k: v for k, v in classifier.items() if k not in ("class_names", "expect_accuracy")}
        clf = load_classifier(model, device=jobs["device"], trust_pickle=trust_pickle, **options)
        table = predict(run.table, clf, out=run.folder / STUDY_FILES["samples"],
                        class_names=classifier.get("class_names"), cache_dir=run.cache,
                        progress=run.bar if run.bar is not None else False,
                        expect_accuracy=classifier.get("expect_accuracy"),
                        batch_size=jobs["batch_size"], num_workers=jobs["num_workers"])
        meta = table.attrs["metadata"]
        return {"preprocessing": meta["preprocessing"], "class_names": meta["class_names"],
                "accuracy": meta.get("accuracy"), "warnings": meta.get("warnings", []),
                "n_errors": meta["n_errors"]}

    key = {"images": run.images_key, "model": _spec_identity(model), "classifier": dict(classifier)}
    return run.step("predict", key, [STUDY_FILES["samples"]], work, images=True)


def _tag_steps(run: _Run, taggers: Sequence[str], attributes: Any, tagging: Mapping[str, Any],
               jobs: Mapping[str, Any]) -> list[str]:
    from .tagging import load_tagger, tag_images
    from .tagging.cli import tagger_options

    outputs = []
    for i, spec in enumerate(taggers):
        name = _tagger_name(spec, i)
        # trust_pickle is the study's one opt-in (the classifier's too): only RAM loads a checkpoint
        trust = bool(tagging.get("trust_pickle", False)) and spec.startswith(("ram:", "ram++:"))
        options = tagger_options(spec, vocabulary=tagging.get("vocabulary"),
                                 text_encoder=tagging.get("text_encoder"), trust_checkpoint=trust)

        def work(spec: str = spec, name: str = name, options: dict = options) -> dict[str, Any]:
            with _named("taggers"):
                tagger = load_tagger(spec, device=jobs["device"], **options)
            table = tag_images(run.table, tagger, out=run.folder / name, cache_dir=run.cache,
                               progress=run.bar if run.bar is not None else False,
                               batch_size=jobs["batch_size"], num_workers=jobs["num_workers"])
            return {"n_rows": int(len(table)), "n_tags": int(table["tag"].nunique())}

        key = {"images": run.images_key, "tagger": _spec_identity(spec),
               "options": {k: _spec_identity(v) for k, v in options.items()}}
        run.step(f"tag {i} {spec}", key, [name], work, images=True)
        outputs.append(name)
    if attributes is not None:
        name = "tags_attributes.parquet"

        def work_attributes() -> dict[str, Any]:
            long = _load_attributes(attributes, run.table)
            write_tags(long, run.folder / name, metadata={"tagger": "attributes", "file": str(attributes)})
            return {"n_rows": int(len(long)), "n_tags": int(long["tag"].nunique())}

        key = {"images": run.images_key, "attributes": _spec_identity(str(attributes))}
        run.step("attributes", key, [name], work_attributes)
        outputs.append(name)
    return outputs


def _combine_step(run: _Run, sources: Sequence[str]) -> dict[str, Any]:
    def work() -> dict[str, Any]:
        parts = [read_tags(run.folder / s) for s in sources]
        long = pd.concat(parts, ignore_index=True)
        # two sources naming the same tag of an image: keep the higher score
        long = long.groupby(["id", "tag"], as_index=False, sort=True)["score"].max()
        write_tags(validate_tag_table(long), run.folder / STUDY_FILES["tags"],
                   metadata={"sources": list(sources)})
        return {"n_rows": int(len(long)), "n_tags": int(long["tag"].nunique())}

    key = {"sources": [run.steps.files.get(s) for s in sources]}
    return run.step("combine tags", key, [STUDY_FILES["tags"]], work)


def _embed_step(run: _Run, spec: str, jobs: Mapping[str, Any]) -> dict[str, Any]:
    from .clip import embed_images, load_clip

    def work() -> dict[str, Any]:
        with _named("embed"):
            clip = load_clip(spec, device=jobs["device"])
        table = embed_images(run.table, model=clip, out=run.folder / STUDY_FILES["embeddings"],
                             cache_dir=run.cache, progress=run.bar if run.bar is not None else False,
                             batch_size=jobs["batch_size"], num_workers=jobs["num_workers"])
        return {"n_rows": int(len(table))}

    key = {"images": run.images_key, "clip": _spec_identity(spec)}
    return run.step("embed", key, [STUDY_FILES["embeddings"]], work, images=True)


def _search_step(run: _Run, search: Mapping[str, Any], threshold: float) -> dict[str, Any]:
    def work() -> dict[str, Any]:
        samples = read_samples(run.folder / STUDY_FILES["samples"])
        # tags cover every image: report what matches no sample at all, then search val
        tags, join = align_tags(samples, read_tags(run.folder / STUDY_FILES["tags"]), log=False)
        val = samples[samples["split"] == "val"].reset_index(drop=True)
        matrix, labels, correct = search_inputs(val, tags[tags["id"].isin(val["id"])], threshold=threshold)
        modes = find_failure_modes(matrix, labels, correct, **search)
        write_modes(modes, run.folder / STUDY_FILES["modes"])
        test = samples[samples["split"] == "test"]
        summary = {
            "classifier_accuracy": float(val["correct"].mean()),
            "test_accuracy": float(test["correct"].mean()) if len(test) else None,
            "n_failure_modes": int(len(modes)),
            "modes_by_n_tags": {int(k): int(v) for k, v in modes["n_tags"].value_counts().sort_index().items()},
            "n_val": int(len(val)),
            "n_test": int(len(test)),
            "n_tags": int(matrix.shape[1]),
            "join": join.as_dict(),
            "search": {**{k: v for k, v in search.items() if v is not None}, "split": "val",
                       "threshold": threshold},
        }
        write_summary(run.folder, summary)
        return {"n_failure_modes": int(len(modes)), "join_warnings": join.messages()}

    key = {"inputs": [run.steps.files.get(STUDY_FILES[k]) for k in ("samples", "tags")],
           "search": dict(search), "threshold": threshold}
    return run.step("search", key, [STUDY_FILES["modes"], STUDY_FILES["summary"]], work)


def _report_step(run: _Run) -> dict[str, Any]:
    def work() -> dict[str, Any]:
        write_report(load_run(run.folder), run.folder / STUDY_FILES["report"],
                     title=f"Failure modes: {run.folder.name}")
        return {}

    inputs = ("samples", "tags", "modes", "summary")
    key = {"inputs": [run.steps.files.get(STUDY_FILES[k]) for k in inputs]}
    return run.step("report", key, [STUDY_FILES["report"]], work)


def _check_options(out: Any, taggers: list, attributes: Any, search: Mapping[str, Any] | None,
                   threshold: float) -> dict[str, Any]:
    """Check :func:`build_study`'s options before any work; return the full search settings."""
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out: expected a folder path, got {type(out).__name__}")
    if not taggers and attributes is None:
        raise ValueError("taggers: give at least one tagger or an attribute table (attributes=)")
    if not all(isinstance(t, str) and ":" in t for t in taggers):
        raise ValueError(f"taggers: expected spec strings such as 'clip:ViT-B-16:openai', got {taggers!r}")
    for spec in taggers:  # what can be checked without loading a model, before the classifier runs
        kind, _, rest = spec.partition(":")
        if kind not in ("ram++", "ram", "clip"):
            raise ValueError(f"taggers: unknown spec {spec!r}; expected ram++:PATH, ram:PATH or clip:...")
        if kind != "clip" and not Path(rest).expanduser().is_file():
            raise ValueError(f"taggers: {spec!r}: the weights file {rest!r} does not exist")
        if kind == "clip":
            from .clip import parse_clip_spec

            parse_clip_spec(rest, argument="taggers")
    if attributes is not None and not Path(attributes).is_file():
        raise ValueError(f"attributes: {str(attributes)!r} is not a file")
    unknown = set(search or {}) - set(SEARCH_DEFAULTS)
    if unknown:
        raise ValueError(f"search: unknown setting(s) {sorted(unknown)}; known: {sorted(SEARCH_DEFAULTS)}")
    settings = {**SEARCH_DEFAULTS, **(search or {})}
    search_settings(**settings)
    check_fraction(threshold, "threshold")
    return settings


def build_study(
    images: str | os.PathLike | pd.DataFrame,
    model: Any,
    *,
    out: str | os.PathLike,
    taggers: Sequence[str] = (),
    attributes: str | os.PathLike | None = None,
    vocabulary: str | os.PathLike | None = None,
    text_encoder: str | None = None,
    embed: str | None = None,
    class_names: Sequence[str] | str | os.PathLike | None = None,
    image_size: int | None = None,
    resize: int | None = None,
    normalize: str | None = None,
    grayscale: bool = False,
    expect_accuracy: float | None = None,
    val_fraction: float | None = None,
    seed: int = 0,
    threshold: float = 0.5,
    search: Mapping[str, Any] | None = None,
    report: bool = True,
    device: str = "cpu",
    batch_size: int = 32,
    num_workers: int = 0,
    trust_pickle: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Build a study folder (module docstring) and return what ``study.json`` records.

    Parameters
    ----------
    images : path-like or DataFrame
        Image folder (class sub-folders) or manifest ``id, path, label[, split]``.
    model : spec or nn.Module
        The classifier (:func:`primekit.models.load_classifier`).
    out : path-like
        The study folder (created; rerun on the same folder to resume).
    taggers : sequence of str
        Tagger specs (``ram++:PATH``, ``ram:PATH``, ``clip:ViT-B-16:openai``, ...).
    attributes : path-like, optional
        Attribute table (CSV/Parquet) with an ``id`` column and boolean/categorical columns.
    vocabulary, text_encoder :
        CLIP taggers' vocabulary; RAM/RAM++'s open-set tags and the CLIP that embeds them.
    embed : str, optional
        CLIP spec: also write ``embeddings.parquet`` (for the notebooks' CLIP metrics).
    class_names, image_size, resize, normalize, grayscale, expect_accuracy :
        The classifier's output names and preprocessing (:func:`primekit.models.predict`).
    val_fraction, seed :
        Share of each class in ``val`` (default 0.5) when the source has no ``split``; its seed.
    threshold : float
        A tag is present when its score is >= this (search and notebooks).
    search : mapping, optional
        Search settings (``min_size``, ``min_drop``, ``necessity``, ``max_tags``,
        ``min_tag_count``); defaults 30, 0.30, the paper's margins, 4, None.
    report, device, batch_size, num_workers, trust_pickle, progress :
        Write ``report.html``; how the image jobs run (``progress``: one bar for the study).

    Returns
    -------
    dict
        ``study.json``'s content, ``computed``/``skipped`` step names, ``seconds``, warnings.
    """
    started = time.perf_counter()
    taggers = [_absolute(t) for t in ([taggers] if isinstance(taggers, str) else list(taggers))]
    settings = _check_options(out, taggers, attributes, search, threshold)
    images, model, attributes, vocabulary, text_encoder, embed, class_names = map(
        _absolute, (images, model, attributes, vocabulary, text_encoder, embed, class_names))
    table = assign_splits(read_image_source(images), val_fraction=val_fraction, seed=seed)
    folder = Path(out).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    classifier = {"class_names": list(class_names) if isinstance(class_names, (list, tuple)) else class_names,
                  "image_size": image_size, "resize": resize, "normalize": normalize,
                  "grayscale": grayscale, "expect_accuracy": expect_accuracy}
    options = {
        "format": "primekit-study/1",
        "images": str(images) if not isinstance(images, pd.DataFrame) else "<DataFrame>",
        "n_images": int(len(table)),
        "splits": {k: int(v) for k, v in table["split"].value_counts().sort_index().items()},
        "val_fraction": val_fraction, "seed": seed,
        "model": model if isinstance(model, str) else repr(model), "classifier": classifier,
        "taggers": taggers, "attributes": None if attributes is None else str(attributes),
        "vocabulary": None if vocabulary is None else str(vocabulary), "text_encoder": text_encoder,
        "embed": embed, "clip": embed or next((t for t in taggers if t.startswith("clip:")), None),
        "threshold": threshold, "search": settings,
    }
    run = _Run(folder, table, options, _bar(progress, len(table) * (1 + len(taggers) + bool(embed))))
    jobs = {"device": device, "batch_size": batch_size, "num_workers": num_workers}
    tagging = {"vocabulary": vocabulary, "text_encoder": text_encoder, "trust_pickle": trust_pickle}
    try:
        predicted = _predict_step(run, model, classifier, trust_pickle=trust_pickle, jobs=jobs)
        _combine_step(run, _tag_steps(run, taggers, attributes, tagging, jobs))
        if embed is not None:
            _embed_step(run, embed, jobs)
        searched = _search_step(run, settings, threshold)
        if report:
            _report_step(run)
    finally:
        if run.bar is not None:
            run.bar.close()
    return run.finish(predicted, searched, time.perf_counter() - started)


def resume_study(
    folder: str | os.PathLike,
    *,
    device: str = "cpu",
    batch_size: int = 32,
    num_workers: int = 0,
    trust_pickle: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """:func:`build_study` again on a study folder, with every setting its ``study.json`` records.

    Nothing is recomputed while the images, models and files are unchanged, so this is how a
    notebook opens a study built by ``primekit study`` (and how an interrupted one is finished).
    Raises ``ValueError`` naming ``dataset`` when ``folder`` is not a study folder, or was built
    from Python objects (a DataFrame of images) that ``study.json`` cannot hold.
    """
    folder = Path(folder).expanduser()
    path = folder / STUDY_FILES["study"]
    if not path.is_file():
        raise ValueError(
            f"dataset: {str(folder)!r} is not a study folder (no {STUDY_FILES['study']}); "
            "build one with primekit study --images ... --model ... --out FOLDER"
        )
    record = json.loads(path.read_text())
    if record.get("format") != "primekit-study/1" or record.get("images") in (None, "<DataFrame>"):
        raise ValueError(
            f"dataset: {str(path)!r} does not record its image source (built from a DataFrame?); "
            "rerun build_study with the same arguments instead"
        )
    classifier = dict(record.get("classifier") or {})
    search = dict(record.get("search") or {})
    if isinstance(search.get("necessity"), Mapping):  # JSON made the set sizes strings
        search["necessity"] = {int(k): v for k, v in search["necessity"].items()}
    return build_study(
        record["images"], record["model"], out=folder, taggers=record.get("taggers") or (),
        attributes=record.get("attributes"), vocabulary=record.get("vocabulary"),
        text_encoder=record.get("text_encoder"), embed=record.get("embed"),
        class_names=classifier.get("class_names"), image_size=classifier.get("image_size"),
        resize=classifier.get("resize"), normalize=classifier.get("normalize"),
        grayscale=bool(classifier.get("grayscale")), expect_accuracy=classifier.get("expect_accuracy"),
        val_fraction=record.get("val_fraction"), seed=record.get("seed", 0),
        threshold=record.get("threshold", 0.5), search=search,
        report="report" in record.get("steps", {}), device=device, batch_size=batch_size,
        num_workers=num_workers, trust_pickle=trust_pickle, progress=progress,
    )
