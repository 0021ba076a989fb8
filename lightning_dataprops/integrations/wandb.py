"""Weights & Biases panels for the dataprops callbacks: summary, config, tables, plots, alerts.

Only imported when a ``WandbLogger`` is attached; wandb stays an optional dependency. Works with
online, offline and disabled runs (a disabled run's ``experiment`` is a no-op object, so nothing
here type-checks it).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
import numpy as np
from torch import Tensor

from lightning_dataprops import names
from lightning_dataprops.functional.scaling_law import ScalingForecast
from lightning_dataprops.render import pair_display


def find_wandb_logger(trainer: pl.Trainer) -> Any | None:
    """The trainer's ``WandbLogger``, or ``None`` (also when wandb is not installed)."""
    try:
        from lightning.pytorch.loggers import WandbLogger
    except ImportError:  # pragma: no cover - lightning always ships it
        return None
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            return logger
    return None


def panels_for(trainer: pl.Trainer, *, alert_wait_s: float = 3600.0) -> WandbPanels | None:
    """Panels on the trainer's W&B run, or ``None`` without a ``WandbLogger``."""
    logger = find_wandb_logger(trainer)
    return None if logger is None else WandbPanels(logger, alert_wait_s=alert_wait_s)


def pair_image(first: Tensor, second: Tensor) -> np.ndarray | None:
    """The two inputs side by side with a thin white separator, as an ``(H, W, 3)`` array in
    ``[0, 1]`` scaled with the pair's joint range (:func:`~lightning_dataprops.render.pair_display`,
    the scaling every logger's picture uses), or ``None`` for inputs that are not images."""
    shown = pair_display(first, second)
    if shown is None:
        return None
    left, right = shown
    separator = np.ones((left.shape[0], max(1, left.shape[1] // 14), 3))
    return np.concatenate([left, separator, right], axis=1)


class WandbPanels:
    """Writes a callback's results to a W&B run (rank zero only; the caller checks)."""

    def __init__(self, logger: Any, *, alert_wait_s: float = 3600.0) -> None:
        self.logger = logger
        self.alert_wait_s = alert_wait_s
        self._last_alert: float | None = None
        self._defined = False

    @property
    def run(self) -> Any:
        return self.logger.experiment

    def define_metrics(self) -> None:
        """Summaries of the logged names: the last data properties, the min/max ``d_repr``."""
        if self._defined:
            return
        define = getattr(self.run, "define_metric", None)
        if define is None:
            return
        step = "trainer/global_step"
        for name in (names.K_F, names.D_DATA, names.D_DATA_TWONN, names.N_SAMPLES, names.N_TRAIN):
            define(name, step_metric=step, summary="last")
        define(names.d_repr("*"), step_metric=step, summary="min,max,last")
        define(f"{names.PREFIX}/adv/*", step_metric=step, summary="last")
        define(f"{names.PREFIX}/forecast/*", step_metric=step, summary="last")
        define(f"{names.PREFIX}/time/*", step_metric=step, summary="mean")
        self._defined = True

    def fit_start(self, metrics: dict[str, float], context: dict[str, Any]) -> None:
        """Put the fit-start properties in the run's summary and config."""
        self.define_metrics()
        summary = {
            key: (value if math.isfinite(value) else str(value)) for key, value in metrics.items()
        }
        self.run.summary.update(summary)
        self.run.config.update({names.PREFIX: {**context, **summary}}, allow_val_change=True)

    def sharpest_pairs(self, pairs: Sequence[dict[str, Any]], inputs: Tensor, *, step: int) -> None:
        """A table of the sharpest differently-labelled pairs with both images side by side.

        Each pair holds ``i``/``j`` (positions in ``inputs``, the sampled inputs), ``index_i``/
        ``index_j`` (indices in the training dataset), the labels, distance and sharpness.
        """
        import wandb

        columns = [
            "rank",
            "index_i",
            "index_j",
            "label_i",
            "label_j",
            "distance",
            "sharpness",
            "pair",
        ]
        rows = []
        for rank, pair in enumerate(pairs, start=1):
            image = pair_image(inputs[pair["i"]], inputs[pair["j"]])
            caption = f"{pair['label_i']} vs {pair['label_j']}, distance {pair['distance']:.4g}"
            rows.append(
                [
                    rank,
                    pair["index_i"],
                    pair["index_j"],
                    pair["label_i"],
                    pair["label_j"],
                    pair["distance"],
                    str(pair["sharpness"]),
                    None if image is None else wandb.Image(image, caption=caption),
                ]
            )
        self.logger.log_table(key=names.SHARPEST_PAIRS, columns=columns, data=rows, step=step)

    def representation_profile(self, history: Sequence[dict[str, Any]], *, step: int) -> None:
        """The d_repr profile per layer and epoch: a table and a line plot over epochs."""
        import wandb

        self.define_metrics()
        columns = ["epoch", "layer", "depth", "d_repr"]
        rows = [[row["epoch"], row["layer"], row["depth"], row["d_repr"]] for row in history]
        self.logger.log_table(key=names.D_REPR_PROFILE, columns=columns, data=rows, step=step)
        layers = sorted(
            {row["layer"] for row in history}, key=lambda name: _depth_of(history, name)
        )
        epochs = sorted({row["epoch"] for row in history})
        values = {(row["epoch"], row["layer"]): row["d_repr"] for row in history}
        series = [
            [values.get((epoch, layer), float("nan")) for epoch in epochs] for layer in layers
        ]
        plot = wandb.plot.line_series(
            xs=epochs,
            ys=series,
            keys=layers,
            title="Intrinsic dimension of the representations (d_repr)",
            xname="epoch",
        )
        self.logger.log_metrics({names.D_REPR_PLOT: plot}, step=step)

    def data_scaling(self, prediction: ScalingForecast, *, step: int) -> None:
        """The data-scaling forecast as a plot: predicted test loss against N.

        With a calibrated constant the y-axis is the predicted loss ``C K_F N^(-1/d)``; without
        one it is the loss relative to the current run's, ``(N / N_now)^(-1/d)``.
        """
        import wandb

        sizes = [prediction.n_train * 2.0**power for power in range(-3, 5)]
        calibrated = prediction.constant is not None
        y_name = "predicted_test_loss" if calibrated else "relative_test_loss"
        rows = [
            [
                size,
                prediction.predicted_loss(size)
                if calibrated
                else (size / prediction.n_train) ** (-1.0 / prediction.d_data),
            ]
            for size in sizes
        ]
        table = wandb.Table(columns=["n_train", y_name], data=rows)
        title = "Scaling-law forecast: test loss against training-set size"
        plot = wandb.plot.line(table, "n_train", y_name, title=title)
        self.logger.log_metrics({names.DATA_SCALING_PLOT: plot}, step=step)

    def alert(self, title: str, text: str) -> bool:
        """A rate-limited W&B alert (at most one per ``alert_wait_s`` from this callback)."""
        now = time.monotonic()
        if self._last_alert is not None and now - self._last_alert < self.alert_wait_s:
            return False
        import wandb

        self.run.alert(
            title=title,
            text=text,
            level=wandb.AlertLevel.WARN,  # type: ignore[attr-defined]
            wait_duration=int(self.alert_wait_s),
        )
        self._last_alert = now
        return True


def _depth_of(history: Sequence[dict[str, Any]], layer: str) -> int:
    return next(int(row["depth"]) for row in history if row["layer"] == layer)
