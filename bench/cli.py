"""The ``bench`` command line."""

from pathlib import Path
from typing import Annotated

import pandas as pd
import torch
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import bench.methods  # noqa: F401  (fills the registry)
from bench.plotting import FORMATS, write_figures
from bench.registry import METHODS, MethodInfo, UnknownMethodError, get_method
from bench.report import build_report, print_report, write_markdown
from bench.results import ResultsError, prepare_out_dir
from bench.summary import exponents, timing_table
from bench.sweep import SweepConfig, timing_sweep
from bench.tables import BadResults, load_tables

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Benchmark ways of training normalizing flows whose cost is the Jacobian log-det.",
)
console = Console()
DTYPES = {"float32": torch.float32, "float64": torch.float64}


class BadInput(ValueError):
    """Bad command-line input: reported as one line on stderr with exit code 2."""


def fail(message: str) -> None:
    typer.echo(f"bench: error: {message}", err=True)
    raise typer.Exit(2)


def parse_dims(text: str) -> list[int]:
    """'64,256,1024' → [64, 256, 1024]; every dim a positive integer."""
    items = [item.strip() for item in text.split(",")]
    if not text.strip() or any(not item for item in items):
        raise BadInput(f"--dims '{text}' is empty or has an empty item; e.g. --dims 64,256,1024")
    dims = []
    for item in items:
        try:
            dim = int(item)
        except ValueError:
            raise BadInput(f"--dims: '{item}' is not an integer") from None
        if dim <= 0:
            raise BadInput(f"--dims: {dim} is not positive")
        dims.append(dim)
    return dims


def parse_methods(text: str) -> list[MethodInfo]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise BadInput("--method is empty; `bench list` shows the methods")
    return [get_method(name) for name in names]


def parse_device(text: str) -> str:
    device = torch.device(text)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BadInput(f"--device {text}: CUDA is not available on this machine")
    if device.type not in ("cpu", "cuda"):
        raise BadInput(f"--device {text}: only cpu and cuda are supported")
    return text


def positive(name: str, value: int | float | None) -> None:
    if value is not None and value <= 0:
        raise BadInput(f"--{name} must be positive, got {value}")


@app.command("list")
def list_methods() -> None:
    """List the registered methods."""
    table = Table("method", "per-step cost", "summary")
    for info in METHODS.values():
        table.add_row(info.name, info.complexity, info.summary)
    console.print(table)


@app.command()
def run(
    method: Annotated[str, typer.Option(help="Comma-separated method names.")] = "relgrad",
    dims: Annotated[str, typer.Option(help="Comma-separated dimensions D.")] = "64,256,1024",
    layers: Annotated[int, typer.Option(help="Affine layers L of the dense flows.")] = 2,
    batch: Annotated[int, typer.Option(help="Batch size B.")] = 128,
    device: Annotated[str, typer.Option(help="cpu or cuda[:N].")] = "cpu",
    threads: Annotated[int | None, typer.Option(help="CPU threads (default: torch's).")] = None,
    seed: Annotated[int, typer.Option()] = 0,
    dtype: Annotated[str, typer.Option(help="float32 or float64.")] = "float32",
    min_time: Annotated[float, typer.Option(help="Seconds of timing per run, at least.")] = 1.0,
    out: Annotated[Path, typer.Option(help="Results folder.")] = Path("results"),
) -> None:
    """Time one training step per (method, D) and append rows to OUT/timing.csv."""
    try:
        infos = parse_methods(method)
        dim_list = parse_dims(dims)
        for name, value in [("layers", layers), ("batch", batch), ("threads", threads)]:
            positive(name, value)
        positive("min-time", min_time)
        if dtype not in DTYPES:
            raise BadInput(f"--dtype {dtype}: choose one of {', '.join(DTYPES)}")
        config = SweepConfig(
            layers=layers,
            batch=batch,
            device=parse_device(device),
            dtype=DTYPES[dtype],
            threads=threads or torch.get_num_threads(),
            seed=seed,
            min_run_time=min_time,
        )
        prepare_out_dir(out)
    except (BadInput, UnknownMethodError, ResultsError, RuntimeError) as error:
        fail(str(error))
    rows = []
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
    with Progress(*columns, TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task("timing", total=len(infos) * len(dim_list))
        for row in timing_sweep(infos, dim_list, config, out):
            rows.append(row)
            progress.update(task, advance=1, description=f"{row['method']} D={row['dim']}")
    print_timing_summary(pd.DataFrame(rows))
    console.print(f"rows appended to {out / 'timing.csv'}")


def print_timing_summary(rows: pd.DataFrame) -> None:
    failed = rows[rows["status"] != "ok"]
    for _, row in failed.iterrows():
        console.print(f"[red]{row['method']} D={row['dim']}: {row['status']}[/] {row['message']}")
    if (rows["status"] == "ok").any():
        table = timing_table(rows)
        fits = exponents(table)
        view = Table("method", "D", "median ms", "IQR ms", "× floor", "params", "peak MiB")
        for _, r in table.iterrows():
            view.add_row(
                r["method"],
                str(r["dim"]),
                f"{r['median_s'] * 1e3:.2f}",
                f"{r['iqr_s'] * 1e3:.2f}",
                "" if pd.isna(r["ratio_to_floor"]) else f"{r['ratio_to_floor']:.2f}",
                f"{r['params']:,}",
                "" if pd.isna(r["peak_mem_bytes"]) else f"{r['peak_mem_bytes'] / 2**20:.1f}",
            )
        console.print(view)
        fit_view = Table("method", "exponent k (95% CI)", "local k (two largest D)")
        for (_, _, name), (fit, local) in fits.items():
            fit_view.add_row(name, str(fit), f"{local:.2f}")
        console.print(fit_view)


RESULTS_OPTION = typer.Option(help="Folder holding timing.csv and/or training.csv.")


@app.command()
def plot(
    results: Annotated[Path, RESULTS_OPTION] = Path("results"),
    fmt: Annotated[str, typer.Option("--format", help=" or ".join(FORMATS))] = "png",
) -> None:
    """Draw the scaling, ratio, memory and likelihood figures from the tables into RESULTS."""
    try:
        written = write_figures(results, fmt)
    except BadResults as error:
        fail(str(error))
    for path in written:
        console.print(f"wrote {path}")


@app.command()
def report(
    results: Annotated[Path, RESULTS_OPTION] = Path("results"),
    markdown: Annotated[Path | None, typer.Option(help="Also write it as Markdown here.")] = None,
) -> None:
    """Summarise the tables: time per method × D, exponents, memory, likelihood, failures."""
    try:
        sections = build_report(load_tables(results))
        if markdown is not None:
            write_markdown(markdown, sections, results)
    except BadResults as error:
        fail(str(error))
    print_report(sections, console)
