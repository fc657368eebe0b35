# The two commands of the quickstart: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: run test lint typecheck migrations-check bench tox clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.example-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[example]'
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.example-installed

## run: serve the example project on http://127.0.0.1:$(PORT) (SQLite, demo user demo/demo)
run: $(VENV)/.example-installed
	$(BIN)/python manage.py migrate --noinput -v 0
	$(BIN)/python manage.py setup_demo --port $(PORT)
	$(BIN)/python manage.py runserver --noreload 127.0.0.1:$(PORT)

## test: run the whole test suite (SQLite unless DATABASE_URL is set)
test: $(VENV)/.dev-installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

migrations-check: $(VENV)/.dev-installed
	$(BIN)/python -m django makemigrations --check --dry-run --settings=tests.settings --pythonpath=.

## bench: benchmarks that print numbers (auth overhead, MCP endpoint vs the SDK's own server)
bench: $(VENV)/.dev-installed
	$(BIN)/python benchmarks/run.py

tox: $(VENV)/.dev-installed
	$(BIN)/tox

clean:
	rm -rf $(VENV) .tox .pytest_cache .mypy_cache .ruff_cache example_project/db.sqlite3
