# The two commands a new user runs: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha256sum | cut -c1-12)

.PHONY: demo test lint typecheck unit bench replay-server clean venv airflow airflow-env

# pip shows its progress on a terminal; in CI logs (not a terminal) it stays quiet.
PIP := $(BIN)/pip install --disable-pip-version-check $(shell [ -t 2 ] || echo --quiet)

$(STAMP): requirements.lock pyproject.toml
	rm -f $(VENV)/.installed-*
	@echo "make venv: creating $(VENV) and installing requirements.lock (about 80 s the first time)"
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) -r requirements.lock
	$(PIP) --no-deps -e .
	$(BIN)/pip check
	touch $(STAMP)
	@echo "make venv: done; run $(BIN)/scdx --help"

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

## make bench: scdx against the floor (DuckDB alone), pandas + GX and dlt at 10M rows; publishing into
## Iceberg against table size; one Celery worker against two (not part of make test)
bench: $(STAMP)
	$(BIN)/python -m devtools bench
	$(BIN)/python -m devtools bench iceberg
	$(BIN)/python -m devtools bench workers

replay-server: $(STAMP)
	$(BIN)/scdx replay-server

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache

## make airflow: Airflow on this machine (SQLite in .airflow/, the project's DAGs, offline replay):
## migrate, import the pools, then `airflow standalone`. In a second shell: eval "$(make -s airflow-env)"
AIRFLOW_VARS = AIRFLOW_HOME=$(CURDIR)/.airflow \
	AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags \
	AIRFLOW__CORE__LOAD_EXAMPLES=False \
	AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=sqlite:///$(CURDIR)/.airflow/airflow.db \
	SCDX_DATA_DIR=$(CURDIR)/data

AIRFLOW_ENV = PATH=$(CURDIR)/$(BIN):$$PATH $(AIRFLOW_VARS)

airflow-env:
	@echo 'export PATH=$(CURDIR)/$(BIN):$$PATH'
	@for assignment in $(AIRFLOW_VARS); do echo "export $$assignment"; done

airflow: $(STAMP)
	mkdir -p .airflow
	$(AIRFLOW_ENV) airflow db migrate
	$(AIRFLOW_ENV) scdx airflow-pools --out .airflow/pools.json
	$(AIRFLOW_ENV) airflow pools import .airflow/pools.json
	$(AIRFLOW_ENV) airflow standalone
