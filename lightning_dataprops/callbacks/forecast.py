"""ScalingForecastMonitor: what the logged K_F, d_data, d_repr and N predict about the test loss."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import lightning.pytorch as pl

from lightning_dataprops import names
from lightning_dataprops._warnings import warn_each_time
from lightning_dataprops.calibration import ConstantSpec, append_run_csv, resolve_constant
from lightning_dataprops.callbacks._base import DataPropsCallback, DataPropsOptions
from lightning_dataprops.callbacks._logging import epochs_begun
from lightning_dataprops.findings import ForecastFinding
from lightning_dataprops.functional.module_names import module_name
from lightning_dataprops.functional.scaling_law import Calibration, ScalingForecast, forecast

_PROVIDERS = {
    names.K_F: "DatasetPropertiesMonitor (K_F needs class or regression targets)",
    names.D_DATA: "DatasetPropertiesMonitor",
    names.N_TRAIN: "DatasetPropertiesMonitor (for a stream, pass it n_train=)",
}


def _metric(trainer: pl.Trainer, *keys: str) -> float | None:
    for key in keys:
        value = trainer.callback_metrics.get(key)
        if value is not None:
            return float(value)
    return None


class ScalingForecastMonitor(DataPropsCallback):
    r"""Log what the scaling law predicts from the measured data properties, every epoch.

    The law (Konz & Mazurowski, ICLR 2024): test loss ``L(N) <~ C K_F N^(-1/d_data)`` and
    ``L <~ C' N^(-1/d_repr)``. Without a calibrated ``C`` only the parameter-free predictions
    are logged: the bound ``K_F N^(-1/d_data)``, the loss ratio for twice the data
    ``2^(-1/d)`` and, with ``target_loss``, the ``N`` needed to reach it,
    ``N (L/L*)^d_data``. With ``scaling_constant`` also the predicted test loss and the
    generalization gap (predicted test loss minus training loss).

    It reads its inputs only from ``trainer.callback_metrics`` (``dataprops/K_F``,
    ``dataprops/d_data``, ``dataprops/n_train`` from :class:`DatasetPropertiesMonitor`,
    ``dataprops/d_repr_head_input`` (or ``dataprops/d_repr/<repr_layer>``) from
    :class:`RepresentationIDMonitor`, and your module's
    logged losses), the way ``EarlyStopping`` reads its monitored value; it shares no object
    with the other callbacks. When a value it needs is missing (e.g. no
    ``DatasetPropertiesMonitor`` attached, or no targets), it says so once and logs nothing.
    Put it after the measuring callbacks so that it sees the epoch's ``d_repr``.

    Logged at the end of every training epoch (to every logger and ``callback_metrics``):

    - ``dataprops/forecast/bound``: ``K_F N^(-1/d_data)``;
    - ``dataprops/forecast/loss_ratio_2x_data``: ``2^(-1/d_data)``;
    - ``dataprops/forecast/repr_loss_ratio_2x_data``: ``2^(-1/d_repr)`` (with a ``d_repr``);
    - ``dataprops/forecast/samples_for_target``: with ``target_loss`` and a validation loss;
    - ``dataprops/forecast/test_loss``, ``dataprops/forecast/gap``: with ``scaling_constant``
      (the gap also needs a training loss);
    - ``dataprops/forecast/observed_val_loss``: the validation loss beside them;
    - ``dataprops/time/forecast``: seconds spent.

    At fit end every logger gets the forecast plot, predicted loss against ``N`` with the
    observed validation loss marked (``docs/loggers.md``). With a ``WandbLogger``, also a plot
    of the forecast test loss against ``N`` (``dataprops/forecast_plot/data_scaling``).
    Cost: negligible (arithmetic).

    Args:
        options: shared options (unused by the arithmetic; accepted for uniformity).
        scaling_constant: ``C`` of ``L = C K_F N^(-1/d)``: a number, a calibration JSON from
            ``dataprops calibrate``, or ``"reproduction"`` (the constant fitted by the project's
            reproduction experiment, for its regime: small CNNs on 28x28 binary tasks).
        target_loss: a target test loss ``L*`` for ``samples_for_target``.
        val_loss_key, train_loss_key: names under which your module logs its losses
            (``*_epoch`` variants are found too).
        calibration_csv: at fit end, append this run (``n_train, d_data, label_sharpness,
            test_loss``, the final validation loss as test loss) to this CSV, to calibrate
            ``C`` from several runs with ``dataprops calibrate``.
        repr_layer: which layer's ``d_repr`` to use; default the output head's input
            (``dataprops/d_repr_head_input``, logged by :class:`RepresentationIDMonitor` when it
            measures that layer, as it does by default), never the head itself.

    Raises:
        ValueError: in ``__init__`` for a non-positive ``target_loss``; in ``setup`` when the
            ``scaling_constant`` file cannot be read.

    Example:
        >>> from lightning.pytorch import Trainer
        >>> from lightning_dataprops.callbacks import DatasetPropertiesMonitor
        >>> from lightning_dataprops.callbacks import ScalingForecastMonitor
        >>> callbacks = [DatasetPropertiesMonitor(), ScalingForecastMonitor(target_loss=0.1)]
        >>> trainer = Trainer(callbacks=callbacks, logger=False)
    """

    TIMED_WORK = ("forecast",)

    def __init__(
        self,
        options: DataPropsOptions | None = None,
        *,
        scaling_constant: ConstantSpec = None,
        target_loss: float | None = None,
        val_loss_key: str = "val_loss",
        train_loss_key: str = "train_loss",
        calibration_csv: str | os.PathLike[str] | None = None,
        repr_layer: str | None = None,
    ) -> None:
        super().__init__(options)
        if target_loss is not None and not target_loss > 0:
            raise ValueError(f"target_loss must be > 0, got {target_loss}.")
        self.scaling_constant = scaling_constant
        self.target_loss = target_loss
        self.val_loss_key = val_loss_key
        self.train_loss_key = train_loss_key
        self.calibration_csv = None if calibration_csv is None else Path(calibration_csv)
        self.repr_layer = None if repr_layer is None else module_name(repr_layer)
        self.constant: Calibration | float | None = None
        self.last_forecast: ScalingForecast | None = None
        self._told: set[str] = set()
        self._last_d_repr: float | None = None
        self._unusable: str | None = None
        """Why the last inputs could not be used (said once by ``_required``)."""

    def _setup_fit(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Per fit (the base's setup starts this fit's overhead ledger first, as for every
        # dataprops callback).
        self.last_forecast = None
        self.constant = resolve_constant(self.scaling_constant)
        self._told.clear()
        self._last_d_repr = None
        self._unusable = None

    # ------------------------------------------------------------------ inputs
    def _tell_once(self, key: str, message: str) -> None:
        if key not in self._told:
            self._told.add(key)
            warn_each_time(f"{type(self).__name__}: {message}")

    def _required(self, trainer: pl.Trainer) -> dict[str, float] | None:
        values = {key: _metric(trainer, key) for key in _PROVIDERS}
        missing = [key for key, value in values.items() if value is None]
        if missing:
            needs = "; ".join(f"{key} (logged by {_PROVIDERS[key]})" for key in missing)
            self._unusable = f"trainer.callback_metrics lacks {needs}"
            self._tell_once(
                "missing",
                f"no forecast: {self._unusable}. Attach that callback before this one (or use "
                "lightning_dataprops.default_callbacks()); if it is attached, its own warning "
                "says why it logged nothing.",
            )
            return None
        found = {key: float(value) for key, value in values.items() if value is not None}
        if not 0 < found[names.K_F] < math.inf:
            self._unusable = (
                f"K_F = {found[names.K_F]} (infinite: two differently-labelled identical inputs; "
                "0: no two labels differ), so the bound is undefined"
            )
            self._tell_once("kf", f"no forecast: {self._unusable}.")
            return None
        self._unusable = None
        return found

    def _d_repr(self, trainer: pl.Trainer) -> float | None:
        """The latest ``d_repr`` read from ``callback_metrics`` (it is there only on the epochs
        that measured it, so the last one read is kept)."""
        if self.repr_layer is not None:
            value = _metric(trainer, names.d_repr(self.repr_layer))
            if value is None and self._last_d_repr is None:
                self._tell_once(
                    "repr",
                    f"no {names.d_repr(self.repr_layer)} in trainer.callback_metrics (logged by "
                    "RepresentationIDMonitor for that layer); repr_loss_ratio_2x_data is skipped.",
                )
        else:
            # The scaling law's d_repr is the head's input's, not the deepest layer listed
            # (which can be the head itself).
            value = _metric(trainer, names.D_REPR_HEAD_INPUT)
            prefix = names.d_repr("")
            logged = [key for key in trainer.callback_metrics if key.startswith(prefix)]
            if value is None and logged and self._last_d_repr is None:
                self._tell_once(
                    "head input",
                    "repr_loss_ratio_2x_data is skipped: the d_repr layers logged "
                    f"({', '.join(logged)}) do not include the output head's input (logged as "
                    f"{names.D_REPR_HEAD_INPUT} by RepresentationIDMonitor when it measures that "
                    "layer, its default). Add that layer, or choose one with repr_layer=.",
                )
        if value is not None:
            self._last_d_repr = value
        return self._last_d_repr

    def val_loss(self, trainer: pl.Trainer) -> float | None:
        return _metric(trainer, self.val_loss_key, f"{self.val_loss_key}_epoch")

    # ------------------------------------------------------------------ per epoch
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.active or trainer.sanity_checking:
            return
        metrics = self.guarded("forecast", self._forecast, trainer)
        if metrics:
            self.log_metrics(trainer, metrics)

    def _forecast(self, trainer: pl.Trainer) -> dict[str, float]:
        started = time.perf_counter()
        inputs = self._required(trainer)
        if inputs is None:
            return {}
        observed = self.val_loss(trainer)
        prediction = forecast(
            inputs[names.K_F],
            round(inputs[names.N_TRAIN]),
            inputs[names.D_DATA],
            d_repr=self._d_repr(trainer),
            constant=self.constant,
            train_loss=_metric(trainer, f"{self.train_loss_key}_epoch", self.train_loss_key),
            current_loss=observed,
            target_loss=self.target_loss,
        )
        self.last_forecast = prediction
        metrics = {
            names.forecast(quantity): float(getattr(prediction, quantity))
            for quantity in names.FORECAST_QUANTITIES
            if getattr(prediction, quantity, None) is not None
        }
        if observed is not None:
            metrics[names.forecast("observed_val_loss")] = observed
        metrics[names.seconds("forecast")] = time.perf_counter() - started
        return metrics

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.active:
            return
        if self.last_forecast is not None:
            # The plot changes with every epoch's validation loss: drawn once, at the end.
            finding = self.guarded(
                "forecast plot",
                ForecastFinding.from_forecast,
                self.last_forecast,
                self.val_loss(trainer),
            )
            if finding is not None:
                self.publish(trainer, finding)
        if self.calibration_csv is None or not trainer.is_global_zero:
            return
        self.guarded("calibration record", self._record_run, trainer)

    def _record_run(self, trainer: pl.Trainer) -> None:
        inputs = self._required(trainer)
        val_loss = self.val_loss(trainer)
        if inputs is None or val_loss is None or self.calibration_csv is None:
            why = self._unusable if inputs is None else f"no validation loss ({self.val_loss_key})"
            self._tell_once("csv", f"this run is not added to {self.calibration_csv}: {why}.")
            return
        append_run_csv(
            self.calibration_csv,
            {
                "n_train": round(inputs[names.N_TRAIN]),
                "d_data": inputs[names.D_DATA],
                "label_sharpness": inputs[names.K_F],
                "test_loss": val_loss,
                "epochs": epochs_begun(trainer),
            },
        )
