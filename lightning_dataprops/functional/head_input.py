"""The representation the output head reads: the default layer of d_repr and of the forecast.

The head is the last module with parameters that the forward pass runs up to the module whose
output the pass returns (through ``forward_fn``: a second head or an auxiliary branch run after
the picked logits is not the head). What it reads is its
first argument at that call: captured by a hook on the head's input, it is right whatever
produced it (a shared activation on its second call, a functional ``F.relu`` that no module
hook sees, an in-place operation). It is named after the module whose output it is, when the
values show that one module call produced it; otherwise after the head (``"<head>.input"``).
"""

from __future__ import annotations

from dataclasses import dataclass

from lightning_dataprops.functional.representations import ForwardTrace


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
        layers: which of the trace's watched layers output exactly what the head reads.
        used_after: parameters that no module owns, read by operations after the head's call
            (``F.linear(x, self.W)``): one of them may be the real, functional head.
    """

    head: str
    head_call: int
    source: str | None
    source_call: int
    source_calls: int
    layers: tuple[str, ...] = ()
    used_after: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The name the head's input is logged under: ``source``, else ``"<head>.input"``."""
        return self.source if self.source is not None else f"{self.head}.input"

    def describe(self) -> str:
        """Which layer was chosen and why (and a caution when a functional head may follow)."""
        caution = ""
        if self.used_after:
            caution = (
                f"; but the parameter(s) {', '.join(self.used_after)}, owned by no module, are "
                "used after it (a functional head such as F.linear(x, self.W)?), so the head's "
                "input may be elsewhere: pass layers= with the module whose output the real head "
                "reads, or make the head an nn.Module"
            )
        return self._source_sentence() + caution

    def _source_sentence(self) -> str:
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


def find_head_input(trace: ForwardTrace) -> HeadInput:
    """The output head and what it reads, from the pass that ``trace`` recorded.

    The head is the last leaf module call with parameters (the last leaf call in a model
    without any) up to the call whose output the pass returns (the tensor ``forward_fn``
    picks, when a module's output is returned as is: a second head that runs later is not
    it). ``trace`` compared, at that call, the head's input with the output of the leaf call
    just before it and with the watched layers' latest outputs, exactly.

    Raises:
        ValueError: the model ran no submodule, or the head's input does not hold one row
            per input.
        TypeError: the head's input is not a tensor.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from lightning_dataprops.functional.representations import trace_forward
        >>> act = nn.ReLU()
        >>> model = nn.Sequential(nn.Linear(4, 8), act, nn.Linear(8, 8), act, nn.Linear(8, 2))
        >>> found = find_head_input(trace_forward(model, torch.randn(2, 4), watch=["3"]))
        >>> found.head, found.name, found.source_call, found.layers
        ('4', '1', 1, ('3',))
    """
    if not trace.reads:
        raise ValueError(
            "The model ran no submodule on an example input, so no layer can be monitored; pass "
            "`layers=` with module names."
        )
    # Up to the call whose output the pass returned, when known: a second head or an
    # auxiliary branch that runs after it is not what forward_fn picked.
    ran = trace.reads if trace.output_read is None else trace.reads[: trace.output_read + 1]
    with_params = [read for read in ran if read.has_params]
    head = with_params[-1] if with_params else ran[-1]
    if head.rows is None:
        raise TypeError(
            f"The output head {head.name!r} (the last module with parameters to run) reads no "
            "tensor, so its input cannot be measured; pass `layers=` with module names."
        )
    if head.rows != trace.n_inputs:
        raise ValueError(
            f"The output head {head.name!r} reads {head.rows} rows for a batch of "
            f"{trace.n_inputs} inputs, so its input is not one representation per input; pass "
            "`layers=` with module names."
        )
    source = head.previous if head.reads_previous else None
    position = trace.reads.index(head)
    after = tuple(dict.fromkeys(name for started, name in trace.loose_uses if started > position))
    return HeadInput(
        head=head.name,
        head_call=head.call,
        source=None if source is None else source[0],
        source_call=0 if source is None else source[1],
        source_calls=0 if source is None else trace.counts([source[0]])[source[0]],
        layers=head.reads_watched,
        used_after=after,
    )
