"""The training loop and `bench run --steps` / `bench data`: convergence to a closed-form optimum,
well-formed rows appended as training goes, evaluation excluded from the clock, faults as rows,
and bad input as one line with exit code 2."""

import csv
import math
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn
from typer.testing import CliRunner

from bench import training
from bench.cli import app
from bench.datasets import DATA_DIR_ENV, Data, load_dataset, mnist
from bench.datasets.download import RemoteFile
from bench.registry import MethodInfo, get_method
from bench.results import TRAINING_COLUMNS
from bench.training import TrainConfig, Trainer, training_sweep

runner = CliRunner()


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == TRAINING_COLUMNS
        return list(reader)


def small_data(dim: int = 3, n: int = 64) -> Data:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2 * n, dim, generator=generator)
    truth = torch.distributions.Normal(0.0, 1.0).log_prob(x[n:].double()).sum(-1)
    return Data(name="small", train=x[:n], test=x[n:], true_log_prob_test=truth)


def test_affine_relgrad_flow_reaches_the_closed_form_optimum_on_gaussian(tmp_path) -> None:
    dim = 16
    data = load_dataset("gaussian", dim)
    config = TrainConfig(
        steps=1000, dataset="gaussian", eval_every=500, layers=1, batch=256, lr=1e-2, threads=1
    )
    rows = list(training_sweep([get_method("relgrad")], {dim: data}, config, tmp_path))
    assert [row["step"] for row in rows] == [0, 500, 1000]
    assert all(row["status"] == "ok" for row in rows)
    final = rows[-1]
    # The best Gaussian for the training data (maximum likelihood, closed form), on the test set.
    train = data.train.double()
    best = torch.distributions.MultivariateNormal(train.mean(0), torch.cov(train.T, correction=0))
    optimum_nll = -best.log_prob(data.test.double()).mean().item()
    assert final["test_nll"] - optimum_nll < 0.01 * dim
    assert final["gap_nats"] < 0.01 * dim
    assert rows[0]["gap_nats"] > 1.0  # it had something to learn
    assert final["true_nll"] == pytest.approx(data.true_nll)


def test_rows_are_well_formed_and_appended_as_training_goes(tmp_path) -> None:
    config = TrainConfig(steps=25, dataset="small", eval_every=10, batch=16, threads=1, seed=3)
    info = get_method("relgrad")
    seen = []
    for row in Trainer(info, small_data(), config, tmp_path, "abc").run():
        seen.append(row)
        on_disk = read_rows(tmp_path / "training.csv")
        assert len(on_disk) == len(seen)  # each row is on disk before the next step runs
    rows = read_rows(tmp_path / "training.csv")
    assert [int(r["step"]) for r in rows] == [0, 10, 20, 25]
    assert len({r["run_id"] for r in rows}) == 1
    walls = [float(r["wall_s"]) for r in rows]
    assert walls[0] == 0 and walls == sorted(walls)
    for r in rows:
        assert r["status"] == "ok" and r["message"] == ""
        assert (r["method"], r["dataset"], r["dim"], r["seed"]) == ("relgrad", "small", "3", "3")
        assert float(r["lr"]) == info.default_lr and int(r["params"]) == 2 * (3 * 3 + 3)
        test_nll, true_nll = float(r["test_nll"]), float(r["true_nll"])
        assert float(r["gap_nats"]) == pytest.approx(test_nll - true_nll)
        assert float(r["test_bpd"]) == pytest.approx(test_nll / (3 * math.log(2)))
        assert math.isfinite(float(r["train_nll"]))


@pytest.fixture
def fake_clock(monkeypatch) -> None:
    """Each reading of the training clock is one second later; each evaluation "takes 1000 s"."""
    clock = {"now": 0.0}

    def perf_counter() -> float:
        clock["now"] += 1.0
        return clock["now"]

    real_nll = training.nll

    def slow_nll(*args, **kwargs) -> float:
        clock["now"] += 1000.0
        return real_nll(*args, **kwargs)

    monkeypatch.setattr(training.time, "perf_counter", perf_counter)
    monkeypatch.setattr(training, "nll", slow_nll)


def test_evaluation_time_is_not_training_time(tmp_path, fake_clock) -> None:
    config = TrainConfig(steps=6, dataset="small", eval_every=2, batch=8, threads=1)
    rows = list(Trainer(get_method("relgrad"), small_data(), config, tmp_path, "abc").run())
    assert [row["wall_s"] for row in rows] == [0.0, 1.0, 2.0, 3.0]


def test_a_time_budget_stops_at_the_first_evaluation_past_it(tmp_path, fake_clock) -> None:
    config = TrainConfig(steps=100, dataset="small", eval_every=2, batch=8, max_seconds=2.5)
    rows = list(Trainer(get_method("relgrad"), small_data(), config, tmp_path, "abc").run())
    assert [(row["step"], row["wall_s"]) for row in rows] == [(0, 0), (2, 1), (4, 2), (6, 3)]


