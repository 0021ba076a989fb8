"""A reference oracle for captured rows: a hook that clones what a module returned or read."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def cloned(model: nn.Module, module: nn.Module, x: Tensor, read: str = "output") -> Tensor:
    """Oracle: the module's output (or input) cloned inside a reference hook, flattened."""
    kept: list[Tensor] = []
    if read == "output":
        handle = module.register_forward_hook(lambda _m, _a, out: kept.append(out.clone()))
    else:
        handle = module.register_forward_pre_hook(lambda _m, args: kept.append(args[0].clone()))
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        handle.remove()
    return kept[0].flatten(1)
