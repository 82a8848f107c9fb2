"""Options and shared fixtures of the regression benchmarks (``make bench``)."""

from collections.abc import Callable, Iterator

import pytest
import torch
from cubic_relgrad import cubic_relgrad_installed
from train_step_cases import REFERENCE_METHOD, Step, warm_step


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("jacobench regression timing")
    group.addoption(
        "--bench-threads",
        type=int,
        default=1,
        help="torch threads while timing (default 1: the same figure on any core count)",
    )
    group.addoption(
        "--bench-budget",
        type=float,
        default=2.0,
        help="seconds of timed rounds per benchmark, method and floor together (default 2.0)",
    )
    group.addoption(
        "--inject-cubic-relgrad",
        action="store_true",
        help="time relgrad with the O(D³) product order: the gate's proof of a real regression",
    )


@pytest.fixture(scope="session")
def bench_threads(request: pytest.FixtureRequest) -> Iterator[int]:
    threads: int = request.config.getoption("--bench-threads")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    yield threads
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def bench_budget(request: pytest.FixtureRequest) -> float:
    return request.config.getoption("--bench-budget")


@pytest.fixture(scope="session")
def relgrad_variant(request: pytest.FixtureRequest) -> Iterator[str]:
    """'cubic' with the regression injected for the whole session, else 'production'."""
    if not request.config.getoption("--inject-cubic-relgrad"):
        yield "production"
        return
    with cubic_relgrad_installed():
        yield "cubic"


@pytest.fixture(scope="session")
def reference_step(bench_threads: int) -> Callable[[int], Step]:
    """floor's warm step at a given D, built once per session and shared by every benchmark."""
    steps: dict[int, Step] = {}

    def at(dim: int) -> Step:
        if dim not in steps:
            steps[dim] = warm_step(REFERENCE_METHOD, dim)
        return steps[dim]

    return at
