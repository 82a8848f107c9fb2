"""The ``bench`` command line."""

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import torch
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import bench.methods  # noqa: F401  (fills the registry)
from bench.datasets import (
    DATA_DIR_ENV,
    DATASETS,
    DatasetError,
    default_data_dir,
    get_dataset,
    is_cached,
)
from bench.executors import EXECUTORS, Executor, ExecutorError, check_runs, execute, make_executor
from bench.plotting import FORMATS, write_figures
from bench.registry import METHODS, MethodInfo, UnknownMethodError, get_method
from bench.report import build_report, print_report, write_markdown
from bench.results import ResultsError, prepare_out_dir
from bench.resume import pending_runs
from bench.runs import Run, plan_runs
from bench.summary import exponents, timing_table
from bench.sweep import SweepConfig
from bench.tables import BadResults, load_tables
from bench.training import TrainConfig, final_rows, load_for_dims
from bench.variants import BASE_FORMS, VariantError, parse_base, parse_boost

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


def parse_device(text: str, here: bool = True) -> str:
    """``here``: the runs use this machine, so CUDA must be available on it."""
    device = torch.device(text)
    if here and device.type == "cuda" and not torch.cuda.is_available():
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
    steps: Annotated[int | None, typer.Option(help="Train N steps, log NLL (no timing).")] = None,
    dataset: Annotated[str | None, typer.Option(help="With --steps (default gaussian).")] = None,
    eval_every: Annotated[int | None, typer.Option(help="Evaluate every K steps.")] = None,
    lr: Annotated[
        float | None, typer.Option(help="Adam learning rate (default per method).")
    ] = None,
    data_dir: Annotated[Path | None, typer.Option(help=f"Data cache (or ${DATA_DIR_ENV}).")] = None,
    max_seconds: Annotated[
        float | None,
        typer.Option(help="With --steps: stop each run after this much training time."),
    ] = None,
    latent_dims: Annotated[
        int | None, typer.Option(help="Manifold dimension d of rect-* (default max(1, D/4)).")
    ] = None,
    executor: Annotated[str, typer.Option(help=" or ".join(EXECUTORS))] = "local",
    address: Annotated[
        str | None, typer.Option(help="Ray cluster: auto or HOST:PORT (default: a local one).")
    ] = None,
    cpus_per_run: Annotated[
        float | None, typer.Option(help="Ray CPUs per run (default: its threads on cpu, else 1).")
    ] = None,
    gpus_per_run: Annotated[float | None, typer.Option(help="Ray GPUs per cuda run.")] = None,
    resume: Annotated[
        bool, typer.Option(help="Skip runs already ok in OUT; retry a failed one once.")
    ] = False,
    base: Annotated[str, typer.Option(help=f"Base distribution of every method: {BASE_FORMS}.")] = (
        "normal"
    ),
    boost: Annotated[
        int | None, typer.Option(help="Gradient-boost K components of each method (a mixture).")
    ] = None,
    boost_weights: Annotated[
        str, typer.Option(help="Mixture weights of --boost: decreasing, uniform or fitted.")
    ] = "decreasing",
) -> None:
    """Time one training step per (method, D) into OUT/timing.csv; with --steps, train
    each (method, D) on --dataset instead and log its likelihood to OUT/training.csv."""
    try:
        infos = parse_methods(method)
        dim_list = parse_dims(dims)
        for name, value in [("layers", layers), ("batch", batch), ("threads", threads)]:
            positive(name, value)
        positive("min-time", min_time)
        positive("latent-dims", latent_dims)
        if latent_dims is not None and latent_dims > min(dim_list):
            raise BadInput(f"--latent-dims {latent_dims} exceeds the smallest D {min(dim_list)}")
        hyper = {} if latent_dims is None else {"latent_dims": latent_dims}
        hyper |= {"base": parse_base(base)} | parse_boost(boost, boost_weights)
        if dtype not in DTYPES:
            raise BadInput(f"--dtype {dtype}: choose one of {', '.join(DTYPES)}")
        common = dict(
            layers=layers,
            batch=batch,
            device=parse_device(device, here=executor == "local"),
            dtype=DTYPES[dtype],
            threads=threads or torch.get_num_threads(),
            seed=seed,
            hyper=hyper,
        )
        if steps is None:
            options = [("dataset", dataset), ("eval-every", eval_every), ("lr", lr)]
            options.append(("max-seconds", max_seconds))
            given = [name for name, value in options if value is not None]
            if given:
                raise BadInput(f"--{'/--'.join(given)} need --steps N (they set up training)")
            config: SweepConfig | TrainConfig = SweepConfig(min_run_time=min_time, **common)
            data = None
        else:
            for name, value in [("steps", steps), ("eval-every", eval_every), ("lr", lr)]:
                positive(name, value)
            positive("max-seconds", max_seconds)
            dataset = dataset or "gaussian"
            config = TrainConfig(
                steps=steps,
                dataset=dataset,
                eval_every=eval_every,
                lr=lr,
                max_seconds=max_seconds,
                **common,
            )
            data = load_for_dims(dataset, dim_list, data_dir or default_data_dir())
        run_executor = make_executor(executor, address, cpus_per_run, gpus_per_run)
        runs = plan_runs(infos, dim_list, config, data)
        check_runs(run_executor, runs)
        prepare_out_dir(out)
        if resume:
            runs = pending_runs(runs, out)
    except (
        BadInput,
        UnknownMethodError,
        ResultsError,
        DatasetError,
        ExecutorError,
        VariantError,
        RuntimeError,
    ) as error:
        fail(str(error))
    if not runs:
        console.print(f"nothing to run: {out} has every run settled (--resume)")
        return
    if isinstance(config, TrainConfig):
        train(runs, config, run_executor, out)
        return
    rows = run_with_progress(runs, run_executor, out, "timing", lambda row: True)
    print_timing_summary(pd.DataFrame(rows))
    console.print(f"rows appended to {out / 'timing.csv'}")


