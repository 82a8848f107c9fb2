PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run test lint

$(BIN)/bench: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/bench

install: $(BIN)/bench

run: install
	$(BIN)/bench run --method relgrad --dims 64,256,1024

test: install
	$(BIN)/python -m pytest tests

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
