"""The data set registry: name → dimension rule, splits, seed, truth and loader.

A loaded data set is a :class:`Data`: train / validation / test tensors in the space the model
sees, the log-Jacobian that maps a model-space density back to the data's own space (pixel
space for images, so NLLs are comparable with the literature), and, where the true density is
known, the true log-density of every test sample.
"""

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from torch import Tensor

DATA_DIR_ENV = "JACOBENCH_DATA"


class DatasetError(ValueError):
    """A data set cannot be used as asked: reported as one line, exit code 2."""


@dataclass
class Data:
    """One data set at one dimension, split and preprocessed.

    ``log_jacobian(x)`` is log|det ∂x/∂v| per sample for the map from the data's own space v to
    the model space x, so log p(v) = log q(x) + log_jacobian(x); ``None`` means x = v.
    ``true_log_prob_test`` is the true log p(v) of each test sample where the truth is known.
    """

    name: str
    train: Tensor
    test: Tensor
    valid: Tensor | None = None
    log_jacobian: Callable[[Tensor], Tensor] | None = None
    true_log_prob_test: Tensor | None = None
    entropy: float | None = None
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return self.train.shape[1]

    @property
    def true_nll(self) -> float | None:
        """The true NLL of the test set in nats per sample (a Monte-Carlo estimate of the
        entropy over exactly the samples the models are scored on), or None if unknown."""
        if self.true_log_prob_test is None:
            return None
        return -self.true_log_prob_test.double().mean().item()


@dataclass(frozen=True)
class DatasetInfo:
    """A registry entry.

    Arguments:
        name: The name used on the command line.
        summary: One line for ``bench data list``.
        dim: The dimension D, or ``None`` where any D ≥ 1 works.
        splits: How the data are split, in words.
        seed: The seed of everything random in the data (sampling, dequantization, splits).
        truth: True where the true log-density is known and ``true_nll`` is reported.
        load: ``load(dim, data_dir)`` → :class:`Data`; never downloads.
        fetch: ``fetch(data_dir)`` downloads and verifies what the data set needs.
        cached: ``cached(data_dir)`` → whether ``load`` has what it needs (no checksum pass).
    """

    name: str
    summary: str
    dim: int | None
    splits: str
    seed: int
    truth: bool
    load: Callable[[int, Path], Data]
    fetch: Callable[[Path], None] | None = None
    cached: Callable[[Path], bool] | None = None

    @property
    def offline(self) -> bool:
        return self.fetch is None

    def check_dim(self, dim: int) -> None:
        if dim < 1:
            raise DatasetError(f"dataset '{self.name}': D must be positive, got {dim}")
        if self.dim is not None and dim != self.dim:
            raise DatasetError(
                f"dataset '{self.name}' has D = {self.dim}; got D = {dim} (use --dims {self.dim})"
            )


DATASETS: dict[str, DatasetInfo] = {}


def register(info: DatasetInfo) -> DatasetInfo:
    DATASETS[info.name] = info
    return info


def get_dataset(name: str) -> DatasetInfo:
    if name not in DATASETS:
        known = ", ".join(DATASETS)
        raise DatasetError(f"unknown dataset '{name}' (known: {known}; see `bench data list`)")
    return DATASETS[name]


def default_data_dir() -> Path:
    """$JACOBENCH_DATA, else $XDG_CACHE_HOME/jacobench, else ~/.cache/jacobench."""
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "jacobench"


def is_cached(info: DatasetInfo, data_dir: Path) -> bool:
    return info.cached is None or info.cached(data_dir)


def load_dataset(name: str, dim: int, data_dir: Path | None = None, download: bool = True) -> Data:
    """Check D, download what is missing (if ``download``), verify and load."""
    info = get_dataset(name)
    info.check_dim(dim)
    data_dir = data_dir or default_data_dir()
    if info.fetch is not None and not is_cached(info, data_dir):
        if not download:
            raise DatasetError(
                f"dataset '{name}' is not in {data_dir}; run `bench data fetch {name}`"
            )
        info.fetch(data_dir)
    data = info.load(dim, data_dir)
    if data.dim != dim:
        raise DatasetError(f"dataset '{name}' loaded with D = {data.dim}, expected {dim}")
    return data


def constant_log_jacobian(value: float) -> Callable[[Tensor], Tensor]:
    """log|det ∂x/∂v| of an affine preprocessing: the same for every sample."""

    def log_jacobian(x: Tensor) -> Tensor:
        return x.new_full(x.shape[:-1], value)

    return log_jacobian


def bits_per_dim(nll_nats: float, dim: int) -> float:
    return nll_nats / (dim * math.log(2))
