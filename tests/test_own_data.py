"""Your own data, end to end, on real images nobody here made (scikit-learn's handwritten digits).

A user's folder of class sub-folders, a small TorchScript classifier fit on a disjoint part, and
attribute tags measured on the pixels: ``primekit study`` builds the study folder in one command,
with the right preprocessing gets the accuracy the Python API gets, is resumable, and the folder
is what load_study, ``primekit search --study`` and the report read.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from primekit.cli import main
from primekit.examples import (
    CLI_PREPROCESSING,
    api_accuracy,
    digit_attributes,
    fit_digit_classifier,
    split_indices,
    write_digit_folders,
)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """(image folder, TorchScript model, attribute table) of the digits; the model never saw the
    images of the folder."""
    root = tmp_path_factory.mktemp("digits")
    train_idx, study_idx = split_indices(n_train=500)
    assert not set(train_idx) & set(study_idx)
    fit_digit_classifier(write_digit_folders(root / "train", train_idx), root / "model.pt")
    images = write_digit_folders(root / "images", study_idx)
    digit_attributes(images).to_csv(root / "attributes.csv", index=False)
    return images, root / "model.pt", root / "attributes.csv"


def _study_args(digits, out: Path, *extra: str) -> list[str]:
    images, model, attributes = digits
    return ["study", "--images", str(images), "--model", f"jit:{model}", "--attributes",
            str(attributes), "--out", str(out), "--min-size", "10", "--min-drop", "0.2",
            "--max-tags", "2", "--no-progress", *extra]


@pytest.fixture(scope="module")
def study_dir(digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("study") / "digits"
    assert main(_study_args(digits, out, *CLI_PREPROCESSING, "--expect-accuracy", "0.9")) == 0
    return out


def test_the_study_gets_the_accuracy_the_python_api_gets(digits, study_dir):
    images, model, _ = digits
    api, correct = api_accuracy(model, images)
    samples = pd.read_parquet(study_dir / "samples.parquet")
    assert len(samples) == len(correct) == 1297
    assert samples.set_index("id")["correct"].sort_index().equals(correct.sort_index())
    assert 0.85 < api < 0.97  # a real, imperfect classifier
    record = json.loads((study_dir / "study.json").read_text())
    assert record["accuracy"] == pytest.approx(api)
    assert record["steps"]["predict"]["preprocessing"]["source"] == "user"
    assert record["steps"]["predict"]["warnings"] == []


def test_the_imagenet_default_is_refused_with_the_reason(digits, tmp_path, capsys):
    assert main(_study_args(digits, tmp_path / "default")) == 2
    err = capsys.readouterr().err
    assert "imagenet default" in err and "(32, 3, 224, 224)" in err and "--grayscale" in err


def test_val_and_test_are_a_seeded_stratified_split(study_dir):
    samples = pd.read_parquet(study_dir / "samples.parquet")
    counts = samples.groupby(["label", "split"]).size().unstack()
    assert (abs(counts["val"] - counts["test"]) <= 1).all()
    assert set(samples["split"]) == {"val", "test"}


def test_study_json_records_every_setting_and_file_hash(study_dir):
    record = json.loads((study_dir / "study.json").read_text())
    for key in ("images", "model", "classifier", "attributes", "seed", "threshold", "search",
                "splits", "steps", "files"):
        assert key in record, key
    assert record["classifier"]["grayscale"] and record["search"]["min_size"] == 10
    for name, digest in record["files"].items():
        assert hashlib.sha256((study_dir / name).read_bytes()).hexdigest() == digest, name
    assert {"samples.parquet", "tags.parquet", "failure_modes.csv", "report.html"} <= set(record["files"])


def test_failure_modes_are_found_and_read_back_everywhere(study_dir, capsys):
    from primekit import load_study
    from primekit.search import read_modes

    modes = read_modes(study_dir / "failure_modes.csv")
    assert len(modes) >= 3 and set(modes["class"].astype(str)) <= {str(d) for d in range(10)}
    study = load_study(str(study_dir))
    assert len(study.val.samples) + len(study.test.samples) == 1297
    assert len(study.find_failure_modes(min_size=10, min_drop=0.2, max_tags=2)) == len(modes)
    assert main(["search", "--study", str(study_dir), "--min-size", "10", "--min-drop", "0.2",
                 "--max-tags", "2"]) == 0
    again = read_modes(study_dir / "modes_val.csv")
    assert sorted(map(tuple, again["tags"])) == sorted(map(tuple, modes["tags"]))
    assert "of split val" in capsys.readouterr().err
    report = (study_dir / "report.html").read_text()
    assert all(tag in report for tag in modes["tags"].iloc[0])


def test_a_rerun_recomputes_nothing_and_an_interrupted_one_resumes(digits, study_dir, tmp_path, monkeypatch):
    from primekit import study_build

    cache = study_dir / "cache"
    shards = sorted(cache.rglob("shard-*"))
    result = study_build.build_study(
        digits[0], f"jit:{digits[1]}", out=study_dir, attributes=digits[2], progress=False,
        search={"min_size": 10, "min_drop": 0.2, "max_tags": 2},
        expect_accuracy=0.9, image_size=8, resize=8, normalize="none", grayscale=True,
    )
    assert result["computed"] == [] and "predict" in result["skipped"]
    assert sorted(cache.rglob("shard-*")) == shards
    # killed after the classifier ran: the rerun starts at the tags
    out = tmp_path / "killed"
    calls = []
    real = study_build._combine_step

    def interrupt(run, sources):
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return real(run, sources)

    monkeypatch.setattr(study_build, "_combine_step", interrupt)
    kwargs = dict(attributes=digits[2], progress=False, image_size=8, resize=8,
                  normalize="none", grayscale=True, search={"min_size": 10, "min_drop": 0.2})
    with pytest.raises(KeyboardInterrupt):
        study_build.build_study(digits[0], f"jit:{digits[1]}", out=out, **kwargs)
    resumed = study_build.build_study(digits[0], f"jit:{digits[1]}", out=out, **kwargs)
    assert resumed["skipped"] == ["predict", "attributes"]
    assert resumed["computed"] == ["combine tags", "search", "report"]


def test_a_study_opens_from_any_working_directory(digits, tmp_path, monkeypatch):
    """README step 3: a study built with relative paths records them absolute, so resume_study
    (notebook 10's ``dataset``) opens it from another folder and recomputes nothing."""
    from primekit.study_build import resume_study

    images, model, attributes = digits
    monkeypatch.chdir(images.parent)
    out = tmp_path / "relative"
    assert main(["study", "--images", images.name, "--model", f"jit:{model.name}", "--attributes",
                 attributes.name, "--out", str(out), *CLI_PREPROCESSING, "--min-size", "10",
                 "--min-drop", "0.2", "--max-tags", "2", "--necessity", "0.1", "--no-progress"]) == 0
    record = json.loads((out / "study.json").read_text())
    assert record["model"] == f"jit:{model.resolve()}" and record["images"] == str(images.resolve())
    assert record["search"]["necessity"] == {"2": 0.1}
    monkeypatch.chdir(tmp_path)
    result = resume_study(out, progress=False)
    assert result["computed"] == [] and result["accuracy"] == record["accuracy"]
    with pytest.raises(ValueError, match=r"dataset: .* is not a study folder \(no study.json\)"):
        resume_study(tmp_path)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--val-fraction", "1.5"], "--val-fraction: must lie strictly between 0 and 1"),
        (["--min-size", "0"], "--min-size:"),
        (["--normalize", "grey"], "--normalize: expected"),
        (["--tagger", "blip:x"], "--tagger: unknown spec 'blip:x'"),
        (["--tagger", "ram++:/nowhere/ram_plus.pth"], "--tagger: 'ram++:/nowhere/ram_plus.pth': the weights file"),
        (["--tagger", "clip:local-dir:/nowhere"], "--tagger: '/nowhere' is not an open_clip folder"),
    ],
)
def test_bad_values_are_clear_errors_before_any_work(digits, tmp_path, capsys, extra, message):
    out = tmp_path / "bad"
    assert main(_study_args(digits, out, *extra)) == 2
    assert message in capsys.readouterr().err
    assert not (out / "samples.parquet").exists()


