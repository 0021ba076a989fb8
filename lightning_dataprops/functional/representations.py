"""Capture a model's layer outputs on fixed inputs, without touching the model's state.

The pass runs in eval mode under ``no_grad`` on the model's device. Afterwards every module's
training flag, every buffer (BatchNorm running statistics included) and every parameter's
``.grad`` are as before, and no hook is left behind, also when the forward pass raises.

What is captured is the layer's output as it was returned: a later in-place operation
(``nn.ReLU(inplace=True)`` after a convolution, ``out += identity`` in a residual block) does
not change it. The hook reduces the output to its ``(n, features)`` rows at once, and copies
them only when those rows still share the output's storage.

Layer names are those of the uncompiled model (:mod:`~lightning_dataprops.functional.module_names`).
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn

from lightning_dataprops.functional._device import run_device
from lightning_dataprops.functional._param_uses import LooseParameterUses, loose_parameters
from lightning_dataprops.functional.model_guard import untouched
from lightning_dataprops.functional.module_names import (
    eager_module,
    module_name,
    named_modules,
    resolve_layers,
)

__all__ = [
    "ForwardTrace",
    "LeafRead",
    "Pooling",
    "Read",
    "call_counts",
    "call_sequence",
    "capture_representations",
    "eager_module",
    "eager_stance",
    "flatten_representation",
    "module_name",
    "resolve_layers",
    "trace_forward",
]

Pooling = Literal["avg", "max"] | None
Read = Literal["output", "input"]


def _first_tensor(value: Any, layer_name: str, read: Read = "output") -> Tensor:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], Tensor):
        return value[0]
    shown = "its arguments hold" if read == "input" else "it is"
    raise TypeError(
        f"The {read} of layer {layer_name!r} is not a tensor ({shown} "
        f"{type(value).__name__}); choose a layer whose {read} is a tensor (or a tuple whose "
        "first element is one)."
    )


def flatten_representation(output: Tensor, pool: Pooling = None) -> Tensor:
    """``(n, ...)`` layer output to ``(n, features)``, optionally pooled over spatial dims."""
    if output.ndim == 0:
        return output.reshape(1, 1)
    if output.ndim < 2:
        return output.reshape(output.shape[0], -1)
    if pool is not None and output.ndim > 2:
        spatial = tuple(range(2, output.ndim))
        output = output.mean(dim=spatial) if pool == "avg" else output.amax(dim=spatial)
    return output.reshape(output.shape[0], -1)


def snapshot(output: Tensor, pool: Pooling = None) -> Tensor:
    """The ``(n, features)`` float rows of ``output`` as they are now, safe from later in-place
    writes to ``output`` (a copy is made only when the rows would share its storage).

    Example:
        >>> import torch
        >>> out = torch.tensor([[-1.0, 2.0]])
        >>> rows = snapshot(out)
        >>> _ = out.relu_()
        >>> rows
        tensor([[-1.,  2.]])
    """
    rows = flatten_representation(output.detach(), pool).float()
    if rows.untyped_storage().data_ptr() == output.untyped_storage().data_ptr():
        rows = rows.clone()
    return rows


@contextlib.contextmanager
def eager_stance() -> Iterator[None]:
    """Compiled (sub)modules run eagerly inside, so that forward hooks fire on every call."""
    set_stance = getattr(torch.compiler, "set_stance", None)
    with contextlib.nullcontext() if set_stance is None else set_stance("force_eager"):
        yield


def _chosen_call(name: str, n_calls: int, layer_call: int | None) -> int:
    """The index of the call the caller means among ``n_calls``, checked."""
    if not n_calls:
        raise ValueError(
            f"The layer {name!r} did not run during the forward pass, so it has no output to "
            "capture; choose a layer that the forward pass uses (or fix forward_fn)."
        )
    if layer_call is None:
        if n_calls > 1:
            raise ValueError(
                f"The layer {name!r} ran {n_calls} times in one forward pass (a module "
                "reused, e.g. one shared activation); capturing all calls would mix different "
                f"representations. Pass layer_call=i (0 <= i < {n_calls}; -1 for the last "
                "call) to choose one, or monitor a module that runs once."
            )
        return 0
    if not -n_calls <= layer_call < n_calls:
        raise ValueError(
            f"layer_call={layer_call} but the layer {name!r} ran {n_calls} time(s) per "
            "forward pass."
        )
    return layer_call % n_calls


def _check_rows(name: str, rows: int, n_inputs: int, read: Read = "output") -> None:
    if rows != n_inputs:
        what = f"returned {rows} rows" if read == "output" else f"read an input of {rows} rows"
        raise ValueError(
            f"The layer {name!r} {what} for a batch of {n_inputs} inputs; only layers "
            "that keep the batch dimension first can be captured."
        )


@dataclass
class Tap:
    """One captured quantity: the output (or input) of ``module`` at one of its calls.

    The hook snapshots only the calls that can be the chosen one (``layer_call``: 0-based,
    negative from the end, ``None`` for a module that must run once), so a module run many
    times keeps one or ``-layer_call`` snapshots, not all of them.
    """

    key: str
    module: nn.Module
    read: Read = "output"
    layer_call: int | None = None
    pool: Pooling = None
    _seen: int = field(default=0, init=False)
    _kept: deque[tuple[int, Tensor]] = field(default_factory=deque, init=False)

    def start_batch(self) -> None:
        self._seen = 0
        back = self.layer_call is not None and self.layer_call < 0
        self._kept = deque(maxlen=-self.layer_call if back and self.layer_call else 1)

    def record(self, value: Any) -> None:
        index, self._seen = self._seen, self._seen + 1
        wanted = self.layer_call if self.layer_call is not None else 0
        if wanted < 0 or index == wanted:
            tensor = _first_tensor(value, self.key, self.read)
            rows = int(tensor.shape[0]) if tensor.ndim else 1
            self._kept.append((rows, snapshot(tensor, self.pool)))

    def hook(self) -> Any:
        if self.read == "input":
            return self.module.register_forward_pre_hook(
                lambda _m, args, kwargs: self.record(args or tuple(kwargs.values())),
                with_kwargs=True,
            )
        return self.module.register_forward_hook(lambda _m, _args, out: self.record(out))

    def chosen(self, n_inputs: int) -> Tensor:
        """This batch's rows from the chosen call, checked to hold one row per input."""
        _chosen_call(self.key, self._seen, self.layer_call)
        rows, values = self._kept[0]
        _check_rows(self.key, rows, n_inputs, self.read)
        return values


