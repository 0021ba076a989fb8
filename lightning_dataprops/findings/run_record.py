"""What a training run logged, in one logger-neutral shape: the input of the run report.

A :class:`RunRecord` holds the run's scalars (every logged name, with the step and the epoch of
each value), the findings' pictures (PNG bytes by finding key), their texts (markdown by key) and
their JSON documents (where the logger kept them). The readers in
:mod:`lightning_dataprops.integrations.readers` fill one from a CSV, TensorBoard or MLflow run,
each with that tool's own reader; :func:`lightning_dataprops.findings.run_report.write_run_report`
turns one into the HTML page.

Example:
    >>> record = RunRecord("CSV", "logs/version_0")
    >>> record.add_scalar("val_loss", 0.7, step=3, epoch=0)
    >>> record.add_scalar("val_loss", 0.5, step=7, epoch=1)
    >>> record.series("val_loss")
    ([0, 1], [0.7, 0.5])
    >>> record.last("val_loss"), record.last("missing")
    (0.5, None)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["REPORT_NAME", "RunRecord", "ScalarPoint"]

REPORT_NAME = "run_report.html"
"""File name of the run report (in the logger's ``dataprops`` folder)."""


@dataclass(frozen=True)
class ScalarPoint:
    """One logged value: its step, the epoch of that step (``None``: unknown) and the value."""

    step: int
    epoch: int | None
    value: float


@dataclass
class RunRecord:
    """A finished (or running) fit's logged findings.

    Attributes:
        source: the logger it was read from (``"CSV"``, ``"TensorBoard"``, ``"MLflow"``, ...).
        location: where (a folder, or an MLflow run).
        scalars: ``{name: [ScalarPoint, ...]}`` in logged order.
        images: ``{finding key: PNG bytes}`` (the latest picture of each finding).
        texts: ``{finding key: markdown}``.
        findings: ``{finding key: JSON document}`` where the logger kept them.
        folder: where the report goes by default (``None``: the caller says).
    """

    source: str
    location: str
    scalars: dict[str, list[ScalarPoint]] = field(default_factory=dict)
    images: dict[str, bytes] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    findings: dict[str, dict[str, Any]] = field(default_factory=dict)
    folder: Path | None = None

    def add_scalar(self, name: str, value: float, *, step: int, epoch: int | None = None) -> None:
        """Record one logged value (NaN is skipped, as loggers skip it)."""
        number = float(value)
        if math.isnan(number):
            return
        self.scalars.setdefault(name, []).append(ScalarPoint(int(step), epoch, number))

    def fill_epochs(self) -> None:
        """Give every point without an epoch the epoch logged at its step (Lightning logs an
        ``epoch`` value with each row), else the latest epoch logged before it."""
        epochs = sorted((p.step, int(p.value)) for p in self.scalars.get("epoch", ()))
        if not epochs:
            return
        for name, points in self.scalars.items():
            filled = []
            for point in points:
                epoch = point.epoch
                if epoch is None:
                    before = [e for s, e in epochs if s <= point.step]
                    epoch = before[-1] if before else epochs[0][1]
                filled.append(ScalarPoint(point.step, epoch, point.value))
            self.scalars[name] = filled

    def names(self, prefix: str = "") -> list[str]:
        """Logged names starting with ``prefix``, sorted."""
        return sorted(name for name in self.scalars if name.startswith(prefix))

    def series(self, name: str) -> tuple[list[int], list[float]]:
        """``(epochs, values)`` of a scalar, one value per epoch (the last logged in it)."""
        by_epoch: dict[int, float] = {}
        for point in self.scalars.get(name, ()):
            by_epoch[point.epoch if point.epoch is not None else point.step] = point.value
        epochs = sorted(by_epoch)
        return epochs, [by_epoch[e] for e in epochs]

    def last(self, name: str) -> float | None:
        """The last logged value of a scalar, or ``None``."""
        points = self.scalars.get(name)
        return points[-1].value if points else None

    @property
    def epochs(self) -> list[int]:
        """Epochs with any logged value."""
        return sorted(
            {p.epoch for points in self.scalars.values() for p in points if p.epoch is not None}
        )

    def report_path(self) -> Path:
        """Where the run report goes by default: ``<folder>/run_report.html``."""
        if self.folder is None:
            raise ValueError(f"the {self.source} run at {self.location} has no folder: pass --out")
        return self.folder / REPORT_NAME
