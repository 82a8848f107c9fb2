"""The one training step every method shares: zero_grad → loss(x).backward() → optimizer.step()."""

import torch
from torch import Tensor

from bench.registry import FlowMethod


def make_optimizer(method: FlowMethod, lr: float) -> torch.optim.Optimizer:
    """Adam over the method's trainable parameters."""
    return torch.optim.Adam([p for p in method.parameters() if p.requires_grad], lr=lr)


def train_step(method: FlowMethod, optimizer: torch.optim.Optimizer, x: Tensor) -> Tensor:
    """One step; returns the detached training loss (no host sync)."""
    optimizer.zero_grad(set_to_none=True)
    loss = method.loss(x)
    loss.backward()
    optimizer.step()
    return loss.detach()


def is_finite(method: FlowMethod, loss: Tensor) -> bool:
    """True if the loss and every parameter are finite (one host sync)."""
    checks = [torch.isfinite(loss).all()]
    checks += [torch.isfinite(p).all() for p in method.parameters()]
    return bool(torch.stack(checks).all())
