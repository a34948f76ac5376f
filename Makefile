# primekit: every install step lives here, so a fresh clone needs only `make demo` / `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.primekit-installed
OUT    ?= runs/demo

.PHONY: setup demo test test-fast figures bench lint clean

# torch/torchvision are pinned to the builds served from local disk; installing them first keeps
# the resolver from fetching another build for open_clip's `torch` requirement.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/primekit demo --out $(OUT)

test: $(STAMP)
	bash scripts/install_browser.sh
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not browser"

figures: $(STAMP)
	$(PY) -m primekit.notebooks run-all --out build/notebooks

bench: $(STAMP)
	$(PY) benchmarks/run.py

lint: $(STAMP)
	$(VENV)/bin/ruff check primekit tests benchmarks notebooks

clean:
	rm -rf build runs .pytest_cache
