"""Choose and describe the layers whose representations are monitored."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lightning_dataprops.functional.representations import call_sequence


def execution_order(model: nn.Module, example: Tensor, forward: Any = None) -> list[str]:
    """Names of the leaf modules in the order a forward pass on ``example`` first runs them."""
    leaves = [(n, m) for n, m in model.named_modules() if n and not list(m.children())]
    return list(dict.fromkeys(call_sequence(model, example, leaves, forward)))


def penultimate_layer(model: nn.Module, example: Tensor, forward: Any = None) -> str:
    """The leaf module run just before the last one that has parameters (the output head).

    For a classifier ending in ``Linear`` this is the representation the head reads (often
    a flatten, pooling or activation module). Falls back to the last module for single-layer
    models.
    """
    order = execution_order(model, example, forward)
    if not order:
        raise ValueError(
            "The model ran no submodule on an example input, so no layer can be monitored; pass "
            "`layers=` with module names."
        )
    modules = dict(model.named_modules())
    with_params = [
        i for i, name in enumerate(order) if any(True for _ in modules[name].parameters())
    ]
    head = with_params[-1] if with_params else len(order) - 1
    return order[head - 1] if head > 0 else order[head]


def layer_depths(
    model: nn.Module, names: list[str], example: Tensor, forward: Any = None
) -> dict[str, int]:
    """Depth of each layer: its position among the leaf modules in execution order (1-based).

    A container's depth is that of its last leaf.
    """
    order = execution_order(model, example, forward)
    position = {name: index + 1 for index, name in enumerate(order)}
    depths: dict[str, int] = {}
    for name in names:
        if name in position:
            depths[name] = position[name]
            continue
        inside = [position[leaf] for leaf in order if leaf.startswith(name + ".")]
        depths[name] = max(inside) if inside else 0
    return depths


def example_batch(inputs: Tensor, device: torch.device) -> Tensor:
    """A batch of two inputs (BatchNorm in train mode rejects one) on ``device``."""
    return inputs[:2].to(device)
