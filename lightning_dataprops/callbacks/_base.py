"""What every dataprops callback shares: options, the one forward path, failure isolation, state."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor

from lightning_dataprops.callbacks._budget import OverheadBudget
from lightning_dataprops.callbacks._data_source import fit_dataset
from lightning_dataprops.callbacks._logging import (
    forget_metrics,
    log_epoch_metrics,
    log_to_loggers,
)
from lightning_dataprops.data import Sample, read_first_item, sample_dataset
from lightning_dataprops.functional.model_guard import untouched
from lightning_dataprops.functional.representations import eager_module, eager_stance

T = TypeVar("T")
ForwardFn = Callable[[torch.nn.Module, Tensor], Any]
ItemFn = Callable[[Any], Any]


class MeasurementFailedWarning(UserWarning):
    """A measurement raised during training: it is disabled for the rest of the fit."""


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
    memory_budget_mb: float = 512.0
    overhead_budget: float | None = 0.05

    def to_dict(self) -> dict[str, Any]:
        """Plain values for hyperparameter logging (callables by their qualified name)."""
        return {
            key: (getattr(value, "__qualname__", repr(value)) if callable(value) else value)
            for key, value in asdict(self).items()
        }


eager = eager_module


def untouched_rng() -> AbstractContextManager[None]:
    """Every global random state (torch, CUDA, numpy, python) restored afterwards: the one
    model guard, guarding no model."""
    return untouched((), eval_mode=False)


class DataPropsCallback(Callback):
    """Base of the dataprops callbacks; subclasses implement one measurement each.

    Subclasses set ``STATE_VERSION`` and implement :meth:`_get_state`/:meth:`_set_state` for
    what must survive a resume. At fit start the first active dataprops callback of the trainer
    hands the configuration of all of them (:meth:`hyperparameters`) to every logger as one
    record; epoch-end values go through :meth:`log_metrics` and stay in
    ``trainer.callback_metrics`` until the next epoch starts.
    """

    STATE_VERSION = 1

    def __init__(self, options: DataPropsOptions | None = None) -> None:
        if options is not None and not isinstance(options, DataPropsOptions):
            raise TypeError(
                f"options must be a DataPropsOptions, got {type(options).__name__}; e.g. "
                "options=DataPropsOptions(seed=1, forward_fn=lambda m, x: m(x)[0])."
            )
        self.options = options if options is not None else DataPropsOptions()
        self.disabled: dict[str, str] = {}
        """Measurement name -> the reason it was disabled during this fit."""
        self.from_factory = False
        """Added by the ``LIGHTNING_DATAPROPS`` entry point (then it has its own state key)."""
        self.active = True
        """``False`` when a factory callback steps aside for one the user attached."""
        self._epoch_names: set[str] = set()
        self.budget = OverheadBudget(self.options.overhead_budget, type(self).__name__)

    # ------------------------------------------------------------------ setup
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Fit setup, timed and charged to the overhead budget (subclasses: ``_setup_fit``)."""
        if stage != "fit" or self.step_aside_for_user_callback(trainer):
            return
        self.budget.start(self.state_key)
        started = time.perf_counter()
        try:
            self._setup_fit(trainer, pl_module)
        finally:
            self.budget.charge(trainer, "setup", time.perf_counter() - started)

    def _setup_fit(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Check the configuration against the fit (raise here, before training), pick data."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning clears callback_metrics after the sanity check: put the ledger back.
        if self.active:
            self.budget.restore(trainer)

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
        return None if metrics is None else {**metrics, **spent}

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

    # ------------------------------------------------------------------ factory clash
    @property
    def state_key(self) -> str:
        key = self._state_key_parts()
        if self.from_factory:
            key["factory"] = "LIGHTNING_DATAPROPS"
        return self._generate_state_key(**key) if key else type(self).__qualname__

    def _state_key_parts(self) -> dict[str, Any]:
        return {}

    def step_aside_for_user_callback(self, trainer: pl.Trainer) -> bool:
        """A factory callback yields to a user's callback of the same type; ``True`` if it did."""
        if not self.from_factory:
            return False
        for callback in getattr(trainer, "callbacks", []):
            if type(callback) is type(self) and not getattr(callback, "from_factory", False):
                if self.active:
                    rank_zero_info(
                        f"{type(self).__name__} from LIGHTNING_DATAPROPS=1 is not used: the "
                        "trainer already has one you attached, which is used instead."
                    )
                self.active = False
                return True
        return False

    # ------------------------------------------------------------------ data
    def sample(self, dataset: Any, max_samples: int | None) -> Sample:
        """A seeded, class-stratified sample of ``dataset``, items read as the options say."""
        return sample_dataset(
            dataset,
            max_samples=max_samples,
            seed=self.options.seed,
            input_key=self.options.input_key,
            target_key=self.options.target_key,
            input_fn=self.options.input_fn,
            target_fn=self.options.target_fn,
        )

    def training_data(self, trainer: pl.Trainer) -> tuple[Any, Tensor]:
        """The dataset behind the fit's training data source, and the input of its first item.

        The loader is never iterated. Raises a ValueError (in ``setup``) when the fit has no
        training data or an item cannot be read as the options say.
        """
        dataset = fit_dataset(trainer, "train")
        if dataset is None:
            raise ValueError(
                f"{type(self).__name__} found no training data: define train_dataloader() on the "
                "LightningModule or DataModule, or pass train_dataloaders to fit()."
            )
        first_input, _ = read_first_item(
            dataset,
            input_key=self.options.input_key,
            target_key=self.options.target_key,
            input_fn=self.options.input_fn,
            target_fn=self.options.target_fn,
        )
        return dataset, first_input

    @staticmethod
    def check_sample_size(k: int, n_samples: int | None, name: str) -> None:
        """``k >= 2`` neighbours, and more samples than ``k`` (``None``: all of them)."""
        if k < 2:
            raise ValueError(f"k must be >= 2, got {k}.")
        if n_samples is not None and n_samples < k + 1:
            raise ValueError(f"{name}={n_samples} must exceed k={k}; raise it or lower k.")

    # ------------------------------------------------------------------ failure isolation
    def guarded(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """Run one measurement; on failure warn once, disable it and return ``None``.

        A failure inside a measurement must never end the user's training run.
        """
        if what in self.disabled:
            return None
        try:
            return fn(*args, **kwargs)
        except Exception as error:
            reason = f"{type(error).__name__}: {error}"
            self.disabled[what] = reason
            rank_zero_warn(
                f"{type(self).__name__}: {what} failed and is disabled for the rest of this fit; "
                f"training continues. Reason: {reason}",
                category=MeasurementFailedWarning,
            )
            return None

    # ------------------------------------------------------------------ forward path
    def forward(self, trainer: pl.Trainer) -> ForwardFn:
        """The one forward path: precision context, ``forward_fn``, compiled modules run eager."""
        user_forward = self.options.forward_fn

        def forward(module: torch.nn.Module, inputs: Tensor) -> Any:
            module = eager_module(module)
            with eager_stance(), trainer.precision_plugin.forward_context():
                return module(inputs) if user_forward is None else user_forward(module, inputs)

        return forward

    def show_progress(self, trainer: pl.Trainer) -> bool:
        """Progress bars: as the options say, else as the trainer shows its own; rank zero only."""
        if not trainer.is_global_zero:
            return False
        if self.options.progress is not None:
            return self.options.progress
        return trainer.progress_bar_callback is not None

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

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # A periodic value is in callback_metrics only on the epochs that measured it, so that
        # EarlyStopping(strict=False) skips the others instead of re-reading a stale value.
        forget_metrics(trainer, self._epoch_names)

    # ------------------------------------------------------------------ state
    def _get_state(self) -> dict[str, Any]:
        return {}

    def _set_state(self, state: dict[str, Any]) -> None:
        del state

    def state_dict(self) -> dict[str, Any]:
        return {"version": self.STATE_VERSION, **self._get_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        version = state_dict.get("version")
        if version != self.STATE_VERSION:
            rank_zero_warn(
                f"{type(self).__name__}: the checkpoint holds state version {version!r}, this "
                f"version reads {self.STATE_VERSION}; the state is ignored and recomputed."
            )
            return
        self._set_state(state_dict)
