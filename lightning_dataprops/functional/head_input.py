"""The representation the output head reads: the default layer of d_repr and of the forecast.

The head is the last module with parameters that the forward pass runs. What it reads is its
first argument at that call: captured by a hook on the head's input, it is right whatever
produced it (a shared activation on its second call, a functional ``F.relu`` that no module
hook sees, an in-place operation). It is named after the module whose output it is, when the
values show that one module call produced it; otherwise after the head (``"<head>.input"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from lightning_dataprops.functional._device import run_device
from lightning_dataprops.functional.module_names import named_modules
from lightning_dataprops.functional.representations import ForwardTrace, Tap, run_taps


@dataclass(frozen=True)
class HeadInput:
    """Where the output head's input comes from, found on one traced forward pass.

    Attributes:
        head: the output head (the last module with parameters to run), uncompiled name.
        head_call: which call of ``head`` reads it (0-based; a head runs once in most models).
        source: the module whose output the head reads, when it is one module call's output
            unchanged (up to a reshape); ``None`` when functional operations changed it.
        source_call: which call of ``source`` that is (0-based).
        source_calls: how many times ``source`` runs per forward pass.
        layers: which of the layers asked about (:func:`find_head_input`) output exactly what
            the head reads, deepest last.
    """

    head: str
    head_call: int
    source: str | None
    source_call: int
    source_calls: int
    layers: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The name the head's input is logged under: ``source``, else ``"<head>.input"``."""
        return self.source if self.source is not None else f"{self.head}.input"

    def describe(self) -> str:
        """One sentence: which layer was chosen and why."""
        if self.source is None:
            return (
                f"the output head {self.head!r} reads a tensor that no single module returns "
                f"(functional operations change it), so its input is measured as {self.name!r}"
            )
        call = (
            f"call {self.source_call} of {self.source!r}, which runs {self.source_calls} "
            "times per forward pass"
            if self.source_calls > 1
            else repr(self.source)
        )
        return f"the output head {self.head!r} reads the output of {call}"


def _leaf_calls(trace: ForwardTrace) -> list[tuple[str, int]]:
    seen: dict[str, int] = {}
    calls = []
    for name in trace.sequence(trace.leaves):
        calls.append((name, seen.get(name, 0)))
        seen[name] = seen.get(name, 0) + 1
    return calls


def _same(a: Tensor, b: Tensor) -> bool:
    return a.shape == b.shape and bool(torch.equal(a, b))


def find_head_input(
    model: nn.Module,
    inputs: Tensor,
    trace: ForwardTrace,
    *,
    forward: Any = None,
    layers: Sequence[tuple[str, nn.Module]] = (),
    layer_call: int | None = None,
) -> HeadInput:
    """Find the output head and what it reads, on the pass that ``trace`` recorded.

    Runs one more hooked pass on ``inputs`` (a couple of examples suffice; the model's state is
    untouched) that captures the head's input, the output of the module call just before the
    head and the outputs of ``layers`` (at ``layer_call``), and compares their values exactly.

    Args:
        model: the network (compiled or not).
        inputs: ``(n, ...)`` example inputs, those of ``trace``.
        trace: :func:`~lightning_dataprops.functional.representations.trace_forward` on them.
        forward: optional ``forward(model, batch)``.
        layers: ``(name, module)`` pairs (from ``resolve_layers``) to test against the head's
            input; the matches are in :attr:`HeadInput.layers`.
        layer_call: the call of ``layers`` to compare.

    Raises:
        ValueError: the model ran no submodule, or its head's input is not a tensor with one row
            per input.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from lightning_dataprops.functional.representations import trace_forward
        >>> act = nn.ReLU()
        >>> model = nn.Sequential(nn.Linear(4, 8), act, nn.Linear(8, 8), act, nn.Linear(8, 2))
        >>> x = torch.randn(2, 4)
        >>> found = find_head_input(model, x, trace_forward(model, x))
        >>> found.head, found.name, found.source_call
        ('4', '1', 1)
    """
    calls = _leaf_calls(trace)
    if not calls:
        raise ValueError(
            "The model ran no submodule on an example input, so no layer can be monitored; pass "
            "`layers=` with module names."
        )
    modules = dict(named_modules(model, remove_duplicate=False))
    with_params = [
        i for i, (name, _) in enumerate(calls) if any(True for _ in modules[name].parameters())
    ]
    position = with_params[-1] if with_params else len(calls) - 1
    head, head_call = calls[position]
    taps = [Tap(head, modules[head], read="input", layer_call=head_call)]
    if position > 0:
        before, before_call = calls[position - 1]
        taps.append(Tap(before, modules[before], layer_call=before_call))
    taps += [Tap(name, module, layer_call=layer_call) for name, module in layers]
    device = run_device(None, model)
    read, *values = run_taps(
        model, inputs, taps, batch_size=len(inputs), device=device, forward=forward
    )
    source = None
    if position > 0 and _same(values[0], read):
        source = taps[1].key
    return HeadInput(
        head=head,
        head_call=head_call,
        source=source,
        source_call=(taps[1].layer_call or 0) if source is not None else 0,
        source_calls=trace.counts([source])[source] if source is not None else 0,
        layers=tuple(
            name
            for (name, _), rows in zip(layers, values[len(values) - len(layers) :], strict=True)
            if _same(rows, read)
        ),
    )
