"""Findings to a ``WandbLogger``: tables, plots, alerts, run summary and config.

The W&B writer behind :func:`~lightning_dataprops.integrations.publish.publish`, imported only
when a ``WandbLogger`` receives a finding (wandb stays an optional dependency). Works with
online, offline and disabled runs (a disabled run's ``experiment`` is a no-op object, so nothing
here type-checks it). What each finding becomes in the run:

* :class:`~lightning_dataprops.findings.SharpPairsFinding`: the table ``dataprops/sharpest_pairs``,
  one row a pair (rank, dataset indices, labels, distance, sharpness) with both inputs side by
  side as an image;
* :class:`~lightning_dataprops.findings.ReprProfileFinding`: the table
  ``dataprops/d_repr_profile`` and a line plot of ``d_repr`` over epochs, one line per layer
  (``dataprops/d_repr_plot``);
* :class:`~lightning_dataprops.findings.ForecastFinding`: its curve
  (:meth:`~lightning_dataprops.findings.ForecastFinding.curve`, the one the pictures draw) as the
  plot ``dataprops/forecast_plot/data_scaling``;
* :class:`~lightning_dataprops.findings.TextFinding` with ``level="warning"``: a W&B alert, at
  most one per finding key, run and fit within the finding's ``alert_wait_s``;
* :class:`~lightning_dataprops.findings.RunSummaryFinding`: the run's summary and
  ``config["dataprops"]``.

The first finding a run receives also defines the summaries of the logged names (the last data
properties, the min/max/last ``d_repr``). Everything kept per run (the alert times, whether the
metrics are defined) is keyed by the W&B run object itself, and the alert times start afresh
with each fit that publishes to the run (the ``fit`` that :func:`~.publish.publish` hands every
writer): successive fits in one process each get their
alerts, whether each has its own run or they share one (a ``WandbLogger`` created while an
earlier run is still open reuses that run).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from torch import Tensor

from lightning_dataprops import names
from lightning_dataprops.findings import (
    Finding,
    ForecastFinding,
    ReprProfileFinding,
    RunSummaryFinding,
    SharpPairsFinding,
    TextFinding,
)
from lightning_dataprops.findings.format import format_label, format_number
from lightning_dataprops.findings.render import pair_display
from lightning_dataprops.integrations._common import FOLDER

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["log_finding", "pair_image"]


def pair_image(first: Tensor, second: Tensor) -> np.ndarray | None:
    """The two inputs side by side with a thin white separator, as an ``(H, W, 3)`` uint8 array
    (0-255) scaled with the pair's joint range
    (:func:`~lightning_dataprops.findings.render.pair_display`, the scaling every logger's
    picture uses), or ``None`` for inputs that are not images. Bytes, because ``wandb.Image``
    does not rescale a float array in ``[0, 1]`` (it stored such pictures black).

    Example:
        >>> import torch
        >>> image = pair_image(torch.zeros(1, 28, 28), torch.ones(1, 28, 28))
        >>> image.shape, image.dtype, int(image.max())
        ((28, 58, 3), dtype('uint8'), 255)
    """
    shown = pair_display(first, second)
    if shown is None:
        return None
    left, right = shown
    separator = np.ones((left.shape[0], max(1, left.shape[1] // 14), 3))
    joined = np.concatenate([left, separator, right], axis=1)
    return np.asarray(np.round(np.clip(joined, 0.0, 1.0) * 255), dtype=np.uint8)


@dataclass
class _RunState:
    defined: bool = False
    last_alert: dict[str, float] = field(default_factory=dict)
    """Finding key -> ``time.monotonic()`` of its last alert in this run and fit."""
    fit: weakref.ref[Any] | None = None
    """The fit the alert times belong to."""

    def enter_fit(self, fit: Any) -> None:
        """Findings from ``fit`` (``None``: unknown, the run's alert times go on): a fit that did
        not publish to this run before starts with no alert sent."""
        if fit is None or (self.fit is not None and self.fit() is fit):
            return
        try:
            self.fit = weakref.ref(fit)
        except TypeError:
            self.fit = None
        self.last_alert.clear()


_runs: weakref.WeakKeyDictionary[Any, _RunState] = weakref.WeakKeyDictionary()


def _state(run: Any) -> _RunState:
    """What is kept for this run (a fresh state for a run that cannot be weakly referenced)."""
    try:
        state = _runs.get(run)
        if state is None:
            state = _runs[run] = _RunState()
        return state
    except TypeError:
        return _RunState()


def _define_metrics(run: Any, state: _RunState) -> None:
    """Summaries of the logged names: the last data properties, the min/max ``d_repr``."""
    define = getattr(run, "define_metric", None)
    if state.defined or define is None:
        return
    step = "trainer/global_step"
    for name in (names.K_F, names.D_DATA, names.D_DATA_TWONN, names.N_SAMPLES, names.N_TRAIN):
        define(name, step_metric=step, summary="last")
    define(names.d_repr("*"), step_metric=step, summary="min,max,last")
    define(f"{names.PREFIX}/adv/*", step_metric=step, summary="last")
    define(f"{names.PREFIX}/forecast/*", step_metric=step, summary="last")
    define(f"{names.PREFIX}/time/*", step_metric=step, summary="mean")
    state.defined = True


def _sharpest_pairs(logger: Any, finding: SharpPairsFinding, step: int) -> list[str]:
    import wandb

    if not finding.pairs:
        return []
    columns = ["rank", "index_i", "index_j", "label_i", "label_j", "distance", "sharpness", "pair"]
    rows = []
    for rank, pair in enumerate(finding.pairs, start=1):
        image = None
        if pair.input_i is not None and pair.input_j is not None:
            image = pair_image(pair.input_i, pair.input_j)
        caption = (
            f"{finding.label_text(pair.label_i)} vs {finding.label_text(pair.label_j)}, "
            f"distance {format_number(pair.distance)}"
        )
        rows.append(
            [
                rank,
                pair.index_i,
                pair.index_j,
                *(_cell(label) for label in (pair.label_i, pair.label_j)),
                pair.distance,
                float(pair.sharpness),  # inf for a conflict: W&B stores Infinity
                None if image is None else wandb.Image(image, caption=caption),
            ]
        )
    logger.log_table(key=names.SHARPEST_PAIRS, columns=columns, data=rows, step=step)
    return [f"table {names.SHARPEST_PAIRS}"]


def _cell(label: Any) -> Any:
    """A table cell of one label: numbers as numbers (sortable), a vector target as text."""
    return format_label(label) if isinstance(label, tuple) else label


def _representation_profile(logger: Any, finding: ReprProfileFinding, step: int) -> list[str]:
    import wandb

    columns = ["epoch", "layer", "depth", "d_repr"]
    rows = [[row.epoch, row.layer, row.depth, row.d_repr] for row in finding.rows]
    logger.log_table(key=names.D_REPR_PROFILE, columns=columns, data=rows, step=step)
    epochs = list(finding.epochs)
    values = {(row.epoch, row.layer): row.d_repr for row in finding.rows}
    series = [
        [values.get((epoch, layer), float("nan")) for epoch in epochs] for layer in finding.layers
    ]
    plot = wandb.plot.line_series(
        xs=epochs,
        ys=series,
        keys=list(finding.layers),
        title="Intrinsic dimension of the representations (d_repr)",
        xname="epoch",
    )
    logger.log_metrics({names.D_REPR_PLOT: plot}, step=step)
    return [f"table {names.D_REPR_PROFILE}", f"plot {names.D_REPR_PLOT}"]


def _data_scaling(logger: Any, finding: ForecastFinding, step: int) -> list[str]:
    """The forecast's curve as a plot: the predicted test loss against N with a calibrated
    constant, else the loss relative to the run's, ``(N / N0)^(-1/d)``."""
    import wandb

    curve = finding.curve()
    y_name = "predicted_test_loss" if curve.kind == "predicted_loss" else "relative_test_loss"
    table = wandb.Table(
        columns=["n_train", y_name], data=[list(p) for p in zip(curve.n, curve.y, strict=True)]
    )
    title = "Scaling-law forecast: test loss against training-set size"
    plot = wandb.plot.line(table, "n_train", y_name, title=title)
    logger.log_metrics({names.DATA_SCALING_PLOT: plot}, step=step)
    return [f"plot {names.DATA_SCALING_PLOT}"]


def _alert(run: Any, state: _RunState, finding: TextFinding) -> list[str]:
    """A W&B alert for a warning, at most one per key and run within ``finding.alert_wait_s``."""
    if finding.level != "warning":
        return []
    now = time.monotonic()
    last = state.last_alert.get(finding.key)
    if last is not None and now - last < finding.alert_wait_s:
        return []
    import wandb

    run.alert(
        title=finding.title,
        text=finding.body,
        level=wandb.AlertLevel.WARN,  # type: ignore[attr-defined]
        wait_duration=int(finding.alert_wait_s),
    )
    state.last_alert[finding.key] = now
    return [f"alert {finding.title}"]


def _summary(run: Any, finding: RunSummaryFinding) -> list[str]:
    run.summary.update(finding.summary())
    run.config.update({FOLDER: finding.config()}, allow_val_change=True)
    return ["summary", "config"]


_Panel = Callable[[Any, Any, _RunState, Any, int], list[str]]

_PANELS: dict[type, _Panel] = {
    SharpPairsFinding: lambda logger, run, state, finding, step: _sharpest_pairs(
        logger, finding, step
    ),
    ReprProfileFinding: lambda logger, run, state, finding, step: _representation_profile(
        logger, finding, step
    ),
    ForecastFinding: lambda logger, run, state, finding, step: _data_scaling(logger, finding, step),
    TextFinding: lambda logger, run, state, finding, step: _alert(run, state, finding),
    RunSummaryFinding: lambda logger, run, state, finding, step: _summary(run, finding),
}
"""The W&B panel of each finding type (a new panel: one function and one line here)."""


def log_finding(
    logger: Any, finding: Finding, figure: Figure | None, *, step: int, **context: Any
) -> list[str]:
    """Write one finding to a ``WandbLogger``'s run; returns what was written (nothing for the
    findings W&B has no panel for: the configuration, the k curve, info texts).

    Args:
        logger: a ``lightning.pytorch.loggers.WandbLogger``.
        finding: any finding.
        figure: unused (W&B draws its own tables and plots; registered with
            ``needs_figure=False``).
        step: the trainer's ``global_step`` (the ``trainer/global_step`` of the rows).
        context: what :func:`~.publish.publish` gives every writer; its ``fit`` scopes the
            alerts' rate limit to one fit.
    """
    del figure
    panel = next((_PANELS[cls] for cls in type(finding).__mro__ if cls in _PANELS), None)
    run = logger.experiment
    state = _state(run)
    state.enter_fit(context.get("fit"))
    _define_metrics(run, state)
    return [] if panel is None else panel(logger, run, state, finding, step)
