"""The runs of a sweep and the one function that computes a run's rows.

A ``Run`` is one (method, D, seed, data set) under one config: a timing run (one row in
``timing.csv``) or a training run (its rows in ``training.csv``). ``run_rows`` computes one run's
rows wherever it is called (this process, a Ray worker); an executor (``bench.executors``) maps
it over the runs and the driver appends the rows.
"""

import socket
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from bench.datasets import Data
from bench.registry import MethodInfo
from bench.results import TIMING_COLUMNS, TRAINING_COLUMNS
from bench.sweep import (
    SweepConfig,
    failure_message,
    failure_status,
    time_one,
    timing_row_head,
    warm_up_process,
)
from bench.training import TrainConfig, Trainer

Row = dict[str, Any]


@dataclass(frozen=True)
class Run:
    info: MethodInfo
    dim: int
    config: SweepConfig | TrainConfig
    data: Data | None = None  # training runs: the data set at this D

    @property
    def training(self) -> bool:
        return isinstance(self.config, TrainConfig)

    @property
    def table(self) -> str:
        return "training.csv" if self.training else "timing.csv"

    @property
    def columns(self) -> list[str]:
        return TRAINING_COLUMNS if self.training else TIMING_COLUMNS

    @property
    def label(self) -> str:
        return f"{self.info.name} D={self.dim}"

    def head(self, git_rev: str) -> Row:
        """The columns its rows have before it runs: provenance and the run's setting."""
        if isinstance(self.config, TrainConfig):
            assert self.data is not None, "a training run needs its data"
            return Trainer(self.info, self.data, self.config, None, git_rev).base
        return timing_row_head(self.info, self.dim, self.config, git_rev)

    def failure_row(self, error: BaseException, git_rev: str, host: str = "") -> Row:
        """The row recording that computing this run raised ``error``."""
        status = {"status": failure_status(error), "message": failure_message(error)}
        return self.head(git_rev) | status | {"host": host}

    def is_complete(self, row: Mapping[str, str]) -> bool:
        """Whether ``row`` (as read from its table) shows this run finished with status ok."""
        if row.get("status") != "ok":
            return False
        if isinstance(self.config, TrainConfig):
            return self.config.finished(float(row["step"]), float(row["wall_s"]))
        return True


def plan_runs(
    methods: Sequence[MethodInfo],
    dims: Sequence[int],
    config: SweepConfig | TrainConfig,
    data_by_dim: Mapping[int, Data] | None = None,
) -> list[Run]:
    """Every (method, D) of a sweep; training runs carry their data. D is outermost so that the
    methods compared at one D are measured close together in time, where drift in the machine's
    speed least affects their ratios."""
    data = data_by_dim or {}
    return [Run(info, dim, config, data.get(dim)) for dim in dims for info in methods]


_process_warmed_up = False


def _prepare_process(run: Run) -> None:
    """Threads for this run; before a process's first timed run, unrecorded warm-up steps."""
    global _process_warmed_up
    torch.set_num_threads(run.config.threads)
    if isinstance(run.config, SweepConfig) and not _process_warmed_up:
        warm_up_process(run.info, run.dim, run.config)
        _process_warmed_up = True


def run_rows(run: Run, git_rev: str) -> Iterator[Row]:
    """The rows of one run, each as soon as it exists, with the host that computed it.
    A failed run is a row with its status, never an exception."""
    _prepare_process(run)
    host = socket.gethostname()
    if isinstance(run.config, TrainConfig):
        assert run.data is not None, "a training run needs its data"
        rows: Iterator[Row] = Trainer(run.info, run.data, run.config, None, git_rev).rows()
    else:
        rows = iter([time_one(run.info, run.dim, run.config, git_rev)])
    for row in rows:
        yield row | {"host": host}
