"""One sweep over every registered method: exact log_prob, update direction, a training step."""

import pytest
import torch

from bench.registry import METHODS, RunSpec
from bench.step import make_optimizer, train_step
from tests.reference import (
    brute_force_injective_log_prob,
    brute_force_log_prob,
    euclidean_gradient,
    method_gradient,
    relative,
)

DIM, LAYERS, BATCH = 4, 3, 6
# Methods whose update direction is autograd's gradient of the exact NLL.
EXACT_GRADIENT = {"naive", "lu", "maf", "realnvp", "nsf", "cnf-exact"}
# Methods whose update direction is checked against its own reference here or in its own file.
OWN_REFERENCE = {"relgrad", "floor", "snf", "rect-exact", "rect-hutch", "cnf-hutch"}
# Injective flows R^d → R^D: log_prob is log N(z) − ½ log det(JᵀJ) at z = g†(x), not a square
# change of variables (tests/test_rectangular.py checks their update directions).
INJECTIVE = {"rect-exact", "rect-hutch"}


def build(name: str, dim: int = DIM):
    spec = RunSpec(dim=dim, layers=LAYERS, dtype=torch.float64, seed=1)
    return METHODS[name].build(spec)


def data(dim: int = DIM, batch: int = BATCH) -> torch.Tensor:
    generator = torch.Generator().manual_seed(2)
    return 2.0 * torch.randn(batch, dim, generator=generator, dtype=torch.float64) + 0.5


def perturb(method) -> None:
    """Move off the initialization (non-zero biases, non-orthogonal W) so tests see real cases."""
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in method.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=generator, dtype=p.dtype))


@pytest.mark.parametrize("name", sorted(METHODS))
def test_log_prob_matches_brute_force(name: str) -> None:
    method = build(name)
    perturb(method)
    x = data()
    reference = brute_force_injective_log_prob if name in INJECTIVE else brute_force_log_prob
    torch.testing.assert_close(method.log_prob(x), reference(method, x))


@pytest.mark.parametrize("name", sorted(METHODS))
def test_update_direction_has_a_reference(name: str) -> None:
    assert name in EXACT_GRADIENT | OWN_REFERENCE, f"declare how {name}'s direction is checked"
    if name not in EXACT_GRADIENT:
        pytest.skip(f"{name} is checked against its own reference")
    method = build(name)
    perturb(method)
    x = data()
    expected = euclidean_gradient(method, -brute_force_log_prob(method, x).mean())
    for got, want in zip(method_gradient(method, x), expected, strict=True):
        torch.testing.assert_close(got, torch.zeros_like(got) if want is None else want)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_training_step_lowers_its_objective(name: str) -> None:
    method = build(name)
    x = data(batch=64)
    objective = (
        (lambda: -method.log_prob(x).mean())
        if METHODS[name].trains_likelihood
        else (lambda: method.loss(x))
    )
    with torch.no_grad():
        before = objective().item()
    optimizer = make_optimizer(method, lr=1e-3)
    for _ in range(5):
        train_step(method, optimizer, x)
    with torch.no_grad():
        assert objective().item() < before


def test_relgrad_direction_is_gradient_times_a_transpose_a() -> None:
    method = build("relgrad")
    perturb(method)
    x = data()
    euclid = euclidean_gradient(method, -brute_force_log_prob(method, x).mean())
    got = method_gradient(method, x)
    layers = len(method.weights)
    for index in range(layers):
        w, b = method.weights[index], method.biases[index]
        want_w, want_b = relative(w.detach(), b.detach(), euclid[index], euclid[layers + index])
        torch.testing.assert_close(got[index], want_w)
        torch.testing.assert_close(got[layers + index], want_b)


def test_floor_direction_drops_exactly_the_log_det_gradient() -> None:
    method = build("floor")
    perturb(method)
    x = data()
    log_det_w = sum(torch.linalg.slogdet(w).logabsdet for w in method.weights)
    euclid = euclidean_gradient(method, -brute_force_log_prob(method, x).mean() + log_det_w)
    for got, want in zip(method_gradient(method, x), euclid, strict=True):
        torch.testing.assert_close(got, want)
