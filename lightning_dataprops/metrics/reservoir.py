"""``ReservoirMetric``: the base class of the metrics here.

List states filled by seeded reservoir sampling, so that a metric's memory stays bounded however
long it is updated; DDP sync merges the ranks' reservoirs into a uniform sample of everything seen.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat
from torchmetrics.utilities.distributed import gather_all_tensors

from lightning_dataprops.functional.distributed import (
    communication_device,
    distributed_world_size,
)

__all__ = ["ReservoirMetric", "float_rows"]

_GOLDEN = 0x9E3779B97F4A7C15
_MASK63 = (1 << 63) - 1


def _stream_seed(seed: int, *counters: int) -> int:
    """A 63-bit seed mixed from ``seed`` and stream counters (splitmix64-style)."""
    state = seed & _MASK63
    for counter in counters:
        state = (state + _GOLDEN * (counter + 1)) & ((1 << 64) - 1)
        state = ((state ^ (state >> 30)) * 0xBF58476D1CE4E5B9) & ((1 << 64) - 1)
        state = ((state ^ (state >> 27)) * 0x94D049BB133111EB) & ((1 << 64) - 1)
        state ^= state >> 31
    return state & _MASK63


def _as_rows(state: Any) -> Tensor | None:
    """A list-or-tensor ``cat`` state as one tensor (``None`` when empty)."""
    if isinstance(state, Tensor):
        return state
    chunks = [chunk for chunk in state if isinstance(chunk, Tensor)]
    return dim_zero_cat(chunks) if chunks else None


def float_rows(x: Tensor, stored: Tensor | None) -> Tensor:
    """``x`` ``(b, ...)`` as ``(b, features)`` rows to store: float64 for float64 inputs (their
    range and precision kept: float32 would turn 1e200 into inf and 1e-200 into 0), float32 for
    every other dtype; the dtype of the ``stored`` rows when the metric already holds some.

    Raises:
        ValueError: NaN or infinite inputs, or finite inputs beyond the stored dtype's range.
    """
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    if stored is not None and stored.is_floating_point():
        dtype = stored.dtype
    rows = x.detach().reshape(int(x.shape[0]), math.prod(x.shape[1:])).to(dtype)
    if not bool(torch.isfinite(rows).all()):
        if bool(torch.isfinite(x).all()):
            raise ValueError(
                f"x holds values beyond the range of {dtype} (max |x| = "
                f"{float(x.detach().abs().max()):.3g}), the dtype this metric stores since its "
                "first update; pass float64 inputs from the first update (or rescale them)."
            )
        raise ValueError("x contains NaN or infinite values; remove them before updating.")
    return rows


def _n_rows(rows: Tensor | None) -> int:
    return 0 if rows is None else int(rows.shape[0])


# The layout of a sample state, exchanged before a DDP sync: whether the rank holds rows, the
# dtype (an index into _DTYPES), the number of dimensions and the sizes after the first.
_DTYPES = (
    torch.float32,
    torch.float64,
    torch.int64,
    torch.float16,
    torch.bfloat16,
    torch.int32,
    torch.int16,
    torch.int8,
    torch.uint8,
    torch.bool,
)
_MAX_NDIM = 8


def _layout(rows: Tensor | None) -> Tensor:
    layout = torch.full((3 + _MAX_NDIM,), -1, dtype=torch.long)
    if rows is not None and rows.dtype in _DTYPES and rows.ndim <= _MAX_NDIM:
        layout[0], layout[1], layout[2] = 1, _DTYPES.index(rows.dtype), rows.ndim
        layout[3 : 2 + rows.ndim] = torch.tensor(rows.shape[1:], dtype=torch.long)
    return layout


class ReservoirMetric(Metric):
    """Base class: ``cat`` list states holding a bounded, uniform, seeded sample of the rows seen.

    Subclasses register their row states with :meth:`add_sample_state` and feed aligned rows
    through :meth:`add_rows`. Each process keeps at most ``max_samples`` rows: the first
    ``max_samples`` rows are kept as they come; afterwards the ``t``-th row (0-based) replaces a
    uniformly chosen stored row with probability ``max_samples / (t + 1)`` (Vitter's algorithm R),
    so at any time the stored rows are a uniform sample without replacement of all rows seen.
    The random draws of an update come from a private generator seeded with ``seed`` and the
    number of rows seen before it: the global RNG is untouched, and the same batches in the same
    order give the same sample (also after :meth:`reset`, a copy or a pickle). In DDP every rank
    keeps its own reservoir; torchmetrics' sync concatenates them, so ``compute`` sees up to
    ``world_size * max_samples`` rows.
    """

    full_state_update: bool = False
    higher_is_better: bool | None = None
    is_differentiable: bool = False

    n_seen: Tensor

    def __init__(self, max_samples: int, seed: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(max_samples, int) or isinstance(max_samples, bool) or max_samples < 2:
            raise ValueError(f"max_samples must be an int >= 2, got {max_samples!r}.")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}.")
        self.max_samples = max_samples
        self.seed = seed
        self._sample_states: list[str] = []
        self.add_state("n_seen", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def add_sample_state(self, name: str) -> None:
        """Register a list state of rows (``dist_reduce_fx="cat"``) kept by the reservoir."""
        self.add_state(name, default=[], dist_reduce_fx="cat")
        self._sample_states.append(name)

    def _chunks(self, name: str) -> list[Tensor]:
        value = getattr(self, name)
        return [value] if isinstance(value, Tensor) else list(value)

    def stored_rows(self) -> int:
        """Rows currently held by this process (at most ``max_samples``)."""
        return sum(int(chunk.shape[0]) for chunk in self._chunks(self._sample_states[0]))

    def gathered(self, name: str) -> Tensor | None:
        """All rows of a sample state as one tensor (after a sync: of every rank), or ``None``."""
        return _as_rows(getattr(self, name))

    def add_rows(self, rows: dict[str, Tensor]) -> None:
        """Offer aligned rows (same first dimension) to the reservoir of the named states."""
        sizes = {int(value.shape[0]) for value in rows.values()}
        if len(sizes) != 1:
            raise ValueError(f"rows of one update must be aligned, got first dimensions {sizes}.")
        batch = sizes.pop()
        seen = int(self.n_seen)
        n_fill = max(0, min(batch, self.max_samples - seen))
        if n_fill > 0:
            for name, value in rows.items():
                setattr(self, name, [*self._chunks(name), value[:n_fill]])
        rest = batch - n_fill
        if rest > 0:
            generator = torch.Generator().manual_seed(_stream_seed(self.seed, seen))
            position = torch.arange(seen + n_fill, seen + batch, dtype=torch.float64)
            uniform = torch.rand(rest, generator=generator, dtype=torch.float64)
            slot = torch.minimum((uniform * (position + 1)).floor(), position).long()
            accept = slot < self.max_samples
            if bool(accept.any()):
                source = torch.arange(n_fill, batch)[accept]
                # Algorithm R is sequential: of several rows drawing the same slot, the last wins.
                winner = torch.full((self.max_samples,), -1, dtype=torch.long)
                winner.scatter_reduce_(0, slot[accept], source, reduce="amax")
                target = (winner >= 0).nonzero().flatten()
                chosen = winner[target]
                for name, value in rows.items():
                    chunks = self._chunks(name)
                    # One chunk: replace in place (no copy of the whole reservoir per update).
                    store = chunks[0] if len(chunks) == 1 else dim_zero_cat(chunks)
                    store[target.to(store.device)] = value[chosen.to(value.device)].to(store)
                    setattr(self, name, [store])
        self.n_seen += batch

    def _reduce_states(self, incoming_state: dict[str, Any]) -> None:
        """Merge another reservoir (``merge_state``) into this one, keeping the bound.

        The merged rows are a uniform sample of the union of both streams: how many come from
        each side is drawn from the hypergeometric law, the rows from each side uniformly.
        """
        seen_other, seen_self = int(incoming_state["n_seen"]), int(self.n_seen)
        mine = {name: self.gathered(name) for name in self._sample_states}
        other = {name: _as_rows(incoming_state[name]) for name in self._sample_states}
        first = self._sample_states[0]
        n_other = _n_rows(other[first])
        n_self = _n_rows(mine[first])
        total = n_other + n_self
        keep = min(self.max_samples, total)
        rng = np.random.default_rng(_stream_seed(self.seed, seen_other, seen_self, 1))
        if total > self.max_samples and seen_other + seen_self > 0:
            from_other = int(rng.hypergeometric(seen_other, seen_self, keep))
            from_other = min(max(from_other, keep - n_self), n_other)
        else:
            from_other = n_other
        from_self = keep - from_other
        generator = torch.Generator().manual_seed(_stream_seed(self.seed, seen_other, seen_self, 2))
        pick_other = torch.randperm(n_other, generator=generator)[:from_other].sort().values
        pick_self = torch.randperm(n_self, generator=generator)[:from_self].sort().values
        for name in self._sample_states:
            parts = []
            theirs, ours = other[name], mine[name]
            if theirs is not None and from_other > 0:
                parts.append(theirs[pick_other.to(theirs.device)])
            if ours is not None and from_self > 0:
                parts.append(ours[pick_self.to(ours.device)])
            setattr(self, name, [dim_zero_cat(parts)] if parts else [])
        self.n_seen = self.n_seen + incoming_state["n_seen"].to(self.n_seen.device)

    def _sync_dist(
        self, dist_sync_fn: Callable = gather_all_tensors, process_group: Any = None
    ) -> None:
        """torchmetrics' sync, safe on ranks that hold no rows (``update`` never called there:
        fewer batches than ranks, conditional updates).

        torchmetrics gathers such a rank's empty state as a 1-d float tensor, whose shape and
        dtype differ from the other ranks' rows: Gloo fails ("Received data size doesn't
        match"), NCCL hangs. One exchange of every state's layout first gives an empty state
        the others' row shape and dtype, so the gather is the concatenation of what every rank
        holds.
        """
        group = process_group or self.process_group
        world_size = distributed_world_size(group)
        if world_size > 1:
            self._shape_empty_states(group, world_size)
        super()._sync_dist(dist_sync_fn, process_group)

    @contextmanager
    def sync_context(
        self,
        dist_sync_fn: Callable | None = None,
        process_group: Any = None,
        should_sync: bool = True,
        should_unsync: bool = True,
        distributed_available: Callable | None = None,
    ) -> Generator[None, None, None]:
        """torchmetrics' sync context, which also restores this rank's own states when the body
        raises (``compute`` on a metric that no rank updated): torchmetrics left them synced,
        so the next ``reset`` failed ("'Tensor' object has no attribute 'clear'") and the next
        ``compute`` refused to sync again."""
        self.sync(
            dist_sync_fn=dist_sync_fn,
            process_group=process_group,
            should_sync=should_sync,
            distributed_available=distributed_available,
        )
        try:
            yield
        finally:
            self.unsync(should_unsync=self._is_synced and should_unsync)

    def _shape_empty_states(self, group: Any, world_size: int) -> None:
        """Give every sample state this rank holds no rows of the row layout of another rank;
        float32 rows become float64 where another rank holds float64 rows (float64 inputs)."""
        mine = {name: self.gathered(name) for name in self._sample_states}
        local = torch.stack([_layout(rows) for rows in mine.values()])
        comm = communication_device(group, self.device)
        gathered = [torch.empty_like(local, device=comm) for _ in range(world_size)]
        dist.all_gather(gathered, local.to(comm), group=group)
        layouts = torch.stack(gathered).cpu()  # (world, states, 3 + _MAX_NDIM)
        wide = _DTYPES.index(torch.float64)
        for position, (name, rows) in enumerate(mine.items()):
            if rows is not None:
                if rows.dtype == torch.float32 and bool((layouts[:, position, 1] == wide).any()):
                    setattr(self, name, [rows.to(torch.float64)])
                continue
            holders = (layouts[:, position, 0] == 1).nonzero().flatten()
            if holders.numel() == 0:
                continue  # no rank holds rows: compute() says so on every rank
            layout = layouts[int(holders[0]), position].tolist()
            dtype, ndim = _DTYPES[layout[1]], layout[2]
            empty = torch.empty((0, *layout[3 : 2 + ndim]), dtype=dtype, device=self.device)
            setattr(self, name, [empty])

    def _shard_knn(self, distributed_knn: bool) -> bool:
        """Whether ``compute`` may share the neighbour search among the ranks.

        Only when the states were just synced (every rank then holds the same samples and is
        inside the same ``compute``) over a group of more than one rank.
        """
        return (
            distributed_knn
            and bool(self._is_synced)
            and distributed_world_size(self.process_group) > 1
        )
