"""Capture a model's layer outputs on fixed inputs, without touching the model's state.

The pass runs in eval mode under ``no_grad`` on the model's device. Afterwards every module's
training flag, every buffer (BatchNorm running statistics included) and every parameter's
``.grad`` are as before, and no hook is left behind, also when the forward pass raises.

What is captured is the layer's output as it was returned: a later in-place operation
(``nn.ReLU(inplace=True)`` after a convolution, ``out += identity`` in a residual block) does
not change it. The hook reduces the output to its ``(n, features)`` rows at once, and copies
them only when those rows still share the output's storage.

Layer names are those of the uncompiled model (:mod:`~lightning_dataprops.functional.module_names`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from lightning_dataprops.functional._device import run_device
from lightning_dataprops.functional._taps import (
    Pooling,
    Read,
    Tap,
    eager_stance,
    flatten_representation,
    run_taps,
)
from lightning_dataprops.functional.forward_trace import (
    ForwardTrace,
    LeafRead,
    call_counts,
    call_sequence,
    trace_forward,
)
from lightning_dataprops.functional.module_names import (
    eager_module,
    module_name,
    resolve_layers,
)

__all__ = [
    "ForwardTrace",
    "LeafRead",
    "Pooling",
    "Read",
    "call_counts",
    "call_sequence",
    "capture_representations",
    "eager_module",
    "eager_stance",
    "flatten_representation",
    "module_name",
    "resolve_layers",
    "trace_forward",
]


def capture_representations(
    model: nn.Module,
    inputs: Tensor,
    layers: Sequence[nn.Module | str] | nn.Module | str,
    *,
    batch_size: int = 256,
    pool: Pooling = None,
    device: torch.device | str | None = None,
    forward: Any = None,
    layer_call: int | None = None,
    read: Read = "output",
) -> dict[str, Tensor]:
    """Outputs of ``layers`` on ``inputs``, flattened to ``(n, features)`` float32 on the CPU.

    The rows are each output as the layer returned it, also when a later in-place operation
    (``ReLU(inplace=True)``, ``out += identity``) rewrites that tensor; they are copied only
    when needed (when no pooling, dtype or device change made new storage already).
    Exactly one row per input is captured, and this is checked. A ``torch.compile``d model is
    run through its original module (compiled submodules run eagerly), so that the hooks fire
    on every batch. A module that runs several times per forward pass (a shared activation) is
    refused with a clear message unless ``layer_call`` says which call to capture.

    Args:
        model: the network; its state is left exactly as it was.
        inputs: ``(n, ...)`` model inputs.
        layers: modules, dotted names or glob patterns.
        batch_size: inputs per forward pass.
        pool: ``"avg"`` or ``"max"`` pooling over spatial dimensions, or ``None`` to flatten.
        device: where to run (default: the model's device).
        forward: optional callable ``forward(model, batch)``; default ``model(batch)``.
        layer_call: for modules called several times per forward pass, which call to capture
            (0-based, ``-1`` for the last); ``None`` refuses such modules.
        read: ``"output"`` (default) or ``"input"``: what each layer reads (its first
            argument, as it arrives; e.g. the input of the output head).

    Returns:
        layer name (as in the uncompiled model) -> ``(n, features)`` float32 CPU tensor.

    Raises:
        ValueError: unknown layers, a layer that never runs or runs several times without
            ``layer_call``, or a layer whose output does not have one row per input.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from lightning_dataprops.functional.representations import capture_representations
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> feats = capture_representations(model, torch.randn(10, 4), ["1"])
        >>> feats["1"].shape
        torch.Size([10, 8])
        >>> relu = nn.ReLU()
        >>> shared = nn.Sequential(nn.Linear(4, 8), relu, nn.Linear(8, 8), relu)
        >>> capture_representations(shared, torch.randn(10, 4), ["1"], layer_call=0)["1"].shape
        torch.Size([10, 8])
    """
    if pool not in (None, "avg", "max"):
        raise ValueError(f"pool must be None, 'avg' or 'max', got {pool!r}.")
    if read not in ("output", "input"):
        raise ValueError(f"read must be 'output' or 'input', got {read!r}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    if len(inputs) == 0:
        raise ValueError("inputs is empty: pass at least one input to capture representations.")
    taps = [
        Tap(name, module, read=read, layer_call=layer_call, pool=pool)
        for name, module in resolve_layers(model, layers)
    ]
    target = run_device(device, eager_module(model))
    rows = run_taps(model, inputs, taps, batch_size=batch_size, device=target, forward=forward)
    return {tap.key: values for tap, values in zip(taps, rows, strict=True)}
