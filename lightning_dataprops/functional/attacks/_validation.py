"""Argument checks and autograd plumbing shared by the attacks (no attack logic here)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import torch
from torch import Tensor, nn

DataRange = tuple[float, float]
ChannelStats = Sequence[float] | Tensor
LossFn = Callable[[Tensor, Tensor], Tensor]
ForwardContext = Callable[[], AbstractContextManager[Any]]
AttackFn = Callable[[Tensor, Tensor], Tensor]


class NoInputGradientError(ValueError):
    """The model's loss has no gradient with respect to its inputs, so no gradient attack can
    move them: the model detaches its input, or runs (part of) its forward under
    ``torch.no_grad()``, e.g. a linear probe on a frozen encoder.

    Example:
        >>> issubclass(NoInputGradientError, ValueError)
        True
    """


NoInputGradientError.__module__ = "lightning_dataprops.functional.attacks"


NO_INPUT_GRADIENT = (
    "The loss does not depend on the inputs through autograd (does the model detach its input, "
    "or run its forward under no_grad?); it cannot be attacked. A linear probe on a frozen "
    "encoder: freeze the encoder's weights with encoder.requires_grad_(False) instead of running "
    "it under torch.no_grad() or on detached inputs, so that gradients reach the inputs (the "
    "weights still get none)."
)
"""What every attack says when the model gives no input gradient."""

_AUTOGRAD_NO_INPUT = (
    "appears to not have been used in the graph",
    "does not require grad and does not have a grad_fn",
)
"""autograd's own words for it (``torch.autograd.grad`` with respect to unused inputs)."""


def _input_gradient(loss: Tensor, inputs: Tensor) -> Tensor:
    """``d loss / d inputs``; :class:`NoInputGradientError` when the loss does not reach them."""
    if not loss.requires_grad:
        raise NoInputGradientError(NO_INPUT_GRADIENT)
    (grad,) = torch.autograd.grad(
        loss, inputs, retain_graph=False, create_graph=False, allow_unused=True
    )
    if grad is None:
        raise NoInputGradientError(NO_INPUT_GRADIENT)
    return grad


def _is_no_input_gradient(error: RuntimeError) -> bool:
    """Whether a third-party attack failed because autograd found no path to the inputs."""
    return any(words in str(error) for words in _AUTOGRAD_NO_INPUT)


def _normal(tensor: Tensor) -> Tensor:
    """A tensor autograd accepts: inference-mode tensors are cloned (call in non-inference mode)."""
    return tensor.clone() if tensor.is_inference() else tensor


def _context(forward_context: ForwardContext | None) -> AbstractContextManager[Any]:
    return contextlib.nullcontext() if forward_context is None else forward_context()


def _real(value: Any, name: str, *, minimum: float | None = 0.0) -> float:
    if isinstance(value, bool):
        raise ValueError(f"`{name}` must be a number, got a bool ({value}).")
    try:
        number = float(value)
    except (TypeError, ValueError, RuntimeError) as error:
        raise ValueError(f"`{name}` must be a number, got {value!r}.") from error
    if not math.isfinite(number):
        raise ValueError(f"`{name}` must be finite, got {number}.")
    if minimum is not None and number < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {number}.")
    return number


def _steps(steps: Any) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"`steps` must be an integer >= 1, got {steps!r}.")
    return steps


def _data_range(data_range: DataRange | None) -> DataRange | None:
    if data_range is None:
        return None
    try:
        low, high = data_range
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"`data_range` must be a pair (low, high) such as (0.0, 1.0), or None for no "
            f"clipping; got {data_range!r}."
        ) from error
    low_f = _real(low, "data_range[0]", minimum=None)
    high_f = _real(high, "data_range[1]", minimum=None)
    if not low_f < high_f:
        raise ValueError(f"`data_range` must satisfy low < high, got {data_range!r}.")
    return low_f, high_f


