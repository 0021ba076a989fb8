"""Small statistics over the runs (scipy) and number formatting for the report."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

Floats = Sequence[float] | np.ndarray


@dataclass(frozen=True)
class LineFit:
    """Least-squares line ``y = intercept + slope * x`` with the slope's standard error."""

    slope: float
    intercept: float
    stderr: float
    dof: int

    def ci95(self) -> tuple[float, float]:
        """The slope's 95% t-interval (NaN without residual degrees of freedom)."""
        if self.dof < 1:
            return math.nan, math.nan
        half = float(stats.t.ppf(0.975, self.dof)) * self.stderr
        return self.slope - half, self.slope + half


def line_fit(x: Floats, y: Floats) -> LineFit:
    """Ordinary least squares; NaN where fewer than 2 distinct x (slope) or 3 points (error)."""
    xs, ys = np.asarray(x, float), np.asarray(y, float)
    if len(xs) < 2 or np.ptp(xs) == 0:
        return LineFit(math.nan, math.nan, math.nan, 0)
    fit = stats.linregress(xs, ys)
    if len(xs) < 3:
        return LineFit(float(fit.slope), float(fit.intercept), math.nan, 0)
    return LineFit(float(fit.slope), float(fit.intercept), float(fit.stderr), len(xs) - 2)


def _varied(xs: np.ndarray, ys: np.ndarray) -> bool:
    return len(xs) >= 3 and bool(xs.std() > 0) and bool(ys.std() > 0)


def pearson(x: Floats, y: Floats) -> float:
    """Pearson r; NaN for fewer than 3 points or a constant variable."""
    xs, ys = np.asarray(x, float), np.asarray(y, float)
    return float(stats.pearsonr(xs, ys).statistic) if _varied(xs, ys) else math.nan


def spearman(x: Floats, y: Floats) -> float:
    """Spearman rho (average ranks for ties); NaN like :func:`pearson`."""
    xs, ys = np.asarray(x, float), np.asarray(y, float)
    return float(stats.spearmanr(xs, ys).statistic) if _varied(xs, ys) else math.nan


def pearson_ci(x: Floats, y: Floats) -> tuple[float, float]:
    """Fisher-z 95% interval of Pearson r; NaN for fewer than 4 points or |r| = 1."""
    xs, ys = np.asarray(x, float), np.asarray(y, float)
    if len(xs) < 4 or not _varied(xs, ys):
        return math.nan, math.nan
    result = stats.pearsonr(xs, ys)
    if abs(float(result.statistic)) >= 1:
        return math.nan, math.nan
    interval = result.confidence_interval(0.95)
    return float(interval.low), float(interval.high)


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (NaN where undefined)."""
    array = np.asarray(values, float)
    if len(array) == 0:
        return math.nan, math.nan
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else math.nan


def fmt(value: float | None, digits: int = 3) -> str:
    """``digits`` significant digits, ``n/a`` for a missing or non-finite value."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:.3e}"


def fmt_pm(values: Sequence[float], digits: int = 3) -> str:
    """``mean ± sd`` of ``values``."""
    mean, sd = mean_sd(values)
    if not math.isfinite(sd):
        return fmt(mean, digits)
    if sd <= 1e-9 * abs(mean):  # identical values up to float rounding
        sd = 0.0
    return f"{fmt(mean, digits)} ± {fmt(sd, 2)}"
