"""Capture a model's layer outputs on fixed inputs, without touching the model's state.

The pass runs in eval mode under ``no_grad`` on the model's device. Afterwards every module's
training flag, every buffer (BatchNorm running statistics included) and every parameter's
``.grad`` are as before, and no hook is left behind, also when the forward pass raises.
"""

from __future__ import annotations

import contextlib
import fnmatch
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from lightning_dataprops.functional._device import run_device
from lightning_dataprops.functional.model_guard import untouched

Pooling = Literal["avg", "max"] | None


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


def eager_module(model: nn.Module) -> nn.Module:
    """The original module of a ``torch.compile``d one (hooks placed on it fire), else itself."""
    return getattr(model, "_orig_mod", model)


@contextlib.contextmanager
def eager_stance() -> Iterator[None]:
    """Compiled (sub)modules run eagerly inside, so that forward hooks fire on every call."""
    set_stance = getattr(torch.compiler, "set_stance", None)
    with contextlib.nullcontext() if set_stance is None else set_stance("force_eager"):
        yield


def _strip_compiled(layer: nn.Module | str) -> nn.Module | str:
    prefix = "_orig_mod."
    return layer[len(prefix) :] if isinstance(layer, str) and layer.startswith(prefix) else layer


def _one_call(name: str, outputs: list[Tensor], n_inputs: int, layer_call: int | None) -> Tensor:
    """The output of the call the caller means, checked to hold exactly one row per input."""
    if not outputs:
        raise ValueError(
            f"The layer {name!r} did not run during the forward pass, so it has no output to "
            "capture; choose a layer that the forward pass uses (or fix forward_fn)."
        )
    if layer_call is None:
        if len(outputs) > 1:
            raise ValueError(
                f"The layer {name!r} ran {len(outputs)} times in one forward pass (a module "
                "reused, e.g. one shared activation); capturing all calls would mix different "
                f"representations. Pass layer_call=i (0 <= i < {len(outputs)}; -1 for the last "
                "call) to choose one, or monitor a module that runs once."
            )
        layer_call = 0
    if not -len(outputs) <= layer_call < len(outputs):
        raise ValueError(
            f"layer_call={layer_call} but the layer {name!r} ran {len(outputs)} time(s) per "
            "forward pass."
        )
    chosen = outputs[layer_call]
    if chosen.shape[0] != n_inputs:
        raise ValueError(
            f"The layer {name!r} returned {chosen.shape[0]} rows for a batch of {n_inputs} "
            "inputs; only layers that keep the batch dimension first can be captured."
        )
    return chosen


@dataclass(frozen=True)
class ForwardTrace:
    """What one hooked forward pass saw: every module call, in order, with its output's rows.

    ``calls`` holds ``(name, rows)`` per module call, repeats included (``rows``: the first
    dimension of the output, ``None`` when the output holds no tensor).
    """

    calls: tuple[tuple[str, int | None], ...]
    leaves: tuple[str, ...]
    n_inputs: int

    def sequence(self, names: Sequence[str] | None = None) -> list[str]:
        """Names called, in order, repeats included (only ``names`` when given)."""
        keep = None if names is None else set(names)
        return [name for name, _ in self.calls if keep is None or name in keep]

    def execution_order(self) -> list[str]:
        """The leaf modules in the order the pass first ran them."""
        return list(dict.fromkeys(self.sequence(self.leaves)))

    def counts(self, names: Sequence[str]) -> dict[str, int]:
        """How many times each of ``names`` ran."""
        calls = self.sequence(names)
        return {name: calls.count(name) for name in names}

    def check(self, name: str, layer_call: int | None) -> None:
        """The checks :func:`capture_representations` makes on ``name``, on this pass."""
        rows = [r for n, r in self.calls if n == name]
        if any(r is None for r in rows):
            raise TypeError(
                f"The output of layer {name!r} is not a tensor; choose a layer that returns a "
                "tensor (or a tuple whose first element is one)."
            )
        _one_call(name, [torch.empty(r or 0, 0) for r in rows], self.n_inputs, layer_call)


def _rows(output: Any) -> int | None:
    if isinstance(output, Tensor):
        return int(output.shape[0]) if output.ndim else 1
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], Tensor):
        return _rows(output[0])
    return None


