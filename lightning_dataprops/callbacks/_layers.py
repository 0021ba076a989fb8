"""Describe the layers whose representations are monitored, from one traced pass.

The orders come from :func:`~lightning_dataprops.functional.representations.trace_forward`:
setup runs one hooked forward pass and every answer here reads it.
"""

from __future__ import annotations

import torch
from torch import Tensor


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
