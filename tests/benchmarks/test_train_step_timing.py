"""Regression timing of one training step per (method, D), normalized by floor's time.

Absolute times depend on the machine; the figure the gate checks is ``ratio_to_floor``: this
step's median over floor's median at the same D. Floor is timed *interleaved* with the method,
before each timed round (pedantic's untimed ``setup``) and over as many floor steps as span one
method step, so a machine that slows down, steadily or in bursts, slows both sides alike.
A timed round is ``steps_per_round`` steps (≥ 20 ms): the pytest-benchmark table shows round
times; ``ratio_to_floor`` is per step.
"""

import statistics
from collections.abc import Callable

import pytest
from pytest_benchmark.fixture import BenchmarkFixture
from train_step_cases import (
    Case,
    Step,
    calls_to_match,
    repeated,
    rounds_within,
    seconds,
    timing_cases,
    warm_step,
)

LEAST_ROUNDS = 7
MOST_ROUNDS = 400
# A timed round lasts at least this long: sub-millisecond D = 64 steps, one per round, gave
# ratios off by 3× (naive "faster" than floor) on the loaded 2-core machine; spans of several
# scheduler slices average preemption out.
MIN_ROUND_S = 0.02


CASES = [pytest.param(case.method, case.dim, id=str(case)) for case in timing_cases()]


@pytest.mark.parametrize(("method", "dim"), CASES)
def test_train_step(
    benchmark: BenchmarkFixture,
    method: str,
    dim: int,
    reference_step: Callable[[int], Step],
    bench_threads: int,
    bench_budget: float,
    relgrad_variant: str,
) -> None:
    case = Case(method, dim)
    step, reference = warm_step(method, dim), reference_step(dim)
    step_s, reference_s = seconds(step, calls=2), seconds(reference, calls=2)
    steps_per_round = calls_to_match(MIN_ROUND_S, step_s)
    calls = calls_to_match(steps_per_round * step_s, reference_s)
    round_s = steps_per_round * step_s + calls * reference_s
    reference_times: list[float] = []
    benchmark.group = f"train step, D={dim}"
    benchmark.pedantic(
        repeated(step, steps_per_round),
        setup=lambda: reference_times.append(seconds(reference, calls)),
        rounds=rounds_within(bench_budget, round_s, LEAST_ROUNDS, MOST_ROUNDS),
    )
    if benchmark.disabled:
        return
    reference_median = statistics.median(reference_times)
    benchmark.extra_info.update(
        case=str(case),
        method=method,
        dim=dim,
        threads=bench_threads,
        relgrad_variant=relgrad_variant,
        floor_median_s=reference_median,
        steps_per_round=steps_per_round,
        floor_calls_per_round=calls,
        ratio_to_floor=benchmark.stats.stats.median / steps_per_round / reference_median,
    )
