"""Log values from any hook, including those where ``LightningModule.log`` is refused."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import torch


def log_to_trainer(
    trainer: pl.Trainer, metrics: dict[str, float], *, step: int | None = None
) -> None:
    """Send ``metrics`` to every attached logger (rank zero) and into ``callback_metrics``.

    ``callback_metrics`` makes them visible to ``EarlyStopping`` and ``ModelCheckpoint``.
    Loggers' ``log_metrics`` are rank-zero-only in Lightning, so this is safe on every rank.
    """
    step = trainer.global_step if step is None else step
    for name, value in metrics.items():
        trainer.callback_metrics[name] = torch.tensor(float(value))
    if trainer.is_global_zero:
        finite = {
            name: float(value) for name, value in metrics.items() if not math.isnan(float(value))
        }
        for logger in trainer.loggers:
            logger.log_metrics(finite, step=step)
