"""Executors and --resume: Ray gives the local executor's rows, a task that raises is a row, a
killed driver's sweep resumes with every run once, and no Ray process outlives the command.

The Ray tests share one local instance (``ray.init(num_cpus=2)``, started and stopped by a
fixture) because starting one costs seconds on this machine; they are skipped without Ray.
"""

import csv
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.executors import LocalExecutor, RayExecutor, execute
from bench.registry import get_method
from bench.runs import Row, Run, plan_runs, run_rows
from bench.sweep import SweepConfig

runner = CliRunner()
BENCH = [sys.executable, "-c", "from bench.cli import app; app()"]
QUICK = ["--min-time", "0.02", "--layers", "2", "--batch", "8", "--threads", "1"]
# Columns that differ between two computations of the same run.
VARYING = {"run_id", "started_at", "host", "median_s", "iqr_s", "measurements", "peak_mem_bytes"}
# Ray on one machine only (its default on macOS and Windows): it binds to loopback, not to the
# machine's network address. Read when Ray is first imported, which is after this line.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
RAY_PROCESS = ("raylet", "gcs_server", "default_worker", "ray::", "ray/dashboard", "log_monitor")


def read_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def comparable(rows: list[dict[str, str]]) -> set[tuple[tuple[str, str], ...]]:
    return {tuple((k, v) for k, v in sorted(row.items()) if k not in VARYING) for row in rows}


def ray_processes() -> dict[int, int]:
    """pid → parent pid of every Ray process on this machine."""
    listing = subprocess.run(["ps", "-eo", "pid=,ppid=,args="], capture_output=True, text=True)
    found = {}
    for line in listing.stdout.splitlines():
        pid, ppid, args = line.split(maxsplit=2)
        if any(marker in args for marker in RAY_PROCESS):
            found[int(pid)] = int(ppid)
    return found


def descends_from_this_process(pid: int, parents: dict[int, int]) -> bool:
    while pid in parents:
        pid = parents[pid]
        if pid == os.getpid():
            return True
    return False


def strays(before: set[int]) -> list[int]:
    """Ray processes that are new since ``before`` and not the fixture instance's."""
    found = ray_processes()
    return [p for p in found if p not in before and not descends_from_this_process(p, found)]


def test_ray_without_ray_installed_is_one_line_and_exit_2(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    result = runner.invoke(app, ["run", "--dims", "8", "--executor", "ray", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "bench: error: --executor ray needs Ray, which is not installed: "
        "pip install 'jacobench[ray]'"
    )


@pytest.mark.parametrize(
    "args",
    [
        ["--executor", "dask"],
        ["--address", "auto"],
        ["--executor", "ray", "--cpus-per-run", "1", "--threads", "2"],
        ["--executor", "ray", "--gpus-per-run", "0"],
    ],
)
def test_bad_executor_options_are_one_line_and_exit_2(args: list[str], tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", "--dims", "8", *args, "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("bench: error:") and len(result.stderr.splitlines()) == 1


def test_resume_skips_ok_runs_and_retries_a_failure_once(tmp_path: Path, monkeypatch) -> None:
    args = ["run", "--method", "floor,relgrad", "--dims", "8,9", *QUICK, "--out", str(tmp_path)]
    assert runner.invoke(app, args).exit_code == 0
    table = tmp_path / "timing.csv"
    rows = read_rows(table)
    rows[0]["status"] = "error"  # as if floor D=8 had failed
    with table.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    monkeypatch.setattr("bench.runs.time_one", lambda *a: {**rows[0], "run_id": "retry"})
    for _ in range(2):  # the retry fails again and stands; nothing is left to do after it
        assert runner.invoke(app, [*args, "--resume"]).exit_code == 0
    again = read_rows(table)
    assert len(again) == 5 and again[-1]["run_id"] == "retry"


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """A local Ray instance on loopback for this module's Ray tests; yields its address."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def test_ray_gives_the_rows_of_the_local_executor(ray_cluster: str, tmp_path: Path) -> None:
    args = ["run", "--method", "floor,relgrad,naive", "--dims", "8,16", *QUICK]
    for executor in ("local", "ray"):
        out = str(tmp_path / executor)
        result = runner.invoke(app, [*args, "--executor", executor, "--out", out])
        assert result.exit_code == 0, result.output
    local, ray_rows = (read_rows(tmp_path / name / "timing.csv") for name in ("local", "ray"))
    assert len(ray_rows) == 6 and all(row["status"] == "ok" for row in ray_rows)
    assert comparable(ray_rows) == comparable(local)
    assert all(row["host"] for row in ray_rows + local)


def test_a_task_that_raises_is_an_error_row(ray_cluster: str, tmp_path: Path) -> None:
    runs = plan_runs([get_method("relgrad")], [8, 9, 10], SweepConfig(batch=8, min_run_time=0.02))

    def breaks_at_nine(run: Run, git_rev: str) -> list[Row]:
        if run.dim == 9:
            raise RuntimeError("worker   lost\nits way")
        return list(run_rows(run, git_rev))

    for executor in (LocalExecutor(), RayExecutor()):
        out = tmp_path / type(executor).__name__
        out.mkdir()
        list(execute(runs, executor, out, per_run=breaks_at_nine))
        rows = {row["dim"]: row for row in read_rows(out / "timing.csv")}
        assert {dim: row["status"] for dim, row in rows.items()} == {
            "8": "ok",
            "9": "error",
            "10": "ok",
        }
        assert rows["9"]["message"] == "worker lost its way"
        assert rows["9"]["method"] == "relgrad" and rows["9"]["seed"] == "0"


def test_killed_driver_resumes_with_every_run_once(ray_cluster: str, tmp_path: Path) -> None:
    dims = list(range(8, 24))
    args = ["run", "--method", "relgrad", "--dims", ",".join(map(str, dims)), *QUICK]
    args += ["--executor", "ray", "--out", str(tmp_path)]
    table = tmp_path / "timing.csv"
    driver = subprocess.Popen([*BENCH, *args, "--address", ray_cluster], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(read_rows(table)) < 3:
        time.sleep(0.05)
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    killed = read_rows(table)
    assert 3 <= len(killed) < len(dims)
    # The resumed sweep starts a private Ray instance; nothing of it may outlive the command.
    before = set(ray_processes())
    subprocess.run([*BENCH, *args, "--resume"], check=True, stdout=subprocess.DEVNULL)
    rows = read_rows(table)
    assert rows[: len(killed)] == killed
    assert sorted(int(row["dim"]) for row in rows) == dims
    assert all(row["status"] == "ok" for row in rows)
    deadline = time.monotonic() + 10
    while strays(before) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not strays(before)
