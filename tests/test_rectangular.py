"""Injective flows: exact log det(JᵀJ), the Hutchinson + CG gradient, CG, the manifold data."""

import math

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from bench.cli import app
from bench.datasets.manifold import InjectiveMap, load_manifold, sample_laplace, true_log_prob
from bench.datasets.synthetic import laplace_log_prob
from bench.registry import METHODS, RunSpec
from bench.sweep import SweepConfig, _setup
from relgrad_impl.rectangular import (
    RectangularFlow,
    default_latent_dims,
    gram_log_det_surrogate,
)
from relgrad_impl.stochastic_trace import conjugate_gradient
from tests.reference import brute_force_injective_log_prob, euclidean_gradient, method_gradient

F64 = torch.float64


def flow(dim: int, latent: int, seed: int = 0) -> RectangularFlow:
    """A small float64 flow moved off its identity initialization."""
    generator = torch.Generator().manual_seed(seed)
    model = RectangularFlow(dim, latent, layers=3, hidden=8, generator=generator).double()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=generator, dtype=F64))
    return model


def points(batch: int, dim: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, dim, generator=torch.Generator().manual_seed(seed), dtype=F64)


def flat(grads) -> torch.Tensor:
    return torch.cat([g.reshape(-1) for g in grads])


def autograd_gram_log_det(g, z: torch.Tensor) -> torch.Tensor:
    """slogdet(JᵀJ) with J from reverse-mode autograd, one sample at a time."""
    values = []
    for sample in z:
        jacobian = torch.autograd.functional.jacobian(lambda s: g(s[None])[0], sample)
        values.append(torch.linalg.slogdet(jacobian.T @ jacobian).logabsdet)
    return torch.stack(values)


@pytest.mark.parametrize(("dim", "latent"), [(4, 1), (5, 2), (6, 4), (3, 3)])
def test_exact_gram_log_det_matches_brute_force(dim: int, latent: int) -> None:
    model = flow(dim, latent)
    z = model(points(5, dim))
    torch.testing.assert_close(model.gram_log_det(z), autograd_gram_log_det(model.decode, z))


def test_left_inverse_recovers_the_latent() -> None:
    model = flow(6, 2)
    z = points(7, 2)
    torch.testing.assert_close(model(model.decode(z)), z)


def test_rect_exact_direction_is_the_gradient_of_its_objective() -> None:
    spec = RunSpec(dim=5, layers=3, dtype=F64, seed=1, hyper={"latent_dims": 2, "hidden": 8})
    method = METHODS["rect-exact"].build(spec)
    x = points(6, 5)
    z = method(x)
    objective = -brute_force_injective_log_prob(method, x) + method.reconstruction(x, z)
    want = euclidean_gradient(method, objective.mean())
    for got, expected in zip(method_gradient(method, x), want, strict=True):
        torch.testing.assert_close(got, expected)


def test_basis_probes_give_the_exact_log_det_gradient() -> None:
    """With the d basis vectors as probes the estimator is tr((JᵀJ)^{-1} ∂(JᵀJ)) exactly."""
    model, latent = flow(5, 3), 3
    x = points(4, 5)
    params = list(model.parameters())
    exact = flat(torch.autograd.grad(model.gram_log_det(model(x)).mean(), params))
    basis = torch.eye(latent, dtype=F64)[:, None, :].expand(latent, len(x), latent)
    surrogate = latent * gram_log_det_surrogate(model.decode, model(x), basis, cg_tol=1e-12)
    torch.testing.assert_close(flat(torch.autograd.grad(surrogate.mean(), params)), exact)


def test_rect_hutch_direction_averages_to_rect_exact() -> None:
    """Each of 2 × 1500 copies of 4 points draws its own probe. Tolerance: the averaged
    direction is within 10% of the exact one, and its error is within 2× what the spread
    between the two halves predicts (unbiased: ratio ≈ 1; a bias would make it grow)."""
    hyper = {"latent_dims": 2, "hidden": 8, "cg_tol": 1e-12}
    spec = RunSpec(dim=4, layers=2, dtype=F64, seed=1, hyper=hyper)
    exact_method, hutch_method = (METHODS[n].build(spec) for n in ("rect-exact", "rect-hutch"))
    x = points(4, 4)
    exact = flat(method_gradient(exact_method, x))
    torch.manual_seed(0)
    halves = [flat(method_gradient(hutch_method, x.repeat(1500, 1))) for _ in range(2)]
    mean = (halves[0] + halves[1]) / 2
    assert (mean - exact).norm() < 0.1 * exact.norm()
    assert (mean - exact).norm() < 2 * (halves[0] - halves[1]).norm() / 2


