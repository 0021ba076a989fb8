"""The monitor's scaling-law forecast: what the logged K_F, d_data, d_repr and N predict."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from lightning_dataprops.calibration import append_run_csv, resolve_constant
from lightning_dataprops.functional.scaling_law import Calibration, ScalingForecast, forecast

ConstantSpec = float | str | os.PathLike[str] | Calibration | None


REPRODUCTION = "reproduction"
"""``scaling_constant="reproduction"``: C fitted by the project's reproduction experiment."""


def load_constant(spec: ConstantSpec) -> Calibration | float | None:
    """A number, a calibration, the path of a calibration JSON from ``dataprops calibrate``, or
    ``"reproduction"`` for the constant of ``examples/reproduce_paper`` (see its regime)."""
    return resolve_constant(spec)


def _metric(trainer: pl.Trainer, *names: str) -> float | None:
    for name in names:
        value = trainer.callback_metrics.get(name)
        if value is not None:
            return float(value)
    return None


class Forecaster:
    """Builds the :class:`ScalingForecast` of the current epoch and records finished runs.

    Args:
        constant: ``C`` of the law (a number or a calibration file), or ``None``.
        target_loss: a target loss ``L*`` for ``samples_for_target``.
        val_loss_key, train_loss_key: names of the logged losses (``*_epoch`` variants too).
        calibration_csv: append ``n_train, d_data, label_sharpness, test_loss`` of this run to
            this CSV at fit end (the final validation loss as the test loss).
    """

    def __init__(
        self,
        *,
        constant: ConstantSpec = None,
        target_loss: float | None = None,
        val_loss_key: str = "val_loss",
        train_loss_key: str = "train_loss",
        calibration_csv: str | os.PathLike[str] | None = None,
    ) -> None:
        self.constant = load_constant(constant)
        self.target_loss = target_loss
        self.val_loss_key = val_loss_key
        self.train_loss_key = train_loss_key
        self.calibration_csv = None if calibration_csv is None else Path(calibration_csv)

    def val_loss(self, trainer: pl.Trainer) -> float | None:
        return _metric(trainer, self.val_loss_key, f"{self.val_loss_key}_epoch")

    def current(
        self, trainer: pl.Trainer, state: dict[str, Any], n_train: int, d_repr: float | None
    ) -> ScalingForecast | None:
        """The forecast from the fit-start values, or ``None`` without K_F."""
        metrics = state["metrics"]
        kf = metrics.get("dataprops/label_sharpness")
        if kf is None or not 0 < kf < float("inf"):
            return None
        return forecast(
            kf,
            n_train,
            metrics["dataprops/data_id"],
            d_repr=d_repr,
            constant=self.constant,
            train_loss=_metric(trainer, f"{self.train_loss_key}_epoch", self.train_loss_key),
            current_loss=self.val_loss(trainer),
            target_loss=self.target_loss,
        )

    def record_run(self, trainer: pl.Trainer, state: dict[str, Any], n_train: int) -> bool:
        """Append this run to the calibration CSV (rank zero; needs K_F and a validation loss)."""
        if self.calibration_csv is None or not trainer.is_global_zero:
            return False
        metrics = state["metrics"]
        val_loss = self.val_loss(trainer)
        kf = metrics.get("dataprops/label_sharpness")
        if val_loss is None or kf is None:
            return False
        append_run_csv(
            self.calibration_csv,
            {
                "n_train": n_train,
                "d_data": metrics["dataprops/data_id"],
                "label_sharpness": kf,
                "test_loss": val_loss,
                "epochs": trainer.current_epoch + 1,
            },
        )
        return True
