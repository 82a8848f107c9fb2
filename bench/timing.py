"""Honest per-step timing with ``torch.utils.benchmark``.

The timer fixes the thread count, synchronizes the accelerator around each measurement and
sizes blocks so the timer's own overhead is negligible. We add explicit warm-up steps and ask for
enough run time to get at least ``min_measurements`` measurements even for slow steps.
"""

from collections.abc import Callable
from dataclasses import dataclass

from torch.utils.benchmark import Measurement, Timer


@dataclass(frozen=True)
class StepTiming:
    median_s: float
    iqr_s: float
    measurements: int


def time_callable(
    step: Callable[[], object],
    threads: int,
    min_run_time: float = 1.0,
    min_measurements: int = 5,
) -> StepTiming:
    """Median and IQR of the seconds one call of ``step`` takes (call it warm beforehand)."""
    timer = Timer(stmt="step()", globals={"step": step}, num_threads=threads)
    estimate = timer.timeit(1).median
    run_time = max(min_run_time, min_measurements * estimate)
    measurement = timer.blocked_autorange(min_run_time=run_time)
    # A step that slows down mid-run (a busy machine) can leave too few blocks: time more.
    while len(measurement.times) < min_measurements:
        more = timer.blocked_autorange(min_run_time=run_time)
        (measurement,) = Measurement.merge([measurement, more])
    return StepTiming(measurement.median, measurement.iqr, len(measurement.times))
