# The two commands of the quickstart: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
PYTEST_ARGS ?=
TOX_ARGS ?=
BENCH_ARGS ?=

.PHONY: run test lint typecheck migrations-check bench bench-scale tox clean mutation-probe soak docs docs-serve mutate

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Python 3.10+ is needed: make PYTHON=/path/to/python3.1x ...")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip || { rm -rf $(VENV); exit 1; }

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
	@echo "$(BIN)/python -m pytest $(PYTEST_ARGS)"
	@$(BIN)/python -m pytest $(PYTEST_ARGS) || { rc=$$?; \
	  [ $$rc -ne 5 ] || echo "make test: pytest collected no tests (exit 5); nothing was tested" >&2; exit $$rc; }

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

$(VENV)/.docs-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[docs]'
	touch $@

## docs: build the documentation site into site/ (MkDocs, strict: any warning or broken link fails)
docs: $(VENV)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

## docs-serve: the documentation site on http://127.0.0.1:8001 (rebuilt on every change)
docs-serve: $(VENV)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --strict -a 127.0.0.1:8001

migrations-check: $(VENV)/.dev-installed
	$(BIN)/python -m django makemigrations --check --dry-run --settings=tests.settings --pythonpath=.

## soak: the oracle-checked soak with 10^5 requests in process and 10^5 over 4 server processes, then
## 10^5 Hypothesis cases per property (long; not in CI). Reports: soak-report.json, soak-servers-report.json
SOAK_PYTEST := $(BIN)/python -m pytest -p no:randomly -p no:xdist -q --show-capture=no
soak: $(VENV)/.dev-installed
	SOAK_REQUESTS=100000 SOAK_REPORT=soak-report.json $(SOAK_PYTEST) -s tests/example/test_soak.py
	SOAK_REQUESTS=100000 SOAK_SERVERS_REPORT=soak-servers-report.json $(SOAK_PYTEST) -s tests/example/test_soak_servers.py
	HYPOTHESIS_PROFILE=soak $(SOAK_PYTEST) --durations=0 tests/test_properties.py

## mutate: mutation testing of the security modules with mutmut (long; not in CI; [tool.mutmut] in
## pyproject.toml). Prints every surviving mutant; `.venv/bin/mutmut show NAME` shows one.
# One at a time: the mutants' test runs would share one SQLite test database.
MUTATE_JOBS ?= 1
$(VENV)/.mutate-installed: pyproject.toml $(VENV)/.dev-installed
	$(BIN)/python -m pip install -q -e '.[dev,mutate]'
	touch $@
mutate: $(VENV)/.mutate-installed
	TEST_SQLITE_PATH=$(CURDIR)/mutants/mutate.sqlite3 $(BIN)/mutmut run --max-children $(MUTATE_JOBS)
	$(BIN)/mutmut results

## mutation-probe: apply each one-line mutation of issue 11's probe alone; each must be KILLED (not in CI)
mutation-probe: $(VENV)/.dev-installed
	$(BIN)/python tests/mutations/probe.py

## bench: auth overhead, scale, and the MCP endpoint vs the SDK's own server under wrk (BENCH_ARGS="--baseline DIR")
bench: $(VENV)/.dev-installed
	@command -v wrk >/dev/null && command -v taskset >/dev/null || { echo "make bench needs wrk and taskset \
	(a native load generator; a Python one saturates near 1,000 req/s): sudo apt-get install -y wrk util-linux" >&2; exit 1; }
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

## bench-scale: 10 vs 10,000 scopes and 10 vs 1,000 tools (decision cost, listing, PRM, memory, queries)
bench-scale: $(VENV)/.dev-installed
	$(BIN)/python benchmarks/scale.py

# tox looks for python3.10 ... python3.13 on PATH; pyenv's installed versions are added when present.
PYENV_BINS := $(wildcard $(HOME)/.pyenv/versions/3.1[0-3].*/bin)
empty :=
space := $(empty) $(empty)

## tox: the supported Python x Django matrix (TOX_ARGS="-e py310-django42" for one env)
tox: $(VENV)/.dev-installed
	PATH="$(subst $(space),:,$(strip $(PYENV_BINS))):$$PATH" $(BIN)/tox $(TOX_ARGS)

clean:
	rm -rf $(VENV) .tox .pytest_cache .mypy_cache .ruff_cache site example_project/db.sqlite3 mutants
