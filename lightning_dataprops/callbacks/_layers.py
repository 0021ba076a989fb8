"""Choose and describe the layers whose representations are monitored, from one traced pass.

The orders come from :func:`~lightning_dataprops.functional.representations.trace_forward`:
setup runs one hooked forward pass and every answer here reads it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def penultimate_layer(model: nn.Module, order: list[str]) -> str:
    """The leaf module run just before the last one that has parameters (the output head).

    ``order``: the leaf modules in execution order. For a classifier ending in ``Linear`` this
    is the representation the head reads (often a flatten, pooling or activation module). Falls
    back to the last module for single-layer models.

    Example:
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> penultimate_layer(model, ["0", "1", "2"])
        '1'
    """
    if not order:
        raise ValueError(
            "The model ran no submodule on an example input, so no layer can be monitored; pass "
            "`layers=` with module names."
        )
    modules = dict(model.named_modules())
    with_params = [
        i
        for i, name in enumerate(order)
        if name in modules and any(True for _ in modules[name].parameters())
    ]
    head = with_params[-1] if with_params else len(order) - 1
    return order[head - 1] if head > 0 else order[head]


def layer_depths(order: list[str], names: list[str]) -> dict[str, int]:
    """Depth of each layer: its position among the leaf modules in execution order (1-based).

    A container's depth is that of its last leaf.

    Example:
        >>> layer_depths(["features.0", "features.1", "head"], ["head", "features"])
        {'head': 3, 'features': 2}
    """
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
