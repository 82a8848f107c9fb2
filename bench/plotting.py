"""``bench plot``: the scaling, ratio, memory and likelihood figures, drawn from the tables only.

Each figure has one panel per setting (timing) or per data set and D (likelihood), so rows from
different devices, dtypes, thread counts, depths or batches never share a line. Rows whose status
is not ok are left out of the lines and listed under the figure. Figures are built with the
object-oriented ``Figure`` API (no pyplot), so no display or global state is involved.
"""

import textwrap
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter, NullLocator, ScalarFormatter

from bench.scaling import fit_exponent
from bench.summary import timing_table
from bench.tables import (
    TIMING_GROUP,
    TIMING_SETTING,
    TRAINING_RUN,
    TRAINING_SETTING,
    BadResults,
    Tables,
    describe_failure,
    load_tables,
    timing_setting_label,
    training_setting_label,
)

FORMATS = ("png", "svg", "pdf")
PANEL_INCHES = (6.0, 4.4)
FAILURES_SHOWN = 8
MIB = 2**20
MEMORY_SOURCES = {
    "cuda_max_memory_allocated": "torch.cuda.max_memory_allocated over the warm-up steps, "
    "above the allocation before the run",
    "cpu_rss_high_water_delta": "growth of the process's resident-set high-water mark over the "
    "warm-up steps (parameters, gradients, Adam state, activations)",
    "unavailable": "not measured on this platform",
}
SCALING_NOTE = (
    "Median time of one training step (forward + backward + optimizer step); band: median ± "
    "IQR/2 of the timing measurements. k: least-squares slope of log time on log D with its 95% "
    "t-interval. Grey: reference slopes D² and D³."
)
RATIO_NOTE = (
    "Each method's median step time divided by floor's (same network, no log-det term) at the "
    "same D and setting. Dotted: the ratio of B·D² products, relgrad to floor: (4L−1)/(3L−1)."
)
LIKELIHOOD_NOTE = (
    "Held-out NLL in nats per sample (lower is better); where the data's true entropy is known "
    "the gap to it is drawn (0 = the true density; log axis where every gap is positive). One "
    "line per run; seeds share a colour."
)
# Fixed colour order for the methods the harness ships (tables only: no registry import).
KNOWN_METHODS = ("floor", "relgrad", "naive", "snf", "lu", "maf", "realnvp", "nsf")
Colors = dict[str, str]
PanelDrawer = Callable[[Axes, pd.DataFrame, Colors], None]


def write_figures(folder: Path, fmt: str) -> list[Path]:
    """Draw every figure the tables in ``folder`` allow; return the files written."""
    if fmt not in FORMATS:
        raise BadResults(f"--format {fmt}: choose one of {', '.join(FORMATS)}")
    tables = load_tables(folder)
    written = []
    for name, figure in draw_figures(tables).items():
        path = folder / f"{name}.{fmt}"
        figure.savefig(path, dpi=100, bbox_inches="tight")
        written.append(path)
    return written


def draw_figures(tables: Tables) -> dict[str, Figure]:
    colors = method_colors(
        rows["method"] for rows in (tables.timing, tables.training) if rows is not None
    )
    failed = tables.failed()
    figures = {}
    if tables.timing is not None:
        timing_failed = failed[failed["table"] == "timing"]
        for name, draw, note in [
            ("scaling", draw_scaling, SCALING_NOTE),
            ("ratio", draw_ratio, RATIO_NOTE),
            ("memory", draw_memory, memory_caption(tables.timing)),
        ]:
            figures[name] = timing_figure(tables.timing, draw, colors)
            add_caption(figures[name], note, timing_failed)
    if tables.training is not None:
        figures["likelihood"] = likelihood_figure(tables.training, colors)
        add_caption(figures["likelihood"], LIKELIHOOD_NOTE, failed[failed["table"] == "training"])
    return figures


def method_colors(columns: Iterable[pd.Series]) -> Colors:
    """One colour per method, the same in every figure and in every results folder."""
    found = {name for column in columns for name in column.unique()}
    names = [*KNOWN_METHODS, *sorted(found - set(KNOWN_METHODS))]
    palette = [f"C{i}" for i in range(10)]
    return {name: palette[i % len(palette)] for i, name in enumerate(names)}