def run_taps(
    model: nn.Module,
    inputs: Tensor,
    taps: Sequence[Tap],
    *,
    batch_size: int,
    device: torch.device,
    forward: Any = None,
) -> list[Tensor]:
    """The ``(n, features)`` float32 CPU rows of each tap over ``inputs``, in the order of
    ``taps``: one hooked pass per batch (eval mode, ``no_grad``, compiled modules eager; the
    model's state untouched)."""
    model = eager_module(model)
    collected: list[list[Tensor]] = [[] for _ in taps]
    handles = []
    with untouched(model, autograd=False), eager_stance():
        try:
            handles = [tap.hook() for tap in taps]
            for batch in inputs.split(batch_size):
                for tap in taps:
                    tap.start_batch()
                batch = batch.to(device)
                model(batch) if forward is None else forward(model, batch)
                for tap, chunks in zip(taps, collected, strict=True):
                    chunks.append(tap.chosen(len(batch)).cpu())
        finally:
            for handle in handles:
                handle.remove()
    return [torch.cat(chunks) for chunks in collected]


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
        chosen = rows[_chosen_call(name, len(rows), layer_call)]
        _check_rows(name, chosen or 0, self.n_inputs)


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
                model(inputs) if forward is None else forward(model, inputs)
        finally:
            for handle in handles:
                handle.remove()
    return ForwardTrace(
        tuple(tracer.calls), tracer.leaves, len(inputs), tuple(tracer.reads), tuple(uses.uses)
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
    read: Read = "output",
) -> dict[str, Tensor]:
    """Outputs of ``layers`` on ``inputs``, flattened to ``(n, features)`` float32 on the CPU.

    The rows are each output as the layer returned it, also when a later in-place operation
    (``ReLU(inplace=True)``, ``out += identity``) rewrites that tensor; they are copied only
    when needed (when no pooling, dtype or device change made new storage already).
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
        read: ``"output"`` (default) or ``"input"``: what each layer reads (its first
            argument, as it arrives; e.g. the input of the output head).

    Returns:
        layer name (as in the uncompiled model) -> ``(n, features)`` float32 CPU tensor.

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
    if read not in ("output", "input"):
        raise ValueError(f"read must be 'output' or 'input', got {read!r}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    if len(inputs) == 0:
        raise ValueError("inputs is empty: pass at least one input to capture representations.")
    taps = [
        Tap(name, module, read=read, layer_call=layer_call, pool=pool)
        for name, module in resolve_layers(model, layers)
    ]
    target = run_device(device, eager_module(model))
    rows = run_taps(model, inputs, taps, batch_size=batch_size, device=target, forward=forward)
    return {tap.key: values for tap, values in zip(taps, rows, strict=True)}
