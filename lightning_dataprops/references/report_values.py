"""The values a report draws beside a dataset's own: ``d_data`` of known datasets, and the
medical datasets' median sharpness ``K_F(0.5)``.

Measured by ``scripts/measure_report_references.py`` (package data
``report_references.json``): ``d_data`` (MLE, k = 20) of MNIST, Fashion-MNIST, CIFAR-10,
PneumoniaMNIST and BreastMNIST as the command line loads them, at N = 500 to 5000, median over
three seeds; the medical ``K_F(0.5)`` values of the sharp-label study
(``docs/reference_values.md``). Both grow with N, so each is taken at the measured N nearest the
sample's (on a log scale), and says which.

Example:
    >>> rows = d_data_references(1000)
    >>> [row.dataset for row in rows][:3]
    ['MNIST', 'Fashion-MNIST', 'CIFAR-10']
    >>> rows[0].n, 5 < rows[0].d_data < 20
    (1000, True)
    >>> [row.dataset for row in medical_sharpness("gray28", 2, 1000)]
    ['BreastMNIST', 'PneumoniaMNIST']
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

__all__ = ["KnownValue", "d_data_references", "medical_sharpness"]

_ORDER = ("MNIST", "Fashion-MNIST", "CIFAR-10", "PneumoniaMNIST", "BreastMNIST")


@dataclass(frozen=True)
class KnownValue:
    """One dataset's measured value at one sample size.

    Attributes:
        dataset: the dataset's name.
        domain: ``"natural"`` or ``"medical"``.
        n: the sample size it was measured at.
        value: the value (median over seeds).
        low, high: smallest and largest value over seeds (``value`` when unknown).
    """

    dataset: str
    domain: str
    n: int
    value: float
    low: float
    high: float

    @property
    def d_data(self) -> float:
        """:attr:`value` (for ``d_data`` rows)."""
        return self.value


@lru_cache(maxsize=1)
def _load() -> dict[str, Any]:
    text = resources.files("lightning_dataprops.references").joinpath("report_references.json")
    data: dict[str, Any] = json.loads(text.read_text("utf-8"))
    return data


def _nearest(rows: list[dict[str, Any]], n: int) -> dict[str, Any]:
    return min(rows, key=lambda row: (abs(math.log(int(row["n"]) / max(n, 1))), int(row["n"])))


def _by_dataset(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(str(row["dataset"]), []).append(row)
    return dict(sorted(grouped.items(), key=lambda item: _rank(item[0])))


def _rank(name: str) -> tuple[int, str]:
    return (_ORDER.index(name) if name in _ORDER else len(_ORDER), name)


def d_data_references(n: int) -> list[KnownValue]:
    """``d_data`` (MLE, k = 20) of each known dataset at the measured N nearest ``n``.

    Args:
        n: the sample size of the dataset being compared (``d_data`` grows with N).
    """
    out = []
    for name, rows in _by_dataset(_load()["d_data"]).items():
        row = _nearest(rows, n)
        out.append(
            KnownValue(
                name,
                str(row["domain"]),
                int(row["n"]),
                float(row["d_data"]),
                float(row["d_data_min"]),
                float(row["d_data_max"]),
            )
        )
    return out


def medical_sharpness(protocol: str, n_classes: int, n: int) -> list[KnownValue]:
    """The medical datasets' median sharpness ``K_F(0.5)`` under ``protocol`` at the measured N
    nearest ``n`` (none when no medical dataset was measured at that protocol and class count).
    """
    rows = [
        row
        for row in _load()["medical_K_F_q50"]
        if row["protocol"] == protocol and int(row["n_classes"]) == int(n_classes)
    ]
    out = []
    for name, group in sorted(_by_dataset(rows).items()):
        row = _nearest(group, n)
        value = float(row["K_F_q50"])
        out.append(KnownValue(name, "medical", int(row["n"]), value, value, value))
    return out
