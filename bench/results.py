"""Append-only result tables: one flat CSV row per measurement, written as each run finishes.

Each row is one ``write`` of a whole line to a file opened with O_APPEND under an exclusive
``flock``, so a killed sweep loses at most the run in flight and two sweeps appending at once
never interleave half-rows.
"""

import csv
import fcntl
import io
import os
import subprocess
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

TIMING_COLUMNS = (
    "run_id started_at git_rev torch_version device device_name threads dtype method dim layers "
    "batch params seed status message median_s iqr_s measurements peak_mem_bytes mem_source"
    " host"  # the machine that ran it (a Ray worker's, or this one's)
    " base components"  # the base distribution; the number of boosted components (1: none)
).split()

TRAINING_COLUMNS = (
    "run_id started_at git_rev torch_version device method dataset dim layers batch params seed "
    "lr status message step wall_s train_nll test_nll test_bpd true_nll gap_nats"
    " host"
    " base components"
).split()

STATUSES = ("ok", "diverged", "oom", "error")


class ResultsError(ValueError):
    pass


def _csv_line(values: Sequence[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(["" if v is None else v for v in values])
    return buffer.getvalue()


def append_row(path: Path, columns: Sequence[str], row: Mapping[str, Any]) -> None:
    """Append ``row`` to the CSV at ``path``, writing the header if the file is new."""
    unknown = set(row) - set(columns)
    if unknown:
        raise ResultsError(f"columns not in the schema of {path.name}: {sorted(unknown)}")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_size == 0:
            text = _csv_line(columns)
        else:
            _check_header(path, columns)
            text = ""
        text += _csv_line([row.get(c) for c in columns])
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _check_header(path: Path, columns: Sequence[str]) -> None:
    with path.open(newline="") as f:
        header = next(csv.reader(f), [])
    if header != list(columns):
        raise ResultsError(
            f"{path} has other columns than this version writes; use a new --out folder"
        )


def prepare_out_dir(out: Path) -> Path:
    """Create the results folder if needed; a path that exists as a file is an error."""
    if out.exists() and not out.is_dir():
        raise ResultsError(f"--out {out} is a file, not a folder")
    out.mkdir(parents=True, exist_ok=True)
    return out


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def git_revision() -> str:
    """The short commit of the checkout this package runs from, or 'unknown'."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return rev or "unknown"
