# The two commands: `make demo` (a complete virtual trial, ending in the report) and `make test`.
# Both do all the set-up they need on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
LINT_PATHS := $(wildcard src tests benchmarks validation)
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres
DEMO_OUT ?= demo-output
SEED ?= 20251208

.PHONY: setup services test lint typecheck pytest demo validate bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

services:
	bash scripts/ensure_services.sh

lint: setup
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

typecheck: setup
	$(BIN)/mypy

pytest: setup services
	IMMUNOSEP_TEST_PG_URL=$(PG_URL) $(BIN)/pytest -n 2 --dist loadfile

test: lint typecheck pytest

demo: setup
	$(BIN)/immunosep demo --out $(DEMO_OUT) --seed $(SEED)

validate: setup
	bash validation/run.sh

bench: setup services
	IMMUNOSEP_TEST_PG_URL=$(PG_URL) bash benchmarks/run_all.sh

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .mypy_cache .ruff_cache
