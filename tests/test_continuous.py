"""Continuous flow: exact trace against closed forms, Hutchinson's trace and gradient unbiased."""

import math

import pytest
import torch
from torch import Tensor, nn

from bench.registry import METHODS, RunSpec
from relgrad_impl.continuous import (
    ContinuousFlow,
    VectorField,
    exact_divergence,
    hutchinson_divergence,
)
from relgrad_impl.dense_flow import standard_normal_log_prob
from relgrad_impl.stochastic_trace import probes
from tests.reference import method_gradient

F64 = torch.float64


class LinearField(nn.Module):
    """f(z, t) = A z: z(T) = exp(T A) x and ∫₀ᵀ tr A dt = T · tr A."""

    def __init__(self, a: Tensor) -> None:
        super().__init__()
        self.a = nn.Parameter(a)

    def forward(self, t: Tensor, z: Tensor) -> Tensor:
        return z @ self.a.T


def points(batch: int, dim: int, seed: int = 1) -> Tensor:
    return torch.randn(batch, dim, generator=torch.Generator().manual_seed(seed), dtype=F64)


def random_field(dim: int) -> VectorField:
    generator = torch.Generator().manual_seed(0)
    field = VectorField(dim, 8, 2, generator).double()
    with torch.no_grad():
        for p in field.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=generator, dtype=F64))
    return field


def test_exact_trace_log_density_matches_the_matrix_exponential() -> None:
    dim, time = 4, 0.7
    a = 0.8 * points(dim, dim, seed=3)
    model = ContinuousFlow(dim, time=time).double()
    model.field = LinearField(a)
    x = points(5, dim)
    propagator = torch.linalg.matrix_exp(time * a)
    # Brute force: the Jacobian of the flow map is exp(T A); its log-det is T · tr A.
    torch.testing.assert_close(torch.linalg.slogdet(propagator).logabsdet, time * a.trace())
    torch.testing.assert_close(model(x), x @ propagator.T)
    want = standard_normal_log_prob(x @ propagator.T) + time * a.trace()
    torch.testing.assert_close(model.log_prob(x), want)


def test_exact_divergence_is_the_jacobian_trace() -> None:
    field, t = random_field(5), torch.tensor(0.3, dtype=F64)
    z = points(4, 5).requires_grad_()
    got = exact_divergence(field(t, z), z, create_graph=False)
    for sample, value in zip(z.detach(), got, strict=True):
        jacobian = torch.autograd.functional.jacobian(lambda s: field(t, s[None])[0], sample)
        torch.testing.assert_close(value, jacobian.trace())


@pytest.mark.parametrize("kind", ["gaussian", "rademacher"])
def test_hutchinson_trace_is_unbiased(kind: str) -> None:
    """20,000 probes per point: the mean is within 5 standard errors of the exact trace."""
    field, t, n = random_field(5), torch.tensor(0.3, dtype=F64), 20_000
    z = points(3, 5)
    exact = exact_divergence(field(t, z.requires_grad_()), z, create_graph=False)
    zs = z.detach().repeat(n, 1).requires_grad_()
    torch.manual_seed(0)
    eps = probes(zs.shape, zs, kind)
    estimates = hutchinson_divergence(field(t, zs), zs, eps, create_graph=False).view(n, 3)
    error = (estimates.mean(0) - exact).abs()
    assert (error < 5 * estimates.std(0) / math.sqrt(n)).all()
    assert (estimates.std(0) > 0).all()  # a real estimator, not the exact trace in disguise


def test_cnf_hutch_direction_averages_to_cnf_exact() -> None:
    """Fixed-step RK4, so the steps cannot depend on the probes. 2 × 500 copies of 4 points,
    each with its own probe. Tolerance: within 10% of the exact direction, and the error within
    2× what the spread between the two halves predicts."""
    hyper = {"hidden": 8, "solver": "rk4", "step_size": 0.5}
    spec = RunSpec(dim=3, layers=2, dtype=F64, seed=1, hyper=hyper)
    exact_method, hutch_method = (METHODS[n].build(spec) for n in ("cnf-exact", "cnf-hutch"))
    generator = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for p, q in zip(exact_method.parameters(), hutch_method.parameters(), strict=True):
            p.add_(0.3 * torch.randn(p.shape, generator=generator, dtype=F64))
            q.copy_(p)
    x = points(4, 3)
    exact = torch.cat([g.reshape(-1) for g in method_gradient(exact_method, x)])
    torch.manual_seed(0)
    halves = [
        torch.cat([g.reshape(-1) for g in method_gradient(hutch_method, x.repeat(500, 1))])
        for _ in range(2)
    ]
    mean = (halves[0] + halves[1]) / 2
    assert (mean - exact).norm() < 0.1 * exact.norm()
    assert (mean - exact).norm() < 2 * (halves[0] - halves[1]).norm() / 2
