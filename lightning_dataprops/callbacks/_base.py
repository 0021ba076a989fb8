"""What every dataprops callback shares, each job in a small helper of its own.

The helpers: :mod:`._failures` (``guarded``, ``disabled``), :mod:`._forward` (the one forward
path), :mod:`._factory` (the ``LIGHTNING_DATAPROPS`` clash), :mod:`._state` (versioned
checkpoint state), :mod:`._data_source` (``sample``, ``training_data``), :mod:`._budget` (the
overhead budget) and :mod:`._logging`. A new callback learns ``_setup_fit``, ``guarded`` or
``budgeted``, ``sample``/``training_data``, ``forward``, ``log_metrics``/``log_fit_start``, and
``_get_state``/``_set_state``; its logged names and ``TIMED_WORK`` live in ``names.py``.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

from lightning_dataprops import names
from lightning_dataprops.callbacks._budget import OverheadBudget, epoch_work_seconds, time_hooks
from lightning_dataprops.callbacks._data_source import DataSampling
from lightning_dataprops.callbacks._factory import FactoryClash
from lightning_dataprops.callbacks._failures import FailureIsolation, MeasurementFailedWarning
from lightning_dataprops.callbacks._forward import ForwardFn, forward_path, show_progress
from lightning_dataprops.callbacks._logging import (
    epochs_begun,
    forget_metrics,
    log_epoch_metrics,
    log_to_loggers,
)
from lightning_dataprops.callbacks._state import VersionedState
from lightning_dataprops.functional.model_guard import untouched

__all__ = ["DataPropsCallback", "DataPropsOptions", "ForwardFn", "MeasurementFailedWarning"]

ItemFn = Callable[[Any], Any]


@dataclass(frozen=True)
class DataPropsOptions:
    """Options shared by every dataprops callback: give one object to each, never the fields.

    Args:
        seed: seed of every sample and random start the callbacks draw.
        input_key, target_key: dict keys or tuple positions of the input and the target in a
            dataset item (default: found automatically, see ``lightning_dataprops.data``).
        input_fn, target_fn: callables ``item -> input`` / ``item -> target``; override the keys.
        forward_fn: ``(module, inputs) -> logits`` for every forward pass the callbacks run (the
            representation probe and the attacks alike); default ``module(inputs)``. Use it for
            models that return tuples or dicts, e.g. ``lambda m, x: m(x)[0]``.
        progress: progress bars on long work; ``None`` follows the trainer's progress bar.
        memory_budget_mb: working-memory bound of every neighbour search, in MiB.
            ``None``: the :func:`~lightning_dataprops.config_context` setting (512 MiB unless
            changed).
        max_stream_items: the most items each callback reads from a stream (an
            ``IterableDataset`` without ``len``) to draw its sample; ``None``: 20 times the
            sample size, at least 10,000 (see :func:`~lightning_dataprops.data.sample_dataset`).
        overhead_budget: the callbacks' own time stays within this fraction of the fit's time:
            periodic measurements (d_repr, the robustness probe) that would exceed it are
            postponed, and the spending is logged (``dataprops/time/total``,
            ``dataprops/time/overhead``, ``dataprops/postponed/...``); ``None``: measure on
            schedule.

    Example:
        >>> from lightning_dataprops.callbacks import DataPropsOptions
        >>> DataPropsOptions(seed=1, input_key="image").seed
        1
    """

    seed: int = 0
    input_key: str | int | None = None
    target_key: str | int | None = None
    input_fn: ItemFn | None = None
    target_fn: ItemFn | None = None
    forward_fn: ForwardFn | None = None
    progress: bool | None = None
    memory_budget_mb: float | None = None
    max_stream_items: int | None = None
    overhead_budget: float | None = 0.05

    def to_dict(self) -> dict[str, Any]:
        """Plain values for hyperparameter logging (callables by their qualified name)."""
        return {
            key: (getattr(value, "__qualname__", repr(value)) if callable(value) else value)
            for key, value in asdict(self).items()
        }


def untouched_rng() -> AbstractContextManager[None]:
    """Every global random state (torch, CUDA, numpy, python) restored afterwards: the one
    model guard, guarding no model."""
    return untouched((), eval_mode=False)


class DataPropsCallback(FailureIsolation, FactoryClash, DataSampling, VersionedState, Callback):
    """Base of the dataprops callbacks; subclasses implement one measurement each.

    Subclasses set ``STATE_VERSION`` and implement :meth:`_get_state`/:meth:`_set_state` for
    what must survive a resume. At fit start the first active dataprops callback of the trainer
    hands the configuration of all of them (:meth:`hyperparameters`) to every logger as one
    record; epoch-end values go through :meth:`log_metrics` and stay in
    ``trainer.callback_metrics`` until the next epoch starts.
    """

    STATE_VERSION = 1
    TIMED_WORK: ClassVar[tuple[str, ...]] = ()
    """The periodic work this callback times (``budgeted(trainer, work, ...)``): each must be in
    :data:`names.TIMED_WORK`, checked when the class is defined (at import), never mid-fit."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Everything a hook costs goes to the overhead ledger (rendering and logger writes too).
        time_hooks(cls)
        missing = [work for work in cls.TIMED_WORK if work not in names.TIMED_WORK]
        if missing:
            raise TypeError(
                f"{cls.__name__}.TIMED_WORK names {missing}, which lightning_dataprops.names."
                "TIMED_WORK does not list; add them there (their logged names derive from it)."
            )

    def __init__(self, options: DataPropsOptions | None = None) -> None:
        if options is not None and not isinstance(options, DataPropsOptions):
            raise TypeError(
                f"options must be a DataPropsOptions, got {type(options).__name__}; e.g. "
                "options=DataPropsOptions(seed=1, forward_fn=lambda m, x: m(x)[0])."
            )
        self.options = options if options is not None else DataPropsOptions()
        self.disabled: dict[str, str] = {}
        self.from_factory = False
        self.active = True
        self._epoch_names: set[str] = set()
        self.budget = OverheadBudget(self.options.overhead_budget, type(self).__name__)

    # ------------------------------------------------------------------ setup
    def start_fit(self, trainer: pl.Trainer) -> bool:
        """A fit starts: per-fit state is reset (callbacks are reused across fits, e.g. in
        cross-validation); ``False`` when this callback steps aside for the fit."""
        from lightning_dataprops.integrations.publish import start_fit

        self.reset_failures()
        self.active = True
        self._epoch_names = set()
        start_fit(trainer)  # the loggers get this fit's findings, whatever earlier fits wrote
        return not self.step_aside_for_user_callback(trainer)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Fit setup, timed and charged to the overhead budget (subclasses: ``_setup_fit``)."""
        if stage != "fit" or not self.start_fit(trainer):
            return
        self.budget.start(trainer)
        started = time.perf_counter()
        try:
            self._setup_fit(trainer, pl_module)
        finally:
            self.budget.charge(trainer, "setup", time.perf_counter() - started)

    def _setup_fit(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Check the configuration against the fit (raise here, before training), pick data."""

    # ------------------------------------------------------------------ overhead budget
    def budgeted(
        self,
        trainer: pl.Trainer,
        work: str,
        fn: Callable[..., dict[str, float] | None],
        *args: Any,
    ) -> dict[str, float] | None:
        """Run a periodic measurement if the overhead budget allows it now (guarded), charge
        its time and add the budget's metrics; ``None`` when postponed or failed."""
        if not self._monitored(trainer) and not self.budget.allows(trainer, work):
            self.log_metrics(trainer, self.budget.report(trainer))
            return None
        started = time.perf_counter()
        metrics = self.guarded(work, fn, *args)
        spent = self.budget.charge(trainer, work, time.perf_counter() - started)
        if metrics is None:
            return None
        seconds = names.seconds(work)
        if seconds in metrics:  # this epoch's total of this work over every callback
            metrics[seconds] = epoch_work_seconds(trainer, work, metrics[seconds])
        return {**metrics, **spent}

    MONITORED_PREFIX: str | None = None
    """Names this callback logs periodically; monitored ones are measured on schedule."""

    def _monitored(self, trainer: pl.Trainer) -> bool:
        """A ModelCheckpoint or EarlyStopping monitors one of this callback's periodic values:
        then it runs on schedule, whatever the budget says (they need the value)."""
        prefix = self.MONITORED_PREFIX
        if prefix is None:
            return False
        return any(
            str(getattr(callback, "monitor", None) or "").startswith(prefix)
            for callback in getattr(trainer, "callbacks", [])
        )

    # ------------------------------------------------------------------ forward path
    def forward(self, trainer: pl.Trainer) -> ForwardFn:
        """The one forward path: precision context and ``forward_fn``."""
        return forward_path(trainer, self.options.forward_fn)

    def show_progress(self, trainer: pl.Trainer) -> bool:
        """Progress bars: as the options say, else as the trainer shows its own; rank zero only."""
        return show_progress(trainer, self.options.progress)

    # ------------------------------------------------------------------ logging
    def log_metrics(self, trainer: pl.Trainer, metrics: dict[str, float]) -> None:
        """From an epoch-end hook: to every logger on Lightning's epoch rows (same ``epoch`` and
        step as ``val_loss``) and into ``trainer.callback_metrics`` for this epoch only."""
        if metrics:
            log_epoch_metrics(trainer, metrics)
            self._epoch_names.update(metrics)

    @staticmethod
    def log_fit_start(trainer: pl.Trainer, metrics: dict[str, float]) -> None:
        """From ``on_fit_start`` (where ``LightningModule.log`` is refused): to every logger, with
        the ``epoch`` key Lightning adds, and into ``trainer.callback_metrics``."""
        if metrics:
            log_to_loggers(trainer, metrics)

    @staticmethod
    def epoch_end_step(trainer: pl.Trainer) -> int:
        """The step of Lightning's epoch-level rows, seen from ``on_train_epoch_end``.

        Lightning writes them at its count of stepped batches minus one (the last batch's step);
        the findings of an epoch go to the same step as its scalars.
        """
        stepped = getattr(trainer.fit_loop.epoch_loop, "_batches_that_stepped", None)
        return max(int(trainer.global_step if stepped is None else stepped) - 1, 0)

    # ------------------------------------------------------------------ findings
    def publish(self, trainer: pl.Trainer, finding: Any, *, step: int | None = None) -> None:
        """Hand a finding (image, text, configuration, summary, warning) to every attached
        logger through its writer (:func:`~lightning_dataprops.integrations.publish.publish`,
        W&B included), from rank zero. Never ends the run: a failure warns once and stops this
        callback's findings."""
        if not trainer.is_global_zero:
            return
        from lightning_dataprops.integrations.publish import publish

        where = trainer.global_step if step is None else step
        self.guarded("publishing findings to the loggers", publish, trainer, finding, step=where)

    def hyperparameters(self) -> dict[str, Any]:
        """This callback's constructor arguments as plain values (``options`` left out)."""
        params: dict[str, Any] = {}
        for name in inspect.signature(type(self).__init__).parameters:
            if name not in ("self", "options") and hasattr(self, name):
                params[name] = getattr(self, name)
        return params

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # TensorBoard keeps a run's first hparams record, and Lightning writes its own right
        # after on_fit_start: the configuration of every dataprops callback goes out here, once,
        # from the first active one.
        if self.active:
            self.guarded("configuration", self._publish_configuration, trainer)

    def _publish_configuration(self, trainer: pl.Trainer) -> None:
        ours = [
            callback
            for callback in getattr(trainer, "callbacks", [])
            if isinstance(callback, DataPropsCallback) and callback.active
        ]
        if not ours or ours[0] is not self:
            return
        from lightning_dataprops.findings import HyperparametersFinding

        config: dict[str, Any] = {}
        shared = all(callback.options == self.options for callback in ours)
        if shared:
            config["options"] = self.options.to_dict()
        for callback in ours:
            params = callback.hyperparameters()
            if not shared:
                params["options"] = callback.options.to_dict()
            name, number = type(callback).__name__, 1
            while name in config:  # e.g. two RepresentationIDMonitors on different layers
                number += 1
                name = f"{type(callback).__name__}_{number}"
            config[name] = params
        finding = HyperparametersFinding.from_mapping(config, prefix="dataprops")
        self.publish(trainer, finding)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # After every on_fit_end (the forecast publishes there) and before the loggers are
        # finalized: the last active dataprops callback writes the run report, once per fit.
        if stage != "fit" or not self.active:
            return
        self.budget.stop(trainer)
        if not trainer.is_global_zero:
            return
        ours = [
            callback
            for callback in getattr(trainer, "callbacks", [])
            if isinstance(callback, DataPropsCallback) and callback.active
        ]
        if ours and ours[-1] is self:
            from lightning_dataprops.integrations.run_report import write_run_reports

            # The fit's last ledger row holds the end-of-fit work (the forecast's findings, the
            # hooks after the last measurement); it is logged before the run report, which reads
            # it, so that the page written now and one rebuilt from the logs later agree.
            last_epoch = max(epochs_begun(trainer) - 1, 0)  # the last epoch that ran
            self.guarded(
                "the final overhead ledger",
                log_to_loggers,
                trainer,
                self.budget.report(trainer),
                epoch=last_epoch,
            )
            self.guarded("run report", write_run_reports, trainer)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        ledger = self.budget.checkpoint()
        if ledger is not None:
            state["ledger"] = ledger
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        ledger = state_dict.get("ledger")
        if isinstance(ledger, dict):
            self.budget.resume(ledger)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # A periodic value is in callback_metrics only on the epochs that measured it, so that
        # EarlyStopping(strict=False) skips the others instead of re-reading a stale value.
        forget_metrics(trainer, self._epoch_names)


time_hooks(DataPropsCallback)
