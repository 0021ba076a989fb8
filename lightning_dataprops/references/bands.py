"""The shipped natural-image values of ``K_F`` and the band they give at any sample size.

The values (``reference_values.json``, package data beside this module) were measured by
``scripts/measure_reference_values.py`` under the reference protocol
(:func:`~lightning_dataprops.references.to_reference_protocol`) on all class pairs of MNIST and
Fashion-MNIST and their 10-class sets (see ``docs/reference_values.md``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

__all__ = ["HIGH_QUANTILE", "LOW_QUANTILE", "ReferenceBand", "reference_band", "reference_values"]

LOW_QUANTILE = "q10"
"""Quantile of the natural-image values used as the band's lower end."""

HIGH_QUANTILE = "q90"
"""Quantile of the natural-image values used as the band's upper end."""

_JSON_NAME = "reference_values.json"
_QUANTILE_KEYS: tuple[str, ...] = ("min", "q10", "median", "q90", "max")


@lru_cache(maxsize=1)
def _load_reference_values() -> dict[str, Any]:
    package = resources.files("lightning_dataprops.references")
    text = package.joinpath(_JSON_NAME).read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def reference_values() -> dict[str, Any]:
    """The measured reference values (``reference_values.json``, package data), as a new dict.

    Example:
        >>> data = reference_values()
        >>> sorted({row["n_classes"] for row in data["references"]})
        [2, 10]
    """
    return json.loads(json.dumps(_load_reference_values()))


def _rows(n_classes: int) -> list[dict[str, Any]]:
    rows = [r for r in _load_reference_values()["references"] if r["n_classes"] == n_classes]
    return sorted(rows, key=lambda r: int(r["n"]))


def _reference_classes(n_classes: int) -> int:
    """The measured class count nearest to ``n_classes`` on a log scale."""
    measured = sorted({int(r["n_classes"]) for r in _load_reference_values()["references"]})
    return min(measured, key=lambda c: (abs(math.log(n_classes) - math.log(c)), c))


@dataclass(frozen=True)
class ReferenceBand:
    """Natural-image ``K_F`` at sample size ``n`` under the reference protocol.

    Attributes:
        n: the sample size asked for.
        n_classes: the class count of the reference used (2 or 10: the measured one nearest to
            ``requested_n_classes`` on a log scale).
        requested_n_classes: the class count asked for.
        low: lower end of the band (10th percentile over natural tasks and seeds).
        median: median over natural tasks and seeds.
        high: upper end of the band (90th percentile).
        minimum: smallest natural value.
        maximum: largest natural value.
        n_tasks: natural tasks (class pairs / datasets) behind the nearest measured ``N``.
        measured_n: the measured sample sizes interpolated between (equal when exact/clamped).
        exact_n: ``n`` is one of the measured sample sizes.
        exact_n_classes: ``requested_n_classes`` is the reference's class count.
        extrapolated: ``n`` lies outside the measured range; the nearest end is used (below it
            the band is too high, above it too low, since ``K_F`` grows with ``N``).
        source: one line saying where the values come from.
    """

    n: int
    n_classes: int
    requested_n_classes: int
    low: float
    median: float
    high: float
    minimum: float
    maximum: float
    n_tasks: int
    measured_n: tuple[int, int]
    exact_n: bool
    exact_n_classes: bool
    extrapolated: bool
    source: str

    def describe(self) -> str:
        """``"natural images at N=1000 (2 classes): 0.18-0.36"`` plus caveats.

        Example:
            >>> reference_band(1000, 2).describe()[:36]
            'natural images at N=1000 (2 classes)'
        """
        text = (
            f"natural images at N={self.n} ({self.n_classes} classes): "
            f"{self.low:.2f}-{self.high:.2f}"
        )
        notes = []
        if not self.exact_n_classes:
            notes.append(
                f"nearest reference for {self.requested_n_classes} classes is {self.n_classes}"
            )
        if self.extrapolated:
            lo, hi = self.measured_n
            notes.append(f"N outside the measured range {lo}-{hi}, nearest end used")
        return text + (f" ({'; '.join(notes)})" if notes else "")


def _check_int(value: int, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}.")
    return value


def reference_band(n: int, n_classes: int) -> ReferenceBand:
    """The natural-image band of ``K_F`` at sample size ``n`` for ``n_classes`` classes.

    Quantiles are interpolated linearly in ``log N`` between the measured sample sizes and clamped
    (``extrapolated=True``) outside them; the class count is the measured one (2 or 10) nearest
    to ``n_classes`` on a log scale (2-4 classes -> 2, 5 or more -> 10).

    Example:
        >>> band = reference_band(700, n_classes=3)
        >>> band.n_classes, band.exact_n_classes, band.exact_n, band.measured_n
        (2, False, False, (500, 1000))
        >>> reference_band(500, 2).high < band.high < reference_band(1000, 2).high
        True
    """
    _check_int(n, "n", 2)
    _check_int(n_classes, "n_classes", 2)
    ref_classes = _reference_classes(n_classes)
    rows = _rows(ref_classes)
    sizes = [int(r["n"]) for r in rows]
    if n <= sizes[0] or n >= sizes[-1]:
        row = rows[0] if n <= sizes[0] else rows[-1]
        values = {k: float(row[k]) for k in _QUANTILE_KEYS}
        bracket = (int(row["n"]), int(row["n"]))
        n_tasks = int(row["count"])
    else:
        upper = next(i for i, s in enumerate(sizes) if s >= n)
        below, above = rows[upper - 1], rows[upper]
        n0, n1 = int(below["n"]), int(above["n"])
        t = (math.log(n) - math.log(n0)) / (math.log(n1) - math.log(n0))
        values = {
            k: float(below[k]) + t * (float(above[k]) - float(below[k])) for k in _QUANTILE_KEYS
        }
        bracket = (n0, n1)
        near = below if t < 0.5 else above
        n_tasks = int(near["count"])
    if n in sizes:
        bracket = (n, n)
    data = _load_reference_values()
    return ReferenceBand(
        n=n,
        n_classes=ref_classes,
        requested_n_classes=n_classes,
        low=values[LOW_QUANTILE],
        median=values["median"],
        high=values[HIGH_QUANTILE],
        minimum=values["min"],
        maximum=values["max"],
        n_tasks=n_tasks,
        measured_n=bracket if sizes[0] <= n <= sizes[-1] else (sizes[0], sizes[-1]),
        exact_n=n in sizes,
        exact_n_classes=ref_classes == n_classes,
        extrapolated=n < sizes[0] or n > sizes[-1],
        source=str(data.get("source_summary", "reference_values.json")),
    )