def panel_figure(count: int, columns: int) -> tuple[Figure, list[Axes]]:
    rows = -(-count // columns)
    size = (PANEL_INCHES[0] * columns, PANEL_INCHES[1] * rows)
    figure = Figure(figsize=size, layout="constrained")
    axes = list(figure.subplots(rows, columns, squeeze=False).flat)
    for unused in axes[count:]:
        unused.set_axis_off()
    return figure, axes[:count]


def message_figure(message: str) -> Figure:
    figure, (axes,) = panel_figure(1, 1)
    axes.set_axis_off()
    axes.text(0.5, 0.5, message, ha="center", va="center", fontsize=14, transform=axes.transAxes)
    return figure


def add_caption(figure: Figure, note: str, failed: pd.DataFrame) -> None:
    """The figure's note and its excluded (non-ok) rows, below the panels."""
    width = int(figure.get_figwidth() * 15)  # characters per line at 8 pt
    lines = textwrap.wrap(note, width) if note else []
    if not failed.empty:
        lines.append(f"Excluded from the lines ({len(failed)} row(s) not ok):")
        shown = [describe_failure(row) for _, row in failed.head(FAILURES_SHOWN).iterrows()]
        lines += [textwrap.shorten(f"• {line}", width) for line in shown]
        if len(failed) > FAILURES_SHOWN:
            lines.append(f"… and {len(failed) - FAILURES_SHOWN} more (`bench report` lists all)")
    # Below the axes: savefig's tight bounding box grows to include it, so nothing is clipped.
    figure.text(0.01, -0.01, "\n".join(lines), ha="left", va="top", fontsize=8)


def timing_figure(rows: pd.DataFrame, draw: PanelDrawer, colors: Colors) -> Figure:
    """One panel per timing setting, drawn by ``draw`` from the pooled per-(method, D) table."""
    table = timing_table(rows, TIMING_GROUP)
    if table.empty:
        figure = message_figure("no successful timing runs")
    else:
        settings = list(table.groupby(TIMING_SETTING))
        figure, axes = panel_figure(len(settings), min(len(settings), 2))
        for ax, (_, part) in zip(axes, settings, strict=True):
            draw(ax, part, colors)
            ax.set_title(timing_setting_label(part.iloc[0]), fontsize=10)
    return figure


def log_dim_axis(ax: Axes, dims: pd.Series) -> None:
    """Log₂ D axis with a tick at each swept D, written as a plain number."""
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(dims.unique()))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("dimension D")
    ax.grid(True, which="major", alpha=0.3)


def log_value_axis(ax: Axes) -> None:
    """Log y axis labelled 60, not 6×10¹."""
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(LogFormatter())
    ax.yaxis.set_minor_formatter(LogFormatter())  # labels minor ticks only on short ranges


def draw_scaling(ax: Axes, table: pd.DataFrame, colors: Colors) -> None:
    for method, line in table.groupby("method"):
        milliseconds, half_iqr = line["median_s"] * 1e3, line["iqr_s"] * 1e3 / 2
        fit = fit_exponent(line["dim"], line["median_s"])
        ax.plot(line["dim"], milliseconds, "o-", color=colors[method], label=f"{method}: k = {fit}")
        # A log axis cannot show ≤ 0: a lower edge below median/10 is drawn at median/10.
        low = np.maximum(milliseconds - half_iqr, milliseconds / 10)
        ax.fill_between(line["dim"], low, milliseconds + half_iqr, color=colors[method], alpha=0.2)
    draw_reference_slopes(ax, table)
    log_dim_axis(ax, table["dim"])
    log_value_axis(ax)
    ax.set_ylabel("median time per training step (ms)")
    ax.legend(fontsize=8)


def draw_reference_slopes(ax: Axes, table: pd.DataFrame) -> None:
    """D² and D³ through the geometric mean of the times at the smallest D."""
    dims = np.array(sorted(table["dim"].unique()), float)
    start = table[table["dim"] == dims[0]]["median_s"] * 1e3
    anchor = float(np.exp(np.log(start).mean()))
    for power, style, label in [(2, "--", "∝ D²"), (3, (0, (6, 2, 1, 2)), "∝ D³")]:
        ax.plot(dims, anchor * (dims / dims[0]) ** power, ls=style, color="grey", label=label)


