"""The toy-world models shipped with primekit: small weights-only files, each with its record
(command, keys, metrics), loaded for the world they were trained for and never for another; one
of them retrained from scratch reaches the shipped quality (slow)."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from primekit import toyworld as tw
from primekit.toyworld import _shipped
from primekit.toyworld.clip import clip_key
from primekit.toyworld.train import _net, _sized

ROOT = Path(__file__).resolve().parents[1]
#: The models primekit ships today (each with weights and record).
SHIPPED = ("classifier",)
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
