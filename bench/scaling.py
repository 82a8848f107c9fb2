r"""Scaling exponents: fit log t = k log D + c.

The interval on k is the ordinary least-squares t-interval over the swept dims (NaN with fewer
than three dims, where it has no degrees of freedom).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Exponent:
    value: float
    low: float
    high: float

    def __str__(self) -> str:
        if math.isnan(self.value):
            return "–"
        if math.isnan(self.low):
            return f"{self.value:.2f}"
        return f"{self.value:.2f} [{self.low:.2f}, {self.high:.2f}]"


def fit_exponent(
    dims: Sequence[float], seconds: Sequence[float], confidence: float = 0.95
) -> Exponent:
    """Least-squares slope of log(seconds) on log(dims) with its t-interval."""
    x, y = np.log(np.asarray(dims, float)), np.log(np.asarray(seconds, float))
    n = len(x)
    if n < 2 or np.ptp(x) == 0:
        return Exponent(math.nan, math.nan, math.nan)
    fit = stats.linregress(x, y)
    if n < 3:
        return Exponent(float(fit.slope), math.nan, math.nan)
    half = stats.t.ppf(0.5 + confidence / 2, n - 2) * fit.stderr
    return Exponent(float(fit.slope), float(fit.slope - half), float(fit.slope + half))


def local_exponent(dims: Sequence[float], seconds: Sequence[float]) -> float:
    """The slope between the two largest dims, log(t₂/t₁) / log(D₂/D₁)."""
    pairs = sorted(zip(dims, seconds, strict=True))
    if len(pairs) < 2:
        return math.nan
    (d1, t1), (d2, t2) = pairs[-2:]
    return math.log(t2 / t1) / math.log(d2 / d1)
