"""The one device helper: where a model lives, and where a computation should run."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["model_device", "run_device"]


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a stateless model).

    Example:
        >>> from torch import nn
        >>> model_device(nn.Linear(2, 2)), model_device(nn.ReLU())
        (device(type='cpu'), device(type='cpu'))
    """
    for parameter in model.parameters():
        return parameter.device
    for buffer in model.buffers():
        return buffer.device
    return torch.device("cpu")


def run_device(device: torch.device | str | None, model: nn.Module) -> torch.device:
    """``device`` when given, else the model's device.

    Example:
        >>> from torch import nn
        >>> run_device("cpu", nn.Linear(2, 2)), run_device(None, nn.ReLU())
        (device(type='cpu'), device(type='cpu'))
    """
    return torch.device(device) if device is not None else model_device(model)
