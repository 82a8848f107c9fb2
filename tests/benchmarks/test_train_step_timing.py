"""Regression timing of one training step per (method, D), normalized by floor's time.

Absolute times depend on the machine; the figure the gate checks is ``ratio_to_floor``: this
step's median over floor's median at the same D. Floor is timed *interleaved* with the method,
before each timed round (pedantic's untimed ``setup``) and over as many floor steps as span one
method step, so a machine that slows down, steadily or in bursts, slows both sides alike.
"""

import statistics
from collections.abc import Callable

import pytest
from pytest_benchmark.fixture import BenchmarkFixture
from train_step_cases import (
    Case,
    Step,
    calls_to_match,
    rounds_within,
    seconds,
    timing_cases,
    warm_step,
)

LEAST_ROUNDS = 7
MOST_ROUNDS = 400


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
    calls = calls_to_match(step_s, reference_s)
    round_s = step_s + calls * reference_s
    reference_times: list[float] = []
    benchmark.group = f"train step, D={dim}"
    benchmark.pedantic(
        step,
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
        floor_calls_per_round=calls,
        ratio_to_floor=benchmark.stats.stats.median / reference_median,
    )
