# The README's commands live here. `make demo` runs the demo sync end to end; `make test` runs every test.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_PACKAGES := unixodbc libsqliteodbc odbc-postgresql chromium chromium-driver redis-server
PG_TEST_USER := sagesync

.PHONY: help setup system-packages demo stack stack-down stack-status test test-unit lint format bench bench-datacompy-venv clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

setup: system-packages $(STAMP) ## Create .venv and install the project, its dev tools and the ODBC drivers
	@# Bytecode of the project's own modules, kept current: every Airflow process (each task under a real executor)
	@# imports them, and where PYTHONDONTWRITEBYTECODE is set no import would cache it (the packages' bytecode is
	@# compiled when they are installed).
	@$(BIN)/python -m compileall -q include dags plugins tools >/dev/null

system-packages:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v uv >/dev/null 2>&1 || $(PY) -c 'import ensurepip' >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi; \
	fi
	@if [ "$$(id -u)" = 0 ] && ! id -u $(PG_TEST_USER) >/dev/null 2>&1; then \
	  echo "Creating the unprivileged user '$(PG_TEST_USER)' that runs the tests' own PostgreSQL servers"; \
	  useradd --system --no-create-home --shell /usr/sbin/nologin $(PG_TEST_USER); \
	fi

$(STAMP): pyproject.toml
	@echo "Creating $(VENV) and installing the project with its dev tools"
	@if command -v uv >/dev/null 2>&1; then \
	  uv venv -q --allow-existing --python $(PY) $(VENV); \
	else \
	  $(PY) -m venv $(VENV) && $(BIN)/pip install -q uv; \
	fi
	@UV=$$(command -v uv || echo $(BIN)/uv); $$UV pip install -q --compile-bytecode --python $(BIN)/python -e '.[dev]'
	@touch $(STAMP)

lint: setup ## ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

demo: setup ## Run the demo sync end to end: stand-in dossier, SSM simulator, the real DAG twice, the report
	$(BIN)/sage-sync demo run --folder demo-run

stack: setup ## Start the production stack natively (CeleryExecutor, PostgreSQL, Redis, 2 workers) in stack-run/
	$(BIN)/sage-sync stack up --folder stack-run

stack-status: setup ## Show the parts of the stack started by `make stack`
	$(BIN)/sage-sync stack status --folder stack-run

stack-down: setup ## Stop the stack started by `make stack`
	$(BIN)/sage-sync stack down --folder stack-run

test: setup lint ## Lint, then every test: unit, DAG integrity and integration (real ODBC, real HTTP)
	$(BIN)/pytest

test-unit: setup ## Only the fast unit tests
	$(BIN)/pytest -m unit

bench: setup bench-datacompy-venv ## Run every benchmark in bench/ (several runs, medians); JSON in bench/results/
	$(BIN)/python bench/run_all.py

bench-datacompy-venv: setup ## Create bench/.venv-datacompy: datacompy caps pandas below 3.1, so its baseline has its own interpreter
	@UV=$$(command -v uv || echo $(BIN)/uv); test -x bench/.venv-datacompy/bin/python || { \
	  $$UV venv -q --allow-existing --python $(PY) bench/.venv-datacompy && \
	  $$UV pip install -q --compile-bytecode --python bench/.venv-datacompy/bin/python 'datacompy==1.1.0' 'pandas>=3.0,<3.1' pyarrow; }

clean: ## Remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
