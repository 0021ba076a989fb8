"""The callbacks' time ledger counts everything they cost in a real fit: measured from outside
by two stopwatch callbacks around them, every hook, rendering and logger writes included."""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from lightning_dataprops import default_callbacks, names
from lightning_dataprops.callbacks import overhead_seconds
from tests.integration.lightning_models import TensorDataModule, TinyCNN, binary_task, trainer

_HOOKS = [
    name
    for name in vars(pl.Callback)
    if (name.startswith("on_") or name in ("setup", "teardown"))
    and name not in ("on_save_checkpoint", "on_load_checkpoint")
]


class _Stopwatch(pl.Callback):
    """Placed before (``start=True``) and after the dataprops callbacks: Lightning calls every
    hook of the callbacks in list order, so the time from one to the other is theirs."""

    def __init__(self, start: bool, marks: list[tuple[str, float]]) -> None:
        self.start, self.marks = start, marks


def _mark(name: str) -> Any:
    def hook(self: _Stopwatch, *args: Any, **kwargs: Any) -> None:
        self.marks.append((name if self.start else "/" + name, time.perf_counter()))

    return hook


for _name in _HOOKS:
    setattr(_Stopwatch, _name, _mark(_name))


def _bracketed_seconds(marks: list[tuple[str, float]]) -> float:
    """Sum of the intervals from each hook's first stopwatch to its second."""
    total, opened = 0.0, {}
    for name, at in marks:
        if name.startswith("/"):
            total += at - opened.pop(name[1:])
        else:
            opened[name] = at
    assert not opened
    return total


@pytest.mark.slow
def test_the_ledger_equals_the_time_spent_in_the_callbacks_hooks(mnist, tmp_path: Path) -> None:
    x, y = binary_task(*mnist, 3, 8)
    marks: list[tuple[str, float]] = []
    ours = default_callbacks(
        max_samples=400, repr_max_samples=200, robustness_every_n_epochs=1, overhead_budget=None
    )
    callbacks = [_Stopwatch(True, marks), *ours, _Stopwatch(False, marks)]
    logger = TensorBoardLogger(tmp_path, name="tb")
    fit = trainer(tmp_path, callbacks, max_epochs=2, logger=logger)
    fit.fit(TinyCNN(), datamodule=TensorDataModule(x, y))
    ledger = overhead_seconds(fit)
    spent = _bracketed_seconds(marks)
    # Lightning's calls between the stopwatches cost microseconds; the ledger must hold all
    # the rest: before, the hooks' rendering and logger writes were left out.
    assert spent > 0.1
    assert 0.97 * spent - 0.01 <= ledger <= spent + 0.01


