"""The same tagger under Ray Data (local instance, CPU, tiny CLIP) writes the same tag table."""

from __future__ import annotations

import numpy as np
import pandas as pd
from _tiny_models import make_images, make_manifest, make_tiny_clip

from primekit.io import read_metadata
from primekit.tagging import tag_images


def test_the_actor_turns_a_batch_of_paths_into_the_same_rows_as_tag_images(tmp_path):
    """The map_batches actor alone (no Ray needed): tag rows plus one error row per bad image."""
    from primekit.images import read_image_source
    from primekit.tagging.ray import TagActor

    clip = make_tiny_clip(tmp_path / "clip")
    make_images(tmp_path / "imgs", n_per_class=3, corrupt=True)
    manifest = make_manifest(tmp_path / "imgs", tmp_path / "m.csv", missing=True)
    spec = f"clip:local-dir:{clip}"
    local = tag_images(manifest, spec, cache_dir=tmp_path / "c", threshold=0.3, progress=False)
    actor = TagActor(spec, threshold=0.3)
    rows = actor(read_image_source(manifest)[["id", "path"]])
    good = rows[rows["error"] == ""].sort_values(["id", "tag"]).reset_index(drop=True)
    assert (
        good["id"].tolist() == local["id"].tolist()
        and good["tag"].tolist() == local["tag"].tolist()
    )
    np.testing.assert_allclose(good["score"], local["score"], atol=1e-5)
    errors = rows[rows["error"] != ""].set_index("id")["error"]
    assert errors["ghost"] == "missing file" and errors["zz_corrupt_cat"].startswith(
        "cannot decode"
    )


def test_ray_tagging_equals_single_machine_tagging(local_ray, tmp_path):
    from primekit.tagging.ray import tag_images_ray

    clip = make_tiny_clip(tmp_path / "clip")
    make_images(tmp_path / "imgs", n_per_class=5, corrupt=True)
    manifest = make_manifest(tmp_path / "imgs", tmp_path / "m.csv", missing=True)
    spec = f"clip:local-dir:{clip}"
    options = dict(threshold={"red": 0.3}, min_score=None)
    local = tag_images(
        manifest, spec, cache_dir=tmp_path / "c", batch_size=4, progress=False, **options
    )
    out = tmp_path / "ray_tags.parquet"
    remote = tag_images_ray(
        manifest, spec, out=out, batch_size=4, concurrency=1, num_threads=1, **options
    )
    assert remote[["id", "tag"]].equals(local[["id", "tag"]])
    np.testing.assert_allclose(remote["score"], local["score"], atol=1e-5)
    meta, local_meta = read_metadata(out), local.attrs["metadata"]
    for key in ("tagger", "weights", "settings", "thresholds", "n_images", "n_errors"):
        assert meta[key] == local_meta[key], key
    errors = pd.read_csv(tmp_path / "ray_tags.errors.csv")
    assert sorted(errors["id"]) == ["ghost", "zz_corrupt_cat"]
