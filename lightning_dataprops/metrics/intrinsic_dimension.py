"""``IntrinsicDimension``: a torchmetrics ``Metric`` over a bounded, seeded reservoir of samples.

Also home of :class:`ReservoirMetric`, the base class of the metrics here: list states filled by
seeded reservoir sampling, so that a metric's memory stays bounded however long it is updated.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from lightning_dataprops.functional._validation import check_choice
from lightning_dataprops.functional.constants import (
    DEFAULT_DUPLICATE_RTOL,
    DEFAULT_K,
    DEFAULT_MEMORY_BUDGET_MB,
)
from lightning_dataprops.functional.distributed import distributed_world_size
from lightning_dataprops.functional.intrinsic_dimension import (
    ESTIMATORS,
    MLE_VARIANTS,
    TWONN_VARIANTS,
    Estimator,
    MLEVariant,
    TwoNNVariant,
    intrinsic_dimension,
)
from lightning_dataprops.functional.results import IntrinsicDimensionResult

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


def _n_rows(rows: Tensor | None) -> int:
    return 0 if rows is None else int(rows.shape[0])


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


class IntrinsicDimension(ReservoirMetric):
    """Intrinsic dimension (MLE or TwoNN) of the samples seen: exact neighbours, no duplicates.

    ``update(x)`` adds a batch of samples ``(b, ...)`` (flattened to float32 rows) to a bounded,
    seeded reservoir (at most ``max_samples`` rows per process, a uniform sample of everything
    seen; see :class:`ReservoirMetric`). ``compute()`` runs
    :func:`~lightning_dataprops.functional.intrinsic_dimension` on the reservoir (after
    torchmetrics' DDP sync: on the rows of every rank) and returns the estimate as a scalar
    tensor; the detailed :class:`~lightning_dataprops.functional.results.IntrinsicDimensionResult`
    (duplicates, ``n``, TwoNN's standard error) is kept in :attr:`last_result`.

    In DDP, with ``distributed_knn=True``, every rank takes an equal share of the neighbour
    queries (:func:`~lightning_dataprops.functional.distributed.sharded_knn_search`), so
    ``compute()`` must run on every rank, as Lightning and torchmetrics do; every rank gets the
    same value. Calling the metric (``forward``) adds the batch and returns the estimate of that
    batch alone, which needs more than ``k`` samples; prefer ``update`` in the steps and logging
    the metric object at epoch end.

    Args:
        estimator: ``"mle"`` (Levina-Bickel, ``k`` neighbours) or ``"twonn"``.
        k: neighbours for MLE (20 in the paper).
        max_samples: reservoir size per process (memory: ``max_samples * D * 4`` bytes).
        seed: seed of the reservoir's private generator.
        mle_variant: ``"mackay_ghahramani"`` (default), ``"levina_bickel"`` or ``"paper"``.
        twonn_variant: ``"closed_form"`` (default) or ``"linear_fit"``.
        duplicate_rtol: relative (near-)duplicate threshold, see the functional interface.
        distributed_knn: in DDP, share the neighbour search among the ranks.
        memory_budget_mb: bound on the working memory of the neighbour search.
        kwargs: passed to :class:`torchmetrics.Metric` (``process_group``, ``sync_on_compute``,
            ``compute_on_cpu``, ...).

    Raises:
        ValueError: in ``compute`` when fewer than ``k + 1`` distinct samples were seen, or when
            nothing was.

    Example:
        >>> import torch
        >>> from lightning_dataprops.metrics import IntrinsicDimension
        >>> g = torch.Generator().manual_seed(0)
        >>> data = torch.randn(1200, 3, generator=g) @ torch.randn(3, 40, generator=g)
        >>> metric = IntrinsicDimension(estimator="twonn", max_samples=1000)
        >>> for batch in data.split(100):
        ...     metric.update(batch)
        >>> metric.stored_rows()
        1000
        >>> round(float(metric.compute()))
        3
        >>> metric.last_result.n
        1000
    """

    samples: list[Tensor] | Tensor

    def __init__(
        self,
        estimator: Estimator = "mle",
        k: int = DEFAULT_K,
        max_samples: int = 5000,
        seed: int = 0,
        mle_variant: MLEVariant = "mackay_ghahramani",
        twonn_variant: TwoNNVariant = "closed_form",
        duplicate_rtol: float = DEFAULT_DUPLICATE_RTOL,
        distributed_knn: bool = True,
        memory_budget_mb: float = DEFAULT_MEMORY_BUDGET_MB,
        **kwargs: Any,
    ) -> None:
        super().__init__(max_samples=max_samples, seed=seed, **kwargs)
        check_choice(estimator, "estimator", ESTIMATORS)
        check_choice(mle_variant, "MLE variant", MLE_VARIANTS)
        check_choice(twonn_variant, "TwoNN variant", TWONN_VARIANTS)
        if not isinstance(k, int) or isinstance(k, bool) or k < 2:
            raise ValueError(f"k must be an int >= 2, got {k!r}.")
        if max_samples < k + 1:
            raise ValueError(f"max_samples={max_samples} must be at least k+1={k + 1}.")
        if not (math.isfinite(duplicate_rtol) and duplicate_rtol >= 0):
            raise ValueError(f"duplicate_rtol must be finite and >= 0, got {duplicate_rtol}.")
        self.estimator: Estimator = estimator
        self.k = k
        self.mle_variant: MLEVariant = mle_variant
        self.twonn_variant: TwoNNVariant = twonn_variant
        self.duplicate_rtol = duplicate_rtol
        self.distributed_knn = distributed_knn
        self.memory_budget_mb = memory_budget_mb
        self.input_shape: tuple[int, ...] | None = None
        self.last_result: IntrinsicDimensionResult | None = None
        self.add_sample_state("samples")

    def _rows(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a torch.Tensor of shape (batch, ...), got {type(x)}.")
        if x.ndim < 2:
            raise ValueError(
                f"x must have shape (batch, features...), got {tuple(x.shape)}; for scalar "
                "features use x.reshape(-1, 1)."
            )
        shape = tuple(int(s) for s in x.shape[1:])
        if self.input_shape is not None and math.prod(shape) != math.prod(self.input_shape):
            raise ValueError(
                f"samples of shape {shape} do not match the earlier samples' {self.input_shape}."
            )
        self.input_shape = shape
        rows = x.detach().reshape(int(x.shape[0]), -1).to(torch.float32)
        if not bool(torch.isfinite(rows).all()):
            raise ValueError("x contains NaN or infinite values; remove them before updating.")
        return rows

    def reset(self) -> None:
        """Empty the reservoir (:attr:`last_result` is kept)."""
        super().reset()
        self.input_shape = None

    def update(self, x: Tensor) -> None:
        """Add a batch of samples ``(batch, ...)`` to the reservoir."""
        self.add_rows({"samples": self._rows(x)})

    def _estimate(self, points: Tensor, distributed: bool) -> IntrinsicDimensionResult:
        if self.input_shape is not None and points.shape[1] == math.prod(self.input_shape):
            points = points.reshape(int(points.shape[0]), *self.input_shape)
        return intrinsic_dimension(
            points,
            self.estimator,
            self.k,
            mle_variant=self.mle_variant,
            twonn_variant=self.twonn_variant,
            duplicate_rtol=self.duplicate_rtol,
            memory_budget_mb=self.memory_budget_mb,
            distributed=distributed,
            process_group=self.process_group,
        )

    def compute(self) -> Tensor:
        """The intrinsic dimension of the (gathered) reservoir, a scalar tensor."""
        points = self.gathered("samples")
        if points is None or points.shape[0] == 0:
            raise ValueError(
                "IntrinsicDimension.compute() found no samples: call update(x) first (in DDP, "
                "on every rank)."
            )
        result = self._estimate(points, self._shard_knn(self.distributed_knn))
        self.last_result = result
        return torch.tensor(result.value, dtype=torch.float32, device=points.device)

    def forward(self, x: Tensor) -> Tensor:
        """Add the batch to the reservoir and return the estimate of this batch alone."""
        self.update(x)
        rows = self._rows(x)
        value = torch.tensor(
            self._estimate(rows, distributed=False).value, dtype=torch.float32, device=rows.device
        )
        self._forward_cache = value  # type: ignore[assignment]  # torchmetrics types it None
        return value
