"""Forward hooks that take a layer's rows the moment it returns (the capture's building blocks)."""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn

from lightning_dataprops.functional.model_guard import untouched
from lightning_dataprops.functional.module_names import (
    eager_module,
)

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


def chosen_call(name: str, n_calls: int, layer_call: int | None) -> int:
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


def check_rows(name: str, rows: int, n_inputs: int, read: Read = "output") -> None:
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
        chosen_call(self.key, self._seen, self.layer_call)
        rows, values = self._kept[0]
        check_rows(self.key, rows, n_inputs, self.read)
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
