"""Summaries of ``timing.csv`` rows: per-step medians, ratios to ``floor`` and fitted exponents.

Used by ``bench run`` for its closing table and by ``bench report``. Only rows with status ok
enter; several rows of one (device, dtype, method, dim) are pooled by their median.
"""

import pandas as pd

from bench.scaling import Exponent, fit_exponent, local_exponent

GROUP = ["device", "dtype", "method"]


def timing_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (device, dtype, method, dim): median_s, iqr_s, ratio_to_floor, params, peak."""
    ok = rows[rows["status"] == "ok"]
    table = (
        ok.groupby([*GROUP, "dim"], as_index=False)
        .agg(
            median_s=("median_s", "median"),
            iqr_s=("iqr_s", "median"),
            params=("params", "max"),
            peak_mem_bytes=("peak_mem_bytes", "max"),
            runs=("median_s", "size"),
        )
        .sort_values([*GROUP, "dim"])
    )
    floor = table[table["method"] == "floor"][["device", "dtype", "dim", "median_s"]]
    floor = floor.rename(columns={"median_s": "floor_s"})
    table = table.merge(floor, on=["device", "dtype", "dim"], how="left")
    table["ratio_to_floor"] = table["median_s"] / table["floor_s"]
    return table.drop(columns="floor_s").reset_index(drop=True)


def exponents(table: pd.DataFrame) -> dict[tuple[str, str, str], tuple[Exponent, float]]:
    """Per (device, dtype, method): the fitted exponent over all dims and the local one."""
    return {
        key: (
            fit_exponent(group["dim"], group["median_s"]),
            local_exponent(list(group["dim"]), list(group["median_s"])),
        )
        for key, group in table.groupby(GROUP)
    }
