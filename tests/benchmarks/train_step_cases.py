"""What the regression benchmarks time: one warm training step per (registered method, D)."""

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

import bench.methods  # noqa: F401  (fills the registry)
from bench.registry import METHODS, RunSpec
from bench.step import make_optimizer, train_step

SMALL_DIMS = (64, 256)
# Dense D×D layers are where O(D³) and O(B·D²) part ways, so they also get a size where a cubic
# term dominates (D = 1024 ≫ B = 128); the other flows stay small to keep CI short.
DENSE_DIMS = (*SMALL_DIMS, 1024)
DENSE_METHODS = frozenset({"naive", "relgrad", "floor", "snf", "lu"})
# Methods whose step at D = 256 (or 64) takes about a second on one core would dominate CI time;
# they are timed smaller. Any other method, a new one included, runs at SMALL_DIMS.
SLOW_METHOD_DIMS: dict[str, tuple[int, ...]] = {
    "rect-exact": (64,),
    "cnf-exact": (16,),
    "cnf-hutch": (16,),
}
BATCH = 128
LAYERS = 2
WARMUP_STEPS = 3
REFERENCE_METHOD = "floor"

Step = Callable[[], object]


@dataclass(frozen=True)
class Case:
    method: str
    dim: int

    def __str__(self) -> str:
        return f"{self.method}-D{self.dim}"


def dims_of(method: str) -> tuple[int, ...]:
    if method in DENSE_METHODS:
        return DENSE_DIMS
    return SLOW_METHOD_DIMS.get(method, SMALL_DIMS)


def timing_cases() -> list[Case]:
    """Every registered method at its sizes, so a newly registered method is covered at once."""
    return [Case(name, dim) for name in sorted(METHODS) for dim in dims_of(name)]


def warm_step(method: str, dim: int) -> Step:
    """A training step on a fixed batch, already run ``WARMUP_STEPS`` times."""
    info = METHODS[method]
    flow = info.build(RunSpec(dim, LAYERS))
    optimizer = make_optimizer(flow, info.default_lr)
    x = torch.randn(BATCH, dim, generator=torch.Generator().manual_seed(0))

    def step() -> object:
        return train_step(flow, optimizer, x)

    for _ in range(WARMUP_STEPS):
        step()
    return step


def seconds(step: Step, calls: int = 1) -> float:
    """Wall time of one call, averaged over ``calls`` back-to-back calls (CPU: synchronous)."""
    start = time.perf_counter()
    for _ in range(calls):
        step()
    return (time.perf_counter() - start) / calls


def repeated(step: Step, calls: int) -> Step:
    """``calls`` back-to-back calls of ``step`` as one call."""

    def steps() -> None:
        for _ in range(calls):
            step()

    return steps


def calls_to_match(step_s: float, reference_s: float) -> int:
    """How many reference calls span about one step.

    A 1 ms floor step usually fits between two preemptions while a 200 ms step never does, so
    on a loaded machine a ratio of single calls grows with the load; equal spans cancel it.
    """
    return max(1, round(step_s / max(reference_s, 1e-9)))


def rounds_within(budget_s: float, round_s: float, least: int, most: int) -> int:
    """How many rounds of ``round_s`` fit the budget, clamped to [least, most]."""
    return max(least, min(most, int(budget_s / max(round_s, 1e-9))))
