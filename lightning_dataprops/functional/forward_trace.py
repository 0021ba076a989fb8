"""One traced forward pass: which leaf module calls ran, in order, and what each read.

The trace tells which module call produced what a later module reads (the head's input, a
reused activation's n-th call), from one forward pass under the same guards as
:func:`~lightning_dataprops.functional.representations.capture_representations`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from lightning_dataprops.functional._param_uses import LooseParameterUses, loose_parameters
from lightning_dataprops.functional._taps import (
    check_rows,
    chosen_call,
    eager_stance,
    flatten_representation,
    snapshot,
)
from lightning_dataprops.functional.model_guard import untouched
from lightning_dataprops.functional.module_names import (
    eager_module,
    named_modules,
    resolve_layers,
)


@dataclass(frozen=True)
class LeafRead:
    """What one call of a leaf module read, compared with what ran before it (on a trace).

    Attributes:
        name: the leaf module (uncompiled name); call: which of its calls (0-based).
        has_params: whether the module has parameters (a head candidate).
        rows: first dimension of its input (``None``: its input holds no tensor).
        previous: ``(name, call)`` of the leaf call that returned just before, if any.
        reads_previous: its input equals that call's output (as captured: flattened rows).
        reads_watched: the watched layers whose latest output equals its input.
    """

    name: str
    call: int
    has_params: bool
    rows: int | None
    previous: tuple[str, int] | None
    reads_previous: bool
    reads_watched: tuple[str, ...]


@dataclass(frozen=True)
class ForwardTrace:
    """What one hooked forward pass saw: every module call, in order, with its output's rows.

    ``calls`` holds ``(name, rows)`` per module call, repeats included (``rows``: the first
    dimension of the output, ``None`` when the output holds no tensor). ``reads`` holds one
    :class:`LeafRead` per leaf module call, in order. ``loose_uses`` holds ``(leaf calls
    started before it, parameter)`` per operation on a parameter that no leaf module owns
    (``F.linear(x, self.W)``). A module whose only children are parametrizations
    (``weight_norm``) is a leaf.
    """

    calls: tuple[tuple[str, int | None], ...]
    leaves: tuple[str, ...]
    n_inputs: int
    reads: tuple[LeafRead, ...] = ()
    loose_uses: tuple[tuple[int, str], ...] = ()
    output_read: int | None = None
    """Index into ``reads`` of the leaf call whose output the pass returned (through
    ``forward``: the tensor a ``forward_fn`` picks), or ``None`` when no leaf call's output is
    returned as is (a functional operation after the last module)."""

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
        chosen = rows[chosen_call(name, len(rows), layer_call)]
        check_rows(name, chosen or 0, self.n_inputs)


def _tensor(value: Any) -> Tensor | None:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], Tensor):
        return value[0]
    return None


def _rows(output: Any) -> int | None:
    tensor = _tensor(output)
    return None if tensor is None else int(tensor.shape[0]) if tensor.ndim else 1


def _same(a: Tensor | None, b: Tensor | None) -> bool:
    return a is not None and b is not None and a.shape == b.shape and bool(torch.equal(a, b))


def _is_leaf(name: str, module: nn.Module) -> bool:
    """A module without children, or whose only children are its parametrizations."""
    if not name or "parametrizations" in name.split("."):
        return False
    return all(child == "parametrizations" for child, _ in module.named_children())


class _Tracer:
    """The hooks of :func:`trace_forward`: module calls, and what each leaf call read."""

    def __init__(self, model: nn.Module, watch: Sequence[str]) -> None:
        self.modules = named_modules(model, remove_duplicate=False)
        self.leaves = tuple(n for n, m in named_modules(model) if _is_leaf(n, m))
        self.loose = loose_parameters(named_modules(model), _is_leaf)
        self._leaf_set = set(self.leaves)
        self.watch = tuple(watch)
        self.calls: list[tuple[str, int | None]] = []
        self.reads: list[LeafRead] = []
        self._count: dict[str, int] = {}
        self._latest: dict[str, Tensor] = {}
        self._last: tuple[str, int, Tensor | None] | None = None
        self.leaf_outputs: list[Tensor | None] = []
        """Each leaf call's output tensor, in call order (one per entry of ``reads``)."""

    def returned(self, name: str, output: Any) -> None:
        self.calls.append((name, _rows(output)))
        call = self._count.get(name, 0)
        self._count[name] = call + 1
        if name not in self.watch and name not in self._leaf_set:
            return
        tensor = _tensor(output)
        rows = None if tensor is None else snapshot(tensor)
        if name in self.watch and rows is not None:
            self._latest[name] = rows
        if name in self._leaf_set:
            self._last = (name, call, rows)
            self.leaf_outputs.append(tensor)

    def output_read(self, result: Any) -> int | None:
        """The last leaf call whose output is the tensor ``result`` holds (the same object)."""
        returned = _tensor(result)
        if returned is None:
            return None
        for index in range(len(self.leaf_outputs) - 1, -1, -1):
            if self.leaf_outputs[index] is returned:
                return index
        return None

    def reading(self, name: str, module: nn.Module, args: Any, kwargs: Any) -> None:
        tensor = _tensor(args or tuple(kwargs.values()))
        rows = None if tensor is None else flatten_representation(tensor.detach()).float()
        last = self._last
        self.reads.append(
            LeafRead(
                name=name,
                call=self._count.get(name, 0),
                has_params=any(True for _ in module.parameters()),
                rows=_rows(tensor),
                previous=None if last is None else last[:2],
                reads_previous=last is not None and _same(last[2], rows),
                reads_watched=tuple(w for w in self.watch if _same(self._latest.get(w), rows)),
            )
        )

    def hooks(self) -> list[Any]:
        handles = []
        for name, module in self.modules:
            if not name:
                continue
            handles.append(
                module.register_forward_hook(lambda _m, _a, out, n=name: self.returned(n, out))
            )
            if name in self._leaf_set:
                handles.append(
                    module.register_forward_pre_hook(
                        lambda m, args, kwargs, n=name: self.reading(n, m, args, kwargs),
                        with_kwargs=True,
                    )
                )
        return handles


def trace_forward(
    model: nn.Module, inputs: Tensor, forward: Any = None, *, watch: Sequence[str] = ()
) -> ForwardTrace:
    """One hooked forward pass on ``inputs`` that records every module call (eval mode,
    ``no_grad``, compiled modules eager; the model's state is untouched).

    Layer discovery, depths, call counts, the capture checks and the output head's input
    (:func:`~lightning_dataprops.functional.head_input.find_head_input`) all read this one
    pass. ``watch``: layer names whose outputs are compared with what each leaf call reads.

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
    tracer = _Tracer(model, watch)
    # Hooks are placed inside the guard, which removes every hook placed under it.
    uses = LooseParameterUses(tracer.loose, lambda: len(tracer.reads))
    with untouched(model, autograd=False), eager_stance():
        handles = tracer.hooks()
        try:
            with uses:
                result = model(inputs) if forward is None else forward(model, inputs)
        finally:
            for handle in handles:
                handle.remove()
    return ForwardTrace(
        tuple(tracer.calls),
        tracer.leaves,
        len(inputs),
        tuple(tracer.reads),
        tuple(uses.uses),
        output_read=tracer.output_read(result),
    )


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
    found = {id(m): n for n, m in named_modules(model, remove_duplicate=False) if n}
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
    named = resolve_layers(model, layers)
    calls = call_sequence(model, inputs, named, forward)
    return {name: calls.count(name) for name, _ in named}
