#!/usr/bin/env bash
# Proof that the regression gate works, run by CI after `make bench`:
#   1. a real regression (relgrad's data part in the cubic order (ΔᵀH)·Wᵀ·W at D = 1024) must
#      FAIL the gate, retries included;
#   2. the unchanged code on a machine forced slower (pinned to one core that a busy process
#      shares) must PASS it, because the gate compares ratios to floor, not seconds.
# Usage: scripts/benchmark_gate_proof.sh [NORMAL_RUN.json]  (to report how much slower step 2 was)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=.benchmarks/proof
mkdir -p "$OUT"

echo "== proof 1: relgrad with the cubic product order must fail the gate"
if GATE_OPTS=--allow-missing scripts/run_benchmarks.sh "$OUT/cubic" --inject-cubic-relgrad \
    -k relgrad-D1024 >"$OUT/cubic.txt" 2>&1; then
    cat "$OUT/cubic.txt"
    echo "proof FAILED: the gate passed an O(D³) relgrad" >&2
    exit 1
fi
grep "^re-timing" "$OUT/cubic.txt" || true
sed -n '/^ratio to floor/,$p' "$OUT/cubic.txt"
grep -q "FAIL relgrad-D1024: regressed" "$OUT/cubic.txt"

echo "== proof 2: unchanged code on a machine forced slower must pass the gate"
core=$("$PY" -c "import os; print(min(os.sched_getaffinity(0)))")
taskset -c "$core" "$PY" -c "while True: pass" &
busy=$!
trap 'kill "$busy" 2>/dev/null || true' EXIT
taskset -c "$core" scripts/run_benchmarks.sh "$OUT/slow" >"$OUT/slow.txt" 2>&1 || {
    cat "$OUT/slow.txt"
    echo "proof FAILED: the gate failed unchanged code on a slower machine" >&2
    exit 1
}
kill "$busy"
if [[ $# -ge 1 ]]; then
    "$PY" scripts/benchmark_gate.py slowdown "$1" "$OUT/slow-1.json"
fi
sed -n '/^ratio to floor/,$p' "$OUT/slow.txt"
echo "== proof passed: the gate fails on the cubic regression and passes on a slower machine"
