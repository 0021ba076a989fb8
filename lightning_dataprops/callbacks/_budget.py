"""The overhead budget: the callbacks' own time stays within a fraction of the fit's time.

Every dataprops callback times its work (setup included) and keeps its own running total in a
ledger kept per trainer, one entry per callback, out of ``trainer.callback_metrics`` (the
user's metric namespace, read by ``EarlyStopping``, ``ModelCheckpoint`` and dashboards); the
budget's total is their sum, logged as :data:`~lightning_dataprops.names.OVERHEAD_SECONDS`, so
the callbacks share a budget without holding references to each other. Before a periodic
measurement (d_repr, the robustness probe) a callback predicts its cost from the last time it
ran and runs it only if the total stays within ``fraction`` of the fit's own time so far (wall
time since setup, minus the callbacks' time); otherwise the measurement is postponed to a later
epoch, and the first postponement is said once. The fit-start measurement is charged but never
postponed. Under DDP rank zero decides and broadcasts, so every rank makes the same collective
calls.
"""

from __future__ import annotations

import time
import weakref

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_info

from lightning_dataprops import names

_WORK = {"d_repr": "the d_repr measurement", "adv": "the robustness probe"}

_ledgers: weakref.WeakKeyDictionary[pl.Trainer, dict[OverheadBudget, float]] = (
    weakref.WeakKeyDictionary()
)
"""Trainer -> seconds each callback's budget has spent in the trainer's current fit."""


def _ledger(trainer: pl.Trainer) -> dict[OverheadBudget, float]:
    ledger = _ledgers.get(trainer)
    if ledger is None:
        ledger = _ledgers[trainer] = {}
    return ledger


class OverheadBudget:
    """One callback's view of the shared overhead budget.

    Args:
        fraction: the callbacks' time may reach this fraction of the fit's time (``None``: no
            budget, every measurement runs).
        owner: the callback's name, for messages.
    """

    def __init__(self, fraction: float | None, owner: str) -> None:
        if fraction is not None and not 0 < fraction < 1:
            raise ValueError(f"overhead_budget must lie in (0, 1) or be None, got {fraction!r}.")
        self.fraction = fraction
        self.owner = owner
        self.own = 0.0
        self.started = time.perf_counter()
        self.last_cost: dict[str, float] = {}
        self.skipped: dict[str, int] = {}

    def start(self, trainer: pl.Trainer) -> None:
        """The fit starts now (called in ``setup``): nothing spent, nothing postponed yet."""
        self.started = time.perf_counter()
        self.own = 0.0
        self.last_cost.clear()
        self.skipped.clear()
        _ledger(trainer)[self] = 0.0

    @staticmethod
    def spent(trainer: pl.Trainer) -> float:
        """Seconds all dataprops callbacks have spent in this fit."""
        return sum(_ledger(trainer).values())

    def fit_time(self, trainer: pl.Trainer) -> float:
        """Seconds of the fit's own work so far (wall time minus the callbacks' time)."""
        return max(0.0, time.perf_counter() - self.started - self.spent(trainer))

    def allows(self, trainer: pl.Trainer, what: str) -> bool:
        """Whether ``what`` fits in the budget now; the same answer on every rank."""
        decision = True
        if self.fraction is not None and what in self.last_cost:
            budget = self.fraction * self.fit_time(trainer)
            decision = self.spent(trainer) + self.last_cost[what] <= budget
        decision = bool(trainer.strategy.broadcast(decision, src=0))
        if not decision:
            self.skipped[what] = self.skipped.get(what, 0) + 1
            if self.skipped[what] == 1:
                rank_zero_info(
                    f"{self.owner}: {_WORK.get(what, what)} is postponed to keep the callbacks' "
                    f"overhead within {self.fraction:.0%} of the fit's time (it last took "
                    f"{self.last_cost[what]:.2f} s); it runs again when the budget allows. Set "
                    "DataPropsOptions(overhead_budget=...) to change the budget, or None to "
                    "measure on schedule."
                )
        return decision

    def charge(self, trainer: pl.Trainer, what: str, seconds: float) -> dict[str, float]:
        """Add ``seconds`` spent on ``what``; the budget metrics to log."""
        self.last_cost[what] = seconds
        self.own += seconds
        _ledger(trainer)[self] = self.own
        return self.report(trainer)

    def report(self, trainer: pl.Trainer) -> dict[str, float]:
        """The budget's metrics: seconds spent, their fraction of the fit's time, postponements."""
        total = self.spent(trainer)
        metrics = {names.OVERHEAD_SECONDS: total}
        fit_time = self.fit_time(trainer)
        if fit_time > 0:
            metrics[names.OVERHEAD_FRACTION] = total / fit_time
        for work, count in self.skipped.items():
            # Work names are checked against names.TIMED_WORK when a callback class is defined
            # (DataPropsCallback.TIMED_WORK); nothing here raises mid-fit.
            known = work in names.TIMED_WORK
            metrics[names.postponed(work) if known else f"{names.PREFIX}/postponed/{work}"] = float(
                count
            )
        return metrics
