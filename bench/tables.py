"""Loading the result tables for ``bench plot`` and ``bench report``.

Both commands read only ``timing.csv`` and ``training.csv`` (schema in ``bench.results``), so they
work on tables from any machine or several merged. Anything they cannot use becomes one
``BadResults`` line for the CLI, never a traceback.
"""

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

# What the figures may pool. A CPU's name is not recorded, so CPU rows are told apart by host
# (``machine``); a GPU's model is its ``device_name``, so GPU rows of one model on several hosts
# of a cluster still make one line. Setting columns stay strings so that an empty cell is a
# value of its own, not a NaN that groupby drops.
TIMING_SETTING = ["device", "machine", "threads", "dtype", "layers", "batch"]
TIMING_GROUP = [*TIMING_SETTING, "method"]
TRAINING_SETTING = ["device", "layers", "batch", "lr"]
TRAINING_RUN = [*TRAINING_SETTING, "method", "dataset", "dim", "seed", "run_id"]
OPTIONAL = ["host", "base", "components"]  # added to the schema later; older tables lack them


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: list[str]  # the ones read here: all in DESIGN's contract, so later additions pass
    numbers: list[str]
    needed: list[str]  # an ok row without a number here cannot be drawn or summarised


TIMING = TableSpec(
    "timing.csv",
    [c for c in TIMING_GROUP if c != "machine"]
    + "device_name seed status message mem_source".split(),
    ["dim", "params", "median_s", "iqr_s", "measurements", "peak_mem_bytes"],
    ["dim", "median_s"],
)
TRAINING = TableSpec(
    "training.csv",
    [*TRAINING_RUN, "status", "message"],
    "dim params step wall_s train_nll test_nll test_bpd true_nll gap_nats".split(),
    ["dim", "step", "test_nll"],
)


class BadResults(ValueError):
    """The results folder or a table in it cannot be used; the message is one line."""


@dataclass(frozen=True)
class Tables:
    folder: Path
    timing: pd.DataFrame | None  # None where the file is absent or has no rows
    training: pd.DataFrame | None

    def failed(self) -> pd.DataFrame:
        """Every row whose status is not ok, from both tables, with a ``table`` column."""
        parts = [
            rows[rows["status"] != "ok"].assign(table=name)
            for name, rows in [("timing", self.timing), ("training", self.training)]
            if rows is not None
        ]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def load_tables(folder: Path) -> Tables:
    """Read both tables of ``folder``; at least one must exist and hold a successful row."""
    if not folder.exists():
        raise BadResults(f"results folder {folder} does not exist; make it with `bench run`")
    if not folder.is_dir():
        raise BadResults(f"--results {folder} is a file, not a folder")
    timing = _read(folder, TIMING)
    if timing is not None:
        on_cpu = ~timing["device"].str.startswith("cuda")
        timing["machine"] = timing["device_name"].where(~on_cpu, timing["host"])
    training = _read(folder, TRAINING)
    tables = Tables(folder, timing, training)
    present = [rows for rows in (timing, training) if rows is not None]
    if not present:
        raise BadResults(f"no rows in {folder}: neither timing.csv nor training.csv has any")
    if not any((rows["status"] == "ok").any() for rows in present):
        counts = Counter(tables.failed()["status"])
        statuses = ", ".join(f"{n} {status or 'no status'}" for status, n in counts.items())
        raise BadResults(f"no successful runs in {folder}: every row failed ({statuses})")
    return tables


def _read(folder: Path, spec: TableSpec) -> pd.DataFrame | None:
    path = folder / spec.name
    if not path.exists() or path.stat().st_size == 0:
        return None
    try:
        rows = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise BadResults(f"{path} is not a readable CSV table: {reason}") from None
    missing = [column for column in spec.columns + spec.numbers if column not in rows.columns]
    if missing:
        raise BadResults(f"{path} lacks the column(s) {', '.join(missing)}")
    if rows.empty:
        return None
    for column in spec.numbers:
        rows[column] = pd.to_numeric(rows[column], errors="coerce")
    for column in OPTIONAL:
        rows[column] = rows.get(column, "")
    _check_needed(path, rows, spec.needed)
    rows["method"] = method_variant(rows)
    return rows


def method_variant(rows: pd.DataFrame) -> pd.Series:
    """'relgrad', or 'relgrad · laplace · K=4' for a run with another base or boosting, so that
    variants of one method never share a line or a summary row."""
    label = rows["method"]
    other_base = ~rows["base"].isin(["", "normal"])
    label = label.where(~other_base, label + " · " + rows["base"])
    boosted = ~rows["components"].isin(["", "1"])
    return label.where(~boosted, label + " · K=" + rows["components"])


def _check_needed(path: Path, rows: pd.DataFrame, needed: list[str]) -> None:
    ok = rows[rows["status"] == "ok"]
    for column in needed:
        blank = ok[ok[column].isna()]
        if not blank.empty:
            line = blank.index[0] + 2  # header is line 1
            raise BadResults(f"{path} line {line}: status ok but no number in {column}")


def timing_setting_label(setting: pd.Series) -> str:
    """'cpu · 2 threads · float32 · L=2 · B=128' (or the GPU's name instead of threads)."""
    if setting["device"].startswith("cuda"):
        where = f"{setting['device']} ({setting['machine']})"
    else:
        host = f" on {setting['machine']}" if setting["machine"] else ""
        threads = f"{setting['threads']} thread" + ("" if setting["threads"] == "1" else "s")
        where = f"{setting['device']}{host} · {threads}"
    return f"{where} · {setting['dtype']} · L={setting['layers']} · B={setting['batch']}"


def training_setting_label(setting: pd.Series) -> str:
    return (
        f"{setting['device']} · L={setting['layers']} · B={setting['batch']} · lr={setting['lr']}"
    )


def describe_failure(row: pd.Series, width: int = 90) -> str:
    """One line per non-ok row: where it was, what failed and the start of its message."""
    where = f"{row['table']}: {row['method']} D={_integer(row['dim'])} on {row['device']}"
    if row["table"] == "training":
        where += f" ({row['dataset']}, step {_integer(row['step'])})"
    message = row["message"] if len(row["message"]) <= width else row["message"][:width] + "…"
    return f"{where}: {row['status'] or 'no status'}" + (f" — {message}" if message else "")


def _integer(value: float) -> str:
    return "?" if pd.isna(value) else str(int(value))
