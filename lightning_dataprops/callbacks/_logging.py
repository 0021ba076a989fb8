"""Log the product's scalars so that they sit on Lightning's own rows (same ``epoch``, same step).

Two paths, one per kind of hook:

- :func:`log_epoch_metrics`, from an epoch-end hook (``on_train_epoch_end``): through
  ``LightningModule.log(on_epoch=True)``, so Lightning itself writes them with its epoch-level
  metrics: the same step as ``train_loss_epoch``/``val_loss`` and an ``epoch`` column, in
  ``trainer.callback_metrics`` at once for ``EarlyStopping``, ``ModelCheckpoint`` and the
  forecast;
- :func:`log_to_loggers`, from hooks where ``LightningModule.log`` is refused
  (``on_fit_start``): to every logger as Lightning's ``LoggerConnector.log_metrics`` does (an
  ``epoch`` key, the trainer's step) and into ``trainer.callback_metrics``.
"""

from __future__ import annotations

import math

import lightning.pytorch as pl
import torch

from lightning_dataprops.names import PREFIX


def log_to_loggers(
    trainer: pl.Trainer,
    metrics: dict[str, float],
    *,
    step: int | None = None,
    epoch: int | None = None,
) -> None:
    """Send ``metrics`` to every attached logger (rank zero) and into ``callback_metrics``.

    Like Lightning's own epoch-level rows, each row carries the trainer's ``epoch``; the step is
    ``global_step`` (at fit start, the step Lightning would use). NaN values stay out of the
    loggers (they would break plots) but are put into ``callback_metrics``.
    """
    step = trainer.global_step if step is None else step
    for name, value in metrics.items():
        trainer.callback_metrics[name] = torch.tensor(float(value))
    if trainer.is_global_zero:
        row = {name: float(value) for name, value in metrics.items() if not math.isnan(value)}
        row["epoch"] = trainer.current_epoch if epoch is None else epoch  # an int, as Lightning
        for logger in trainer.loggers:
            logger.log_metrics(row, step=step)
            logger.save()


def log_epoch_metrics(trainer: pl.Trainer, metrics: dict[str, float]) -> None:
    """Log ``metrics`` from an epoch-end hook as epoch-level values of the fit.

    Every rank calls this with the same values (the measurements are computed on all ranks), so
    under DDP the mean reduction Lightning applies returns them unchanged.
    """
    module = trainer.lightning_module
    distributed = trainer.world_size > 1
    to_loggers = bool(trainer.loggers)  # Lightning warns about logger=True without a logger
    for name, value in metrics.items():
        if math.isnan(value):
            trainer.callback_metrics[name] = torch.tensor(float("nan"))
            continue
        module.log(
            name,
            float(value),
            on_step=False,
            on_epoch=True,
            prog_bar=False,
            logger=to_loggers,
            sync_dist=distributed,
            reduce_fx=_reduction(name),
        )


def epochs_begun(trainer: pl.Trainer) -> int:
    """How many epochs the fit has begun, resumed ones included. After the fit
    ``current_epoch`` counts the finished epochs (2 after epochs 0-1), and in a fit stopped
    mid-epoch the epoch in progress: this counts both alike."""
    return int(trainer.fit_loop.epoch_progress.current.ready)


def _reduction(name: str) -> str:
    """How Lightning reduces a value logged several times in one epoch: the overhead ledger's
    running totals (``time/...``, ``postponed/...``), which several callbacks log in turn at an
    epoch end, by their latest (largest) value; every other value is logged once (``mean``)."""
    ledger = (f"{PREFIX}/time/", f"{PREFIX}/postponed/")
    return "max" if name.startswith(ledger) else "mean"


def forget_metrics(trainer: pl.Trainer, names: set[str]) -> None:
    """Remove ``names`` from ``trainer.callback_metrics``: a value of an earlier epoch must not be
    read as this epoch's (``EarlyStopping(strict=False)`` then skips epochs without one)."""
    metrics = trainer.callback_metrics
    for name in names:
        metrics.pop(name, None)
