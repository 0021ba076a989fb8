"""The overhead budget: the callbacks' own time stays within a fraction of the fit's time.

Every dataprops callback times its work (setup included) and keeps its own running total in a
ledger kept per trainer, one entry per callback, out of ``trainer.callback_metrics`` (the
user's metric namespace, read by ``EarlyStopping``, ``ModelCheckpoint`` and dashboards); the
budget's total is their sum, logged as :data:`~lightning_dataprops.names.OVERHEAD_SECONDS`, so
the callbacks share a budget without holding references to each other. Before a periodic
measurement (d_repr, the robustness probe) a callback predicts its cost from the last time it
ran (the measurement and the rest of the hook it ran in: rendering, logger writes) and runs it
only if the total stays within :data:`HEADROOM` of ``fraction`` of the fit's own time so far (wall
time since setup, minus the callbacks' time); otherwise the measurement is postponed to a later
epoch, and the first postponement is said once. The fit-start measurement is charged but never
postponed. Under DDP rank zero decides and broadcasts, so every rank makes the same collective
calls.

The ledger holds everything the callbacks cost, not only the measurements: every Lightning
hook of a dataprops callback is timed whole (:func:`timed_hook`), and what its measurements did
not charge (setup passes, rendering images, writing to the loggers, checkpoint state) is added
as well, so the ledger agrees with the wall-clock difference between a fit with and one
without the callbacks.
"""

from __future__ import annotations

import functools
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_info

from lightning_dataprops import names

_WORK = {"d_repr": "the d_repr measurement", "adv": "the robustness probe"}
HEADROOM = 0.9
"""Periodic measurements fill this share of the budget: the rest is for what no measurement
predicts (the hooks after the last check, the run report at the fit's end, logger writes). On
the CIFAR-like fit of ``benchmarks/bench_overhead.py`` a full budget ended at 5.1-5.4% of the
fit's own time."""
Hook = TypeVar("Hook", bound=Callable[..., Any])

_ledgers: weakref.WeakKeyDictionary[pl.Trainer, dict[OverheadBudget, float]] = (
    weakref.WeakKeyDictionary()
)
"""Trainer -> seconds each callback's budget has spent in the trainer's current fit."""


_epoch_seconds: weakref.WeakKeyDictionary[pl.Trainer, dict[tuple[int, str], float]] = (
    weakref.WeakKeyDictionary()
)
"""Trainer -> ``(epoch, work) -> seconds`` all callbacks spent on that work in that epoch."""


def epoch_work_seconds(trainer: pl.Trainer, work: str, seconds: float) -> float:
    """Add ``seconds`` of ``work`` (``"d_repr"``, ``"adv"``) to this epoch's total over every
    callback of the trainer (two RepresentationIDMonitors on different layers) and return it:
    what ``dataprops/time/<work>`` logs."""
    totals = _epoch_seconds.setdefault(trainer, {})
    key = (trainer.current_epoch, work)
    totals[key] = totals.get(key, 0.0) + seconds
    return totals[key]


def _ledger(trainer: pl.Trainer) -> dict[OverheadBudget, float]:
    ledger = _ledgers.get(trainer)
    if ledger is None:
        ledger = _ledgers[trainer] = {}
    return ledger


