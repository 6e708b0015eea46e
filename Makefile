# chargebay: make setup | run | test | bench | lint
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: setup run test lint typecheck bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# A whole 45-minute session on simulated hardware, 60 times faster than real time.
run: $(STAMP)
	$(BIN)/chargebay sim break-45min --speed 60

lint: $(STAMP)
	$(BIN)/ruff check firmware hal sim tests

typecheck: $(STAMP)
	$(BIN)/mypy firmware hal sim

test: lint typecheck
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python -m sim.bench

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache
