"""`bench plot` and `bench report` on small tables written here: two devices, several seeds,
failed rows, exact D² / D³ timings, and every kind of bad input."""

import subprocess
import sys
from pathlib import Path
from typing import Any

import matplotlib.image
import pandas as pd
import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.plotting import draw_figures
from bench.results import TIMING_COLUMNS, TRAINING_COLUMNS, append_row
from bench.tables import load_tables, method_variant

runner = CliRunner()
DIMS = [64, 128, 256, 512]
# Exact t = c·D^power per method; relgrad is floor × 1.4 so its exponent is 2 as well.
POWERS = {"floor": (2, 1e-7), "relgrad": (2, 1.4e-7), "naive": (3, 1e-9)}
DEVICES = [("cpu", "cpu", 2), ("cuda", "NVIDIA Test GPU", 1)]
SEED_FACTORS = {0: 0.98, 1: 1.02}  # the median of the two seeds is exactly c·D^power


def timing_row(**values: Any) -> dict[str, Any]:
    row = {
        **dict(run_id="r", started_at="2025-01-01T00:00:00+00:00", git_rev="abc"),
        **dict(torch_version="2.13.0", dtype="float32", layers=2, batch=128, status="ok"),
        **dict(message="", iqr_s=1e-5, measurements=50, mem_source="cpu_rss_high_water_delta"),
    }
    return row | values


def training_row(**values: Any) -> dict[str, Any]:
    row = dict(run_id="t", started_at="2025-01-01T00:00:00+00:00", git_rev="abc", torch_version="x")
    row |= dict(device="cpu", layers=2, batch=64, lr=0.001, status="ok", message="", params=10)
    return row | values


def write_timing(folder: Path) -> None:
    for device, name, threads in DEVICES:
        for method, (power, scale) in POWERS.items():
            for dim in DIMS:
                for seed, factor in SEED_FACTORS.items():
                    seconds = factor * scale * dim**power
                    where = dict(device=device, device_name=name, threads=threads, method=method)
                    row = timing_row(**where, dim=dim, seed=seed, median_s=seconds)
                    row |= dict(params=2 * dim * dim, peak_mem_bytes=dim * dim * 64)
                    append_row(folder / "timing.csv", TIMING_COLUMNS, row)
    oom = dict(status="oom", message="CUDA out of memory. Tried to allocate 8.00 GiB")
    where = dict(device="cuda", device_name="NVIDIA Test GPU", threads=1, seed=0)
    append_row(
        folder / "timing.csv", TIMING_COLUMNS, timing_row(**where, method="naive", dim=4096, **oom)
    )


def write_training(folder: Path) -> None:
    for dataset, dim, truth in [("gaussian", 8, 10.0), ("digits", 64, None)]:
        for method in ["relgrad", "naive"]:
            for seed in [0, 1]:
                for step in range(0, 101, 25):
                    nll = 10.0 + 5.0 / (1 + step) + 0.1 * seed + (20 if truth is None else 0)
                    gap = None if truth is None else nll - truth
                    row = training_row(method=method, dataset=dataset, dim=dim, seed=seed)
                    row |= dict(run_id=f"{method}{seed}{dataset}", step=step, wall_s=0.05 * step)
                    row |= dict(train_nll=nll, test_nll=nll, test_bpd=nll / dim, true_nll=truth)
                    append_row(folder / "training.csv", TRAINING_COLUMNS, row | dict(gap_nats=gap))
    failed = training_row(method="naive", dataset="gaussian", dim=8, seed=2, run_id="bad", step=50)
    failed |= dict(status="diverged", message="loss is nan at step 50")
    append_row(folder / "training.csv", TRAINING_COLUMNS, failed)


@pytest.fixture
def results(tmp_path: Path) -> Path:
    write_timing(tmp_path)
    write_training(tmp_path)
    return tmp_path


