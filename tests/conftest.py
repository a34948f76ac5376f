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