def overhead_seconds(trainer: pl.Trainer) -> float:
    """Seconds all dataprops callbacks have spent in ``trainer``'s current (or last) fit: every
    hook, setup pass, rendering and logger write included. It is the ledger the overhead budget
    works from, also readable after the fit; ``dataprops/time/total`` logs it during the fit.

    Example:
        >>> from lightning.pytorch import Trainer
        >>> overhead_seconds(Trainer(logger=False))
        0.0
    """
    return OverheadBudget.spent(trainer)


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
        # Seconds charged since this object exists (never reset): lets a timed hook tell what
        # its measurements charged from what it still has to add.
        self.charged = 0.0
        self.in_hook = False
        # What each periodic measurement's hook cost beyond the measurement itself (rendering,
        # logger writes), last time: part of what running it again will cost.
        self.hook_rest: dict[str, float] = {}
        self.last_charged: str | None = None
        self.start_step = 0
        self._trainer: weakref.ref[pl.Trainer] | None = None
        self.stopped: float | None = None
        """The fit's own seconds, frozen when it ended (``None`` while it runs)."""

    def start(self, trainer: pl.Trainer) -> None:
        """The fit starts now (called in ``setup``): nothing spent, nothing postponed yet."""
        self.started = time.perf_counter()
        # A trainer reused for another fit keeps counting its steps.
        self.start_step = trainer.global_step
        self.own = 0.0
        self.last_cost.clear()
        self.skipped.clear()
        self.hook_rest.clear()
        self.stopped = None
        self._trainer = weakref.ref(trainer)
        _ledger(trainer)[self] = 0.0

    def _fit_trainer(self) -> pl.Trainer | None:
        """The trainer of the fit this budget was started for, while it exists."""
        return None if self._trainer is None else self._trainer()

    def checkpoint(self) -> dict[str, float] | None:
        """What a resumed fit continues from: this callback's seconds, all callbacks' seconds
        and the fit's own seconds so far; ``None`` outside a fit."""
        trainer = self._fit_trainer()
        if trainer is None:
            return None
        return {"own": self.own, "spent": self.spent(trainer), "fit": self.fit_time(trainer)}

    def resume(self, saved: dict[str, Any]) -> None:
        """Continue the ledger of the fit a checkpoint was saved from (called after ``start``):
        ``dataprops/time/total`` and the overhead fraction go on from where they were in the
        same run, rather than restarting from zero."""
        try:
            own, spent, fit = (float(saved[key]) for key in ("own", "spent", "fit"))
        except (KeyError, TypeError, ValueError):
            return  # not a ledger this version wrote: start afresh
        self.own += own
        # fit_time() = wall since started - spent: moving the start back by the saved fit's
        # wall time (its own time plus everything spent) adds the saved own time exactly.
        self.started -= fit + spent
        trainer = self._fit_trainer()
        if trainer is not None:
            _ledger(trainer)[self] = self.own

    @staticmethod
    def spent(trainer: pl.Trainer) -> float:
        """Seconds all dataprops callbacks have spent in this fit."""
        return float(sum(_ledger(trainer).values()))

    def fit_time(self, trainer: pl.Trainer) -> float:
        """Seconds of the fit's own work so far (wall time minus the callbacks' time); after
        :meth:`stop`, the fit's total (the time a script spends after the fit is not the fit's:
        a checkpoint saved then resumes from the fit's own time)."""
        if self.stopped is not None:
            return self.stopped
        return max(0.0, time.perf_counter() - self.started - self.spent(trainer))

    def stop(self, trainer: pl.Trainer) -> None:
        """The fit's training is over (``teardown``): its own time stops counting."""
        if self.stopped is None:
            self.stopped = self.fit_time(trainer)

    def allows(self, trainer: pl.Trainer, what: str) -> bool:
        """Whether ``what`` fits in the budget now; the same answer on every rank."""
        decision = True
        if self.fraction is not None and what in self.last_cost:
            budget = self.fraction * self.fit_time(trainer)
            predicted = self.last_cost[what] + self.hook_rest.get(what, 0.0)
            decision = self.spent(trainer) + predicted <= HEADROOM * budget
        decision = bool(trainer.strategy.broadcast(decision, src=0))
        if not decision:
            self.skipped[what] = self.skipped.get(what, 0) + 1
            if self.skipped[what] == 1:
                rank_zero_info(
                    f"{self.owner}: {_WORK.get(what, what)} is postponed to keep the callbacks' "
                    f"overhead within {self.fraction:.0%} of the fit's time (it last took "
                    f"{self.last_cost[what]:.2f} s); it runs again when the budget allows. Pass "
                    "default_callbacks(overhead_budget=...), or DataPropsOptions(overhead_budget="
                    "...) to a callback, to change the budget; None measures on schedule."
                )
        return decision

    def charge(self, trainer: pl.Trainer, what: str, seconds: float) -> dict[str, float]:
        """Add ``seconds`` spent on ``what``; the budget metrics to log."""
        self.last_cost[what] = seconds
        self.last_charged = what
        self.add(trainer, seconds)
        return self.report(trainer)

    def add(self, trainer: pl.Trainer, seconds: float) -> None:
        """Add ``seconds`` of the callback's time that no periodic measurement predicts
        (rendering, logger writes, the rest of a hook)."""
        self.own += seconds
        self.charged += seconds
        _ledger(trainer)[self] = self.own

    def report(self, trainer: pl.Trainer) -> dict[str, float]:
        """The budget's metrics: seconds spent, their fraction of the fit's time, postponements."""
        total = self.spent(trainer)
        metrics = {names.OVERHEAD_SECONDS: total}
        fit_time = self.fit_time(trainer)
        # Before the first training step the fit's own time is setup only: a fraction of it
        # (282% at the fit-start pass) says nothing about the cost to the fit.
        if fit_time > 0 and trainer.global_step > self.start_step:
            metrics[names.OVERHEAD_FRACTION] = total / fit_time
        for work in self.skipped:
            # Postponements of this work by every callback of the trainer (two d_repr monitors
            # count together). Work names are checked against names.TIMED_WORK when a callback
            # class is defined (DataPropsCallback.TIMED_WORK); nothing here raises mid-fit.
            count = sum(budget.skipped.get(work, 0) for budget in _ledger(trainer))
            known = work in names.TIMED_WORK
            key = names.postponed(work) if known else f"{names.PREFIX}/postponed/{work}"
            metrics[key] = float(count)
        return metrics