def test_the_overhead_fraction_is_logged_once_the_fit_has_trained(mnist, tmp_path: Path) -> None:
    """At the fit-start pass the fit's own time is setup alone: no fraction of it is logged
    (it read 282% there); from the first measurement after training steps on, it is."""
    x, y = binary_task(*mnist, 3, 8)
    ours = default_callbacks(
        max_samples=300, repr_max_samples=100, robustness_every_n_epochs=0, overhead_budget=None
    )
    logger = CSVLogger(tmp_path, name="csv")
    fit = trainer(tmp_path, ours, max_epochs=2, logger=logger)
    fit.fit(TinyCNN(), datamodule=TensorDataModule(x, y))
    with open(Path(logger.log_dir) / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    fit_start = [row for row in rows if row.get(names.D_DATA)]
    assert fit_start and not any(row.get(names.OVERHEAD_FRACTION) for row in fit_start)
    # The fit-start pass's cost sits on the values' own row, not on a row of its own.
    assert all(row.get(names.OVERHEAD_SECONDS) for row in fit_start)
    assert not [r for r in rows if r["step"] == "0" and not r.get(names.D_DATA)], rows[:3]
    fractions = [
        (int(row["step"]), float(row[names.OVERHEAD_FRACTION]))
        for row in rows
        if row.get(names.OVERHEAD_FRACTION)
    ]
    assert len(fractions) == 3, fractions  # d_repr at the end of each epoch, the fit's end
    assert all(step > 0 and fraction > 0 for step, fraction in fractions), fractions
    # The last row holds the end-of-fit work (the findings written at the end); the run report
    # is written after it, from the logs, and is in overhead_seconds() alone.
    totals = [float(row[names.OVERHEAD_SECONDS]) for row in rows if row.get(names.OVERHEAD_SECONDS)]
    assert totals[-1] == max(totals) > totals[-2]
    assert totals[-1] < overhead_seconds(fit)
    # On the last epoch that ran (after the fit, current_epoch counts the finished ones: 2).
    last = [row for row in rows if row.get(names.OVERHEAD_SECONDS)][-1]
    assert int(last["epoch"]) == 1 == max(int(row["epoch"]) for row in rows if row.get("epoch"))


def test_a_resumed_fit_continues_the_ledger(mnist, tmp_path: Path) -> None:
    """The ledger is cumulative over the run: a fit resumed from a checkpoint logs
    dataprops/time/total (and the overhead fraction) from where the checkpoint left them, not
    from zero again."""
    x, y = binary_task(*mnist, 3, 8)

    resumed: list[Any] = []

    def fit_until(epochs: int, checkpoint: str | None) -> tuple[pl.Trainer, list[float]]:
        ours = default_callbacks(max_samples=300, repr_max_samples=100, robustness_every_n_epochs=0)
        resumed[:] = ours
        logger = CSVLogger(tmp_path, name="csv", version=epochs)
        fit = trainer(
            tmp_path,
            ours,
            max_epochs=epochs,
            enable_checkpointing=True,
            logger=logger,
            limit_train_batches=30,  # the fit's own time well above a checkpoint restore
        )
        fit.fit(TinyCNN(), datamodule=TensorDataModule(x, y), ckpt_path=checkpoint)
        with open(Path(logger.log_dir) / "metrics.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        totals = [float(r[names.OVERHEAD_SECONDS]) for r in rows if r.get(names.OVERHEAD_SECONDS)]
        return fit, totals

    first, before = fit_until(2, None)
    assert first.checkpoint_callback is not None
    second, after = fit_until(3, first.checkpoint_callback.best_model_path)
    assert before and after
    # From where the checkpoint left it (saved at the last epoch's end: the first fit's last
    # row, its end-of-fit work, came after it and is not part of the resumed run's ledger).
    saved = torch.load(first.checkpoint_callback.best_model_path, weights_only=False)
    spent = {s["ledger"]["spent"] for s in saved["callbacks"].values() if "ledger" in s}
    assert len(spent) == 1 and before[-2] <= min(spent) <= before[-1], (spent, before)
    assert min(after) > min(spent), (spent, before, after)
    assert overhead_seconds(second) > min(spent)
    # Each callback goes on from its own saved seconds and from the fit's saved own time.
    for callback in resumed:
        ledger = saved["callbacks"][callback.state_key]["ledger"]
        assert (
            callback.budget.own > ledger["own"] and callback.budget.fit_time(second) > ledger["fit"]
        ), (callback, ledger)
    # The fraction's denominator, the fit's own time, continues too (it read 8x too high).
    fractions = [float(fit.callback_metrics[names.OVERHEAD_FRACTION]) for fit in (first, second)]
    assert 0.5 * fractions[0] < fractions[1] < 2 * fractions[0], fractions


def test_the_fits_own_time_stops_with_the_fit(mnist, tmp_path: Path) -> None:
    """A script that saves a checkpoint after the fit, or reads the ledger later, sees the
    fit's own time as it ended: what the script does afterwards is not the fit's (a resumed
    fit's overhead fraction read 1.8 for 9.7 when the checkpoint counted it)."""
    x, y = binary_task(*mnist, 3, 8)
    ours = default_callbacks(
        max_samples=300, repr_max_samples=100, robustness_every_n_epochs=0, overhead_budget=None
    )
    fit = trainer(tmp_path, ours, max_epochs=1)
    fit.fit(TinyCNN(), datamodule=TensorDataModule(x, y))
    ended = [callback.budget.fit_time(fit) for callback in ours]
    time.sleep(0.3)
    assert [callback.budget.fit_time(fit) for callback in ours] == ended
    saved = ours[0].state_dict()["ledger"]
    assert saved["fit"] == ended[0] and 0 < ended[0] < 30
