"""The result of a neighbour search, exact distance recomputation and merging of closest pairs."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from lightning_dataprops.functional._parallel import row_ranges, run_tasks

__all__ = ["NeighborGraph", "exact_distances", "merge_pairs", "top_unique_pairs"]

# Bytes of float32 differences per chunk of the exact recompute on the CPU.
_EXACT_CHUNK_BYTES = 2**20


@dataclass(frozen=True)
class NeighborGraph:
    """Exact nearest neighbours of a set of query points.

    Attributes:
        distances: ``(q, k)`` exact Euclidean distances in ascending order (float64).
        indices: ``(q, k)`` int64 indices of the neighbours in the reference set.
        query_indices: ``(q,)`` int64 indices of the queries in the reference set.
        pair_first, pair_second, pair_distances: with labels, the closest differently-labelled
            pairs (query, reference) over all queries, by exact distance, ascending, each
            unordered pair once; ``None`` without labels. Merging the pairs of several query
            shards and keeping the closest gives the pairs of their union.
        other_indices, other_distances: with labels, ``(q,)`` the nearest differently-labelled
            neighbour of each query (index in the reference set, ``-1`` if none) and its exact
            distance (float64, ``inf`` if none), certified like the neighbours: no
            differently-labelled point is closer (among equally near ones any may be named);
            ``None`` without labels.
        n_refined: rows whose fast ranking could not be certified from the candidates alone
            and were searched again.
    """

    distances: Tensor
    indices: Tensor
    query_indices: Tensor
    pair_first: Tensor | None = None
    pair_second: Tensor | None = None
    pair_distances: Tensor | None = None
    other_indices: Tensor | None = None
    other_distances: Tensor | None = None
    n_refined: int = 0

    @property
    def k(self) -> int:
        """Number of neighbours per query."""
        return int(self.distances.shape[1])


def exact_distances(x: Tensor, first: Tensor, candidates: Tensor) -> Tensor:
    """Exact ``||x[first[i]] - x[candidates[i, j]]||`` (float64; ``inf`` where ``candidates < 0``).

    Difference-based (no cancellation), accumulated in float64. The differences come from one
    fused gather-and-subtract (``embedding_bag`` with weights ``+1, -1``: the same rounding as
    ``x[a] - x[b]``), in chunks of a few MB: few, large operations are quick and stay quick on a
    busy machine.
    """
    n_rows, n_cand = candidates.shape
    out = torch.full((n_rows, n_cand), math.inf, dtype=torch.float64, device=x.device)
    if n_rows == 0 or n_cand == 0:
        return out
    x = x.contiguous()
    dim = int(x.shape[1])
    chunk_bytes = _EXACT_CHUNK_BYTES if x.device.type == "cpu" else 256 * 2**20
    rows_per_chunk = max(1, int(chunk_bytes // (x.element_size() * n_cand * dim)))
    pairs = torch.stack([first[:, None].expand(-1, n_cand), candidates.clamp(min=0)], dim=2)
    signs = torch.tensor([1.0, -1.0], dtype=x.dtype, device=x.device)
    signs = signs.repeat(min(rows_per_chunk, n_rows) * n_cand, 1)
    flat = out.view(-1)

    def distances_of(rows: range) -> None:
        for start in range(rows.start, rows.stop, rows_per_chunk):
            stop = min(start + rows_per_chunk, rows.stop)
            chunk = pairs[start:stop].reshape(-1, 2)
            weights = signs[: chunk.shape[0]]
            diff = torch.nn.functional.embedding_bag(
                chunk, x, mode="sum", per_sample_weights=weights
            )
            torch.linalg.vector_norm(
                diff, dim=1, dtype=torch.float64, out=flat[start * n_cand : stop * n_cand]
            )

    # Each task on one thread, the tasks spread over the CPUs (see ``_parallel``).
    run_tasks(row_ranges(n_rows, rows_per_chunk), distances_of, x.device)
    return out.masked_fill_(candidates < 0, math.inf)


def top_unique_pairs(
    first: Tensor, second: Tensor, dist: Tensor, n_pairs: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Deduplicate unordered pairs and keep the ``n_pairs`` closest (ties broken by indices)."""
    low, high = torch.minimum(first, second), torch.maximum(first, second)
    if low.numel() == 0:
        return low, high, dist
    n_max = int(high.max()) + 1
    key = low * n_max + high
    unique_key, inverse = torch.unique(key, return_inverse=True)
    unique_dist = torch.full((unique_key.numel(),), math.inf, dtype=dist.dtype, device=dist.device)
    unique_dist.scatter_reduce_(0, inverse, dist, reduce="amin")
    order = torch.argsort(unique_dist, stable=True)[:n_pairs]
    chosen = unique_key[order]
    return chosen // n_max, chosen % n_max, unique_dist[order]


def merge_pairs(
    first: Tensor, second: Tensor, dist: Tensor, n_pairs: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Closest ``n_pairs`` unique pairs of several shards' concatenated pair lists."""
    return top_unique_pairs(first, second, dist, n_pairs)
