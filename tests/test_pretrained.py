"""The toy-world models shipped with primekit: small weights-only files, each with its record
(command, keys, metrics), loaded for the world they were trained for and never for another; one
of them retrained from scratch reaches the shipped quality (slow)."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import torch

from primekit import toyworld as tw
from primekit.toyworld import _shipped
from primekit.toyworld.clip import clip_key
from primekit.toyworld.train import _net, _sized

ROOT = Path(__file__).resolve().parents[1]
#: The models primekit ships today (each with weights and record).
SHIPPED = ("classifier", "tagger", "clip")
CONFIGS = {
    "classifier": lambda: tw.ClassifierConfig(seed=0).key,
    "tagger": lambda: tw.TaggerConfig(seed=1).key,
    "clip": lambda: clip_key(seed=0),
}


@pytest.mark.parametrize("kind", SHIPPED)
def test_each_model_is_shipped_with_its_record(kind):
    record = _shipped.shipped_record(kind, 0)
    assert record is not None, f"no shipped {kind}"
    assert record["command"] == f"primekit toyworld train --what {kind} --seed 0"
    path = _shipped.weights_path(kind, 0)
    assert path.stat().st_size == record["bytes"]
    assert _shipped.file_digest(path) == record["sha256"]
    assert record["metrics"] and record["machine"]["cpu"]
    # trained for the world and settings the code builds today: editing the renderer, the
    # distributions or a model's settings without retraining the shipped models fails here
    assert record["world_key"] == tw.WorldConfig(seed=0).key
    assert record["config_key"] == CONFIGS[kind]()
    assert _shipped.shipped_weights(kind, seed=0, world_key=record["world_key"], config_key=record["config_key"]) == path


def test_shipped_weights_are_a_few_megabytes():
    total = sum(_shipped.weights_path(k, 0).stat().st_size for k in SHIPPED)
    assert total < 6_000_000


def test_shipped_classifier_loads_strictly():
    clf = _sized(_net(len(tw.CLASSES), 16, 32), 32)
    clf.load_state_dict(_shipped.load_weights(_shipped.weights_path("classifier", 0)))
    assert _shipped.shipped_record("classifier", 0)["metrics"]["val_accuracy"] > 0.8


def _unbuilt_world(tmp_path):
    """The seed-0 world's handle (its keys, a folder) without building it: enough to resolve the
    shipped models, which are picked by key."""
    return tw.ToyWorld(tmp_path / "world", tw.WorldConfig(seed=0))


def _fresh_images(n: int, seed: int = 123):
    """``n`` natural images of the world drawn apart from every split (own seed), with their truth."""
    table = tw.sample_attributes(n, seed=seed)
    return tw.render(table), table


def test_shipped_tagger_is_served_and_tags_new_images_as_recorded(tmp_path):
    config = tw.TaggerConfig(seed=1)
    model = tw.train_tagger(_unbuilt_world(tmp_path), config=config)
    assert model.source_ == "shipped" and model.weights_file_ == _shipped.weights_path("tagger", 0)
    images, table = _fresh_images(1500)
    with torch.no_grad():
        scores = torch.sigmoid(model(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0)).numpy()
    truth = table[list(tw.ATTRIBUTES)].astype(bool)
    quality = tw.tagger_quality(pd.DataFrame(scores >= 0.5, index=truth.index, columns=truth.columns), truth)
    record = _shipped.shipped_record("tagger", 0)["metrics"]
    # 1,500 fresh images against the record's 12,000 val images: means agree to sampling noise
    assert quality["precision"].mean() >= record["mean_precision"] - 0.04
    assert quality["recall"].mean() >= record["mean_recall"] - 0.04


def test_shipped_clip_unpacks_into_an_open_clip_folder_and_matches_its_record(tmp_path):
    import open_clip
    from sklearn.metrics import roc_auc_score

    world = _unbuilt_world(tmp_path)
    path = tw.clip_dir(world=world, seed=0)
    digest = _shipped.file_digest(_shipped.weights_path("clip", 0))[:12]
    assert path.parent == world.root and path.name.endswith(digest)
    # open_clip's own local-dir loader, strict: every tensor of the architecture is in the file
    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{path}")
    tokenizer = open_clip.get_tokenizer(f"local-dir:{path}")
    assert tw.clip_dir(world=world, seed=0) == path  # unpacked once, reused
    model.eval()
    images, table = _fresh_images(1000)
    with torch.no_grad():
        img = model.encode_image(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0, normalize=True)
        txt = model.encode_text(tokenizer([tw.attribute_prompt(a) for a in tw.ATTRIBUTES]), normalize=True)
    sims = (img @ txt.T).numpy()
    aurocs = [roc_auc_score(table[a], sims[:, j]) for j, a in enumerate(tw.ATTRIBUTES) if 0 < table[a].sum() < len(table)]
    recorded = _shipped.shipped_record("clip", 0)["metrics"]["mean_auroc"]
    assert sum(aurocs) / len(aurocs) >= recorded - 0.03


def test_shipped_weights_are_not_used_for_another_world_or_settings():
    record = _shipped.shipped_record("classifier", 0)
    assert _shipped.shipped_weights("classifier", seed=0, world_key="other", config_key=record["config_key"]) is None
    assert _shipped.shipped_weights("classifier", seed=0, world_key=record["world_key"], config_key="other") is None
    assert _shipped.shipped_weights("classifier", seed=7, world_key=record["world_key"], config_key=record["config_key"]) is None


def test_a_damaged_weights_file_is_refused(tmp_path):
    for suffix in (".safetensors", ".json"):
        src = _shipped.WEIGHTS_DIR / f"classifier-s0{suffix}"
        (tmp_path / src.name).write_bytes(src.read_bytes())
    with open(tmp_path / "classifier-s0.safetensors", "ab") as fh:
        fh.write(b"\0")
    record = _shipped.shipped_record("classifier", 0)
    with pytest.raises(ValueError, match="SHA-256"):
        _shipped.shipped_weights("classifier", seed=0, world_key=record["world_key"], config_key=record["config_key"], folder=tmp_path)


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="kind"):
        _shipped.shipped_record("ram", 0)


def test_compact_clip_state_round_trips_the_used_rows():
    state = {"token_embedding.weight": torch.zeros(50, 4), "proj": torch.randn(4, 3), "steps": torch.tensor([3])}
    state["token_embedding.weight"][[2, 7]] = torch.randn(2, 4)
    packed = _shipped.compact_clip_state(state, [2, 7])
    assert packed["token_embedding.weight"].shape == (2, 4) and packed["proj"].dtype == torch.float16
    back = _shipped.expand_clip_state(packed)
    assert back["token_embedding.weight"].shape == (50, 4) and back["proj"].dtype == torch.float32
    torch.testing.assert_close(back["token_embedding.weight"], state["token_embedding.weight"], atol=1e-3, rtol=1e-3)
    assert int(back["steps"]) == 3


def test_train_command_is_on_the_cli():
    from primekit.cli import build_parser

    args = build_parser("toyworld").parse_args(["toyworld", "train", "--what", "tagger", "--seed", "0"])
    assert (args.what, args.seed, Path(args.out)) == ("tagger", 0, _shipped.WEIGHTS_DIR)


@pytest.mark.slow
def test_a_non_editable_install_ships_the_weights(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True,
    )
    (wheel,) = tmp_path.glob("primekit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for kind in SHIPPED:
        assert f"primekit/toyworld/weights/{kind}-s0.safetensors" in names
        assert f"primekit/toyworld/weights/{kind}-s0.json" in names


@pytest.mark.slow
def test_retraining_the_classifier_from_scratch_reaches_the_shipped_quality(tmp_path, primekit_home):
    """The cheapest shipped model, retrained with its recorded command (about a minute on 2
    cores). Training is deterministic on one CPU but not across CPUs (the float kernels differ),
    so the quality is compared, not the weights."""
    from primekit.cli import main

    shipped = _shipped.shipped_record("classifier", 0)
    argv = [*shipped["command"].split()[1:], "--out", str(tmp_path), "--home", primekit_home, "--no-progress"]
    assert main(argv) == 0
    fresh = json.loads((tmp_path / "classifier-s0.json").read_text())
    assert fresh["world_key"] == shipped["world_key"] and fresh["config_key"] == shipped["config_key"]
    for split in ("val", "test"):
        assert fresh["metrics"][f"{split}_accuracy"] >= shipped["metrics"][f"{split}_accuracy"] - 0.02
