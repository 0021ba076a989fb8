"""Exact, chunked k-nearest-neighbour search: the one distance pass behind every estimator.

The search runs in two stages:

1. a fast pass (``|q|^2 + |r|^2 - 2 q.r`` over blocks of the distance matrix, TF32 disabled)
   keeps a few more candidates than asked for. Its kernel (:mod:`._gram`) is float32 on
   mean-centred data, exact int8 products for data on an 8-bit grid (pixels stored as ``uint8``
   and scaled; CPUs with VNNI), or bfloat16 products with float32 accumulation for larger
   continuous sets (CPUs with AVX512-BF16);
2. the candidates' distances are recomputed exactly (difference-based, accumulated in float64),
   re-ranked and *certified*: a rigorous bound on the kernel's error proves that no other point
   can be closer. Rows that cannot be certified this way are searched again with every reference
   whose approximate distance is within the error bound, recomputed exactly. The kernel changes
   the speed, never the result.

Memory is bounded by ``memory_budget_mb``: no ``n x n`` matrix is ever built. When the queries are
the whole set, the pass exploits symmetry: each block of the upper triangle of the distance
matrix updates the candidates of both its rows and its columns (diagonal blocks are split into
smaller triangles, so that little of the matmul is spent twice). A query subset (``queries=``)
lets callers shard the work, e.g. across DDP ranks.

Selection is the other cost. Once a candidate list is full, only entries below its current worst
candidate can enter it, and after the first blocks these are rare: they are found through the
minima of small groups of entries (one cheap pass over the block) and only they are merged.

With class labels the same pass also finds the closest *differently-labelled* pairs (the
bichromatic closest-pair problem behind label sharpness) and each point's nearest
differently-labelled neighbour, certified too (by the exact neighbour list, by the pass's
runner-up, or by a re-search of the other classes). Points are visited in label order, so the
other-labelled columns of a run of one class are at most two ranges of a block (no mask, no
copy), and where they are the whole block the selection's group minima give the minimum.

On the CPU the blocks (product, selection, other-label tracking) and the exact recompute run as
single-threaded tasks on a pool of workers, one per CPU this process may use (affinity mask,
cgroup quota, ``torch.get_num_threads()``), each taking the next task when done: a worker the OS
deschedules on a busy machine delays its own block only, where many short multi-threaded
operations would each wait for it at a barrier (see :mod:`._parallel`).
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor

from lightning_dataprops.functional._block_search import BlockSearch
from lightning_dataprops.functional._gram import KernelName
from lightning_dataprops.functional._parallel import worker_pool
from lightning_dataprops.functional._precision import full_precision_matmul
from lightning_dataprops.functional._validation import (
    as_points,
    power_of_two_scale,
    times_power_of_two,
)
from lightning_dataprops.functional.neighbor_graph import (
    NeighborGraph,
    exact_distances,
    merge_pairs,
)

__all__ = ["NeighborGraph", "exact_distances", "knn_search", "merge_pairs"]


def knn_search(
    x: Tensor,
    k: int,
    *,
    labels: Tensor | None = None,
    n_pairs: int = 1,
    queries: Tensor | None = None,
    memory_budget_mb: float | None = None,
    candidate_margin: int | None = None,
    kernel: KernelName = "auto",
    progress: bool | None = None,
) -> NeighborGraph:
    """Exact k nearest neighbours of ``x[queries]`` among the rows of ``x``, self excluded by index.

    Args:
        x: ``(n, D)`` float32 or float64 points, on any device.
        k: number of neighbours (``1 <= k <= n - 1``).
        labels: optional ``(n,)`` integer class ids; enables the closest differently-labelled
            pairs search.
        n_pairs: how many of the closest differently-labelled pairs to return.
        queries: optional ``(q,)`` int64 indices into ``x``; default: every row.
        memory_budget_mb: bound on the working memory of one block.
            ``None``: the :func:`~lightning_dataprops.config_context` setting
            (512 MiB unless changed).
        candidate_margin: extra candidates kept by the fast pass (default ``4 + k // 10``).
        kernel: the fast pass's squared-distance kernel: ``"float32"``, ``"int8"`` (exact, for
            data on an 8-bit grid such as scaled ``uint8`` pixels; CPU), ``"bfloat16"`` (CPU)
            or ``"auto"`` (see :mod:`lightning_dataprops.functional._gram`). The result is
            the same exact, certified neighbours whatever the kernel; only the speed differs.
        progress: show a progress bar.
            ``None``: the :func:`~lightning_dataprops.config_context` setting
            (off unless changed).

    Returns:
        The :class:`NeighborGraph` of the queries.

    Example:
        >>> import torch
        >>> from lightning_dataprops.functional.knn import knn_search
        >>> x = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
        >>> graph = knn_search(x, k=2)
        >>> graph.indices.tolist()
        [[1, 2], [0, 2], [1, 0], [2, 1]]
        >>> graph.distances[0].tolist()
        [1.0, 3.0]
    """
    if x.ndim != 2:
        raise ValueError(f"knn_search expects an (n, D) matrix, got shape {tuple(x.shape)}.")
    n = int(x.shape[0])
    if not 1 <= k <= n - 1:
        raise ValueError(f"k={k} neighbours need at least k+1={k + 1} points, got {n}.")
    if labels is not None and labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), got {tuple(labels.shape)}.")
    # Half precision and integers widen exactly to float32; NaN and inf are refused.
    x, _ = as_points(x, name="x")
    x, exponent = power_of_two_scale(x)
    margin = 4 + k // 10 if candidate_margin is None else candidate_margin
    with full_precision_matmul(), torch.no_grad(), worker_pool(x.device):
        search = BlockSearch(
            x, labels, min(k + margin, n - 1), max(1, n_pairs), memory_budget_mb, kernel, k=k
        )
        if queries is None:
            query_indices = torch.arange(n, device=x.device)
            search.run_symmetric(progress)
        else:
            query_indices = queries.to(device=x.device, dtype=torch.long).flatten()
            search.run_queries(query_indices, progress)
        graph = search.finish(query_indices, k)
    if exponent == 0:
        return graph

    def back(distances: Tensor | None) -> Tensor | None:
        return None if distances is None else times_power_of_two(distances, exponent)

    return replace(
        graph,
        distances=times_power_of_two(graph.distances, exponent),
        pair_distances=back(graph.pair_distances),
        other_distances=back(graph.other_distances),
    )
