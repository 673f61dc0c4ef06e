# The README's commands. A fresh machine needs only Python 3.11+ and make:
# the first target run creates .venv, installs a pinned uv into it, and syncs
# the locked dependencies.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
HOST ?= 127.0.0.1
PORT ?= 8000
# Test processes side by side: the suite mostly waits (databases, servers, sleeps),
# so twice the cores keeps both busy (docs/testing.md).
TEST_WORKERS ?= 4

export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON_DOWNLOADS := never

.PHONY: install serve test lint audit check bench clean openapi

$(BIN)/uv:
	$(PYTHON) -c 'import sys; sys.exit("coursegate needs Python 3.11 or newer") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.installed: $(BIN)/uv pyproject.toml uv.lock
	$(BIN)/uv sync --frozen --inexact --quiet
	@touch $@

install: $(VENV)/.installed

serve: install
	$(BIN)/coursegate db upgrade
	$(BIN)/coursegate serve --host $(HOST) --port $(PORT)

# From the npm registry, for the tests (tests/*/package.json, locked): axe-core, run inside
# the console's pages, and Stoplight Prism, a OneRoster provider mocked from 1EdTech's
# description. Without npm (or Chromium) the tests that need them say so and are
# skipped; CI has both.
tests/%/node_modules/.installed: tests/%/package.json tests/%/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix tests/$* --no-audit --no-fund --silent && touch $@; \
	else echo "npm not found: the tests that need tests/$*'s npm packages will be skipped"; fi

test: install tests/console/node_modules/.installed tests/connectors/node_modules/.installed
	$(BIN)/pytest -n $(TEST_WORKERS)

# The checked-in API description; tests/test_openapi.py fails until it is refreshed.
openapi: install
	$(BIN)/coursegate openapi --output docs/openapi.json

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

audit: install
	$(BIN)/pip-audit --skip-editable --progress-spinner off

check: test lint audit

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
