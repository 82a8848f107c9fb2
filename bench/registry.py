"""The method registry: name → summary, per-step complexity and builder.

A method is an ``nn.Module`` with ``loss(x)`` (a scalar whose ``.backward()`` puts the method's
update direction into ``.grad``) and ``log_prob(x)`` (exact, per sample, for evaluation). One
training loop serves them all: zero_grad → loss(x).backward() → optimizer.step().

A method's base distribution is its submodule ``base`` (``log_prob(z)``, standard normal by
default), used wherever the method scores z; :func:`bench.variants.build_method` swaps it
(``--base``) and boosts the method (``--boost``) from ``RunSpec.hyper``.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor


class FlowMethod(Protocol):
    """What every registered method is: an ``nn.Module`` whose ``forward`` is z = g(x)."""

    def __call__(self, x: Tensor) -> Tensor: ...

    def loss(self, x: Tensor) -> Tensor: ...

    def log_prob(self, x: Tensor) -> Tensor: ...

    def parameters(self) -> Any: ...


@dataclass(frozen=True)
class RunSpec:
    """What a builder needs to make one method instance."""

    dim: int
    layers: int = 2
    device: str = "cpu"
    dtype: torch.dtype = torch.float32
    seed: int = 0
    hyper: Mapping[str, Any] = field(default_factory=dict)

    def generator(self) -> torch.Generator:
        """A CPU generator seeded with the run's seed, for reproducible initialization."""
        return torch.Generator().manual_seed(self.seed)


@dataclass(frozen=True, kw_only=True)
class RunSettings:
    """The settings a timing run and a training run share."""

    layers: int = 2
    batch: int = 128
    device: str = "cpu"
    dtype: torch.dtype = torch.float32
    threads: int = 1
    seed: int = 0
    lr: float | None = None  # None: the method's default_lr
    hyper: Mapping[str, Any] = field(default_factory=dict)  # method options (RunSpec.hyper)

    def spec(self, dim: int) -> RunSpec:
        """The builder's view of one run at dimension ``dim``."""
        return RunSpec(dim, self.layers, self.device, self.dtype, self.seed, self.hyper)


@dataclass(frozen=True)
class MethodInfo:
    name: str
    summary: str
    complexity: str
    build: Callable[[RunSpec], FlowMethod]
    default_lr: float = 1e-3
    # False for methods whose loss is not the negative log-likelihood (the cost floor).
    trains_likelihood: bool = True


METHODS: dict[str, MethodInfo] = {}


class UnknownMethodError(ValueError):
    pass


def register(info: MethodInfo) -> MethodInfo:
    METHODS[info.name] = info
    return info


def get_method(name: str) -> MethodInfo:
    if name not in METHODS:
        known = ", ".join(sorted(METHODS))
        raise UnknownMethodError(f"unknown method '{name}' (known: {known})")
    return METHODS[name]


def count_parameters(method: FlowMethod) -> int:
    return sum(p.numel() for p in method.parameters() if p.requires_grad)