def test_a_tagger_that_fails_to_load_is_named_as_the_tagger(digits, tmp_path, capsys):
    """CLIP's loader says 'model: ...'; in a study the classifier is --model, so the message names
    --tagger (here a CLIP folder whose weights file is gone)."""
    from _tiny_models import make_tiny_clip

    clip = make_tiny_clip(tmp_path / "clip")
    (clip / "open_clip_pytorch_model.bin").unlink()
    assert main(_study_args(digits, tmp_path / "s", *CLI_PREPROCESSING, "--tagger", f"clip:local-dir:{clip}")) == 2
    err = capsys.readouterr().err
    assert "--tagger:" in err and "model:" not in err


def test_one_class_and_missing_splits_are_refused(tmp_path):
    from primekit.study_build import assign_splits

    one = pd.DataFrame({"id": ["a", "b"], "path": ["a", "b"], "label": ["x", "x"]})
    with pytest.raises(ValueError, match="images: the label column has one class"):
        assign_splits(one)
    manifest = pd.DataFrame({"id": list("abcd"), "path": list("abcd"), "label": list("xyxy"),
                             "split": ["val", "val", "train", "train"]})
    with pytest.raises(ValueError, match="no 'test' rows"):
        assign_splits(manifest, val_fraction=None)
    with pytest.raises(ValueError, match="val_fraction: the manifest has its own 'split'"):
        assign_splits(manifest.assign(split=["val", "test"] * 2), val_fraction=0.5)
    kept = assign_splits(manifest.assign(split=["val", "test", "train", "test"]), val_fraction=None)
    assert list(kept["id"]) == ["a", "b", "d"]
    four = pd.DataFrame({"id": list("abcd"), "path": list("abcd"), "label": list("xyxy")})
    split = assign_splits(four, seed=1)["split"]
    assert sorted(split) == ["test", "test", "val", "val"]
    assert np.array_equal(split, assign_splits(four, seed=1)["split"])  # seeded


