# `make demo` and `make test` set themselves up: system packages (apt, when missing), a venv, the package.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: setup system-deps demo test lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -U pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

system-deps:
	@sh scripts/system-deps.sh

setup: system-deps $(VENV)/.installed

demo: setup
	$(PY) -m mockcloud.demo

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check orchestrator mockcloud tests bench
	$(VENV)/bin/mypy

bench: setup
	$(PY) bench/cli_startup.py

clean:
	rm -rf .demo .pytest_cache .mypy_cache .ruff_cache