def spd_batch(batch: int, n: int, condition: float) -> torch.Tensor:
    generator = torch.Generator().manual_seed(5)
    q, _ = torch.linalg.qr(torch.randn(batch, n, n, generator=generator, dtype=F64))
    eigenvalues = torch.logspace(0, torch.log10(torch.tensor(condition)).item(), n, dtype=F64)
    return q @ torch.diag_embed(eigenvalues) @ q.mT


def test_cg_reaches_its_tolerance_on_a_well_conditioned_system() -> None:
    """κ = 10 in n = 64: the textbook bound ‖e‖_A ≤ 2ρ^k ‖e₀‖_A, ρ = (√κ − 1)/(√κ + 1), says
    ≈ 30 steps for 1e-8, well below n."""
    a, tol, kappa = spd_batch(8, 64, condition=10.0), 1e-8, 10.0
    b = points(8, 64)
    result = conjugate_gradient(lambda v: (a @ v.unsqueeze(-1)).squeeze(-1), b, tol)
    assert (result.relative_residual <= tol).all()
    rho = (kappa**0.5 - 1) / (kappa**0.5 + 1)
    assert result.iterations <= math.ceil(math.log(tol / (2 * kappa**0.5)) / math.log(rho))
    true_residual = (a @ result.solution.unsqueeze(-1)).squeeze(-1) - b
    assert (true_residual.norm(dim=-1) <= 10 * tol * b.norm(dim=-1)).all()
    torch.testing.assert_close(result.solution, torch.linalg.solve(a, b))


def test_cg_reports_a_residual_above_tolerance_when_capped() -> None:
    a, b = spd_batch(4, 20, condition=1e4), points(4, 20)
    result = conjugate_gradient(lambda v: (a @ v.unsqueeze(-1)).squeeze(-1), b, 1e-8, 3)
    assert result.iterations == 3
    assert (result.relative_residual > 1e-8).all()


@pytest.mark.parametrize(("dim", "latent"), [(5, 2), (4, 4)])
def test_manifold_truth_matches_brute_force(dim: int, latent: int) -> None:
    generator = torch.Generator().manual_seed(0)
    f = InjectiveMap.random(latent, dim, generator)
    s = sample_laplace(6, latent, generator)
    want = laplace_log_prob(s) - 0.5 * autograd_gram_log_det(f, s)
    torch.testing.assert_close(true_log_prob(f, s), want)


def test_manifold_latent_is_unit_variance_laplace() -> None:
    s = sample_laplace(40_000, 2, torch.Generator().manual_seed(0))
    assert abs(s.var().item() - 1) < 0.05
    # Laplace: E|s| = b = 1/√2 (a Gaussian would give √(2/π) ≈ 0.80).
    assert abs(s.abs().mean().item() - 2**-0.5) < 0.02


def test_manifold_dataset_is_seeded_and_uses_the_default_latent_dims() -> None:
    first, second = load_manifold(8), load_manifold(8)
    torch.testing.assert_close(first.test, second.test)
    assert first.dim == 8 and first.notes["latent_dims"] == str(default_latent_dims(8)) == "2"
    assert first.true_log_prob_test is not None and torch.isfinite(first.true_log_prob_test).all()
    # Curved: the 2-dimensional manifold spans more than a 2-dimensional affine subspace.
    centred = first.train[:500].double() - first.train.mean(0)
    assert torch.linalg.matrix_rank(centred) > 2


def test_latent_dims_reaches_the_method_through_the_sweep() -> None:
    config = SweepConfig(batch=4, hyper={"latent_dims": 3})
    method, _, _ = _setup(METHODS["rect-hutch"], 8, config)
    assert method.latent_dims == 3
    assert _setup(METHODS["rect-exact"], 8, SweepConfig(batch=4))[0].latent_dims == 2


def test_bench_run_times_rect_with_latent_dims(tmp_path) -> None:
    args = ["run", "--method", "rect-exact,rect-hutch", "--dims", "8", "--batch", "8"]
    args += ["--min-time", "0.05", "--latent-dims", "3", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(tmp_path / "timing.csv")
    assert list(rows["status"]) == ["ok", "ok"]


def test_bench_run_rejects_latent_dims_above_d(tmp_path) -> None:
    args = ["run", "--method", "rect-exact", "--dims", "8,4", "--latent-dims", "5"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "--latent-dims 5" in result.output
