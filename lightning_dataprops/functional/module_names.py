"""Module names as in the uncompiled model, whatever ``torch.compile`` wrapped.

``torch.compile(module)`` returns a wrapper that holds the original under ``_orig_mod``, so a
compiled submodule's layers are listed as ``net._orig_mod.pool``. Every name the product shows
(metric names, findings, layer lists, state keys) drops those parts: ``net.pool``, the same for
a compiled and a plain model. Names given with ``_orig_mod`` are accepted and mean the same.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

from torch import nn

_COMPILED_PART = "_orig_mod"


def eager_module(model: nn.Module) -> nn.Module:
    """The original module of a ``torch.compile``d one (hooks placed on it fire), else itself."""
    return getattr(model, _COMPILED_PART, model)


def _is_compiled_wrapper(module: nn.Module) -> bool:
    return isinstance(module._modules.get(_COMPILED_PART), nn.Module)


def module_name(name: str) -> str:
    """``name`` as in the uncompiled model: the ``_orig_mod`` parts of compiled modules dropped.

    Example:
        >>> module_name("net._orig_mod.pool"), module_name("_orig_mod.1"), module_name("fc")
        ('net.pool', '1', 'fc')
    """
    return ".".join(part for part in name.split(".") if part != _COMPILED_PART)


def named_modules(
    model: nn.Module, *, remove_duplicate: bool = True
) -> list[tuple[str, nn.Module]]:
    """``model.named_modules()`` under the uncompiled model's names, the root (``""``) first.

    A compiled module's original stands under the wrapper's name; the wrapper itself, which
    only forwards to it, is left out (hooks go on the original, which runs every call).

    Example:
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
        >>> [name for name, _ in named_modules(nn.ModuleDict({"net": net}))]
        ['', 'net', 'net.0', 'net.1']
    """
    return [
        (module_name(name), module)
        for name, module in eager_module(model).named_modules(remove_duplicate=remove_duplicate)
        if not _is_compiled_wrapper(module)
    ]


def _module_list(model: nn.Module, limit: int = 40) -> str:
    names = [name for name, _ in named_modules(model) if name]
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def resolve_layers(
    model: nn.Module, layers: Sequence[nn.Module | str] | nn.Module | str
) -> list[tuple[str, nn.Module]]:
    """Resolve modules, dotted names and glob patterns (``"features.*"``) to ``(name, module)``.

    Names are those of the uncompiled model (:func:`module_name`), and the module returned is
    the one whose hooks fire (a compiled module's original).

    Raises a ValueError that lists the model's module names when something does not match.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> [name for name, _ in resolve_layers(torch.compile(model), ["_orig_mod.1", "2"])]
        ['1', '2']
    """
    if isinstance(layers, (str, nn.Module)):
        layers = [layers]
    model = eager_module(model)
    listed = named_modules(model, remove_duplicate=False)
    by_module = {id(module): name for name, module in reversed(listed)}
    by_name = dict(listed)
    resolved: list[tuple[str, nn.Module]] = []
    for layer in layers:
        if isinstance(layer, nn.Module):
            original = eager_module(layer)
            if id(original) not in by_module:
                raise ValueError(
                    f"The layer {type(layer).__name__} is not a submodule of the model; pass one "
                    f"of its modules or their names: {_module_list(model)}."
                )
            resolved.append((by_module[id(original)] or type(original).__name__, original))
            continue
        wanted = module_name(layer)
        if any(char in wanted for char in "*?["):
            matches = [
                (name, module)
                for name, module in named_modules(model)
                if name and fnmatch.fnmatchcase(name, wanted)
            ]
            if not matches:
                raise ValueError(
                    f"No module of the model matches the pattern {layer!r}; its modules are: "
                    f"{_module_list(model)}."
                )
            resolved.extend(matches)
            continue
        if wanted in by_name and wanted:
            resolved.append((wanted, by_name[wanted]))
            continue
        try:
            resolved.append((wanted, eager_module(model.get_submodule(layer))))
        except AttributeError as error:
            raise ValueError(
                f"The model has no module named {layer!r}; its modules are: {_module_list(model)}."
            ) from error
    unique: dict[str, nn.Module] = {}
    for name, module in resolved:
        unique.setdefault(name, module)
    return list(unique.items())