def run_with_progress(
    runs: list[Run],
    run_executor: Executor,
    out: Path,
    label: str,
    run_done: Callable[[dict[str, Any]], bool],
) -> list[dict[str, Any]]:
    """Every row of ``runs`` as ``execute`` appends it, with a progress bar over the runs;
    ``run_done(row)`` tells whether a row is its run's last."""
    rows = []
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
    with Progress(*columns, TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task(label, total=len(runs))
        for row in execute(runs, run_executor, out):
            rows.append(row)
            step = f" step {row['step']}" if "step" in row else ""
            description = f"{row['method']} D={row['dim']}{step}"
            progress.update(task, advance=int(run_done(row)), description=description)
    return rows


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


def train(runs: list[Run], config: TrainConfig, run_executor: Executor, out: Path) -> None:
    rows = run_with_progress(
        runs,
        run_executor,
        out,
        "training",
        lambda row: row["status"] != "ok" or config.finished(row["step"], row["wall_s"]),
    )
    view = Table("method", "D", "status", "step", "train s", "test NLL", "bits/dim", "gap nats")
    for r in final_rows(rows):
        cells = [r.get(k) for k in ("test_nll", "test_bpd", "gap_nats")]
        cells = ["" if v is None else f"{v:.4f}" for v in cells]
        view.add_row(
            r["method"], str(r["dim"]), r["status"], str(r["step"]), f"{r['wall_s']:.1f}", *cells
        )
        if r["status"] != "ok":
            console.print(f"[red]{r['method']} D={r['dim']}: {r['status']}[/] {r['message']}")
    console.print(view)
    console.print(f"rows appended to {out / 'training.csv'}")


data_app = typer.Typer(no_args_is_help=True, help="Data sets: list them, download one.")
app.add_typer(data_app, name="data")
DATA_DIR_OPTION = typer.Option(help=f"Data cache folder (default ${DATA_DIR_ENV} or ~/.cache).")


@data_app.command("list")
def data_list(data_dir: Annotated[Path | None, DATA_DIR_OPTION] = None) -> None:
    """The data sets: name, D, whether they are cached, splits, summary."""
    folder = data_dir or default_data_dir()
    table = Table("dataset", "D", "cached", "true NLL", "splits", "summary")
    for info in DATASETS.values():
        cached = "built-in" if info.offline else ("yes" if is_cached(info, folder) else "no")
        dim = "any" if info.dim is None else str(info.dim)
        truth = "yes" if info.truth else ""
        table.add_row(info.name, dim, cached, truth, info.splits, info.summary)
    console.print(table)
    console.print(f"cache: {folder}")


@data_app.command("fetch")
def data_fetch(
    name: Annotated[str, typer.Argument(help="A data set of `bench data list`.")],
    data_dir: Annotated[Path | None, DATA_DIR_OPTION] = None,
) -> None:
    """Download and verify one data set into the cache."""
    folder = data_dir or default_data_dir()
    try:
        info = get_dataset(name)
        if info.fetch is None:
            console.print(f"{name} is built in: nothing to download")
            return
        info.fetch(folder)
    except DatasetError as error:
        fail(str(error))
    console.print(f"{name}: cached and verified in {folder}")


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
