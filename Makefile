# The two commands a new user runs: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha256sum | cut -c1-12)

.PHONY: demo test lint typecheck unit bench replay-server clean venv

$(STAMP): requirements.lock pyproject.toml
	rm -f $(VENV)/.installed-*
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	$(BIN)/pip check
	touch $(STAMP)

venv: $(STAMP)

## make demo: nightly refresh of every dataset against the bundled replay server, then an analyst query
demo: $(STAMP)
	$(BIN)/scdx demo

## make test: lint, type-check and the whole test suite
test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check pipelines dags tests scripts devtools
	$(BIN)/ruff format --check pipelines dags tests scripts devtools
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

## make bench: scdx against the floor (DuckDB alone), pandas + GX and dlt at 10M rows (not part of make test)
bench: $(STAMP)
	$(BIN)/python -m devtools bench

replay-server: $(STAMP)
	$(BIN)/scdx replay-server

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