def assert_one_line_exit_2(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bench: error:"), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def test_plot_writes_valid_png_images(results: Path) -> None:
    result = runner.invoke(app, ["plot", "--results", str(results)])
    assert result.exit_code == 0, result.output
    for name in ["scaling", "ratio", "memory", "likelihood"]:
        path = results / f"{name}.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        height, width, _ = matplotlib.image.imread(path).shape
        assert height > 300 and width > 500


@pytest.mark.parametrize("fmt, header", [("svg", b"<?xml"), ("pdf", b"%PDF")])
def test_plot_writes_other_formats(results: Path, fmt: str, header: bytes) -> None:
    assert runner.invoke(app, ["plot", "--results", str(results), "--format", fmt]).exit_code == 0
    assert (results / f"scaling.{fmt}").read_bytes().startswith(header)


def test_devices_get_their_own_panels_and_failed_rows_are_listed(results: Path) -> None:
    figures = draw_figures(load_tables(results))
    for name in ["scaling", "ratio", "memory"]:
        titles = [ax.get_title() for ax in figures[name].axes if ax.axison]
        assert len(titles) == 2 and "cpu · 2 threads" in titles[0] and "NVIDIA" in titles[1]
    caption = " ".join(text.get_text() for text in figures["scaling"].texts)
    assert "naive D=4096 on cuda: oom" in caption
    caption = " ".join(text.get_text() for text in figures["likelihood"].texts)
    assert "diverged" in caption and "loss is nan" in caption


def test_older_or_newer_schemas_are_read_and_cpu_hosts_kept_apart(tmp_path: Path) -> None:
    write_timing(tmp_path)
    rows = pd.read_csv(tmp_path / "timing.csv", dtype=str, keep_default_na=False)
    rows.drop(columns="host").assign(extra="x").to_csv(tmp_path / "timing.csv", index=False)
    assert len(draw_figures(load_tables(tmp_path))["scaling"].axes) == 2  # cpu and cuda
    rows["host"] = ["a", "b"] * (len(rows) // 2) + ["a"] * (len(rows) % 2)
    rows.to_csv(tmp_path / "timing.csv", index=False)
    titles = [ax.get_title() for ax in draw_figures(load_tables(tmp_path))["scaling"].axes]
    assert sum("cpu on a" in t for t in titles) == 1 and sum("cpu on b" in t for t in titles) == 1
    assert sum("NVIDIA" in t for t in titles) == 1  # one GPU model on two hosts: one line


def test_likelihood_draws_the_gap_where_the_truth_is_known(results: Path) -> None:
    figure = draw_figures(load_tables(results))["likelihood"]
    labels = {ax.get_title(): ax.get_ylabel() for ax in figure.axes}
    assert "true entropy" in labels["gaussian, D=8: against training time"]
    assert labels["digits, D=64: against step"] == "test NLL (nats/sample)"


def test_report_fits_exponents_two_and_three_per_device(results: Path) -> None:
    markdown = results / "report.md"
    result = runner.invoke(app, ["report", "--results", str(results), "--markdown", str(markdown)])
    assert result.exit_code == 0, result.output
    text = markdown.read_text()
    for device in ["cpu · 2 threads", "cuda (NVIDIA Test GPU)"]:
        section = text.split(f"## Scaling exponent — {device}")[1].split("##")[0]
        assert "| floor | 2.00 [2.00, 2.00] |" in section
        assert "| relgrad | 2.00 [2.00, 2.00] |" in section
        assert "| naive | 3.00 [3.00, 3.00] |" in section
    assert text.count("| relgrad | 512 | 36.7 ± 0.01 | 1.40 |") == 2  # 1.4e-7 s · 512², per device
    assert "Scaling exponent" in result.stdout


def test_report_lists_failed_rows_and_likelihood(results: Path) -> None:
    markdown = results / "report.md"
    result = runner.invoke(app, ["report", "--results", str(results), "--markdown", str(markdown)])
    assert result.exit_code == 0, result.output
    for text in [result.stdout, markdown.read_text()]:
        assert "oom" in text and "CUDA out of memory" in text
        assert "diverged" in text and "loss is nan" in text
        assert "Likelihood — gaussian" in text and "Likelihood — digits" in text
    # Final NLL of two seeds, 10.0 + 5/101 and 10.1 + 5/101; the diverged seed is left out.
    assert "| 8 | naive | 2 | 100 | 10.1 ± 0.071 | 1.262 | 0.0995 ± 0.071 | 5 |" in text


def test_only_training_failed_gives_a_no_successful_runs_figure(tmp_path: Path) -> None:
    write_timing(tmp_path)
    row = training_row(method="naive", dataset="gaussian", dim=8, seed=0, step=0)
    append_row(tmp_path / "training.csv", TRAINING_COLUMNS, row | dict(status="error"))
    figure = draw_figures(load_tables(tmp_path))["likelihood"]
    assert "no successful training runs" in [t.get_text() for t in figure.axes[0].texts]


def write_csv(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path.parent


BAD_TABLES = {
    "empty file": "",
    "header only": ",".join(TIMING_COLUMNS) + "\n",
    "missing column": "run_id,method,dim\nx,floor,64\n",
    "only failed rows": ",".join(TIMING_COLUMNS)
    + "\n"
    + ",".join("oom" if c == "status" else "" for c in TIMING_COLUMNS)
    + "\n",
    "ok row without a time": ",".join(TIMING_COLUMNS)
    + "\n"
    + ",".join({"status": "ok", "dim": "64"}.get(c, "") for c in TIMING_COLUMNS)
    + "\n",
    "not a CSV": 'a,b\n"unclosed,1\n',
}


@pytest.mark.parametrize("command", ["plot", "report"])
@pytest.mark.parametrize("case", BAD_TABLES)
def test_bad_tables_are_one_line_and_exit_2(tmp_path: Path, command: str, case: str) -> None:
    folder = write_csv(tmp_path / "results" / "timing.csv", BAD_TABLES[case])
    assert_one_line_exit_2([command, "--results", str(folder)])


@pytest.mark.parametrize("command", ["plot", "report"])
def test_missing_empty_or_file_results_are_bad_input(tmp_path: Path, command: str) -> None:
    assert "does not exist" in assert_one_line_exit_2([command, "--results", str(tmp_path / "x")])
    assert "no rows" in assert_one_line_exit_2([command, "--results", str(tmp_path)])
    file = write_csv(tmp_path / "f" / "file", "x") / "file"
    assert "is a file" in assert_one_line_exit_2([command, "--results", str(file)])


def test_bad_format_and_unwritable_markdown_are_bad_input(results: Path) -> None:
    assert "--format" in assert_one_line_exit_2(
        ["plot", "--results", str(results), "--format", "x"]
    )
    markdown = str(results / "no" / "such" / "report.md")
    assert_one_line_exit_2(["report", "--results", str(results), "--markdown", markdown])


def test_real_entry_point_prints_one_line_without_traceback(tmp_path: Path) -> None:
    script = "from bench.cli import app; app()"
    command = [sys.executable, "-c", script, "report", "--results", str(tmp_path / "x")]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("bench: error:")


def test_base_and_boost_variants_are_reported_apart() -> None:
    rows = pd.DataFrame(
        {
            "method": ["relgrad", "relgrad", "relgrad"],
            "base": ["normal", "laplace", "normal"],
            "components": ["1", "1", "4"],
        }
    )
    assert list(method_variant(rows)) == ["relgrad", "relgrad · laplace", "relgrad · K=4"]
