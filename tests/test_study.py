"""primekit.study: one shape for the toy world and for a folder data set."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import primekit
from primekit.study import load_study


def make_folder(tmp_path, with_clip=False):
    rng = np.random.default_rng(0)
    n = 200
    ids = [f"im{i}" for i in range(n)]
    samples = pd.DataFrame({
        "id": ids,
        "label": rng.choice(["cat", "dog"], n),
        "correct": rng.random(n) < 0.8,
        "split": np.where(np.arange(n) < 120, "val", "test"),
    })
    samples.to_parquet(tmp_path / "samples.parquet")
    matrix = pd.DataFrame(rng.random((n, 4)) < 0.4, index=ids, columns=["a", "b", "c", "d"])
    primekit.write_tags(primekit.matrix_to_tags(matrix), tmp_path / "tags.parquet")
    if with_clip:
        (tmp_path / "study.json").write_text(json.dumps({"threshold": 0.5}))
    return samples, matrix


def test_folder_study_splits_and_aligns(tmp_path):
    samples, matrix = make_folder(tmp_path, with_clip=True)
    study = load_study(str(tmp_path))
    assert len(study.val.samples) == 120 and len(study.test.samples) == 80
    assert list(study.val.tags.index) == list(samples["id"][:120])
    pd.testing.assert_frame_equal(
        study.val.tags, matrix.iloc[:120][study.val.tags.columns], check_names=False
    )
    modes = study.find_failure_modes(min_size=5, min_drop=0.1)
    direct = primekit.find_failure_modes(study.val.tags, study.val.labels, study.val.correct,
                                         min_size=5, min_drop=0.1)
    pd.testing.assert_frame_equal(modes, direct)
    assert not study.can_generate
    with pytest.raises(ValueError, match="no CLIP model"):
        study.encode_text(["a photo"])
    # a split is compared by identity (a dataclass's field-wise == compared DataFrames and raised)
    again = load_study(str(tmp_path)).val
    assert study.val == study.val and study.val != again and again not in [study.val, study.test]


def test_bad_datasets_are_named(tmp_path):
    with pytest.raises(ValueError, match="dataset: expected 'toyworld' or an existing folder"):
        load_study(str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="needs samples"):
        load_study(str(tmp_path))
    with pytest.raises(ValueError, match="tagger"):
        load_study("toyworld", tagger="ram")


@pytest.mark.slow
def test_toyworld_study_has_everything(primekit_home):
    study = load_study("toyworld", smoke=True)
    assert study.val.truth is not None and study.val.truth.index.equals(study.val.tags.index)
    emb = study.image_embeddings("val")
    assert emb.shape[0] == len(study.val.samples)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-4)
    text = study.encode_text(["a photo of a bird"])
    assert text.shape == (1, emb.shape[1])
    cls = study.val.samples["label"].iloc[0]
    images = study.generate(cls, ["grass"], 4, seed=1)
    assert images.shape[0] == 4
    assert len(study.predict_images(images)) == 4
