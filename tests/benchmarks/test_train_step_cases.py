"""The benchmark suite covers the registry and stays bounded (fast; runs with the unit tests)."""

from train_step_cases import (
    DENSE_DIMS,
    REFERENCE_METHOD,
    calls_to_match,
    rounds_within,
    timing_cases,
)

from bench.registry import METHODS


def test_every_registered_method_is_timed() -> None:
    assert {case.method for case in timing_cases()} == set(METHODS)


def test_the_reference_is_timed_at_the_dense_sizes() -> None:
    timed = {case.dim for case in timing_cases() if case.method == REFERENCE_METHOD}
    assert timed == set(DENSE_DIMS)


def test_case_names_are_unique() -> None:
    names = [str(case) for case in timing_cases()]
    assert len(names) == len(set(names))


def test_rounds_fit_the_budget_within_bounds() -> None:
    assert rounds_within(budget_s=1.0, round_s=0.01, least=7, most=400) == 100
    assert rounds_within(budget_s=1.0, round_s=0.5, least=7, most=400) == 7
    assert rounds_within(budget_s=1.0, round_s=1e-6, least=7, most=400) == 400


def test_reference_calls_span_one_step() -> None:
    assert calls_to_match(step_s=0.2, reference_s=0.001) == 200
    assert calls_to_match(step_s=0.001, reference_s=0.002) == 1
