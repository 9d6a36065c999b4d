# Every target creates .venv and installs the project on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test lint fmt proto docs bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## up: start the whole platform on one machine (NATS, SQLite, local storage, offline extractor)
up: $(STAMP)
	$(BIN)/bytereview up

## test: lint, type-check, buf lint and the test suite, with real NATS, PostgreSQL and fake-gcs-server
test: $(STAMP)
	$(BIN)/python tools/test.py

lint: $(STAMP)
	$(BIN)/python tools/test.py --only-checks

fmt: $(STAMP)
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

## proto: regenerate the Python code from protos/
proto: $(STAMP)
	$(BIN)/python tools/protos.py generate

## docs: regenerate docs/state-machine.md from the transition table (a test fails when stale)
docs: $(STAMP)
	$(BIN)/python tools/docs.py generate

bench: $(STAMP)
	@echo "benchmarks: see bench/README.md"

clean:
	rm -rf $(VENV) .bytereview build *.egg-info
