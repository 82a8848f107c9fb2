"""``bench run --resume``: which runs of a sweep the tables in ``--out`` still lack.

A run is identified by the setting columns its rows carry (method, D, seed, data set, layers,
batch, device, ...), compared as the text the table holds. It is settled, and skipped, once its
table has a complete ok row for it (a timing row; a training run's last row), or once it has
failed twice: a failed run is retried once, then its failure stands.
"""

import csv
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from bench.runs import Run

# Columns that differ between two computations of the same run.
PROVENANCE = {"run_id", "started_at", "git_rev", "torch_version", "device_name", "host", "params"}
ATTEMPTS = 2  # the first try and one retry

Identity = tuple[tuple[str, str], ...]


def identity(run: Run) -> Identity:
    """The run's setting columns and their values as text."""
    head = run.head(git_rev="")
    cells = {column: "" if value is None else str(value) for column, value in head.items()}
    return tuple(sorted((c, v) for c, v in cells.items() if c not in PROVENANCE))


def _read(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _rows_by_identity(rows: list[dict[str, str]], columns: tuple[str, ...]) -> dict[Identity, list]:
    by_identity: dict[Identity, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        by_identity[tuple((c, row.get(c) or "") for c in columns)].append(row)
    return by_identity


def is_settled(run: Run, rows: list[dict[str, str]]) -> bool:
    """Whether ``rows`` (all of this run's rows in its table) finish it."""
    if any(run.is_complete(row) for row in rows):
        return True
    failed_attempts = {row["run_id"] for row in rows if row.get("status") != "ok"}
    return len(failed_attempts) >= ATTEMPTS


def pending_runs(runs: Sequence[Run], out: Path) -> list[Run]:
    """The runs that are not settled by the tables in ``out``, in their order."""
    tables = {table: _read(out / table) for table in {run.table for run in runs}}
    indexes: dict[tuple[str, tuple[str, ...]], dict[Identity, list]] = {}
    pending = []
    for run in runs:
        key = identity(run)
        columns = tuple(column for column, _ in key)
        if (run.table, columns) not in indexes:
            indexes[run.table, columns] = _rows_by_identity(tables[run.table], columns)
        if not is_settled(run, indexes[run.table, columns].get(key, [])):
            pending.append(run)
    return pending
