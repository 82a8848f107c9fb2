"""The bench command line: bad input, a real short sweep, appending, faults, SIGKILL."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from bench.cli import app
from bench.registry import METHODS, MethodInfo
from bench.results import TIMING_COLUMNS

runner = CliRunner()
QUICK = ["--min-time", "0.05", "--layers", "2", "--batch", "8"]


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize(
    "args",
    [
        ["--method", "nope"],
        ["--dims", "abc"],
        ["--dims", "0"],
        ["--dims", "-4"],
        ["--dims", ""],
        ["--dims", "64,,128"],
        ["--batch", "0"],
        ["--layers", "0"],
        ["--dtype", "float16"],
        ["--device", "tpu"],
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", *args, "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bench: error:"), result.stderr
    assert "Traceback" not in result.output


def test_out_that_is_a_file_is_bad_input(tmp_path: Path) -> None:
    file = tmp_path / "results"
    file.write_text("not a folder")
    result = runner.invoke(app, ["run", "--dims", "8", "--out", str(file)])
    assert result.exit_code == 2
    assert "is a file" in result.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_is_bad_input(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", "--device", "cuda", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "CUDA is not available" in result.stderr


def test_sweep_writes_well_formed_rows_and_appends(tmp_path: Path) -> None:
    args = ["run", "--method", "floor,relgrad,naive", "--dims", "8,16", *QUICK]
    assert runner.invoke(app, [*args, "--out", str(tmp_path)]).exit_code == 0
    rows = read_rows(tmp_path / "timing.csv")
    assert list(rows[0]) == TIMING_COLUMNS
    assert [(r["method"], r["dim"]) for r in rows] == [
        (m, d) for d in ("8", "16") for m in ("floor", "relgrad", "naive")
    ]
    for row in rows:
        assert row["status"] == "ok"
        assert float(row["median_s"]) > 0 and float(row["iqr_s"]) >= 0
        assert int(row["measurements"]) >= 5
        assert int(row["params"]) == 2 * (int(row["dim"]) ** 2 + int(row["dim"]))
    assert runner.invoke(app, [*args, "--out", str(tmp_path)]).exit_code == 0
    assert len(read_rows(tmp_path / "timing.csv")) == 12


def _broken_method(name: str, error: Exception | None) -> MethodInfo:
    relgrad = METHODS["relgrad"]

    def build(spec):
        if error is not None:
            raise error
        flow = relgrad.build(spec)
        flow.loss = lambda x: flow.weights[0].sum() * float("nan")
        return flow

    return MethodInfo(name, "test fault", "-", build)


def test_faults_become_rows_and_the_sweep_goes_on(tmp_path: Path, monkeypatch) -> None:
    faults = {
        "nan": _broken_method("nan", None),
        "oom": _broken_method("oom", torch.OutOfMemoryError("CUDA out of memory.")),
        "boom": _broken_method("boom", KeyError("bug")),
    }
    monkeypatch.setattr("bench.registry.METHODS", {**METHODS, **faults})
    args = ["run", "--method", "nan,oom,boom,relgrad", "--dims", "8", *QUICK]
    result = runner.invoke(app, [*args, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    status = {r["method"]: r["status"] for r in read_rows(tmp_path / "timing.csv")}
    assert status == {"nan": "diverged", "oom": "oom", "boom": "error", "relgrad": "ok"}


def test_rows_survive_sigkill_and_a_second_sweep_appends(tmp_path: Path) -> None:
    bench = [sys.executable, "-c", "from bench.cli import app; app()"]
    args = ["run", "--method", "relgrad", "--dims", ",".join(["8"] * 50), *QUICK]
    process = subprocess.Popen([*bench, *args, "--out", str(tmp_path)], stdout=subprocess.DEVNULL)
    table = tmp_path / "timing.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not table.exists() or len(read_rows(table)) < 3):
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed = read_rows(table)
    assert 3 <= len(killed) < 50
    assert all(None not in row.values() and row["status"] == "ok" for row in killed)
    subprocess.run([*bench, *args[:4], "8", *QUICK, "--out", str(tmp_path)], check=True)
    rows = read_rows(table)
    assert len(rows) == len(killed) + 1 and rows[: len(killed)] == killed


def test_list_shows_every_method() -> None:
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0
    assert all(name in result.output for name in METHODS)
