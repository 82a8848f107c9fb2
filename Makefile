PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run test lint bench bench-baseline

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

# Regression timing (README, "Regression timing"): time one training step per method and size,
# then gate the ratios to floor against tests/benchmarks/baseline.json.
BENCH_OUT ?= .benchmarks/run
BENCH_BUDGET ?= 2.0
BENCH_PYTEST = $(BIN)/python -m pytest tests/benchmarks --benchmark-only --bench-budget=$(BENCH_BUDGET)

bench: install
	BENCH_BUDGET=$(BENCH_BUDGET) scripts/run_benchmarks.sh $(BENCH_OUT)

# On purpose only: three runs, their median ratios become the committed baseline.
bench-baseline: install
	for run in 1 2 3; do $(BENCH_PYTEST) --benchmark-json=.benchmarks/baseline-$$run.json || exit 1; done
	$(BIN)/python scripts/benchmark_gate.py baseline .benchmarks/baseline-[123].json