class Exploding(nn.Module):
    """A 'method' whose update direction is NaN."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.shift = nn.Parameter(torch.zeros(dim))

    def loss(self, x: Tensor) -> Tensor:
        return (self.shift * float("nan")).sum() + x.sum() * 0

    def log_prob(self, x: Tensor) -> Tensor:
        return -(x - self.shift).square().sum(-1)


class Failing(Exploding):
    def __init__(self, dim: int, error: Exception) -> None:
        super().__init__(dim)
        self.error = error

    def loss(self, x: Tensor) -> Tensor:
        raise self.error


def fake(name: str, build) -> MethodInfo:
    return MethodInfo(name=name, summary="test", complexity="O(1)", build=build)


def test_divergence_errors_and_oom_become_rows_and_the_sweep_goes_on(tmp_path) -> None:
    methods = [
        fake("exploding", lambda spec: Exploding(spec.dim)),
        fake("failing", lambda spec: Failing(spec.dim, RuntimeError("boom"))),
        fake("oom", lambda spec: Failing(spec.dim, torch.OutOfMemoryError("CUDA out of memory"))),
        get_method("relgrad"),
    ]
    config = TrainConfig(steps=4, dataset="small", eval_every=2, batch=8, threads=1)
    list(training_sweep(methods, {3: small_data()}, config, tmp_path))
    rows = read_rows(tmp_path / "training.csv")
    last = {r["method"]: r for r in rows}
    assert last["exploding"]["status"] == "diverged"
    assert "not finite by step 2" in last["exploding"]["message"]
    assert last["exploding"]["test_nll"] == ""
    assert (last["failing"]["status"], last["failing"]["message"]) == ("error", "boom")
    assert last["oom"]["status"] == "oom"
    assert last["relgrad"]["status"] == "ok" and last["relgrad"]["step"] == "4"
    assert [r["status"] for r in rows if r["method"] == "exploding"] == ["ok", "diverged"]


def test_data_without_truth_leaves_true_nll_and_gap_empty(tmp_path) -> None:
    data = small_data()
    data.true_log_prob_test = None
    data.log_jacobian = lambda x: x.new_full(x.shape[:-1], -2.0)  # e.g. a scaling by e^(2/D)
    config = TrainConfig(steps=2, dataset="small", eval_every=2, batch=8, threads=1)
    rows = list(Trainer(get_method("naive"), data, config, tmp_path, "abc").run())
    with torch.no_grad():
        method = get_method("naive").build(config.spec(3))
        expected = -(method.log_prob(data.test) - 2.0).double().mean().item()
    assert rows[0]["test_nll"] == pytest.approx(expected, rel=1e-6)
    assert "true_nll" not in rows[0] and "gap_nats" not in rows[0]


# -------------------------------------------------------------------------------- CLI


def run_cli(args: list[str], **env: str):
    return runner.invoke(app, args, env=env)


def test_cli_trains_and_appends_training_rows(tmp_path) -> None:
    args = ["run", "--method", "relgrad,naive", "--dims", "4", "--steps", "4", "--eval-every"]
    args += ["2", "--dataset", "teacher", "--out", str(tmp_path), "--threads", "1"]
    result = run_cli(args)
    assert result.exit_code == 0, result.output
    rows = read_rows(tmp_path / "training.csv")
    assert [(r["method"], r["step"]) for r in rows] == [
        (m, s) for m in ("relgrad", "naive") for s in ("0", "2", "4")
    ]
    assert not (tmp_path / "timing.csv").exists()
    assert run_cli(args).exit_code == 0
    assert len(read_rows(tmp_path / "training.csv")) == 12


def corrupt_mnist_cache(folder: Path) -> Path:
    path = folder / mnist.FILES["train"].path
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x1f\x8b truncated")
    (folder / mnist.FILES["test"].path).write_bytes(b"\x1f\x8b truncated")
    return path


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--steps", "2", "--dataset", "nope", "--dims", "8"], "unknown dataset 'nope'"),
        (["--steps", "2", "--dataset", "digits", "--dims", "32"], "has D = 64"),
        (["--steps", "2", "--dataset", "mnist", "--dims", "784"], "fails its MD5 checksum"),
        (["--dataset", "teacher", "--dims", "8"], "need --steps"),
        (["--steps", "0", "--dims", "8"], "--steps must be positive"),
        (["--steps", "2", "--lr", "-1", "--dims", "8"], "--lr must be positive"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, args, needle) -> None:
    corrupt = corrupt_mnist_cache(tmp_path / "data")
    result = run_cli(
        ["run", *args, "--out", str(tmp_path / "out")], **{DATA_DIR_ENV: str(tmp_path / "data")}
    )
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bench: error:") and needle in lines[0]
    if "MD5" in needle:
        assert str(corrupt) in lines[0] and "bench data fetch mnist" in lines[0]
    assert not (tmp_path / "out" / "training.csv").exists()


def test_data_list_and_fetch(tmp_path, monkeypatch) -> None:
    result = run_cli(["data", "list", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0
    for name in ("gaussian", "teacher", "digits", "mnist", "power", "bsds300"):
        assert name in result.stdout
    assert run_cli(["data", "fetch", "teacher"]).exit_code == 0
    unknown = run_cli(["data", "fetch", "nope"])
    assert unknown.exit_code == 2 and "unknown dataset 'nope'" in unknown.stderr
    source = tmp_path / "source.gz"
    source.write_bytes(b"not really mnist")
    files = {
        k: RemoteFile(v.path, (source.as_uri(),), md5="0" * 32) for k, v in mnist.FILES.items()
    }
    monkeypatch.setattr(mnist, "FILES", files)
    failed = run_cli(["data", "fetch", "mnist", "--data-dir", str(tmp_path / "cache")])
    assert failed.exit_code == 2 and len(failed.stderr.strip().splitlines()) == 1
    assert "failed its checksum" in failed.stderr
    assert not any((tmp_path / "cache").rglob("*.gz*"))
