"""Fits without and with the default callbacks, alternating, and what their ledger says.

Shared by ``bench_overhead.py`` (the CIFAR-like model) and ``bench_monitor.py`` (a small CNN on
Fashion-MNIST). Each pair is one fit without the callbacks and one with them, run back to back
so that load changes hit both alike, in alternating order (plain first, then monitored first:
a machine that speeds up or slows down over the run favours neither kind over an even number
of pairs). Per pair: the wall-clock difference and the callbacks' own ledger
(:func:`~lightning_dataprops.callbacks.overhead_seconds`: everything their hooks cost), both in
percent of the plain fit; their gap in percentage points says whether the ledger tells what the
callbacks cost. The mean over the pairs is the figure reported (one pair is noisy; the mean
cancels a steady drift), the median beside it.

The training steps are timed too (:class:`StepClock`: from each training batch's start to its
end, in both kinds of fit). The gap splits into what the steps lost or gained between the two
fits and the rest; a gap that the steps' own difference explains is the machine's noise, not
time the ledger missed (the ledger itself equals the time spent in the callbacks' hooks,
``tests/integration/test_overhead_ledger.py``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import lightning.pytorch as pl
from bench_dataset_properties import background_load


def bench_trainer(epochs: int, callbacks: list[pl.Callback], **options: Any) -> pl.Trainer:
    """A CPU trainer without logger, checkpoints, progress bar or summary (``options`` added)."""
    return pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
        **options,
    )


class StepClock(pl.Callback):
    """Seconds spent in training steps (each batch's start to its end), summed."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0

    def on_train_batch_start(self, *args: Any) -> None:
        self._started = time.perf_counter()

    def on_train_batch_end(self, *args: Any) -> None:
        self.seconds += time.perf_counter() - self._started


@dataclass
class Fit:
    """One fit: its wall time, the callbacks' ledger (0 without them), the time in training
    steps (:class:`StepClock`), per-epoch times and the fit-start cost where the script records
    them."""

    wall: float
    ledger: float = 0.0
    steps: float = 0.0
    epochs: list[float] = field(default_factory=list)
    fit_start: float = 0.0


@dataclass
class Condition:
    """The pairs of fits measured under one condition (quiet, or N busy processes)."""

    label: str
    plain: list[Fit]
    monitored: list[Fit]

    def _of_plain(self, seconds: Callable[[Fit, Fit], float]) -> list[float]:
        """``seconds(plain, monitored)`` of each pair, percent of the pair's plain fit."""
        pairs = zip(self.plain, self.monitored, strict=True)
        return [100 * seconds(p, m) / p.wall for p, m in pairs]

    @property
    def differences(self) -> list[float]:
        """Wall-clock difference of each pair, percent of the plain fit."""
        return self._of_plain(lambda p, m: m.wall - p.wall)

    @property
    def ledgers(self) -> list[float]:
        """The ledger of each pair's monitored fit, percent of the plain fit."""
        return self._of_plain(lambda p, m: m.ledger)

    @property
    def own_ledgers(self) -> list[float]:
        """The ledger of each monitored fit, percent of that fit's own time (its wall time less
        the ledger): what the overhead budget bounds."""
        return [100 * m.ledger / (m.wall - m.ledger) for m in self.monitored]

    @property
    def residuals(self) -> list[float]:
        """Gap less the training steps' own difference, percentage points, per pair: what the
        wall clock shows beyond the ledger once the training steps' noise is taken out."""
        return [g - s for g, s in zip(self.gaps, self.step_differences, strict=True)]

    @property
    def step_differences(self) -> list[float]:
        """Training steps' time with the callbacks minus without, percent of the plain fit."""
        return self._of_plain(lambda p, m: m.steps - p.steps)

    @property
    def gaps(self) -> list[float]:
        """Wall-clock difference minus ledger, percentage points, per pair."""
        return [d - g for d, g in zip(self.differences, self.ledgers, strict=True)]

    def ledger_row(self) -> str:
        """The markdown row of this condition (columns: :data:`LEDGER_HEADER`)."""
        return (
            f"| {self.label} | {', '.join(f'{f.wall:.1f}' for f in self.plain)} | "
            f"{', '.join(f'{f.wall:.1f}' for f in self.monitored)} | "
            f"{', '.join(f'{d:+.1f}%' for d in self.differences)} "
            f"(mean {statistics.mean(self.differences):+.1f}%) | "
            f"{', '.join(f'{x:.1f}%' for x in self.ledgers)} "
            f"(mean {statistics.mean(self.ledgers):.1f}%) | "
            f"{', '.join(f'{x:.1f}%' for x in self.own_ledgers)} "
            f"(max {max(self.own_ledgers):.1f}%) | "
            f"{', '.join(f'{g:+.1f}' for g in self.gaps)} | "
            f"**{statistics.mean(self.gaps):+.1f}** / {statistics.median(self.gaps):+.1f} | "
            f"{', '.join(f'{x:+.1f}' for x in self.step_differences)} "
            f"(mean {statistics.mean(self.step_differences):+.1f}) | "
            f"{', '.join(f'{x:+.1f}' for x in self.residuals)} "
            f"(mean **{statistics.mean(self.residuals):+.1f}**) |"
        )


LEDGER_HEADER = (
    "| condition | fits without (s) | fits with (s) | wall difference | ledger "
    "| ledger of its own fit | difference - ledger (pp) | mean / median (pp) "
    "| of which training steps (pp) | residual (pp) |\n"
    "|---|---|---|---|---|---|---|---|---|---|"
)


def add_condition_arguments(parser: argparse.ArgumentParser) -> None:
    """``--background-load N`` (and ``--no-quiet``), read by :func:`measure_conditions`."""
    parser.add_argument(
        "--background-load",
        type=int,
        default=0,
        metavar="N",
        help="also measure with N busy background processes (stopped at the end)",
    )
    parser.add_argument(
        "--no-quiet", action="store_true", help="only the loaded condition (--background-load)"
    )


def measure_conditions(
    fit: Callable[[bool], Fit], repeats: int, background: int, quiet: bool = True
) -> list[Condition]:
    """``repeats`` alternating pairs of ``fit(monitored)`` on a quiet machine (unless not
    ``quiet``) and, with ``background`` > 0, as many again with that many busy processes; each
    condition's ledger row is printed as it comes (a later condition may not finish)."""
    conditions = ([("quiet", 0)] if quiet else []) + (
        [(f"{background} busy processes", background)] if background else []
    )
    results = []
    for name, n_busy in conditions:
        load_before = os.getloadavg()[0]
        plain: list[Fit] = []
        monitored: list[Fit] = []
        with background_load(n_busy):
            for pair in range(repeats):
                if pair % 2 == 0:
                    plain.append(fit(False))
                    monitored.append(fit(True))
                else:
                    monitored.append(fit(True))
                    plain.append(fit(False))
        label = f"{name} (load {load_before:.1f} before, {os.getloadavg()[0]:.1f} after)"
        results.append(Condition(label, plain, monitored))
        print(results[-1].ledger_row(), flush=True)
    return results
