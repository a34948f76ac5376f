"""Every numbered notebook is clean (no outputs, no logic) and runs top to bottom in smoke mode."""

from __future__ import annotations

import json

import pytest

from primekit.notebooks import list_notebooks, read_key_numbers, run_notebook

NOTEBOOKS = list_notebooks()


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no NN_*.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_clean(path):
    nb = json.loads(path.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") for c in code), "outputs are committed (run nbstripout)"
    assert all(c.get("execution_count") is None for c in code), "execution counts are committed"
    params = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, "exactly one cell must be tagged 'parameters'"
    source = "".join(params[0]["source"])
    for name in ("smoke", "fig_dir", "seed"):
        assert f"{name}:" in source, f"parameters cell lacks {name!r}"
    for cell in code:
        for line in "".join(cell["source"]).splitlines():
            assert not line.lstrip().startswith(("def ", "class ")), "logic belongs in primekit/"
    assert nb["cells"][0]["cell_type"] == "markdown" and nb["cells"][0]["source"], "title first"
    assert "key_numbers(" in "".join("".join(c["source"]) for c in code[-2:]), "key numbers last"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_in_smoke_mode(path, tmp_path, primekit_home):
    numbers = run_notebook(
        path,
        tmp_path / "executed",
        parameters={"smoke": True, "fig_dir": str(tmp_path / "figures")},
    )
    assert numbers, "the notebook reported no key numbers"
    assert read_key_numbers(tmp_path / "executed" / path.name) == numbers
    figures = list((tmp_path / "figures").glob(f"{path.name[:2]}_*.png"))
    assert figures, "the notebook saved no figure named after its number"