@pytest.fixture(scope="module")
def clip_study(digits, tmp_path_factory):
    """The digits study with (tiny, random-weight) CLIP embeddings, for the CLIP notebooks."""
    from _tiny_models import make_tiny_clip

    from primekit.study_build import build_study

    root = tmp_path_factory.mktemp("clip_study")
    clip = make_tiny_clip(root / "clip")
    images, model, attributes = digits
    build_study(images, f"jit:{model}", out=root / "digits", attributes=attributes,
                taggers=[f"clip:local-dir:{clip}"],
                embed=f"clip:local-dir:{clip}", progress=False, image_size=8, resize=8,
                normalize="none", grayscale=True, search={"min_size": 10, "min_drop": 0.2, "max_tags": 2})
    return root / "digits"


def test_tags_of_a_tagger_and_an_attribute_table_are_one_table(clip_study):
    from primekit.tags import read_tags

    tags = read_tags(clip_study / "tags.parquet")
    from primekit.tagging import builtin_vocabulary

    # the tiny random CLIP's tags mean nothing: the test is that both sources reach one table
    assert set(builtin_vocabulary()) & set(tags["tag"]) and {"slanted left", "much ink"} <= set(tags["tag"])
    assert not tags.duplicated(["id", "tag"]).any()
    record = json.loads((clip_study / "study.json").read_text())
    assert record["taggers"][0].startswith("clip:local-dir:") and record["clip"] == record["embed"]
    assert {"tags_0_clip.parquet", "tags_attributes.parquet", "embeddings.parquet"} <= set(record["files"])


