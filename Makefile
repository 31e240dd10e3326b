# make demo | make test | make test-interop | make bench | make gpu-check | make docs
# Each target creates .venv (python3 -m venv + pip) on first use and reuses it afterwards.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
PYTEST_ARGS ?=

.PHONY: demo test test-interop bench gpu-check docs clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# One stamp per extra: an install is redone only when pyproject.toml changes.
$(VENV)/.stamp-%: pyproject.toml | $(PY)
	$(PIP) -e ".[$*]"
	touch $@

# The Darcy FNO in quick mode (examples/demo.py); plot and results in runs/demo/
demo: $(VENV)/.stamp-examples
	$(PY) examples/demo.py

test: $(VENV)/.stamp-dev
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

# FNO.from_neuralop against neuraloperator itself (installed by the bench extra; skipped without it)
test-interop: $(VENV)/.stamp-bench $(VENV)/.stamp-dev
	$(PY) -m pytest -q tests/operators/test_interop.py $(PYTEST_ARGS)

bench: $(VENV)/.stamp-bench
	$(PY) -m benchmarks all --device cpu --json runs/bench-cpu.json

gpu-check: $(VENV)/.stamp-bench $(VENV)/.stamp-dev
	mkdir -p runs
	$(PY) -m pytest -m gpu -q --junitxml=runs/gpu-tests.xml
	$(PY) -m benchmarks all --device cuda --quick --json runs/bench-cuda.json

# The API reference as static HTML in docs/_build/html, offline, warnings as errors
docs: $(VENV)/.stamp-docs
	$(VENV)/bin/sphinx-build -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) runs .pytest_cache docs/_build docs/api
