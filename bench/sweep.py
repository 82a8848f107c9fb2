"""The timing sweep: one row in ``timing.csv`` per (method, D), appended as each finishes."""

import contextlib
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bench.memory import PeakMemory
from bench.registry import FlowMethod, MethodInfo, RunSettings, count_parameters
from bench.results import utc_now
from bench.step import is_finite, make_optimizer, train_step
from bench.timing import time_callable
from bench.variants import build_method, variant_columns


@dataclass(frozen=True, kw_only=True)
class SweepConfig(RunSettings):
    warmup_steps: int = 3
    min_run_time: float = 1.0


class Diverged(RuntimeError):
    pass


def failure_status(error: BaseException) -> str:
    """'oom' for an allocation failure on any device, else 'error'."""
    text = str(error).lower()
    if isinstance(error, torch.OutOfMemoryError | MemoryError):
        return "oom"
    if "out of memory" in text or "can't allocate memory" in text:
        return "oom"
    return "diverged" if isinstance(error, Diverged) else "error"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "cpu"


def _setup(
    info: MethodInfo, dim: int, config: SweepConfig
) -> tuple[FlowMethod, torch.optim.Optimizer, torch.Tensor]:
    """The method, its Adam optimizer and the fixed standard-normal batch it is timed on."""
    method = build_method(info, config.spec(dim))
    generator = torch.Generator().manual_seed(config.seed)
    x = torch.randn(config.batch, dim, generator=generator, dtype=config.dtype)
    return method, make_optimizer(method, config.lr or info.default_lr), x.to(config.device)


def warm_up_process(info: MethodInfo, dim: int, config: SweepConfig) -> None:
    """Unrecorded steps, so one-time costs (thread pools, allocator and kernel caches) fall in
    no run's time or memory."""
    with contextlib.suppress(Exception):
        method, optimizer, x = _setup(info, dim, config)
        for _ in range(2):
            train_step(method, optimizer, x)


def _measure(info: MethodInfo, dim: int, config: SweepConfig) -> dict[str, Any]:
    memory = PeakMemory(torch.device(config.device))
    memory.start()
    method, optimizer, x = _setup(info, dim, config)
    losses = [train_step(method, optimizer, x) for _ in range(config.warmup_steps)]
    peak = memory.peak_bytes()
    if not is_finite(method, losses[-1]):
        raise Diverged("loss or parameters not finite after warm-up")

    def step() -> None:
        losses.append(train_step(method, optimizer, x))

    timing = time_callable(step, config.threads, config.min_run_time)
    if not is_finite(method, losses[-1]):
        raise Diverged("loss or parameters not finite after timing")
    return {
        "params": count_parameters(method),
        "median_s": timing.median_s,
        "iqr_s": timing.iqr_s,
        "measurements": timing.measurements,
        "peak_mem_bytes": peak,
        "mem_source": memory.source,
    }


def failure_message(error: BaseException) -> str:
    return " ".join(str(error).split())[:300]


def timing_row_head(
    info: MethodInfo, dim: int, config: SweepConfig, git_rev: str
) -> dict[str, Any]:
    """The columns a timing row has before it runs: provenance and the run's setting."""
    return {
        "run_id": uuid.uuid4().hex[:12],
        "started_at": utc_now(),
        "git_rev": git_rev,
        "torch_version": torch.__version__,
        "device": config.device,
        "threads": config.threads,
        "dtype": str(config.dtype).removeprefix("torch."),
        "method": info.name,
        "dim": dim,
        "layers": config.layers,
        "batch": config.batch,
        "seed": config.seed,
    } | variant_columns(config.hyper)


def time_one(info: MethodInfo, dim: int, config: SweepConfig, git_rev: str) -> dict[str, Any]:
    """Time one (method, D); failures become a row with their status, never an exception."""
    device = torch.device(config.device)
    row = timing_row_head(info, dim, config, git_rev) | {"device_name": device_name(device)}
    try:
        row |= _measure(info, dim, config)
        row["status"] = "ok"
    except Exception as error:  # a failed run is a row, never the end of the sweep
        row["status"] = failure_status(error)
        row["message"] = failure_message(error)
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return row


def timing_sweep(
    methods: Sequence[MethodInfo],
    dims: Sequence[int],
    config: SweepConfig,
    out: Path,
) -> Iterator[dict[str, Any]]:
    """Time every (method, D) here, appending each row to ``out/timing.csv`` as soon as it
    exists."""
    # Imported here: bench.executors builds on this module.
    from bench.executors import LocalExecutor, execute
    from bench.runs import plan_runs

    yield from execute(plan_runs(methods, dims, config), LocalExecutor(), out)
