"""Summaries of ``timing.csv`` rows: per-step medians, ratios to ``floor`` and fitted exponents.

Used by ``bench run`` for its closing table and by ``bench report``. Only rows with status ok
enter; several rows of one (group, dim) are pooled by their median. ``group`` names the columns
that must match for rows to share a line; it always ends with ``method``.
"""

from collections.abc import Sequence

import pandas as pd

from bench.scaling import Exponent, fit_exponent, local_exponent

GROUP = ["device", "dtype", "method"]


def timing_table(rows: pd.DataFrame, group: Sequence[str] = GROUP) -> pd.DataFrame:
    """One row per (group, dim): median_s, iqr_s, ratio_to_floor, params, peak, runs."""
    group = list(group)
    ok = rows[rows["status"] == "ok"]
    table = (
        ok.groupby([*group, "dim"], as_index=False)
        .agg(
            median_s=("median_s", "median"),
            iqr_s=("iqr_s", "median"),
            params=("params", "max"),
            peak_mem_bytes=("peak_mem_bytes", "max"),
            runs=("median_s", "size"),
        )
        .sort_values([*group, "dim"])
    )
    # floor is compared within the same setting (every group column but the method) and D.
    same = [column for column in group if column != "method"] + ["dim"]
    floor = table[table["method"] == "floor"][[*same, "median_s"]]
    table = table.merge(floor.rename(columns={"median_s": "floor_s"}), on=same, how="left")
    table["ratio_to_floor"] = table["median_s"] / table["floor_s"]
    return table.drop(columns="floor_s").reset_index(drop=True)


def exponents(
    table: pd.DataFrame, group: Sequence[str] = GROUP
) -> dict[tuple[str, ...], tuple[Exponent, float]]:
    """Per group: the fitted exponent over all dims and the local one (two largest dims)."""
    return {
        key: (
            fit_exponent(rows["dim"], rows["median_s"]),
            local_exponent(list(rows["dim"]), list(rows["median_s"])),
        )
        for key, rows in table.groupby(list(group))
    }
