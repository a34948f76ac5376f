"""Shared test configuration: keep everything offline and on the CPU, cache the toy world per run."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def primekit_home(tmp_path_factory) -> str:
    """A PRIMEKIT_HOME shared by the whole test session (toy world built once, smoke size)."""
    home = os.environ.get("PRIMEKIT_TEST_HOME") or str(tmp_path_factory.mktemp("primekit_home"))
    os.environ["PRIMEKIT_HOME"] = home
    return home


@pytest.fixture(scope="session")
def local_ray(tmp_path_factory):
    """A local Ray instance with 2 CPUs for the whole session (the Ray tagging and search tests)."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'primekit[ray]')")
    # Ray's helper processes import jsonschema, which imports the optional rfc3987_syntax (3-4 s
    # of grammar compilation); on a loaded machine that pushes the dashboard agent past the
    # raylet's fixed 15 s start-up window (ray-project/ray#65983). Hide it from the helpers only.
    stub = tmp_path_factory.mktemp("ray_helpers")
    (stub / "rfc3987_syntax.py").write_text(
        "raise ImportError('not needed by Ray helpers in tests')\n"
    )
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(stub), saved]))
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    except Exception as exc:  # pragma: no cover - depends on the machine's load
        ray.shutdown()
        pytest.skip(
            f"a local Ray instance could not start here ({exc}); on an overloaded machine the "
            "raylet gives its dashboard agent only 15 s (ray-project/ray#65983)"
        )
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()
