"""What every dataprops callback shares: options, the one forward path, failure isolation, state."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor

from lightning_dataprops.callbacks._logging import log_to_trainer

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

    def to_dict(self) -> dict[str, Any]:
        """Plain values for hyperparameter logging (callables by their qualified name)."""
        return {
            key: (getattr(value, "__qualname__", repr(value)) if callable(value) else value)
            for key, value in asdict(self).items()
        }


def eager(module: torch.nn.Module) -> torch.nn.Module:
    """The original module of a ``torch.compile``d one (hooks placed on it fire), else itself."""
    return getattr(module, "_orig_mod", module)


class DataPropsCallback(Callback):
    """Base of the dataprops callbacks; subclasses implement one measurement each.

    Subclasses set ``STATE_VERSION`` and implement :meth:`_get_state`/:meth:`_set_state` for
    what must survive a resume.
    """

    STATE_VERSION = 1

    def __init__(self, options: DataPropsOptions | None = None) -> None:
        self.options = options if options is not None else DataPropsOptions()
        self.disabled: dict[str, str] = {}
        """Measurement name -> the reason it was disabled during this fit."""

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
            module = eager(module)
            with self.exact_eager(), trainer.precision_plugin.forward_context():
                return module(inputs) if user_forward is None else user_forward(module, inputs)

        return forward

    @staticmethod
    @contextlib.contextmanager
    def exact_eager() -> Iterator[None]:
        """Compiled submodules run eagerly inside, so that forward hooks fire on every call."""
        with torch.compiler.set_stance("force_eager"):
            yield

    def show_progress(self, trainer: pl.Trainer) -> bool:
        """Progress bars: as the options say, else as the trainer shows its own; rank zero only."""
        if not trainer.is_global_zero:
            return False
        if self.options.progress is not None:
            return self.options.progress
        return trainer.progress_bar_callback is not None

    # ------------------------------------------------------------------ logging
    @staticmethod
    def log_metrics(trainer: pl.Trainer, metrics: dict[str, float]) -> None:
        """To every logger (rank zero) and into ``trainer.callback_metrics``."""
        if metrics:
            log_to_trainer(trainer, metrics)

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
