#!/usr/bin/env bash
# Proof that the regression gate works, run by CI after `make bench`:
#   1. a real regression (relgrad's data part in the cubic order (ΔᵀH)·Wᵀ·W) must FAIL the gate;
#   2. the unchanged code on a machine forced slower (pinned to one core that a busy process
#      shares) must PASS it, because the gate compares ratios to floor, not seconds.
# Usage: scripts/benchmark_gate_proof.sh [NORMAL_RUN.json]  (to report how much slower step 2 was)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=.benchmarks/proof
BENCH=("$PY" -m pytest tests/benchmarks --benchmark-only "--bench-budget=${BENCH_BUDGET:-1.0}")
GATE=("$PY" scripts/benchmark_gate.py)
mkdir -p "$OUT"

echo "== proof 1: relgrad with the cubic product order must fail the gate"
"${BENCH[@]}" --inject-cubic-relgrad -k "relgrad-D1024" --benchmark-json="$OUT/cubic.json" >/dev/null
if "${GATE[@]}" check "$OUT/cubic.json" --allow-missing >"$OUT/cubic.txt" 2>&1; then
    cat "$OUT/cubic.txt"
    echo "proof FAILED: the gate passed an O(D³) relgrad" >&2
    exit 1
fi
cat "$OUT/cubic.txt"
grep -q "FAIL relgrad-D1024: regressed" "$OUT/cubic.txt"

echo "== proof 2: unchanged code on a machine forced slower must pass the gate"
core=$("$PY" -c "import os; print(min(os.sched_getaffinity(0)))")
taskset -c "$core" "$PY" -c "while True: pass" &
busy=$!
trap 'kill "$busy" 2>/dev/null || true' EXIT
taskset -c "$core" "${BENCH[@]}" --benchmark-json="$OUT/slow.json" >/dev/null
kill "$busy"
if [[ $# -ge 1 ]]; then
    "${GATE[@]}" slowdown "$1" "$OUT/slow.json"
fi
"${GATE[@]}" check "$OUT/slow.json"
echo "== proof passed: the gate fails on the cubic regression and passes on a slower machine"
