"""Training runs: each (method, D) trained with Adam on a data set, its likelihood logged.

Rows go to ``<out>/training.csv`` (``TRAINING_COLUMNS``) at step 0, every ``eval_every`` steps
and at the end, each appended as soon as it exists. ``wall_s`` counts training only: the clock
runs around the optimizer steps (CUDA synchronized before each reading) and stops for
evaluation. ``max_seconds`` gives every method the same training-time budget: a run stops at
its first evaluation past it. Every method is scored with its exact ``log_prob`` on held-out
data, in batches under ``torch.no_grad``, mapped back to the data set's own space by the
preprocessing's log-Jacobian: nats per sample (train NLL on a fixed subset of at most
``train_eval`` training samples), test bits/dim, and where the truth is known the true NLL of
the same test samples and the gap. A loss or parameter that is not finite at an evaluation
point ends that run with a ``diverged`` row; an exception ends it with an ``error`` / ``oom``
row; the sweep goes on.
"""

import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from bench.datasets import Data, bits_per_dim, get_dataset, load_dataset
from bench.registry import FlowMethod, MethodInfo, RunSettings, count_parameters
from bench.results import TRAINING_COLUMNS, append_row, utc_now
from bench.step import is_finite, make_optimizer, train_step
from bench.sweep import Diverged, failure_message, failure_status
from bench.variants import build_method, variant_columns


@dataclass(frozen=True, kw_only=True)
class TrainConfig(RunSettings):
    steps: int
    dataset: str
    eval_every: int | None = None  # None: 10 evaluations per run
    eval_batch: int = 2048
    train_eval: int = 10_000
    max_seconds: float | None = None  # also stop at the first evaluation past this training time

    @property
    def every(self) -> int:
        return self.eval_every or max(1, self.steps // 10)

    def finished(self, step: float, wall_s: float) -> bool:
        """Whether a run that reached ``step`` after ``wall_s`` of training is over."""
        return step >= self.steps or (self.max_seconds is not None and wall_s >= self.max_seconds)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def nll(method: FlowMethod, data: Data, x: Tensor, eval_batch: int) -> float:
    """Mean −log p in the data set's own space, nats per sample (float64 accumulation)."""
    total = 0.0
    for start in range(0, len(x), eval_batch):
        chunk = x[start : start + eval_batch]
        log_prob = method.log_prob(chunk)
        if data.log_jacobian is not None:
            log_prob = log_prob + data.log_jacobian(chunk)
        total -= log_prob.double().sum().item()
    return total / len(x)


class Trainer:
    """One (method, D) run; ``run()`` yields its rows, each appended before it is yielded."""

    def __init__(
        self, info: MethodInfo, data: Data, config: TrainConfig, out: Path | None, git_rev: str
    ):
        self.info, self.data, self.config, self.out = info, data, config, out
        self.device = torch.device(config.device)
        self.lr = config.lr or info.default_lr
        self.true_nll = data.true_nll
        self.base: dict[str, Any] = {
            "run_id": uuid.uuid4().hex[:12],
            "started_at": utc_now(),
            "git_rev": git_rev,
            "torch_version": torch.__version__,
            "device": config.device,
            "method": info.name,
            "dataset": config.dataset,
            "dim": data.dim,
            "layers": config.layers,
            "batch": config.batch,
            "seed": config.seed,
            "lr": self.lr,
        } | variant_columns(config.hyper)
        self.step = 0
        self.wall_s = 0.0

    def _row(self, status: str, message: str = "", **values: Any) -> dict[str, Any]:
        row = self.base | {"status": status, "message": message, "step": self.step}
        return row | {"wall_s": round(self.wall_s, 6)} | values

    def _evaluate(self, method: FlowMethod, train_x: Tensor, test_x: Tensor) -> dict[str, Any]:
        train_nll = nll(method, self.data, train_x, self.config.eval_batch)
        test_nll = nll(method, self.data, test_x, self.config.eval_batch)
        if not (torch.isfinite(torch.tensor([train_nll, test_nll])).all()):
            raise Diverged(
                f"NLL not finite at step {self.step} (train {train_nll}, test {test_nll})"
            )
        values = {
            "train_nll": train_nll,
            "test_nll": test_nll,
            "test_bpd": bits_per_dim(test_nll, self.data.dim),
        }
        if self.true_nll is not None:
            values |= {"true_nll": self.true_nll, "gap_nats": test_nll - self.true_nll}
        return values

    def _out_of_time(self) -> bool:
        return self.config.max_seconds is not None and self.wall_s >= self.config.max_seconds

    def run(self) -> Iterator[dict[str, Any]]:
        assert self.out is not None, "run() appends to out/training.csv; rows() appends nowhere"
        for row in self.rows():
            append_row(self.out / "training.csv", TRAINING_COLUMNS, row)
            yield row

    def rows(self) -> Iterator[dict[str, Any]]:
        """The run's rows as they come, appended nowhere (an executor does that)."""
        config = self.config
        try:
            method = build_method(self.info, config.spec(self.data.dim), config.steps)
            self.base["params"] = count_parameters(method)
            optimizer = make_optimizer(method, self.lr)
            to = {"device": self.device, "dtype": config.dtype}
            train = self.data.train.to(**to)
            train_x = train[: config.train_eval]
            test_x = self.data.test.to(**to)
            generator = torch.Generator().manual_seed(config.seed)
            order = torch.randperm(len(train), generator=generator).to(self.device)
            cursor = 0
            yield self._row("ok", **self._evaluate(method, train_x, test_x))
            loss = torch.zeros((), device=self.device)
            while self.step < config.steps and not self._out_of_time():
                block = min(config.every, config.steps - self.step)
                _sync(self.device)
                start = time.perf_counter()
                for _ in range(block):
                    if cursor + config.batch > len(order):
                        order = torch.randperm(len(train), generator=generator).to(self.device)
                        cursor = 0
                    batch = train[order[cursor : cursor + config.batch]]
                    cursor += config.batch
                    loss = train_step(method, optimizer, batch)
                _sync(self.device)
                self.wall_s += time.perf_counter() - start
                self.step += block
                if not is_finite(method, loss):
                    raise Diverged(f"loss or parameters not finite by step {self.step}")
                yield self._row("ok", **self._evaluate(method, train_x, test_x))
        except Exception as error:  # a failed run is a row, never the end of the sweep
            yield self._row(failure_status(error), failure_message(error))
        finally:
            if self.device.type == "cuda":
                torch.cuda.empty_cache()


def load_for_dims(dataset: str, dims: Sequence[int], data_dir: Path) -> dict[int, Data]:
    """The data set at each D, every D checked before anything is loaded or downloaded."""
    info = get_dataset(dataset)
    for dim in dims:
        info.check_dim(dim)
    return {dim: load_dataset(dataset, dim, data_dir) for dim in dict.fromkeys(dims)}


def training_sweep(
    methods: Sequence[MethodInfo],
    data_by_dim: dict[int, Data],
    config: TrainConfig,
    out: Path,
) -> Iterator[dict[str, Any]]:
    """Train every (method, D) here, yielding each row once it is in ``out/training.csv``."""
    # Imported here: bench.executors builds on this module.
    from bench.executors import LocalExecutor, execute
    from bench.runs import plan_runs

    dims = list(data_by_dim)
    yield from execute(plan_runs(methods, dims, config, data_by_dim), LocalExecutor(), out)


def final_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The last row of each run."""
    last: dict[str, dict[str, Any]] = {}
    for row in rows:
        last[row["run_id"]] = row
    return list(last.values())