def trace_forward(model: nn.Module, inputs: Tensor, forward: Any = None) -> ForwardTrace:
    """One hooked forward pass on ``inputs`` that records every module call (eval mode,
    ``no_grad``, compiled modules eager; the model's state is untouched).

    Layer discovery, depths, call counts and the capture checks all read this one pass.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> relu = nn.ReLU()
        >>> model = nn.Sequential(nn.Linear(4, 8), relu, nn.Linear(8, 8), relu)
        >>> trace = trace_forward(model, torch.randn(2, 4))
        >>> trace.execution_order(), trace.counts(["1"])
        (['0', '1', '2'], {'1': 2})
    """
    model = eager_module(model)
    leaves = tuple(n for n, m in model.named_modules() if n and not list(m.children()))
    calls: list[tuple[str, int | None]] = []
    # Hooks are placed inside the guard, which removes every hook placed under it.
    with untouched(model, autograd=False), eager_stance():
        handles = [
            module.register_forward_hook(
                lambda _m, _a, out, name=name: calls.append((name, _rows(out)))
            )
            for name, module in model.named_modules(remove_duplicate=False)
            if name
        ]
        try:
            model(inputs) if forward is None else forward(model, inputs)
        finally:
            for handle in handles:
                handle.remove()
    return ForwardTrace(tuple(calls), leaves, len(inputs))


def call_sequence(
    model: nn.Module,
    inputs: Tensor,
    modules: Sequence[tuple[str, nn.Module]],
    forward: Any = None,
) -> list[str]:
    """Names of ``modules`` in the order one forward pass on ``inputs`` calls them, repeats
    included (eval mode, ``no_grad``, compiled modules eager; the model's state is untouched)."""
    by_module: dict[int, list[str]] = {}
    for name, module in modules:
        by_module.setdefault(id(module), []).append(name)
    found = {id(m): n for n, m in eager_module(model).named_modules(remove_duplicate=False) if n}
    trace = trace_forward(model, inputs, forward)
    wanted = {found.get(key, ""): names for key, names in by_module.items()}
    return [name for called in trace.sequence() for name in wanted.get(called, ())]


def call_counts(
    model: nn.Module, inputs: Tensor, layers: Sequence[str], forward: Any = None
) -> dict[str, int]:
    """How many times each of ``layers`` runs in one forward pass on ``inputs`` (state untouched).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> relu = nn.ReLU()
        >>> model = nn.Sequential(nn.Linear(4, 8), relu, nn.Linear(8, 8), relu)
        >>> call_counts(model, torch.randn(2, 4), ["0", "1"])
        {'0': 1, '1': 2}
    """
    named = resolve_layers(eager_module(model), [_strip_compiled(layer) for layer in layers])
    calls = call_sequence(model, inputs, named, forward)
    return {name: calls.count(name) for name, _ in named}


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
) -> dict[str, Tensor]:
    """Outputs of ``layers`` on ``inputs``, flattened to ``(n, features)`` float32 on the CPU.

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

    Returns:
        layer name -> ``(n, features)`` float32 CPU tensor.

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
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    if len(inputs) == 0:
        raise ValueError("inputs is empty: pass at least one input to capture representations.")
    model = eager_module(model)
    if isinstance(layers, (str, nn.Module)):
        layers = [layers]
    named = resolve_layers(model, [_strip_compiled(layer) for layer in layers])
    target = run_device(device, model)
    collected: dict[str, list[Tensor]] = {name: [] for name, _ in named}
    calls: dict[str, list[Tensor]] = {name: [] for name, _ in named}
    handles = []

    def make_hook(name: str) -> Any:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            calls[name].append(_first_tensor(output, name).detach())

        return hook

    with untouched(model, autograd=False), eager_stance():
        try:
            for name, module in named:
                handles.append(module.register_forward_hook(make_hook(name)))
            for batch in inputs.split(batch_size):
                for outputs in calls.values():
                    outputs.clear()
                batch = batch.to(target)
                if forward is None:
                    model(batch)
                else:
                    forward(model, batch)
                for name, outputs in calls.items():
                    chosen = _one_call(name, outputs, len(batch), layer_call)
                    collected[name].append(flatten_representation(chosen, pool).float().cpu())
        finally:
            for handle in handles:
                handle.remove()
    return {name: torch.cat(chunks) for name, chunks in collected.items()}
