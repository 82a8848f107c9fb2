"""``bench report``: the result tables summarised, as rich tables or as Markdown.

The report is built once as a list of ``Section``s (a title, a header, rows of text) and then
rendered, so the terminal and the Markdown file always say the same thing.
"""

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from bench.plotting import MIB, memory_sources
from bench.summary import exponents, timing_table
from bench.tables import (
    TIMING_GROUP,
    TIMING_SETTING,
    TRAINING_RUN,
    TRAINING_SETTING,
    BadResults,
    Tables,
    timing_setting_label,
    training_setting_label,
)

TIME_HEADERS = ("method", "D", "median ms ± IQR", "× floor", "peak MiB", "params", "runs")
FIT_HEADERS = ("method", "exponent k [95% CI]", "local k (two largest D)", "D swept")
LIKELIHOOD_HEADERS = ("D", "method", "seeds", "steps", "test NLL (nats)", "bits/dim")
LIKELIHOOD_HEADERS += ("gap (nats)", "wall s")
FAILURE_HEADERS = ("table", "method", "D", "device", "seed", "status", "message")


@dataclass(frozen=True)
class Section:
    title: str
    headers: tuple[str, ...]
    rows: list[tuple[str, ...]] = field(default_factory=list)
    note: str = ""


def build_report(tables: Tables) -> list[Section]:
    sections = []
    if tables.timing is not None:
        sections += timing_sections(tables.timing)
    if tables.training is not None:
        sections += likelihood_sections(tables.training)
    failed = tables.failed()
    if not failed.empty:
        sections.append(failure_section(failed))
    return sections


def timing_sections(rows: pd.DataFrame) -> list[Section]:
    """Per setting: the method × D time table and the fitted exponents."""
    table = timing_table(rows, TIMING_GROUP)
    if table.empty:
        return [Section("Per-step time", (), note="no successful timing runs")]
    sections = []
    for _, part in table.groupby(TIMING_SETTING):
        label = timing_setting_label(part.iloc[0])
        time_rows = [time_row(row) for _, row in part.iterrows()]
        note = memory_note(rows, part.iloc[0])
        sections.append(Section(f"Per-step time — {label}", TIME_HEADERS, time_rows, note))
        sections.append(Section(f"Scaling exponent — {label}", FIT_HEADERS, fit_rows(part)))
    return sections


def time_row(row: pd.Series) -> tuple[str, ...]:
    return (
        row["method"],
        str(int(row["dim"])),
        f"{row['median_s'] * 1e3:.4g} ± {row['iqr_s'] * 1e3:.2g}",
        number(row["ratio_to_floor"], ".2f"),
        number(row["peak_mem_bytes"] / MIB, ".1f"),
        number(row["params"], ",.0f"),
        str(int(row["runs"])),
    )


def fit_rows(part: pd.DataFrame) -> list[tuple[str, ...]]:
    rows = []
    for key, (fit, local) in exponents(part, TIMING_GROUP).items():
        dims = part[part["method"] == key[-1]]["dim"]
        rows.append((key[-1], str(fit), number(local, ".2f"), ",".join(map(str, map(int, dims)))))
    return rows


def memory_note(rows: pd.DataFrame, setting: pd.Series) -> str:
    same = (rows[TIMING_SETTING] == setting[TIMING_SETTING]).all(axis=1)
    return f"peak memory: {memory_sources(rows[same])}"


def likelihood_sections(rows: pd.DataFrame) -> list[Section]:
    """Per data set and setting: each (D, method) at its final evaluation, pooled over seeds."""
    finals = finished_runs(rows)
    if finals.empty:
        return [Section("Likelihood", (), note="no training run finished with status ok")]
    sections = []
    for _, part in finals.groupby(["dataset", *TRAINING_SETTING]):
        title = f"Likelihood — {part.iloc[0]['dataset']} — {training_setting_label(part.iloc[0])}"
        summary = [likelihood_row(runs) for _, runs in part.groupby(["dim", "method"])]
        note = "final evaluation of each run; mean ± standard deviation over seeds"
        sections.append(Section(title, LIKELIHOOD_HEADERS, summary, note))
    return sections


def finished_runs(rows: pd.DataFrame) -> pd.DataFrame:
    """The last row of every training run whose last row is ok (failed runs are listed apart)."""
    last = rows.sort_values("step", na_position="last").groupby(TRAINING_RUN).tail(1)
    return last[last["status"] == "ok"]


def likelihood_row(runs: pd.DataFrame) -> tuple[str, ...]:
    first = runs.iloc[0]
    return (
        str(int(first["dim"])),
        first["method"],
        str(len(runs)),
        number(runs["step"].max(), ".0f"),
        spread(runs["test_nll"]),
        number(runs["test_bpd"].mean(), ".4g"),
        spread(runs["gap_nats"]),
        number(runs["wall_s"].mean(), ".3g"),
    )


def failure_section(failed: pd.DataFrame) -> Section:
    rows = [
        (
            row["table"],
            row["method"],
            number(row["dim"], ".0f"),
            row["device"],
            row["seed"],
            row["status"] or "no status",
            row["message"][:120],
        )
        for _, row in failed.iterrows()
    ]
    return Section(f"Rows not ok ({len(rows)}), left out of every summary", FAILURE_HEADERS, rows)


def number(value: float, spec: str) -> str:
    return "" if pd.isna(value) else format(value, spec)


def spread(values: pd.Series) -> str:
    """'mean ± sd' over seeds, or the one value; empty where nothing is known."""
    known = values.dropna()
    if known.empty:
        return ""
    if len(known) == 1:
        return f"{known.iloc[0]:.4g}"
    return f"{known.mean():.4g} ± {known.std():.2g}"


def print_report(sections: list[Section], console: Console) -> None:
    for section in sections:
        if section.headers:
            table = Table(*section.headers, title=section.title, title_justify="left")
            for row in section.rows:
                table.add_row(*row)
            console.print(table)
        else:
            console.print(f"[bold]{section.title}[/]")
        if section.note:
            console.print(f"[dim]{section.note}[/]", highlight=False)
        console.print()


def markdown(sections: list[Section], folder: Path) -> str:
    lines = [f"# jacobench report: `{folder}`", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        if section.headers:
            lines.append(markdown_row(section.headers))
            lines.append(markdown_row(tuple("---" for _ in section.headers)))
            lines += [markdown_row(row) for row in section.rows]
            lines.append("")
        if section.note:
            lines += [section.note, ""]
    return "\n".join(lines)


def markdown_row(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def write_markdown(path: Path, sections: list[Section], folder: Path) -> None:
    try:
        path.write_text(markdown(sections, folder))
    except OSError as error:
        raise BadResults(f"--markdown {path}: {error.strerror or error}") from None
