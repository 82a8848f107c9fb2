"""Brute-force references computed from autograd alone, for small D in float64."""

from collections.abc import Callable

import torch
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

from bench.registry import FlowMethod
from relgrad_impl import standard_normal_log_prob


def brute_force_log_prob(method: FlowMethod, x: Tensor) -> Tensor:
    """log N(g(x)) + log|det ∂g/∂x| per sample, the Jacobian from autograd (differentiable)."""
    values = []
    for sample in x:
        z = method(sample.unsqueeze(0)).squeeze(0)
        jacobian = torch.autograd.functional.jacobian(
            lambda s: method(s.unsqueeze(0)).squeeze(0), sample, create_graph=True
        )
        values.append(standard_normal_log_prob(z) + torch.linalg.slogdet(jacobian).logabsdet)
    return torch.stack(values)


def brute_force_injective_log_prob(method: FlowMethod, x: Tensor) -> Tensor:
    """log N(z) − ½ log det(JᵀJ) per sample at z = method(x), J = ∂decode/∂z (D×d) from
    autograd: the density on an injective flow's manifold at the projection of x."""
    values = []
    for z in method(x):
        jacobian = torch.autograd.functional.jacobian(
            lambda s: method.decode(s.unsqueeze(0)).squeeze(0), z, create_graph=True
        )
        gram = jacobian.T @ jacobian
        values.append(standard_normal_log_prob(z) - 0.5 * torch.linalg.slogdet(gram).logabsdet)
    return torch.stack(values)


def euclidean_gradient(method: FlowMethod, loss: Tensor) -> list[Tensor]:
    params = [p for p in method.parameters() if p.requires_grad]
    return list(torch.autograd.grad(loss, params, allow_unused=True))


def method_gradient(method: FlowMethod, x: Tensor) -> list[Tensor]:
    """The update direction the method's own loss puts into ``.grad``."""
    method.zero_grad(set_to_none=True)
    method.loss(x).backward()
    return [p.grad for p in method.parameters() if p.requires_grad]


def relative(weight: Tensor, bias: Tensor, grad_w: Tensor, grad_b: Tensor) -> tuple[Tensor, Tensor]:
    """The top rows of ∇_A L · AᵀA for the augmented matrix A = [[W, b], [0, 1]]."""
    dim = weight.shape[0]
    a = torch.zeros(dim + 1, dim + 1, dtype=weight.dtype)
    a[:dim, :dim], a[:dim, dim], a[dim, dim] = weight, bias, 1
    top = torch.cat([grad_w, grad_b.unsqueeze(1)], dim=1) @ a.T @ a
    return top[:, :dim], top[:, dim]


def backward_flops(
    affine: Callable[..., tuple[Tensor, Tensor]], batch: int, dim: int, matrices: int = 1
) -> int:
    """FLOPs of the backward of ‖y‖² − stand-in through one layer ``affine(h, W, b, *others)``."""
    h = torch.randn(batch, dim, requires_grad=True)
    weight, *others = [torch.randn(dim, dim, requires_grad=True) for _ in range(matrices)]
    y, stand_in = affine(h, weight, torch.zeros(dim, requires_grad=True), *others)
    loss = y.square().sum() - stand_in
    with FlopCounterMode(display=False) as counter:
        loss.backward()
    return counter.get_total_flops()