def _check_batch(x: Any, y: Any, *, class_ids: bool) -> None:
    """Check ``x`` (floating, ``(n, ...)``, finite) and ``y`` (``n`` targets)."""
    if not isinstance(x, Tensor):
        raise ValueError(f"`x` must be a torch.Tensor of shape (n, ...), got {type(x).__name__}.")
    if not isinstance(y, Tensor):
        raise ValueError(f"`y` must be a torch.Tensor of {len(x)} targets, got {type(y).__name__}.")
    if x.ndim < 2:
        raise ValueError(
            f"`x` has shape {tuple(x.shape)}; pass a batch of shape (n, ...) such as (n, C, H, W)."
        )
    if not x.is_floating_point():
        raise ValueError(
            f"`x` has dtype {x.dtype}; attacks need floating inputs (e.g. uint8 images / 255)."
        )
    n = int(x.shape[0])
    if n == 0:
        raise ValueError("`x` is an empty batch; pass at least one sample.")
    if y.ndim == 0 or int(y.shape[0]) != n:
        raise ValueError(
            f"`x` has {n} samples but `y` has shape {tuple(y.shape)}; pass one target per sample."
        )
    if not bool(torch.isfinite(x).all()):
        raise ValueError("`x` contains NaN or infinite values; attacks need finite inputs.")
    if class_ids:
        if y.ndim != 1 or y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
            raise ValueError(
                f"`y` must hold integer class ids of shape ({n},), got dtype {y.dtype} and shape "
                f"{tuple(y.shape)}. For other targets pass a matching `loss_fn`."
            )
        if bool((y < 0).any()):
            raise ValueError(
                f"`y` must hold class ids >= 0, got {int(y.min())}; remap the labels to 0..C-1."
            )


def _check_in_range(x: Tensor, data_range: DataRange | None) -> None:
    if data_range is None:
        return
    low, high = data_range
    x_min, x_max = float(x.min()), float(x.max())
    if x_min < low or x_max > high:
        raise ValueError(
            f"`x` lies in [{x_min:.4g}, {x_max:.4g}], outside data_range=({low:g}, {high:g}). "
            "Attacks work in pixel space: pass unnormalised inputs and give `mean`/`std` (or put "
            "the normalisation inside the model), or set `data_range` to the inputs' range (None "
            "for no clipping)."
        )


def _channel_stats(
    mean: ChannelStats | None, std: ChannelStats | None, x: Tensor
) -> tuple[Tensor, Tensor] | None:
    if mean is None and std is None:
        return None
    if mean is None or std is None:
        raise ValueError("Pass both `mean` and `std` for normalisation, or neither.")
    channels = int(x.shape[1])
    shape = (1, channels) + (1,) * (x.ndim - 2)
    stats = []
    for name, value in (("mean", mean), ("std", std)):
        tensor = torch.as_tensor(
            value.detach() if isinstance(value, Tensor) else value,
            dtype=x.dtype,
            device=x.device,
        )
        tensor = _normal(tensor).flatten()
        if tensor.numel() == 1:
            tensor = tensor.expand(channels)
        if tensor.numel() != channels:
            raise ValueError(
                f"`{name}` has {tensor.numel()} values but `x` has {channels} channels "
                f"(dimension 1 of shape {tuple(x.shape)}); pass one value per channel."
            )
        if not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"`{name}` must be finite, got {tensor.tolist()}.")
        stats.append(tensor.reshape(shape))
    if bool((stats[1] <= 0).any()):
        raise ValueError(f"`std` must be > 0, got {stats[1].flatten().tolist()}.")
    return stats[0], stats[1]


def _check_model(model: Any) -> None:
    if not isinstance(model, nn.Module):
        raise ValueError(f"`model` must be a torch.nn.Module, got {type(model).__name__}.")
    if any(p.is_inference() for p in model.parameters()):
        raise ValueError(
            "The model's parameters were created under torch.inference_mode(); autograd cannot "
            "differentiate through them. Create (or load) the model outside inference_mode."
        )