def timed_hook(hook: Hook) -> Hook:
    """Charge the whole time of a callback hook ``hook(self, trainer, ...)`` to the callback's
    ledger (``self.budget``): the part its measurements did not charge themselves is added.

    Nested calls (a subclass hook calling ``super()``) are timed once, by the outermost. Only
    time spent while fitting is charged (the ledger is the fit's).
    """
    if getattr(hook, "__dataprops_timed__", False):
        return hook

    @functools.wraps(hook)
    def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        budget: OverheadBudget | None = getattr(self, "budget", None)
        if budget is None or budget.in_hook:
            return hook(self, *args, **kwargs)
        budget.in_hook = True
        started, charged = time.perf_counter(), budget.charged
        budget.last_charged = None
        try:
            return hook(self, *args, **kwargs)
        finally:
            budget.in_hook = False
            trainer = args[0] if args else kwargs.get("trainer")
            rest = time.perf_counter() - started - (budget.charged - charged)
            if budget.last_charged is not None:
                budget.hook_rest[budget.last_charged] = max(0.0, rest)
            if (
                isinstance(trainer, pl.Trainer)
                and trainer.state.fn == "fit"
                and getattr(self, "active", True)
                and rest > 0
            ):
                budget.add(trainer, rest)

    timed.__dataprops_timed__ = True  # type: ignore[attr-defined]
    return timed  # type: ignore[return-value]


HOOKS: tuple[str, ...] = tuple(
    name
    for name in vars(pl.Callback)
    if name.startswith("on_") or name in ("setup", "teardown", "state_dict", "load_state_dict")
)
"""Lightning's callback hooks (every one is timed when a dataprops callback defines it)."""


def time_hooks(cls: type) -> None:
    """Wrap the Lightning hooks that ``cls`` itself defines with :func:`timed_hook`."""
    for name in HOOKS:
        if name in vars(cls) and callable(vars(cls)[name]):
            setattr(cls, name, timed_hook(vars(cls)[name]))
