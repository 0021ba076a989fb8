"""The one forward path of every pass the callbacks run over a model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor

from lightning_dataprops.functional.representations import eager_module, eager_stance

__all__ = ["eager_module", "eager_stance", "forward_path", "show_progress"]

ForwardFn = Callable[[torch.nn.Module, Tensor], Any]


def forward_path(trainer: pl.Trainer, user_forward: ForwardFn | None) -> ForwardFn:
    """``(module, inputs) -> output``: the trainer's precision context and ``forward_fn``
    (default ``module(inputs)``).

    Compiled modules are run eagerly once, where the model is handed over: the functional
    representation passes do it themselves, the robustness probe through :func:`eager`.
    """

    def forward(module: torch.nn.Module, inputs: Tensor) -> Any:
        with trainer.precision_plugin.forward_context():
            return module(inputs) if user_forward is None else user_forward(module, inputs)

    return forward


def show_progress(trainer: pl.Trainer, option: bool | None) -> bool:
    """Progress bars: as ``option`` says, else as the trainer shows its own; rank zero only."""
    if not trainer.is_global_zero:
        return False
    if option is not None:
        return option
    return trainer.progress_bar_callback is not None
