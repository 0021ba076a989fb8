"""The one neighbours object every intrinsic-dimension estimator consumes.

:func:`unique_neighbours` turns one exact neighbour pass into a :class:`Neighbours`: certified
distances and indices of each sample's nearest neighbours, with (near-)duplicates collapsed to one
representative each (a zero distance would make every log-ratio infinite), the points for
estimators that need angles, and the duplicate report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor

from lightning_dataprops.functional._parallel import row_ranges
from lightning_dataprops.functional._validation import TooFewSamplesError
from lightning_dataprops.functional.constants import (
    DEFAULT_DUPLICATE_RTOL,
    DEFAULT_K,
)
from lightning_dataprops.functional.duplicates import (
    DuplicateReport,
    duplicate_pairs,
    duplicate_threshold,
    group_duplicates,
)
from lightning_dataprops.functional.knn import NeighborGraph, knn_search

__all__ = ["Neighbours", "unique_neighbours"]

_MAX_DEDUP_ROUNDS = 20
# Bytes of float64 neighbour offsets gathered at once by Neighbours.offsets.
_OFFSET_CHUNK_BYTES = 64 * 2**20


@dataclass(frozen=True)
class Neighbours:
    """Exact nearest neighbours of the distinct samples: what an estimator receives.

    Attributes:
        distances: ``(m, k_max)`` float64 exact Euclidean distances of each kept sample to its
            ``k_max`` nearest kept neighbours, ascending, all positive (certified: no other
            kept sample is closer).
        indices: ``(m, k_max)`` int64 indices of those neighbours into :attr:`points` (never a
            collapsed duplicate).
        points: ``(n, D)`` all input samples, flattened (float32 or float64).
        kept: ``(m,)`` int64 indices into :attr:`points` of the samples that enter the
            estimates (one representative per group of duplicates).
        duplicates: the duplicates that were found and collapsed.
        k: the neighbour count the call asked for (``k=`` of
            :func:`~lightning_dataprops.functional.dataset_properties`); estimators registered
            with ``k=None`` use this many.
        options: estimator options of the call (``mle_variant``, ``twonn_variant``).

    Example:
        >>> import torch
        >>> from lightning_dataprops.functional.estimators import unique_neighbours
        >>> x = torch.tensor([[0.0], [1.0], [1.0], [3.0]])
        >>> nb = unique_neighbours(x, 2)
        >>> nb.kept.tolist(), nb.distances.tolist()
        ([0, 1, 3], [[1.0, 3.0], [1.0, 2.0], [2.0, 3.0]])
    """

    distances: Tensor
    indices: Tensor
    points: Tensor = field(repr=False)
    kept: Tensor
    duplicates: DuplicateReport = field(default_factory=DuplicateReport)
    k: int = DEFAULT_K
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of samples that enter the estimates (after collapsing duplicates)."""
        return int(self.kept.numel())

    @property
    def k_max(self) -> int:
        """Neighbours per sample held here (the largest any chosen estimator needs)."""
        return int(self.distances.shape[1])

    def offsets(
        self,
        rows: slice,
        k: int | None = None,
        dtype: torch.dtype = torch.float64,
        out: Tensor | None = None,
    ) -> Tensor:
        """``(r, k, D)`` vectors (``dtype``, default float64) from the kept samples
        ``kept[rows]`` to their ``k`` nearest neighbours (default: all ``k_max``): the input of
        angle-based estimators. ``out``: optional memory to reuse, ``r * k * D`` elements of
        ``dtype`` or more, contiguous (``ValueError`` otherwise); gathering into fresh memory
        is mostly page faults."""
        k = self.k_max if k is None else k
        if not 1 <= k <= self.k_max:
            raise ValueError(
                f"offsets of k={k} neighbours: this Neighbours holds 1 to {self.k_max}."
            )
        neighbour_rows = self.indices[rows, :k].flatten()
        centres = self.points[self.kept[rows]].to(dtype)
        dim = int(self.points.shape[1])
        shape = (centres.shape[0], k, dim)
        if out is None:
            out = torch.empty(shape, dtype=dtype, device=self.points.device)
        elif not out.is_contiguous() or out.numel() < math.prod(shape) or out.dtype != dtype:
            raise ValueError(
                f"out must be a contiguous {dtype} tensor of at least {math.prod(shape)} "
                f"elements, got {out.dtype} {tuple(out.shape)}."
            )
        out = out.view(-1)[: math.prod(shape)].view(shape[0] * k, dim)
        if self.points.dtype == dtype:
            torch.index_select(self.points, 0, neighbour_rows, out=out)
        else:
            out.copy_(torch.index_select(self.points, 0, neighbour_rows))
        return out.view(shape).sub_(centres[:, None, :])

    def row_chunks(self, k: int | None = None) -> list[slice]:
        """Slices of kept rows whose float64 :meth:`offsets` fit in a few tens of MB each, and
        at least four per CPU this process may use (for work spread over them)."""
        k = self.k_max if k is None else k
        per_row = 8 * max(1, k) * max(1, int(self.points.shape[1]))
        ranges = row_ranges(self.n, max_rows=_OFFSET_CHUNK_BYTES // per_row)
        return [slice(rows.start, rows.stop) for rows in ranges]


def unique_neighbours(
    points: Tensor,
    k: int,
    *,
    graph: NeighborGraph | None = None,
    duplicate_rtol: float = DEFAULT_DUPLICATE_RTOL,
    memory_budget_mb: float | None = None,
    progress: bool | None = None,
    k_call: int | None = None,
    options: Mapping[str, Any] | None = None,
) -> Neighbours:
    """The :class:`Neighbours` of ``points`` (``(n, D)``) with ``k`` neighbours each, (near-)
    duplicates collapsed to one representative each.

    ``graph`` is a neighbour pass already made with at least ``k`` neighbours (else one is made).
    Only the kept samples whose neighbour lists contained a removed duplicate are searched again,
    so the extra cost is proportional to the number of duplicates.

    Raises:
        ValueError: fewer than ``k + 1`` distinct samples.
    """
    n = int(points.shape[0])
    if graph is None:
        graph = knn_search(points, k, memory_budget_mb=memory_budget_mb, progress=progress)
    # The threshold scales with the call's k-th neighbour distance (never a larger k_max one),
    # so that choosing more estimators never changes which samples count as duplicates.
    scale_k = min(k, k if k_call is None else k_call)
    threshold = duplicate_threshold(
        replace(graph, distances=graph.distances[:, :scale_k]), duplicate_rtol
    )
    distances = graph.distances[:, :k].clone()
    indices = graph.indices[:, :k].clone()
    removed = torch.zeros(n, dtype=torch.bool, device=points.device)
    found_a: list[Tensor] = []
    found_b: list[Tensor] = []
    found_d: list[Tensor] = []
    current = graph
    for _ in range(_MAX_DEDUP_ROUNDS):
        a, b, d = duplicate_pairs(current, threshold)
        if a.numel() == 0:
            break
        found_a.append(a)
        found_b.append(b)
        found_d.append(d)
        groups = group_duplicates(torch.cat(found_a), torch.cat(found_b))
        for group in groups:
            removed[list(group[1:])] = True
        kept = (~removed).nonzero().flatten()
        if kept.numel() < k + 1:
            raise TooFewSamplesError(
                f"Only {kept.numel()} distinct samples remain after collapsing duplicates "
                f"({n - kept.numel()} of {n} samples are duplicates), but k={k} needs at least "
                f"{k + 1}; pass more distinct samples or lower k."
            )
        stale = (~removed) & removed[indices.clamp(min=0)].any(dim=1)
        stale_rows = stale.nonzero().flatten()
        if stale_rows.numel() == 0:
            break
        position = torch.full((n,), -1, dtype=torch.long, device=points.device)
        position[kept] = torch.arange(kept.numel(), device=points.device)
        local = knn_search(
            points[kept],
            k,
            queries=position[stale_rows],
            memory_budget_mb=memory_budget_mb,
            progress=progress,
        )
        distances[stale_rows] = local.distances
        indices[stale_rows] = kept[local.indices]
        current = NeighborGraph(
            distances=local.distances, indices=kept[local.indices], query_indices=stale_rows
        )
    kept = (~removed).nonzero().flatten()
    if found_a:
        pair_a, pair_b, pair_d = torch.cat(found_a), torch.cat(found_b), torch.cat(found_d)
        exact = torch.stack([torch.minimum(pair_a, pair_b), torch.maximum(pair_a, pair_b)])
        report = DuplicateReport(
            groups=group_duplicates(pair_a, pair_b),
            threshold=threshold,
            rtol=duplicate_rtol,
            n_exact_pairs=int(torch.unique(exact[:, pair_d == 0], dim=1).shape[1]),
            removed=tuple(removed.nonzero().flatten().tolist()),
        )
    else:
        report = DuplicateReport(threshold=threshold, rtol=duplicate_rtol)
    kept_distances = distances[kept]
    if not bool((kept_distances[:, 0] > 0).all()):
        raise RuntimeError("internal error: a zero neighbour distance survived de-duplication")
    return Neighbours(
        distances=kept_distances,
        indices=indices[kept],
        points=points,
        kept=kept,
        duplicates=report,
        k=k if k_call is None else k_call,
        options={} if options is None else dict(options),
    )
