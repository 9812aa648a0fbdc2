# rnnkit: `make train` sets up and trains the quickstart; `make test` sets up and runs the tests.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install train test test-slow bench lint clean

$(STAMP): pyproject.toml Makefile $(wildcard rnnkit/csrc/*.cpp rnnkit/csrc/*.h)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# pin torch first: the CPU wheel this machine has; an unpinned torch pulls GBs of CUDA
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]"
	# the C++ loops of the `native` backend, compiled once per machine (~30 s); never fatal
	$(BIN)/python -c 'from rnnkit.layers.backends import native_build; native_build.main()'
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)
	$(BIN)/python scripts/train.py +experiment=quickstart

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

bench: $(STAMP)
	$(BIN)/python scripts/bench.py --quick

lint: $(STAMP)
	$(BIN)/ruff check rnnkit scripts tests
	$(BIN)/ruff format --check rnnkit scripts tests

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache
