"""Base distributions: log_prob against scipy.stats, sampling, parsing, and --base through the
dense methods (exact log_prob, each method's own update direction with the base in its data
term) and the command line."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats
from typer.testing import CliRunner

from bench.cli import app
from bench.registry import METHODS, RunSpec
from bench.step import make_optimizer, train_step
from bench.variants import VariantError, build_method, make_base, parse_base
from relgrad_impl import standard_normal_log_prob
from relgrad_impl.bases import Laplace, StandardNormal, StudentT
from tests.reference import brute_force_log_prob, relative

DIM, LAYERS = 4, 3
DENSE = ("naive", "relgrad", "snf", "lu")
BASES = ("laplace", "student-t:3", "student-t:learn", "copula:4")


def points(n: int = 50, dim: int = 3) -> torch.Tensor:
    generator = torch.Generator().manual_seed(5)
    return 3.0 * torch.randn(n, dim, generator=generator, dtype=torch.float64)


# ------------------------------------------------------------------------ against scipy


def test_standard_normal_and_laplace_log_prob_match_scipy() -> None:
    z = points()
    want_normal = stats.norm.logpdf(z.numpy()).sum(-1)
    want_laplace = stats.laplace.logpdf(z.numpy()).sum(-1)
    np.testing.assert_allclose(StandardNormal().log_prob(z).numpy(), want_normal, rtol=1e-12)
    np.testing.assert_allclose(Laplace().log_prob(z).numpy(), want_laplace, rtol=1e-12)


@pytest.mark.parametrize("df", [0.7, 3.0, 30.0])
@pytest.mark.parametrize("learn", [False, True])
def test_shared_student_t_log_prob_matches_scipy(df: float, learn: bool) -> None:
    z = points()
    base = StudentT(df, learn=learn).double()
    assert base.df.item() == pytest.approx(df, rel=1e-6)
    want = stats.t.logpdf(z.numpy(), base.df.item()).sum(-1)  # ν as stored (float32)
    np.testing.assert_allclose(base.log_prob(z).detach().numpy(), want, rtol=1e-10)


def test_copula_has_one_student_t_marginal_per_dimension() -> None:
    z = points(dim=3)
    base = StudentT(5.0, learn=True, dim=3).double()
    dfs = np.array([1.5, 4.0, 12.0])
    with torch.no_grad():
        base.log_df.copy_(torch.tensor(np.log(dfs)))
    want = sum(stats.t.logpdf(z[:, i].numpy(), dfs[i]) for i in range(3))
    np.testing.assert_allclose(base.log_prob(z).detach().numpy(), want, rtol=1e-10)


def test_learned_degrees_of_freedom_get_the_gradient_of_the_log_density() -> None:
    z = points()
    base = StudentT(4.0, learn=True).double()
    base.log_prob(z).sum().backward()
    df, eps = base.df.item(), 1e-6
    numeric = (stats.t.logpdf(z.numpy(), df + eps) - stats.t.logpdf(z.numpy(), df - eps)).sum()
    # d/dθ with ν = e^θ is ν d/dν.
    assert base.log_df.grad.item() == pytest.approx(df * numeric / (2 * eps), rel=1e-5)


# ------------------------------------------------------------------------------ sampling


@pytest.mark.parametrize(
    ("base", "variance"),
    [(StandardNormal(), 1.0), (Laplace(), 2.0), (StudentT(8.0), 8 / 6)],
)
def test_samples_have_the_shape_and_moments_of_the_distribution(base, variance) -> None:
    torch.manual_seed(0)
    sample = base.sample(100_000, 3)
    assert sample.shape == (100_000, 3)
    assert sample.mean(0).abs().max().item() < 0.03
    torch.testing.assert_close(sample.var(0), torch.full((3,), variance), rtol=0.06, atol=0)


def test_copula_samples_follow_each_marginal() -> None:
    torch.manual_seed(1)
    base = StudentT(5.0, learn=True, dim=2)
    with torch.no_grad():
        base.log_df.copy_(torch.tensor([math.log(4.5), math.log(30.0)]))
    sample = base.sample(100_000, 2).double().numpy()
    for i, df in enumerate([4.5, 30.0]):
        assert stats.kstest(sample[:, i], stats.t(df).cdf).pvalue > 1e-3


# ------------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("normal", "normal"),
        ("Laplace", "laplace"),
        ("student-t", "student-t:learn"),
        ("student-t:learn", "student-t:learn"),
        ("student-t:3", "student-t:3.0"),
        ("copula", "copula:5.0"),
        ("copula:2.5", "copula:2.5"),
    ],
)
def test_base_names_are_canonical(text: str, name: str) -> None:
    assert parse_base(text) == name


@pytest.mark.parametrize(
    "text", ["foo", "student-t:-1", "student-t:0", "student-t:nan", "copula:x", "normal:2"]
)
def test_bad_base_names_are_refused(text: str) -> None:
    with pytest.raises(VariantError):
        parse_base(text)


def test_learned_bases_have_parameters_and_fixed_ones_do_not() -> None:
    assert not list(make_base("student-t:3.0", 4).parameters())
    assert [p.shape for p in make_base("student-t:learn", 4).parameters()] == [()]
    assert [p.shape for p in make_base("copula:5.0", 4).parameters()] == [(4,)]


# ------------------------------------------------------------- through the dense methods


def build(name: str, base: str):
    spec = RunSpec(DIM, LAYERS, dtype=torch.float64, seed=1, hyper={"base": base})
    method = build_method(METHODS[name], spec)
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():  # off the initialization; snf's R stays exactly W⁻¹
        for p in method.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=generator, dtype=p.dtype))
        if name == "snf":
            for w, r in zip(method.weights, method.inverses, strict=True):
                r.copy_(torch.linalg.inv(w))
    return method


def data(batch: int = 6) -> torch.Tensor:
    generator = torch.Generator().manual_seed(2)
    return 2.0 * torch.randn(batch, DIM, generator=generator, dtype=torch.float64) + 0.5


def brute_force_with_base(method, x: torch.Tensor) -> torch.Tensor:
    """log p_Z(g(x)) + log|det ∂g/∂x| with the Jacobian from autograd."""
    z = method(x)
    return brute_force_log_prob(method, x) - standard_normal_log_prob(z) + method.base.log_prob(z)


def directions(method, x: torch.Tensor) -> tuple[dict, dict]:
    """The method's update direction and autograd's gradient of the exact NLL, by name."""
    method.zero_grad(set_to_none=True)
    method.loss(x).backward()
    got = {n: p.grad for n, p in method.named_parameters() if p.grad is not None}
    named = dict(method.named_parameters())
    names = [n for n in named if not n.startswith("inverses")]
    grads = torch.autograd.grad(
        -brute_force_with_base(method, x).mean(), [named[n] for n in names], allow_unused=True
    )
    return got, dict(zip(names, grads, strict=True))


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("name", DENSE)
def test_log_prob_is_the_change_of_variables_with_the_base(name: str, base: str) -> None:
    method, x = build(name, base), data()
    assert not isinstance(method.base, StandardNormal)
    torch.testing.assert_close(method.log_prob(x), brute_force_with_base(method, x))


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("name", DENSE)
def test_each_method_keeps_its_own_update_direction(name: str, base: str) -> None:
    method, x = build(name, base), data()
    got, exact = directions(method, x)
    for key, want in exact.items():
        layer = key.split(".")[-1]
        if name == "relgrad" and key.startswith("weights."):
            bias = f"biases.{layer}"
            w, b = method.weights[int(layer)].detach(), method.biases[int(layer)].detach()
            want, want_b = relative(w, b, want, exact[bias])
            torch.testing.assert_close(got[bias], want_b)
        elif name == "relgrad" and key.startswith("biases."):
            continue  # checked with its weight
        elif name == "snf" and key.startswith("weights."):
            want = 0.5 * want  # ½ forward gradient when R = W⁻¹ (tests/test_snf.py)
        torch.testing.assert_close(got[key], want, msg=f"{name} {base}: {key}")


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_trains_with_a_learned_heavy_tailed_base(name: str) -> None:
    # A fixed-step solver keeps the continuous flows fast; the other methods ignore it.
    hyper = {"base": "student-t:learn", "solver": "rk4", "step_size": 0.5}
    method = build_method(METHODS[name], RunSpec(2, 2, dtype=torch.float64, seed=1, hyper=hyper))
    optimizer = make_optimizer(method, lr=1e-2)
    before = method.base.log_df.detach().clone()
    loss = train_step(method, optimizer, data(batch=16)[:, :2])
    assert torch.isfinite(loss)
    assert not torch.equal(method.base.log_df.detach(), before)


# --------------------------------------------------------------------------- command line


def test_timing_and_training_rows_record_the_base(tmp_path: Path) -> None:
    runner = CliRunner()
    quick = ["--dims", "3", "--batch", "8", "--out", str(tmp_path), "--base", "student-t:3"]
    result = runner.invoke(app, ["run", "--method", "relgrad", "--min-time", "0.02", *quick])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["run", "--method", "lu", "--steps", "2", "--dataset", "teacher-t", *quick]
    )
    assert result.exit_code == 0, result.output
    for table in ("timing.csv", "training.csv"):
        lines = (tmp_path / table).read_text().splitlines()
        header = lines[0].split(",")
        rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:]]
        assert {(r["base"], r["components"]) for r in rows} == {("student-t:3.0", "1")}


@pytest.mark.parametrize("args", [["--base", "foo"], ["--base", "student-t:-1"]])
def test_bad_base_is_one_line_and_exit_2(args: list[str], tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["run", *args, "--dims", "3", "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bench: error: --base"), result.stderr