def draw_ratio(ax: Axes, table: pd.DataFrame, colors: Colors) -> None:
    log_dim_axis(ax, table["dim"])
    ax.set_ylabel("step time ÷ floor's step time at the same D (×)")
    if table["ratio_to_floor"].isna().all():
        message = "no floor run in this setting:\nadd floor to bench run --method"
        ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes)
        return
    for method, line in table[table["method"] != "floor"].groupby("method"):
        ax.plot(line["dim"], line["ratio_to_floor"], "o-", color=colors[method], label=method)
    ax.axhline(1.0, color="black", lw=1, label="floor = 1")
    if "relgrad" in set(table["method"]) and table["layers"].iloc[0].isdigit():
        layers = int(table["layers"].iloc[0])
        ideal = (4 * layers - 1) / (3 * layers - 1)
        label = f"relgrad's B·D² product count (4L−1)/(3L−1) = {ideal:.2f}"
        ax.axhline(ideal, color=colors["relgrad"], ls=":", label=label)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)


def draw_memory(ax: Axes, table: pd.DataFrame, colors: Colors) -> None:
    log_dim_axis(ax, table["dim"])
    ax.set_ylabel("peak memory of a training step (MiB)")
    measured = table[table["peak_mem_bytes"].notna()]
    if measured.empty:
        ax.text(0.5, 0.5, "no memory measured", ha="center", va="center", transform=ax.transAxes)
        return
    for method, line in measured.groupby("method"):
        mebibytes = line["peak_mem_bytes"] / MIB
        ax.plot(line["dim"], mebibytes, "o-", color=colors[method], label=method)
    log_value_axis(ax)
    ax.legend(fontsize=8)


def memory_caption(rows: pd.DataFrame) -> str:
    return f"Peak memory per step (largest over runs), measured as {memory_sources(rows)}."


def memory_sources(rows: pd.DataFrame) -> str:
    """What the ok rows' peak memory means, per ``mem_source`` found among them."""
    sources = sorted(rows.loc[rows["status"] == "ok", "mem_source"].unique())
    return "; ".join(
        f"{s or 'unknown'}: {MEMORY_SOURCES.get(s, 'unknown source')}" for s in sources
    )


def likelihood_figure(rows: pd.DataFrame, colors: Colors) -> Figure:
    """Rows: one per (data set, D). Columns: against wall-clock and against step."""
    ok = rows[rows["status"] == "ok"]
    if ok.empty:
        return message_figure("no successful training runs")
    panels = list(ok.groupby(["dataset", "dim"]))
    figure, axes = panel_figure(2 * len(panels), 2)
    one_setting = len(ok[TRAINING_SETTING].drop_duplicates()) == 1
    for index, ((dataset, dim), part) in enumerate(panels):
        clock_ax, step_ax = axes[2 * index], axes[2 * index + 1]
        draw_likelihood_panel(clock_ax, step_ax, part, colors, one_setting)
        clock_ax.set_title(f"{dataset}, D={int(dim)}: against training time", fontsize=10)
        step_ax.set_title(f"{dataset}, D={int(dim)}: against step", fontsize=10)
    if one_setting:
        figure.suptitle(training_setting_label(ok.iloc[0]), fontsize=10)
    return figure


def draw_likelihood_panel(
    clock_ax: Axes, step_ax: Axes, part: pd.DataFrame, colors: Colors, one_setting: bool
) -> None:
    use_gap = bool(part["gap_nats"].notna().all())
    column = "gap_nats" if use_gap else "test_nll"
    settings = part[TRAINING_SETTING].drop_duplicates().apply(training_setting_label, axis=1)
    styles = dict(zip(settings, ["-", "--", ":", "-."] * len(settings), strict=False))
    labelled: set[str] = set()
    for _, run in part.groupby(TRAINING_RUN):
        run = run.sort_values("step")
        setting = training_setting_label(run.iloc[0])
        label = run.iloc[0]["method"] if one_setting else f"{run.iloc[0]['method']} · {setting}"
        style = {"color": colors[run.iloc[0]["method"]], "ls": styles[setting], "marker": "."}
        shown = None if label in labelled else label
        labelled.add(label)
        clock_ax.plot(run["wall_s"], run[column], label=shown, **style)
        step_ax.plot(run["step"], run[column], label=shown, **style)
    ylabel = "test NLL − true entropy (nats/sample)" if use_gap else "test NLL (nats/sample)"
    # A positive gap spans decades: on a log axis the early steps do not flatten the rest.
    log_gap = use_gap and bool((part["gap_nats"] > 0).all())
    for ax, xlabel in [(clock_ax, "training wall-clock (s)"), (step_ax, "training step")]:
        if log_gap:
            log_value_axis(ax)
        elif use_gap:
            ax.axhline(0.0, color="black", lw=1, label="true density" if ax is clock_ax else None)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
    clock_ax.legend(fontsize=8)
