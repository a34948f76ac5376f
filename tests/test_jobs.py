"""Resumable sharded jobs: nothing is lost when a run is killed, and a full cache is instant."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from _tiny_models import make_images

from primekit._jobs import run_image_job

torch.set_num_threads(1)


def _transform(image):
    return torch.from_numpy(np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255)


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 22 * 22, 5)
    )


def _paths(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*.png"))


@pytest.fixture
def images(tmp_path):
    return make_images(tmp_path / "imgs", n_per_class=12, corrupt=True)


def test_a_rerun_with_nothing_new_computes_nothing(images, tmp_path):
    net = _net()
    calls = []

    def forward(batch):
        calls.append(len(batch))
        return net(batch)

    kw = dict(
        forward=forward,
        transform=_transform,
        settings={"m": 1},
        kind="t",
        cache_dir=tmp_path / "c",
        batch_size=4,
        progress=False,
    )
    first = run_image_job(_paths(images), **kw)
    assert first.n_computed == 25 and sum(calls) == 24  # the corrupt file never reaches the model
    assert list(first.errors["reason"].str.startswith("cannot decode")) == [True]
    calls.clear()
    second = run_image_job(_paths(images), **kw)
    assert calls == [] and second.n_computed == 0 and second.n_cached == 25
    np.testing.assert_array_equal(first.values, second.values)
    # other settings are another cache entry
    third = run_image_job(_paths(images), **{**kw, "settings": {"m": 2}})
    assert third.n_computed == 25


def test_same_content_is_computed_once_and_new_images_only_are_computed(images, tmp_path):
    net = _net()
    paths = _paths(images)
    dup = tmp_path / "dup.png"
    dup.write_bytes(Path(paths[0]).read_bytes())
    kw = dict(
        forward=net,
        transform=_transform,
        settings={},
        kind="t",
        cache_dir=tmp_path / "c",
        batch_size=4,
        progress=False,
    )
    res = run_image_job(paths + [str(dup)], **kw)
    assert res.n_computed == 25
    np.testing.assert_array_equal(res.values[0], res.values[-1])
    new = tmp_path / "new.png"
    from PIL import Image

    Image.new("RGB", (24, 24), "red").save(new)
    res2 = run_image_job(paths + [str(new)], **kw)
    assert res2.n_computed == 1


def test_missing_files_are_reported_not_raised(tmp_path):
    res = run_image_job(
        [str(tmp_path / "ghost.png")],
        forward=_net(),
        transform=_transform,
        settings={},
        kind="t",
        cache_dir=tmp_path / "c",
        progress=False,
    )
    assert res.errors["reason"].tolist() == ["missing or unreadable file"]
    assert not res.ok.any()


def test_an_interrupted_run_resumes_to_the_same_result(images, tmp_path):
    net = _net()
    paths = _paths(images)
    reference = run_image_job(
        paths,
        forward=net,
        transform=_transform,
        settings={},
        kind="t",
        cache_dir=tmp_path / "ref",
        batch_size=3,
        progress=False,
    )
    seen = []

    def dies_after_three_batches(batch):
        if len(seen) == 3:
            raise KeyboardInterrupt
        seen.append(len(batch))
        return net(batch)

    kw = dict(
        transform=_transform,
        settings={},
        kind="t",
        cache_dir=tmp_path / "c",
        batch_size=3,
        shard_images=3,
        progress=False,
    )
    with pytest.raises(KeyboardInterrupt):
        run_image_job(paths, forward=dies_after_three_batches, **kw)
    resumed = run_image_job(paths, forward=net, **kw)
    assert resumed.n_cached >= 9 and resumed.n_computed < 25
    np.testing.assert_array_equal(resumed.values, reference.values)
    assert resumed.errors.equals(reference.errors)


_SCRIPT = textwrap.dedent("""
    import json, sys, time
    import numpy as np, torch
    torch.set_num_threads(1)
    sys.path.insert(0, {tests!r})
    from test_jobs import _net, _paths, _transform
    from primekit._jobs import run_image_job
    net = _net()
    def slow(batch):
        time.sleep(0.15)
        return net(batch)
    from pathlib import Path
    res = run_image_job(_paths(Path({images!r})), forward=slow, transform=_transform, settings={{}},
                        kind="t", cache_dir={cache!r}, batch_size=2, shard_images=2, progress=False)
    np.save({out!r}, res.values)
    print(json.dumps({{"cached": res.n_cached, "computed": res.n_computed}}))
""")


def test_sigkill_at_any_moment_then_the_same_command_finishes_identically(images, tmp_path):
    cache, out = tmp_path / "cache", tmp_path / "out.npy"
    script = tmp_path / "job.py"
    script.write_text(
        _SCRIPT.format(
            tests=str(Path(__file__).parent), images=str(images), cache=str(cache), out=str(out)
        )
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(cache.glob("t/*/shard-*.npz"))) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL and not out.exists()
    done = subprocess.run(
        [sys.executable, str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    stats = json.loads(done.stdout.strip().splitlines()[-1])
    assert stats["cached"] >= 4 and stats["computed"] < 25  # it resumed
    net = _net()
    reference = run_image_job(
        _paths(images),
        forward=net,
        transform=_transform,
        settings={},
        kind="t",
        cache_dir=tmp_path / "ref",
        batch_size=2,
        progress=False,
    )
    np.testing.assert_array_equal(np.load(out), reference.values)
