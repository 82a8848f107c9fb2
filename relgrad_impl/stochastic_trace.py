r"""Matrix-free linear algebra for stochastic log-determinant gradients.

Hutchinson's estimator: for probes ε with E[ε εᵀ] = I,

.. math:: \operatorname{tr}(M) = \mathbb{E}[\varepsilon^\top M \varepsilon] .

Batched conjugate gradients solve A u = b for a batch of symmetric positive definite A given
only v ↦ A v, stopping when every sample's relative residual ‖r‖ / ‖b‖ is at most ``tol`` (or
after ``max_iter`` iterations; in exact arithmetic CG is done after n = dim A iterations).

References:
    Hutchinson, "A stochastic estimator of the trace of the influence matrix for Laplacian
    smoothing splines", 1989.
    Hestenes & Stiefel, "Methods of conjugate gradients for solving linear systems", 1952.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

MatVec = Callable[[Tensor], Tensor]


def probes(shape: tuple[int, ...], like: Tensor, kind: str = "gaussian") -> Tensor:
    r"""Hutchinson probes with E[ε εᵀ] = I: standard normal or Rademacher (±1)."""
    if kind == "gaussian":
        return torch.randn(shape, dtype=like.dtype, device=like.device)
    if kind == "rademacher":
        return torch.randint(0, 2, shape, device=like.device).to(like.dtype) * 2 - 1
    raise ValueError(f"unknown probe kind '{kind}' (gaussian or rademacher)")


@dataclass(frozen=True)
class CGResult:
    """The solution, how many iterations ran, and each sample's final relative residual."""

    solution: Tensor
    iterations: int
    relative_residual: Tensor


def _dot(a: Tensor, b: Tensor) -> Tensor:
    return (a * b).sum(-1, keepdim=True)


def conjugate_gradient(
    matvec: MatVec, b: Tensor, tol: float = 1e-6, max_iter: int | None = None
) -> CGResult:
    r"""Solve A u = b row by row (b: (..., n)) for SPD A given as ``matvec``, from u = 0.

    Converged rows stop moving (their step is masked to zero), so each row's iterate is what
    it would be if solved alone. The residual is the recursive one, r_k = b − A u_k in exact
    arithmetic.
    """
    max_iter = b.shape[-1] if max_iter is None else max_iter
    u, r = torch.zeros_like(b), b.clone()
    p, rr = r.clone(), _dot(r, r)
    b_norm = b.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(b.dtype).tiny)
    iterations = 0
    while iterations < max_iter:
        active = r.norm(dim=-1, keepdim=True) > tol * b_norm
        if not active.any():
            break
        ap = matvec(p)
        alpha = torch.where(active, rr / _dot(p, ap).clamp_min(torch.finfo(b.dtype).tiny), 0)
        u, r = u + alpha * p, r - alpha * ap
        rr_next = _dot(r, r)
        p = torch.where(active, r + (rr_next / rr.clamp_min(torch.finfo(b.dtype).tiny)) * p, p)
        rr, iterations = rr_next, iterations + 1
    return CGResult(u, iterations, (r.norm(dim=-1) / b_norm.squeeze(-1)))
