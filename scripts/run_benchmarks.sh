#!/usr/bin/env bash
# Time the regression benchmarks and gate them, re-timing failing cases before failing.
# Usage: scripts/run_benchmarks.sh OUT_PREFIX [extra pytest options...]
# Writes OUT_PREFIX-1.json (all cases) and OUT_PREFIX-2.json, -3.json (retries of the cases that
# failed). The gate judges each case on its best run, so only a slowdown that shows in every
# attempt fails: on a shared machine a burst of load rarely hits the same case three times.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=$1
shift
PY=${PY:-.venv/bin/python}
BENCH=("$PY" -m pytest tests/benchmarks --benchmark-only "--bench-budget=${BENCH_BUDGET:-2.0}" "$@")
# GATE_OPTS is split into words on purpose (e.g. "--allow-missing --tolerance 0.5").
GATE=("$PY" scripts/benchmark_gate.py check ${GATE_OPTS:-} --failing-out "$prefix.failing")
ATTEMPTS=${BENCH_ATTEMPTS:-3}
mkdir -p "$(dirname "$prefix")"
rm -f "$prefix"-*.json

"${BENCH[@]}" --benchmark-json="$prefix-1.json"
runs=("$prefix-1.json")
for ((attempt = 2; attempt <= ATTEMPTS; attempt++)); do
    if "${GATE[@]}" "${runs[@]}" >/dev/null 2>&1; then
        break
    fi
    echo "re-timing the failing cases (attempt $attempt of $ATTEMPTS): $(cat "$prefix.failing")"
    "${BENCH[@]}" -k "$(cat "$prefix.failing")" --benchmark-json="$prefix-$attempt.json" >/dev/null
    runs+=("$prefix-$attempt.json")
done
"${GATE[@]}" "${runs[@]}"
