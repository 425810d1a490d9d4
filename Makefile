# orderflow developer entry points. Everything runs from the project's own .venv.
#
#   make test         install (when needed), ruff, mypy, the whole pytest suite
#   make lint         ruff + mypy + the import-layer contracts (import-linter)
#   make up           the whole system on embedded defaults (orderflow up)
#   make bench        orderflow bench (BENCH_ARGS="--orders 2000 --via kafka --out b.json")
#   make constraints  re-pin constraints.txt from .venv
#   make clean        caches and build output (keeps .venv)
#   make distclean    clean + .venv + .orderflow

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Install with the pinned versions when the pin file exists (CI gets what was tested).
CONSTRAINTS := $(wildcard constraints.txt)
PIP_CONSTRAINTS := $(if $(CONSTRAINTS),-c $(CONSTRAINTS))

export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install test lint up bench constraints clean distclean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Re-install only when pyproject.toml (or the pins) changed since the last install.
$(STAMP): pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(BIN)/python -m pip install --quiet $(PIP_CONSTRAINTS) -e '.[dev]'
	touch $@

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest -q

up: $(STAMP)
	$(BIN)/orderflow up

BENCH_ARGS ?=
bench: $(STAMP)
	$(BIN)/orderflow bench $(BENCH_ARGS)

constraints: $(STAMP)
	{ echo "# Pinned versions of every dependency, for the Docker image and \`make\` installs."; \
	  echo "# Regenerate with \`make constraints\` (pip freeze --exclude-editable of .venv) after"; \
	  echo "# changing dependencies in pyproject.toml."; \
	  $(BIN)/python -m pip freeze --exclude-editable; } > constraints.txt.tmp
	mv constraints.txt.tmp constraints.txt

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) .orderflow
