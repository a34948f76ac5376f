"""Open-vocabulary CLIP tagging, tag_images' table/metadata/errors, attribute tables, and the CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from _tiny_models import make_images, make_manifest, make_tiny_clip

from primekit.cli import main
from primekit.io import read_metadata
from primekit.tagging import (
    ClipTagger,
    attributes_to_tags,
    builtin_vocabulary,
    load_tagger,
    read_celeba_attributes,
    read_cub_attributes,
    read_waterbirds_metadata,
    tag_images,
)
from primekit.tags import read_tags, tags_to_matrix

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return make_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny")


@pytest.fixture(scope="module")
def tagger(clip_dir):
    return ClipTagger(f"local-dir:{clip_dir}", vocabulary=["dog", "cat", "grass", "snow", "red"])


@pytest.fixture
def images(tmp_path):
    make_images(tmp_path / "imgs", n_per_class=3, corrupt=True)
    return make_manifest(tmp_path / "imgs", tmp_path / "manifest.csv", missing=True)


def test_builtin_vocabulary_is_a_few_hundred_unique_tags_in_sections():
    vocab = builtin_vocabulary()
    assert 250 <= len(vocab) == len(set(vocab))
    assert {"red", "snow", "grass", "night", "striped"} <= set(vocab)
    assert "fog" in builtin_vocabulary(sections=["weather and light"])
    assert "dog" not in builtin_vocabulary(sections=["colours"])


def test_prompt_ensembled_tag_embeddings_are_normalised_means(tagger):
    one = tagger.clip.encode_texts([t.format("dog") for t in tagger.templates]).mean(0)
    np.testing.assert_allclose(
        tagger.text_embeddings[0].numpy(), (one / one.norm()).numpy(), atol=1e-5
    )


def test_image_calibration_makes_one_threshold_mean_z_above_offset(tagger):
    raw = np.array([[0.1, 0.2, 0.3, 0.4, 0.5], [0.5, 0.5, 0.5, 0.5, 0.9]])
    scores = tagger.calibrate(raw)
    z = (raw - raw.mean(1, keepdims=True)) / raw.std(1, keepdims=True)
    assert ((scores > 0.5) == (z > tagger.offset)).all()
    assert np.all((scores >= 0) & (scores <= 1))
    np.testing.assert_allclose(tagger.calibrate(raw + 0.3), scores)  # shifts per image cancel


def test_tag_images_writes_sorted_table_metadata_and_an_errors_file(tagger, images, tmp_path):
    out = tmp_path / "tags.parquet"
    table = tag_images(
        images, tagger, out=out, cache_dir=tmp_path / "c", batch_size=4, progress=False
    )
    assert list(table.columns) == ["id", "tag", "score"]
    assert table.equals(table.sort_values(["id", "tag"]).reset_index(drop=True))
    assert (table["score"] > 0.5).all()
    meta = read_metadata(out)
    assert meta["tagger"] == "clip" and meta["settings"]["calibration"] == "image"
    assert meta["weights"].endswith("tiny") and meta["n_images"] == 8 and meta["n_errors"] == 2
    assert set(meta["thresholds"]) == set(tagger.vocabulary)
    errors = pd.read_csv(tmp_path / "tags.errors.csv")
    assert sorted(errors["id"]) == ["ghost", "zz_corrupt_cat"]
    assert set(errors["reason"].str.split(":").str[0]) == {
        "missing or unreadable file",
        "cannot decode image",
    }
    back = read_tags(out)
    pd.testing.assert_frame_equal(back, table, check_like=True)
    # all scores on request, same decisions through tags_to_matrix with the stored thresholds
    full = tag_images(images, tagger, cache_dir=tmp_path / "c", min_score=0.0, progress=False)
    assert len(full) == 6 * 5
    m = tags_to_matrix(full, threshold=0.5 + 1e-12)
    assert m.to_numpy().sum() == len(table)


def test_thresholds_global_and_per_tag(tagger, images, tmp_path):
    kw = dict(cache_dir=tmp_path / "c", progress=False)
    low = tag_images(images, tagger, threshold=0.0, **kw)
    assert len(low) == 6 * 5
    per_tag = tag_images(images, tagger, threshold={"dog": 1.0}, **kw)
    assert "dog" not in set(per_tag["tag"])
    with pytest.raises(
        ValueError, match=r"threshold: tag\(s\) \['wolf'\] are not in the tagger's vocabulary"
    ):
        tag_images(images, tagger, threshold={"wolf": 0.5}, **kw)
    with pytest.raises(ValueError, match="threshold: must lie in"):
        tag_images(images, tagger, threshold=1.5, **kw)


def test_a_score_equal_to_its_threshold_is_present_in_the_table_and_in_the_search(
    tagger, images, tmp_path
):
    """One rule for tag_images and the search's tag matrix: present when score >= threshold."""
    kw = dict(cache_dir=tmp_path / "c", progress=False)
    everything = tag_images(images, tagger, threshold=0.0, **kw)
    row = everything.sort_values("score").iloc[len(everything) // 2]
    at = tag_images(images, tagger, threshold={row["tag"]: float(row["score"])}, **kw)
    assert ((at["id"] == row["id"]) & (at["tag"] == row["tag"])).any()
    assert at.attrs["metadata"]["threshold_rule"] == "present when score >= threshold"
    assert tags_to_matrix(everything, threshold=float(row["score"])).loc[row["id"], row["tag"]]
    above = tag_images(images, tagger, threshold={row["tag"]: float(np.nextafter(row["score"], 1))}, **kw)
    assert not ((above["id"] == row["id"]) & (above["tag"] == row["tag"])).any()


def test_bad_arguments_fail_before_any_work(tagger, images, tmp_path):
    with pytest.raises(ValueError, match="out: .* must end in"):
        tag_images(images, tagger, out=tmp_path / "tags.txt")
    with pytest.raises(ValueError, match="tagger: unknown spec 'blip:x'"):
        load_tagger("blip:x")
    with pytest.raises(TypeError, match="tagger:"):
        tag_images(images, object())
    with pytest.raises(ValueError, match="calibration:"):
        ClipTagger(tagger.clip, vocabulary=["a"], calibration="magic")
    with pytest.raises(ValueError, match="vocabulary: contains repeated tags"):
        ClipTagger(tagger.clip, vocabulary=["a", "a"])


# ------------------------------------------------------------------ attribute tables
def test_boolean_and_categorical_columns_become_tags():
    table = pd.DataFrame(
        {
            "id": ["a", "b", "c"],
            "Smiling": [1, -1, 1],
            "wet": [True, False, False],
            "place": [0, 1, 1],
            "colour": ["red", None, "blue"],
            "label": ["x", "y", "x"],
        }
    )
    tags = attributes_to_tags(
        table, categorical=["place"], value_names={"place": {0: "land", 1: "water"}}
    )
    got = set(map(tuple, tags[["id", "tag"]].to_numpy()))
    assert got == {
        ("a", "Smiling"),
        ("c", "Smiling"),
        ("a", "wet"),
        ("a", "place=land"),
        ("b", "place=water"),
        ("c", "place=water"),
        ("a", "colour=red"),
        ("c", "colour=blue"),
    }
    assert (tags["score"] == 1.0).all()
    plain = attributes_to_tags(table, columns=["colour"], tag_format="{value}")
    assert set(plain["tag"]) == {"red", "blue"}
    with pytest.raises(ValueError, match="columns: \\['nope'\\]"):
        attributes_to_tags(table, columns=["nope"])


def test_celeba_cub_and_waterbirds_files(tmp_path):
    (tmp_path / "list_attr_celeba.txt").write_text(
        "2\n5_o_Clock_Shadow Smiling\n000001.jpg -1  1\n000002.jpg  1 -1\n"
    )
    celeba = read_celeba_attributes(tmp_path / "list_attr_celeba.txt")
    assert celeba.to_dict("list") == {
        "id": ["000001.jpg", "000002.jpg"],
        "5_o_Clock_Shadow": [False, True],
        "Smiling": [True, False],
    }
    assert set(attributes_to_tags(celeba)["tag"]) == {"5_o_Clock_Shadow", "Smiling"}

    cub = tmp_path / "CUB_200_2011"
    (cub / "attributes").mkdir(parents=True)
    (cub / "images.txt").write_text("1 001.A/a.jpg\n2 001.A/b.jpg\n")
    (cub / "attributes.txt").write_text(
        "1 has_bill_shape::curved_(up_or_down)\n2 has_wing_color::blue\n"
    )
    (cub / "attributes" / "image_attribute_labels.txt").write_text(
        "1 1 1 4 1.2\n1 2 0 3 2.0\n2 1 1 1 0.5 extra\n2 2 1 3 1.0\n"
    )
    attrs = read_cub_attributes(cub, min_certainty=2)
    tags = attributes_to_tags(attrs)
    assert set(map(tuple, tags[["id", "tag"]].to_numpy())) == {
        ("001.A/a.jpg", "bill shape: curved (up or down)"),
        ("001.A/b.jpg", "wing color: blue"),
    }

    pd.DataFrame(
        {
            "img_id": [1, 2],
            "img_filename": ["x/1.jpg", "y/2.jpg"],
            "y": [0, 1],
            "split": [0, 2],
            "place": [1, 0],
            "place_filename": ["p", "q"],
        }
    ).to_csv(tmp_path / "metadata.csv", index=False)
    wb = read_waterbirds_metadata(tmp_path / "metadata.csv")
    assert wb["split"].tolist() == ["train", "test"] and wb["label"].tolist() == [
        "landbird",
        "waterbird",
    ]
    assert attributes_to_tags(wb, columns=["place"], tag_format="{value}")["tag"].tolist() == [
        "water",
        "land",
    ]


# ------------------------------------------------------------------ command line
def test_cli_tag_and_embed(clip_dir, images, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PRIMEKIT_CACHE", str(tmp_path / "c"))
    out = tmp_path / "t.parquet"
    code = main(
        [
            "tag",
            "--images",
            str(images),
            "--tagger",
            f"clip:local-dir:{clip_dir}",
            "--out",
            str(out),
            "--vocabulary",
            "builtin",
            "--threshold",
            "0.5",
            "--no-progress",
        ]
    )
    assert code == 0 and read_metadata(out)["settings"]["n_tags"] == len(builtin_vocabulary())
    assert "2 skipped" in capsys.readouterr().err
    code = main(
        [
            "embed",
            "--images",
            str(images),
            "--model",
            f"clip:local-dir:{clip_dir}",
            "--out",
            str(tmp_path / "e.parquet"),
            "--no-progress",
        ]
    )
    assert code == 0 and pd.read_parquet(tmp_path / "e.parquet").shape == (6, 33)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tagger", "blip:x"], "primekit tag: error: tagger: unknown spec 'blip:x'"),
        (
            ["--tagger", "ram++:/nowhere/ram_plus_swin_large_14m.pth"],
            "huggingface.co/xinyu1205/recognize-anything-plus-model",
        ),
        (
            ["--tagger", "clip:toyworld", "--device", "cuda"],
            "device: 'cuda' was asked for but CUDA is not available",
        ),
        (["--tagger", "clip:toyworld", "--threshold", "high"], "--threshold: expected a number"),
    ],
)
def test_cli_errors_are_one_line(images, tmp_path, capsys, args, message):
    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code = main(["tag", "--images", str(images), "--out", str(tmp_path / "t.parquet"), *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1
