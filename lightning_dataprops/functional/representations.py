"""Capture a model's layer outputs on fixed inputs, without touching the model's state.

The pass runs in eval mode under ``no_grad`` on the model's device. Afterwards every module's
training flag, every buffer (BatchNorm running statistics included) and every parameter's
``.grad`` are as before, and no hook is left behind, also when the forward pass raises.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from lightning_dataprops.functional.model_guard import untouched

Pooling = Literal["avg", "max"] | None


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a stateless model)."""
    for parameter in model.parameters():
        return parameter.device
    for buffer in model.buffers():
        return buffer.device
    return torch.device("cpu")


def _module_list(model: nn.Module, limit: int = 40) -> str:
    names = [name for name, _ in model.named_modules() if name]
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def resolve_layers(
    model: nn.Module, layers: Sequence[nn.Module | str] | nn.Module | str
) -> list[tuple[str, nn.Module]]:
    """Resolve modules, dotted names and glob patterns (``"features.*"``) to ``(name, module)``.

    Raises a ValueError that lists the model's module names when something does not match.
    """
    if isinstance(layers, (str, nn.Module)):
        layers = [layers]
    by_module = {id(module): name for name, module in model.named_modules()}
    resolved: list[tuple[str, nn.Module]] = []
    for layer in layers:
        if isinstance(layer, nn.Module):
            if id(layer) not in by_module:
                raise ValueError(
                    f"The layer {type(layer).__name__} is not a submodule of the model; pass one "
                    f"of its modules or their names: {_module_list(model)}."
                )
            resolved.append((by_module[id(layer)] or type(layer).__name__, layer))
            continue
        if any(char in layer for char in "*?["):
            matches = [
                (n, m) for n, m in model.named_modules() if n and fnmatch.fnmatchcase(n, layer)
            ]
            if not matches:
                raise ValueError(
                    f"No module of the model matches the pattern {layer!r}; its modules are: "
                    f"{_module_list(model)}."
                )
            resolved.extend(matches)
            continue
        try:
            resolved.append((layer, model.get_submodule(layer)))
        except AttributeError as error:
            raise ValueError(
                f"The model has no module named {layer!r}; its modules are: {_module_list(model)}."
            ) from error
    unique: dict[str, nn.Module] = {}
    for name, module in resolved:
        unique.setdefault(name, module)
    return list(unique.items())


def _first_tensor(output: Any, layer_name: str) -> Tensor:
    if isinstance(output, Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], Tensor):
        return output[0]
    raise TypeError(
        f"The output of layer {layer_name!r} is a {type(output).__name__}, not a tensor; choose a "
        "layer that returns a tensor (or a tuple whose first element is one)."
    )


def flatten_representation(output: Tensor, pool: Pooling = None) -> Tensor:
    """``(n, ...)`` layer output to ``(n, features)``, optionally pooled over spatial dims."""
    if output.ndim < 2:
        return output.reshape(output.shape[0], -1)
    if pool is not None and output.ndim > 2:
        spatial = tuple(range(2, output.ndim))
        output = output.mean(dim=spatial) if pool == "avg" else output.amax(dim=spatial)
    return output.reshape(output.shape[0], -1)


def capture_representations(
    model: nn.Module,
    inputs: Tensor,
    layers: Sequence[nn.Module | str] | nn.Module | str,
    *,
    batch_size: int = 256,
    pool: Pooling = None,
    device: torch.device | str | None = None,
    forward: Any = None,
) -> dict[str, Tensor]:
    """Outputs of ``layers`` on ``inputs``, flattened to ``(n, features)`` float32 on the CPU.

    Args:
        model: the network; its state is left exactly as it was.
        inputs: ``(n, ...)`` model inputs.
        layers: modules, dotted names or glob patterns.
        batch_size: inputs per forward pass.
        pool: ``"avg"`` or ``"max"`` pooling over spatial dimensions, or ``None`` to flatten.
        device: where to run (default: the model's device).
        forward: optional callable ``forward(model, batch)``; default ``model(batch)``.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from lightning_dataprops.functional.representations import capture_representations
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> feats = capture_representations(model, torch.randn(10, 4), ["1"])
        >>> feats["1"].shape
        torch.Size([10, 8])
    """
    if pool not in (None, "avg", "max"):
        raise ValueError(f"pool must be None, 'avg' or 'max', got {pool!r}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    named = resolve_layers(model, layers)
    target = torch.device(device) if device is not None else model_device(model)
    collected: dict[str, list[Tensor]] = {name: [] for name, _ in named}
    handles = []

    def make_hook(name: str) -> Any:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            tensor = _first_tensor(output, name)
            collected[name].append(flatten_representation(tensor.detach(), pool).float().cpu())

        return hook

    with untouched(model, autograd=False):
        try:
            for name, module in named:
                handles.append(module.register_forward_hook(make_hook(name)))
            for batch in inputs.split(batch_size):
                batch = batch.to(target)
                if forward is None:
                    model(batch)
                else:
                    forward(model, batch)
        finally:
            for handle in handles:
                handle.remove()
    return {name: torch.cat(chunks) for name, chunks in collected.items()}
