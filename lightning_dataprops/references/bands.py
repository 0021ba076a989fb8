"""The shipped natural-image values of the sharpness statistics, and the band at any sample size.

The values (``reference_values.json``, package data beside this module) were measured by
``scripts/measure_reference_values.py`` under the reference protocols
(:func:`~lightning_dataprops.references.to_reference_protocol`) on every class pair and the
10-class sets of MNIST, Fashion-MNIST and CIFAR-10 (see ``docs/reference_values.md``). The file
also holds the rule the study chose (statistic and tolerance).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

__all__ = ["ReferenceBand", "reference_band", "reference_rule", "reference_values"]

_JSON_NAME = "reference_values.json"


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
        >>> sorted({row["protocol"] for row in data["references"]})
        ['gray28', 'rgb32']
    """
    return json.loads(json.dumps(_load_reference_values()))


def reference_rule() -> dict[str, Any]:
    """The rule chosen by the study: ``statistic``, ``tolerance``, ``conflict_rtol``, ...

    Example:
        >>> rule = reference_rule()
        >>> rule["statistic"], rule["tolerance"] > 1
        ('K_F_q50', True)
    """
    rule: dict[str, Any] = dict(_load_reference_values()["rule"])
    return rule


@dataclass(frozen=True)
class ReferenceBand:
    """Natural-image values of one statistic at sample size ``n`` under one protocol.

    Attributes:
        statistic: the statistic (``"K_F"``, ``"K_F_q50"``, ...), in 1 / protocol distance.
        protocol: ``"gray28"`` or ``"rgb32"``.
        n: the sample size asked for.
        measured_n: the measured sample size used: the largest not above ``n`` (the statistics
            grow with ``N``, so this errs towards a lower band), or the smallest one.
        n_classes: the class count of the reference used (2 or 10: the measured one nearest to
            ``requested_n_classes`` on a log scale).
        requested_n_classes: the class count asked for.
        low, median, high: 10th percentile, median, 90th percentile over natural draws.
        minimum, maximum: smallest and largest natural value.
        count: natural draws (task x seed) behind the band.
        datasets: the natural datasets measured.
    """

    statistic: str
    protocol: str
    n: int
    measured_n: int
    n_classes: int
    requested_n_classes: int
    low: float
    median: float
    high: float
    minimum: float
    maximum: float
    count: int
    datasets: tuple[str, ...]

    def describe(self) -> str:
        """``"natural images (MNIST, ...; gray28, N=1000, 2 classes): 0.11-0.26"`` plus caveats.

        Example:
            >>> reference_band(1000, 2).describe()[:16]
            'natural images ('
        """
        text = (
            f"natural images ({', '.join(self.datasets)}; {self.protocol}, N={self.measured_n}, "
            f"{self.n_classes} classes, {self.count} draws): {self.minimum:.3g}-{self.maximum:.3g}"
        )
        notes = []
        if self.n_classes != self.requested_n_classes:
            notes.append(f"nearest reference for {self.requested_n_classes} classes")
        if self.measured_n != self.n:
            notes.append(f"nearest measured N to {self.n}")
        return text + (f" ({'; '.join(notes)})" if notes else "")


def _check_int(value: int, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}.")
    return value


def reference_band(
    n: int, n_classes: int, protocol: str = "gray28", statistic: str | None = None
) -> ReferenceBand:
    """The natural-image band of ``statistic`` (default: the rule's) at sample size ``n``.

    Args:
        n: the sample size (>= 2).
        n_classes: classes in the sample (>= 2); 2-4 use the binary references, 5 or more the
            10-class ones.
        protocol: ``"gray28"`` or ``"rgb32"``.
        statistic: a statistic of the study (``"K_F"``, ``"K_F_q05"`` ... ``"K_F_q50"``,
            ``"scale_free_K_F"``, ``"scale_free_q50"``); default the rule's.

    Raises:
        ValueError: bad ``n`` / ``n_classes``, an unknown protocol or statistic.

    Example:
        >>> band = reference_band(700, n_classes=3)
        >>> band.n_classes, band.measured_n, band.statistic
        (2, 500, 'K_F_q50')
        >>> band.minimum <= band.median <= band.maximum
        True
    """
    _check_int(n, "n", 2)
    _check_int(n_classes, "n_classes", 2)
    data = _load_reference_values()
    statistic = statistic or str(data["rule"]["statistic"])
    rows = [r for r in data["references"] if r["protocol"] == protocol]
    if not rows:
        protocols = sorted({r["protocol"] for r in data["references"]})
        raise ValueError(f"protocol must be one of {protocols}, got {protocol!r}.")
    if statistic not in rows[0]:
        known = sorted(k for k, v in rows[0].items() if isinstance(v, dict))
        raise ValueError(f"statistic must be one of {known}, got {statistic!r}.")
    measured = sorted({int(r["n_classes"]) for r in rows})
    ref_classes = min(measured, key=lambda c: (abs(math.log(n_classes) - math.log(c)), c))
    rows = sorted((r for r in rows if int(r["n_classes"]) == ref_classes), key=lambda r: r["n"])
    below = [r for r in rows if int(r["n"]) <= n]
    row = below[-1] if below else rows[0]
    values = row[statistic]
    return ReferenceBand(
        statistic=statistic,
        protocol=protocol,
        n=n,
        measured_n=int(row["n"]),
        n_classes=ref_classes,
        requested_n_classes=n_classes,
        low=float(values["q10"]),
        median=float(values["median"]),
        high=float(values["q90"]),
        minimum=float(values["min"]),
        maximum=float(values["max"]),
        count=int(row["count"]),
        datasets=tuple(row["datasets"]),
    )
