"""Which parameters a forward pass uses outside the module that owns them, and when.

A head written as ``F.linear(features, self.W)`` with ``W`` a parameter of a container (no
module of its own) is invisible to module hooks: the last module with parameters is then not
the head. :class:`LooseParameterUses` records, during one traced pass, each operation that
reads such a parameter and how many leaf module calls had started before it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn
from torch.overrides import TorchFunctionMode


def loose_parameters(
    modules: list[tuple[str, nn.Module]], is_leaf: Callable[[str, nn.Module], bool]
) -> dict[int, str]:
    """``id(parameter) -> name`` of the parameters owned by modules that are not leaves (a
    container's own parameters: the root's, a ``ModuleDict``'s), parametrizations left out."""
    loose: dict[int, str] = {}
    for name, module in modules:
        if is_leaf(name, module) or "parametrizations" in name.split("."):
            continue
        for pname, parameter in module.named_parameters(recurse=False):
            loose.setdefault(id(parameter), f"{name}.{pname}" if name else pname)
    return loose


class LooseParameterUses(TorchFunctionMode):
    """Records ``(leaf calls started so far, parameter name)`` per operation on a loose
    parameter; ``clock`` returns the number of leaf calls started."""

    def __init__(self, loose: dict[int, str], clock: Callable[[], int]) -> None:
        super().__init__()
        self.loose = loose
        self.clock = clock
        self.uses: list[tuple[int, str]] = []

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if self.loose:
            values = [*args, *(kwargs or {}).values()]
            for value in values:
                for item in value if isinstance(value, (list, tuple)) else (value,):
                    name = self.loose.get(id(item)) if isinstance(item, nn.Parameter) else None
                    if name is not None:
                        self.uses.append((self.clock(), name))
        return func(*args, **(kwargs or {}))
