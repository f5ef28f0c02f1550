# The two commands: `make reproduce` and `make test`. Both work from a fresh clone with only
# Python 3.11: they create .venv and install the project first.
#
# TORCH_SPEC pins the CPU build used here and in CI; GPU users pick their own build, e.g.
#   make install TORCH_SPEC="torch==2.13.0" PIP_EXTRA="--index-url https://download.pytorch.org/whl/cu126"

PYTHON ?= python3.11
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PIP_EXTRA ?=
CORES ?= all
PYTEST_ARGS ?=
# Parallel workers of pytest-xdist for test-fast (auto: one per core).
TEST_WORKERS ?= auto

BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install reproduce test test-fast lint bench bench-scale clean-venv

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found; set PYTHON=/path/to/python3.11" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml Makefile
	$(BIN)/python -m pip install --quiet $(PIP_EXTRA) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[all,test,slurm]" "$(TORCH_SPEC)"
	@touch $(STAMP)

install: $(STAMP)

reproduce: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake all --cores $(CORES) --profile profiles/local

# The whole suite (what CI runs).
test: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest $(PYTEST_ARGS)

# Unit tests only, for everyday work: no Snakemake/DVC/SLURM/torchrun end-to-end runs (marker `slow`),
# spread over TEST_WORKERS processes (each runs torch on one thread).
test-fast: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -m "not slow" -n $(TEST_WORKERS) $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake --lint

bench: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python bench/data.py

# Every stage at Human3.6M's size (preset full; hours of extrapolated work, about 45 minutes of running on 2 CPUs).
bench-scale: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python bench/scale.py

clean-venv:
	rm -rf $(VENV)