def test_a_study_says_what_it_lacks_and_how_to_add_it(study_dir, clip_study):
    from primekit import load_study

    plain, with_clip = load_study(str(study_dir)), load_study(str(clip_study))
    lacks = plain.check("embeddings", "truth", section="Table 3")
    assert not lacks and lacks.missing == ("embeddings", "truth")
    assert lacks.sentence.startswith("Skipped: Table 3 needs CLIP image embeddings and ground-truth")
    assert "--embed clip:ViT-B-16:openai" in lacks.sentence and "truth.parquet" in lacks.sentence
    assert with_clip.check("embeddings", "clip", section="Fig. 5") and not with_clip.has("world")
    assert with_clip.image_embeddings("val").shape[0] == len(with_clip.val.samples)
    assert plain.search_defaults() == {"min_size": 10, "min_drop": 0.2, "max_tags": 2,
                                       "necessity": {2: 0.1, 3: 0.05, 4: 0.025}}
    assert plain.search_defaults(min_size=20)["min_size"] == 20
    assert not plain.check(section="grids", modes=pd.DataFrame())
    with pytest.raises(ValueError, match="feature: expected one of"):
        plain.has("gpu")


@pytest.mark.slow
@pytest.mark.parametrize("name", [p.name for p in __import__("primekit.notebooks").notebooks.list_notebooks()])
def test_every_notebook_runs_on_the_users_folder(name, digits, clip_study, tmp_path):
    """Every notebook on the digits study (smoke parameters): sections the study cannot run are
    skipped with their sentence, the rest runs on real images."""
    from primekit.notebooks import NOTEBOOK_DIR, run_notebook

    params = {"smoke": True, "fig_dir": str(tmp_path / "figures"), "dataset": str(clip_study)}
    if name.startswith("09"):
        params = {"smoke": True, "fig_dir": str(tmp_path / "figures"), "run_dir": str(clip_study),
                  "report_path": str(tmp_path / "report.html")}
    if name.startswith("10"):
        images, model, attributes = digits
        params = {"smoke": True, "fig_dir": str(tmp_path / "figures"), "images": str(images),
                  "model": f"jit:{model}", "attributes": str(attributes),
                  "preprocessing": {"image_size": 8, "resize": 8, "normalize": "none", "grayscale": True},
                  "study_dir": str(tmp_path / "study")}
    numbers = run_notebook(NOTEBOOK_DIR / name, tmp_path / "executed", parameters=params)
    assert numbers
    executed = json.loads((tmp_path / "executed" / name).read_text())
    text = json.dumps([c.get("outputs", []) for c in executed["cells"]])
    if name[:2] in ("00", "01", "04"):  # the toy-world-only sections say why they are skipped
        assert "Skipped:" in text and "To add:" in text
    if name[:2] in ("02", "03", "05", "06", "07", "10"):
        assert "Skipped:" not in text


def test_trusting_the_classifier_checkpoint_does_not_refuse_a_clip_tagger():
    """--trust-checkpoint is one flag for the study: RAM taggers get it, CLIP taggers do not need it."""
    from types import SimpleNamespace

    from primekit import study_build

    steps = []
    run = SimpleNamespace(images_key="k", step=lambda name, key, outputs, work, **kw: steps.append(key))
    tagging = {"vocabulary": None, "text_encoder": None, "trust_pickle": True}
    jobs = {"device": "cpu", "batch_size": 4, "num_workers": 0}
    outputs = study_build._tag_steps(run, ["clip:ViT-B-16:openai", "ram++:ram.pth"], None, tagging, jobs)
    assert outputs == ["tags_0_clip.parquet", "tags_1_rampp.parquet"]
    assert "trust_pickle" not in steps[0]["options"] and "trust_pickle" in steps[1]["options"]
