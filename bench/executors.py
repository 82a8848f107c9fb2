"""Executors: map the per-run function over a sweep's runs, here or on a Ray cluster.

An executor calls ``rows_of(run)`` for every run and yields ``(run, row)`` as rows arrive, or
``(run, error)`` where computing a run raised. ``execute`` is the driver: it turns errors into
failure rows and appends every row to its table as soon as it is back, so a killed driver loses
at most the runs in flight.
"""

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Protocol

from bench.results import append_row, git_revision
from bench.runs import Row, Run, run_rows

RowsOf = Callable[[Run], Iterable[Row]]
Outcome = tuple[Run, Row | Exception]
EXECUTORS = ("local", "ray")


class ExecutorError(ValueError):
    """An executor cannot be used as asked: reported as one line, exit code 2."""


class Executor(Protocol):
    def map(self, rows_of: RowsOf, runs: Sequence[Run]) -> Iterator[Outcome]: ...


class LocalExecutor:
    """One run after another in this process, each row yielded as soon as it exists."""

    def map(self, rows_of: RowsOf, runs: Sequence[Run]) -> Iterator[Outcome]:
        for run in runs:
            try:
                for row in rows_of(run):
                    yield run, row
            except Exception as error:  # a run that raises is a row, never the end of the sweep
                yield run, error


def _import_ray() -> ModuleType:
    try:
        import ray
    except ImportError:
        raise ExecutorError(
            "--executor ray needs Ray, which is not installed: pip install 'jacobench[ray]'"
        ) from None
    return ray


@contextmanager
def _ray_connection(ray: ModuleType, address: str | None) -> Iterator[None]:
    """Connect to the cluster at ``address``, or start a private local instance that is stopped,
    with every process it started, on leaving. A connection that already exists (a test, a
    notebook) is used and left open."""
    if ray.is_initialized():
        yield
        return
    quiet = {"log_to_driver": False, "logging_level": logging.WARNING}
    if address is not None:
        ray.init(address=address, **quiet)
        try:
            yield
        finally:
            ray.shutdown()
        return
    ray.init(address="local", include_dashboard=False, **quiet)
    try:
        yield
    finally:
        _shutdown_private_instance(ray)


def _shutdown_private_instance(ray: ModuleType) -> None:
    """``ray.shutdown`` stops the instance's daemons, but the agents and workers they spawned
    can linger for a minute waiting on the stopped GCS; this command started them, so it ends
    them too."""
    import psutil  # shipped inside Ray (ray/thirdparty_files), on the path once Ray is imported

    started = psutil.Process().children(recursive=True)
    ray.shutdown()
    for process in started:
        with suppress(psutil.Error):
            process.terminate()
    _, alive = psutil.wait_procs(started, timeout=5)
    for process in alive:
        with suppress(psutil.Error):
            process.kill()


def _computed_rows(rows_of: RowsOf, run: Run) -> list[Row]:
    """The Ray task: one run's rows, computed on a worker and sent back together."""
    return list(rows_of(run))


def _cause(error: Exception) -> Exception:
    """The worker's own exception inside Ray's wrapper, so its message is the row's message."""
    cause = getattr(error, "cause", None)
    return cause if isinstance(cause, Exception) else error


@dataclass(frozen=True)
class RayExecutor:
    """Each run a Ray task holding the resources it is measured with (README, "Running on
    Ray"): ``gpus_per_run`` GPUs (default 1) for a run on CUDA, so no two timed runs share a
    device; ``cpus_per_run`` CPUs (default its thread count) for a run on CPU, so runs on one
    node never hold more threads than it has cores."""

    address: str | None = None  # None: a private local instance, stopped at the end
    cpus_per_run: float | None = None
    gpus_per_run: float | None = None

    def resources(self, run: Run) -> dict[str, float]:
        if run.config.device.startswith("cuda"):
            return {"num_gpus": self.gpus_per_run or 1, "num_cpus": self.cpus_per_run or 1}
        return {"num_gpus": 0, "num_cpus": self.cpus_per_run or run.config.threads}

    def map(self, rows_of: RowsOf, runs: Sequence[Run]) -> Iterator[Outcome]:
        ray = _import_ray()
        with _ray_connection(ray, self.address):
            # No Ray retries: a failed run is recorded, and --resume retries it once.
            task = ray.remote(max_retries=0)(_computed_rows)
            pending = {
                task.options(**self.resources(run)).remote(rows_of, run): run for run in runs
            }
            while pending:
                [ref], _ = ray.wait(list(pending), num_returns=1)
                run = pending.pop(ref)
                try:
                    rows = ray.get(ref)
                except Exception as error:
                    yield run, error
                    continue
                for row in rows:
                    yield run, row


def make_executor(
    name: str, address: str | None, cpus_per_run: float | None, gpus_per_run: float | None
) -> Executor:
    """The executor ``bench run --executor NAME`` asks for, its options checked."""
    if name not in EXECUTORS:
        raise ExecutorError(f"--executor {name}: choose one of {', '.join(EXECUTORS)}")
    if name == "local":
        given = [("address", address), ("cpus-per-run", cpus_per_run)]
        given = [f for f, value in [*given, ("gpus-per-run", gpus_per_run)] if value is not None]
        if given:
            raise ExecutorError(f"--{'/--'.join(given)} need --executor ray")
        return LocalExecutor()
    for flag, value in [("cpus-per-run", cpus_per_run), ("gpus-per-run", gpus_per_run)]:
        if value is not None and value <= 0:
            raise ExecutorError(f"--{flag} must be positive, got {value}")
    _import_ray()
    return RayExecutor(address, cpus_per_run, gpus_per_run)


def check_runs(executor: Executor, runs: Sequence[Run]) -> None:
    """Ray picks each run's GPU, and a timed CPU run must hold a core per thread, or two runs
    could share cores and slow each other down."""
    if not isinstance(executor, RayExecutor):
        return
    for run in runs:
        if run.config.device.startswith("cuda:"):
            raise ExecutorError(
                f"--device {run.config.device}: Ray picks the GPU; say --device cuda"
            )
        cpus = executor.cpus_per_run
        if not run.training and run.config.device == "cpu" and cpus and cpus < run.config.threads:
            raise ExecutorError(
                f"--cpus-per-run {cpus:g} is less than --threads {run.config.threads}: "
                "timed runs would share cores"
            )


def execute(
    runs: Sequence[Run],
    executor: Executor,
    out: Path,
    per_run: Callable[[Run, str], Iterable[Row]] = run_rows,
) -> Iterator[Row]:
    """Compute every run with ``executor``, appending each row to its table in ``out`` as soon as
    it is back, then yielding it. ``per_run(run, git_rev)`` computes one run's rows."""
    git_rev = git_revision()
    for run, outcome in executor.map(partial(per_run, git_rev=git_rev), runs):
        row = outcome if isinstance(outcome, dict) else _failure_row(run, outcome, git_rev)
        append_row(out / run.table, run.columns, row)
        yield row


def _failure_row(run: Run, error: Exception, git_rev: str) -> Row:
    # Ray's wrapper knows the node a task failed on; the host is left empty where none is known.
    return run.failure_row(_cause(error), git_rev, host=getattr(error, "ip", None) or "")
