"""Gradient boosted flows: the mixture density is exact and normalized, the resampling weights
follow the clipping, frozen components stay frozen, ρ fitting finds the likelihood optimum,
--boost goes through the dense methods and the command line."""

import math
from pathlib import Path

import pytest
import torch
from scipy import optimize
from typer.testing import CliRunner

from bench.boosting import (
    CLIP_HIGH,
    CLIP_LOW,
    BoostedFlow,
    fit_mixing_weight,
    initial_weights,
    mixing_weights,
    resampling_weights,
)
from bench.cli import app
from bench.registry import METHODS, RunSpec
from bench.step import make_optimizer, train_step
from bench.variants import build_method
from relgrad_impl import DenseFlow

DENSE = ("naive", "relgrad", "snf", "lu")


def perturbed_flows(dim: int, count: int) -> list[DenseFlow]:
    generator = torch.Generator().manual_seed(7)
    flows = [DenseFlow(dim, 2, generator=generator).double() for _ in range(count)]
    with torch.no_grad():
        for flow in flows:
            for p in flow.parameters():
                p.add_(0.25 * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return flows


# ------------------------------------------------------------------------------ density


def test_mixture_log_prob_is_the_weighted_logsumexp_of_the_components() -> None:
    flows = perturbed_flows(3, 3)
    mixture = BoostedFlow(flows, steps_per_component=None)
    x = torch.randn(10, 3, dtype=torch.float64)
    pi = torch.tensor([4.0, 2.0, 1.0], dtype=torch.float64) / 7  # r = 1, ½, ¼
    want = torch.log(sum(p * f.log_prob(x).exp() for p, f in zip(pi, flows, strict=True)))
    torch.testing.assert_close(mixture.log_prob(x), want)
    assert mixing_weights(mixture) == pytest.approx(pi.tolist())


def test_boosted_density_integrates_to_one_in_1d() -> None:
    mixture = BoostedFlow(perturbed_flows(1, 3), steps_per_component=None)
    grid = torch.linspace(-60, 60, 40_001, dtype=torch.float64)
    with torch.no_grad():
        density = mixture.log_prob(grid.unsqueeze(-1)).exp()
    assert torch.trapezoid(density, grid).item() == pytest.approx(1.0, abs=1e-4)


def test_boosted_density_with_heavy_tailed_bases_integrates_to_one_in_2d() -> None:
    flows = perturbed_flows(2, 2)
    flows[1].base = build_method(
        METHODS["naive"], RunSpec(2, hyper={"base": "laplace"})
    ).base.double()
    mixture = BoostedFlow(flows, steps_per_component=None)
    axis = torch.linspace(-60, 60, 801, dtype=torch.float64)
    grid = torch.cartesian_prod(axis, axis)
    with torch.no_grad():
        density = mixture.log_prob(grid).exp().reshape(801, 801)
    mass = torch.trapezoid(torch.trapezoid(density, axis, dim=1), axis).item()
    assert mass == pytest.approx(1.0, abs=1e-3)


# ------------------------------------------------------------------- resampling weights


def test_weights_are_inverse_density_when_none_exceeds_the_clip() -> None:
    log_density = torch.linspace(-1.0, 1.0, 128, dtype=torch.float64)
    weights = resampling_weights(log_density)
    torch.testing.assert_close(weights, torch.softmax(-log_density, 0))
    assert weights.max() <= CLIP_HIGH


def test_weights_are_clipped_to_the_code_bounds_then_normalized() -> None:
    log_density = torch.zeros(32, dtype=torch.float64)
    log_density[0], log_density[1] = -20.0, 3.0  # sample 0 dominates the raw weights
    raw = torch.softmax(-log_density, 0)
    assert raw.max() > CLIP_HIGH
    weights = resampling_weights(log_density)
    want = raw.clamp(CLIP_LOW, CLIP_HIGH)
    torch.testing.assert_close(weights, want / want.sum())
    assert weights.sum().item() == pytest.approx(1.0)
    assert (weights.max() / weights.min()).item() == pytest.approx(CLIP_HIGH / CLIP_LOW)


def test_resampled_batch_follows_the_weights() -> None:
    flows = perturbed_flows(1, 2)
    mixture = BoostedFlow(flows, steps_per_component=None, seed=3)
    x = torch.arange(8, dtype=torch.float64).unsqueeze(-1)
    log_density = torch.linspace(-2.0, 2.0, 8, dtype=torch.float64)
    counts = torch.zeros(8, dtype=torch.float64)
    for _ in range(2000):
        counts += torch.bincount(mixture.resample(x, log_density).squeeze(-1).long(), minlength=8)
    torch.testing.assert_close(
        counts / counts.sum(), resampling_weights(log_density), atol=0.01, rtol=0
    )


# ----------------------------------------------------------------------- mixture weights


def test_default_schedule_halves_each_weight_down_to_the_floor() -> None:
    torch.testing.assert_close(
        initial_weights(7, "decreasing"),
        torch.tensor([1, 0.5, 0.25, 0.125, 0.0625, 0.05, 0.05], dtype=torch.float64),
    )
    assert initial_weights(3, "uniform").tolist() == [1.0, 1.0, 1.0]


def test_fitted_mixing_weight_maximizes_the_batch_likelihood() -> None:
    generator = torch.Generator().manual_seed(1)
    log_previous = torch.randn(256, generator=generator, dtype=torch.float64)
    log_new = log_previous + 1.5 * torch.randn(256, generator=generator, dtype=torch.float64)

    def negative(rho: float) -> float:
        mix = torch.logaddexp(math.log1p(-rho) + log_previous, math.log(rho) + log_new)
        return -mix.mean().item()

    best = optimize.minimize_scalar(negative, bounds=(1e-4, 1 - 1e-4), method="bounded").x
    assert fit_mixing_weight(log_previous, log_new).item() == pytest.approx(best, abs=0.005)


# --------------------------------------------------------------------- staged training


def boosted(name: str, steps: int, weights: str = "decreasing", base: str = "normal"):
    hyper = {"boost": 2, "boost_weights": weights, "base": base}
    spec = RunSpec(3, 2, dtype=torch.float64, seed=1, hyper=hyper)
    return build_method(METHODS[name], spec, steps=steps)


def snapshot(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def same(module: torch.nn.Module, params: list[torch.Tensor]) -> bool:
    return all(torch.equal(p, q) for p, q in zip(module.parameters(), params, strict=True))


@pytest.mark.parametrize("name", DENSE)
def test_components_train_in_turn_and_frozen_ones_stay_unchanged(name: str) -> None:
    flow = boosted(name, steps=6, base="student-t:learn")
    first, second = flow.components
    optimizer = make_optimizer(flow, lr=1e-2)
    x = 1.5 * torch.randn(64, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    start_first, start_second = snapshot(first), snapshot(second)
    for _ in range(3):
        train_step(flow, optimizer, x)
    assert flow.active == 0 and not same(first, start_first) and same(second, start_second)
    after_first = snapshot(first)
    for _ in range(3):
        train_step(flow, optimizer, x)
    assert flow.active == 1 and same(first, after_first) and not same(second, start_second)
    torch.testing.assert_close(
        flow.log_prob(x),
        torch.logaddexp(math.log(2 / 3) + first.log_prob(x), math.log(1 / 3) + second.log_prob(x)),
    )


def test_fitted_weights_move_while_the_second_component_trains() -> None:
    flow = boosted("relgrad", steps=4, weights="fitted")
    optimizer = make_optimizer(flow, lr=1e-2)
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for _ in range(2):
        train_step(flow, optimizer, x)
    assert mixing_weights(flow) == [1.0]
    train_step(flow, optimizer, x)
    pi = mixing_weights(flow)
    assert sum(pi) == pytest.approx(1.0) and pi[1] != pytest.approx(1 / 3)


def test_timing_build_trains_the_last_component_and_counts_every_parameter() -> None:
    flow = boosted("naive", steps=None)
    single = build_method(METHODS["naive"], RunSpec(3, 2, dtype=torch.float64))
    assert flow.active == 1
    assert sum(p.numel() for p in flow.parameters()) == 2 * sum(
        p.numel() for p in single.parameters()
    )


# --------------------------------------------------------------------------- command line


def test_rows_carry_the_number_of_components(tmp_path: Path) -> None:
    runner = CliRunner()
    quick = ["--method", "relgrad", "--dims", "3", "--batch", "8", "--out", str(tmp_path)]
    result = runner.invoke(app, ["run", *quick, "--boost", "3", "--min-time", "0.02"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["run", *quick, "--boost", "2", "--steps", "4", "--dataset", "mixture"]
    )
    assert result.exit_code == 0, result.output
    for table, components in (("timing.csv", "3"), ("training.csv", "2")):
        lines = (tmp_path / table).read_text().splitlines()
        header = lines[0].split(",")
        assert {line.split(",")[header.index("components")] for line in lines[1:]} == {components}


@pytest.mark.parametrize("args", [["--boost", "0"], ["--boost", "-2"], ["--boost-weights", "x"]])
def test_bad_boost_is_one_line_and_exit_2(args: list[str], tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["run", *args, "--dims", "3", "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bench: error: --boost"), result.stderr
