"""The neighbour search sharded across the ranks of a ``torch.distributed`` process group.

Every rank holds the same full sample ``x`` (``n`` points). Rank ``r`` of ``w`` searches the
neighbours of the queries ``r, r + w, r + 2w, ...`` (a strided split: every rank gets
``ceil(n / w)`` or ``floor(n / w)`` queries, and a sample sorted by class or by time is spread
evenly), against all ``n`` points. The ranks then all-gather their rows (padded to equal length)
and their closest differently-labelled pairs, and every rank assembles the *full* graph: the same
distances as the single-process :func:`~lightning_dataprops.functional.knn.knn_search` (indices
equal up to exact ties), the pairs merged with
:func:`~lightning_dataprops.functional.knn.merge_pairs`.

Every rank makes the same collective calls in the same order (four ``all_gather`` calls), so
the function must be called on every rank of the group, with the same arguments and data. A
header exchanged first checks that: a rank whose arguments or data differ (or are invalid)
makes every rank raise the same ``ValueError`` instead of leaving the others waiting.

The callers validate their inputs first; in distributed mode they do it through
:func:`checked_on_every_rank`, so that a rank whose inputs are refused (an empty shard, NaN)
makes every rank raise instead of leaving the others waiting in the search's first collective.

Backends: with NCCL the exchanged tensors travel through the current CUDA device; with Gloo
through the CPU; with other backends through ``x``'s device. The results come back on ``x``'s
device. Without an initialised process group of more than one rank, the search is the plain
single-process one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor

from lightning_dataprops.functional._precision import full_precision_matmul
from lightning_dataprops.functional.knn import (
    NeighborGraph,
    knn_search,
    merge_pairs,
)

# Header fields exchanged before the search (one float64 row per rank).
_HEADER = ("ok", "n", "dim", "k", "n_pairs", "has_labels", "x_sum", "x_weighted", "labels_sum")
_N_HEADER = len(_HEADER)
# Fields every rank must agree on, compared exactly; the fingerprints are compared with a
# tolerance (reductions may round differently on different devices).
_EXACT_FIELDS = ("n", "dim", "k", "n_pairs", "has_labels", "labels_sum")
_FINGERPRINT_FIELDS = ("x_sum", "x_weighted")
_FINGERPRINT_RTOL = 1e-6


def distributed_world_size(group: Any = None) -> int:
    """Size of ``group`` (default: the world) when ``torch.distributed`` is initialised, else 1."""
    if not (dist.is_available() and dist.is_initialized()):
        return 1
    return int(dist.get_world_size(group))


T = TypeVar("T")


def checked_on_every_rank(check: Callable[[], T], group: Any = None, *, enabled: bool = True) -> T:
    """``check()`` on this rank, then one exchange: if it raised on any rank, it raises on all.

    For the input validation in front of a collective: a rank that raised alone (its shard is
    empty, its values are NaN) would leave the other ranks waiting forever (NCCL) or for the
    group's timeout (Gloo). Every rank of ``group`` must call it. With ``enabled=False`` (a call
    that is not distributed), or without an initialised group of more than one rank, it is
    ``check()``.

    Raises:
        The rank's own exception where ``check`` raised; elsewhere a ``ValueError`` naming the
        ranks whose inputs were refused.

    Example:
        >>> checked_on_every_rank(lambda: 3)  # one process: just the check
        3
    """
    world_size = distributed_world_size(group) if enabled else 1
    if world_size <= 1:
        return check()
    try:
        value = check()
    except Exception:
        _share_outcome(False, world_size, group)
        raise
    _share_outcome(True, world_size, group)
    return value


def _share_outcome(ok: bool, world_size: int, group: Any) -> None:
    """Exchange every rank's ``ok``; raise on this (good) rank when another one failed."""
    flag = torch.tensor([0.0 if ok else 1.0], dtype=torch.float64)
    comm = communication_device(group, torch.device("cpu"))
    failed = torch.cat(_all_gather(flag.to(comm), world_size, group)).cpu().nonzero()
    if ok and failed.numel():
        raise ValueError(
            f"The inputs on rank(s) {failed.flatten().tolist()} were refused (the error raised "
            "there says why); every rank stops here rather than wait for those ranks. In "
            "distributed mode every rank must pass the same, valid, full sample."
        )


def shard_queries(n: int, rank: int, world_size: int) -> Tensor:
    """The queries of ``rank``: ``arange(n)[rank::world_size]``.

    Example:
        >>> shard_queries(7, 1, 3).tolist()
        [1, 4]
    """
    return torch.arange(rank, n, world_size, dtype=torch.long)


def communication_device(group: Any, data_device: torch.device) -> torch.device:
    """Where tensors exchanged in ``group`` must live: the current CUDA device with NCCL, the
    CPU with Gloo, else ``data_device``."""
    backend = str(dist.get_backend(group)).lower()
    if backend == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    if backend == "gloo":
        return torch.device("cpu")
    return data_device


def _all_gather(tensor: Tensor, world_size: int, group: Any) -> list[Tensor]:
    """``all_gather`` of equally sized tensors."""
    gathered = [torch.empty_like(tensor) for _ in range(world_size)]
    dist.all_gather(gathered, tensor.contiguous(), group=group)
    return gathered


def _local_header(
    x: Tensor, k: int, labels: Tensor | None, n_pairs: int
) -> tuple[Tensor, str | None]:
    """This rank's header row and, if its arguments are invalid, why."""
    problem = None
    if x.ndim != 2:
        problem = f"sharded_knn_search expects an (n, D) matrix, got shape {tuple(x.shape)}."
    elif not 1 <= k <= int(x.shape[0]) - 1:
        problem = f"k={k} neighbours need at least k+1={k + 1} points, got {int(x.shape[0])}."
    elif labels is not None and tuple(labels.shape) != (int(x.shape[0]),):
        problem = f"labels must have shape ({int(x.shape[0])},), got {tuple(labels.shape)}."
    elif n_pairs < 1:
        problem = f"n_pairs must be >= 1, got {n_pairs}."
    values = dict.fromkeys(_HEADER, 0.0)
    values.update(ok=float(problem is None), k=float(k), n_pairs=float(n_pairs))
    values["has_labels"] = float(labels is not None)
    if problem is None:
        n = int(x.shape[0])
        flat = x.detach().to(torch.float64)
        row_sums = flat.sum(dim=1)
        weights = torch.arange(1, n + 1, dtype=torch.float64, device=flat.device) / n
        values.update(
            n=float(n),
            dim=float(x.shape[1]),
            x_sum=float(row_sums.sum()),
            x_weighted=float((row_sums * weights).sum()),
        )
        if labels is not None:
            weights_long = torch.arange(1, n + 1, dtype=torch.long, device=labels.device)
            # Exact in float64 for any realistic n and number of classes.
            values["labels_sum"] = float((labels.to(torch.long) * weights_long).sum())
    header = torch.tensor([values[name] for name in _HEADER], dtype=torch.float64)
    return header, problem


def _check_headers(headers: Tensor, rank: int, local_problem: str | None) -> None:
    """Raise the same error on every rank when a rank's arguments are invalid or differ."""
    column = {name: headers[:, i] for i, name in enumerate(_HEADER)}
    bad = (column["ok"] == 0).nonzero().flatten().tolist()
    if bad:
        if local_problem is not None:
            raise ValueError(local_problem)
        raise ValueError(f"sharded_knn_search: invalid arguments on rank(s) {bad}.")
    for name in _EXACT_FIELDS:
        if not bool((column[name] == column[name][0]).all()):
            raise ValueError(
                f"sharded_knn_search must be called with the same arguments and data on every "
                f"rank, but '{name}' differs across ranks: {column[name].tolist()} (rank {rank} "
                "of this process)."
            )
    for name in _FINGERPRINT_FIELDS:
        values = column[name]
        scale = max(1.0, float(values.abs().max()))
        if float((values - values[0]).abs().max()) > _FINGERPRINT_RTOL * scale:
            raise ValueError(
                "sharded_knn_search: the ranks hold different data (every rank must pass the "
                f"same full sample x); fingerprint '{name}' differs: {values.tolist()}."
            )


@full_precision_matmul()
def sharded_knn_search(
    x: Tensor,
    k: int,
    *,
    labels: Tensor | None = None,
    n_pairs: int = 1,
    memory_budget_mb: float | None = None,
    group: Any = None,
    progress: bool | None = None,
) -> NeighborGraph:
    """Exact k nearest neighbours of every row of ``x``, the work split across DDP ranks.

    Call it on every rank of ``group`` with the same full ``x`` (and ``labels``). Rank ``r`` of
    ``w`` searches the queries ``arange(n)[r::w]``; the rows and the closest differently-labelled
    pairs are all-gathered, and every rank returns the full graph, identical to
    ``knn_search(x, k, labels=labels, n_pairs=n_pairs)`` in one process (distances equal;
    indices equal except between exactly tied neighbours). Without an initialised process group
    of more than one rank this *is* that single-process call.

    Args:
        x: ``(n, D)`` float32 or float64 points, the same on every rank.
        k: number of neighbours (``1 <= k <= n - 1``).
        labels: optional ``(n,)`` integer class ids; enables the closest differently-labelled
            pairs.
        n_pairs: how many of the closest differently-labelled pairs to return.
        memory_budget_mb: bound on the working memory of one block of each rank's search.
            ``None``: the :func:`~lightning_dataprops.config_context` setting
            (512 MiB unless changed).
        group: the process group (default: the world).
        progress: show a progress bar (of this rank's share).
            ``None``: the :func:`~lightning_dataprops.config_context` setting
            (off unless changed).

    Returns:
        The :class:`~lightning_dataprops.functional.knn.NeighborGraph` of all ``n`` points
        (``query_indices`` is ``arange(n)``), on ``x``'s device. ``n_refined`` is the total
        over the ranks.

    Raises:
        ValueError: on every rank, when any rank's arguments are invalid or the ranks' ``n``,
            ``k``, ``n_pairs``, labels or data differ.

    Example:
        >>> import torch
        >>> from lightning_dataprops.functional.distributed import sharded_knn_search
        >>> x = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
        >>> sharded_knn_search(x, k=2).indices.tolist()  # one process: plain knn_search
        [[1, 2], [0, 2], [1, 0], [2, 1]]
    """
    world_size = distributed_world_size(group)
    if world_size <= 1:
        return knn_search(
            x,
            k,
            labels=labels,
            n_pairs=n_pairs,
            memory_budget_mb=memory_budget_mb,
            progress=progress,
        )
    rank = int(dist.get_rank(group))
    comm = communication_device(group, x.device)

    # 1. Everyone agrees on the arguments and the data, or everyone raises.
    header, problem = _local_header(x, k, labels, n_pairs)
    headers = torch.stack(_all_gather(header.to(comm), world_size, group)).cpu()
    _check_headers(headers, rank, problem)

    # 2. This rank's share of the queries.
    n = int(x.shape[0])
    width = k + (1 if labels is not None else 0)
    queries = shard_queries(n, rank, world_size).to(x.device)
    if queries.numel() > 0:
        local = knn_search(
            x,
            k,
            labels=labels,
            n_pairs=n_pairs,
            queries=queries,
            memory_budget_mb=memory_budget_mb,
            progress=progress,
        )
        distances, indices, n_refined = local.distances, local.indices, local.n_refined
        if local.other_distances is not None and local.other_indices is not None:
            # The nearest differently-labelled neighbour travels as one more column.
            distances = torch.cat([distances, local.other_distances[:, None]], dim=1)
            indices = torch.cat([indices, local.other_indices[:, None]], dim=1)
        pair_first, pair_second, pair_dist = (
            local.pair_first,
            local.pair_second,
            local.pair_distances,
        )
    else:  # more ranks than points
        distances = torch.empty((0, width), dtype=torch.float64, device=x.device)
        indices = torch.empty((0, width), dtype=torch.long, device=x.device)
        pair_first = pair_second = pair_dist = None
        n_refined = 0
    if labels is not None and (pair_first is None or pair_second is None or pair_dist is None):
        pair_first = pair_second = torch.empty(0, dtype=torch.long, device=x.device)
        pair_dist = torch.empty(0, dtype=torch.float64, device=x.device)

    # 3. Exchange: floats (distances, pair distances) and integers (indices, pairs), padded.
    rows_per_rank = [math.ceil((n - r) / world_size) for r in range(world_size)]
    n_pairs_local = 0 if pair_dist is None else int(pair_dist.numel())
    counts = torch.tensor([n_pairs_local, n_refined], dtype=torch.long)
    gathered_counts = torch.stack(_all_gather(counts.to(comm), world_size, group)).cpu()
    pair_counts = gathered_counts[:, 0].tolist()
    float_len = max(rows_per_rank) * width + max(pair_counts)
    int_len = max(rows_per_rank) * width + 2 * max(pair_counts)
    float_parts = [distances.flatten()]
    int_parts = [indices.flatten()]
    if pair_dist is not None and pair_first is not None and pair_second is not None:
        float_parts.append(pair_dist)
        int_parts.extend([pair_first, pair_second])
    float_buffer = torch.zeros(float_len, dtype=torch.float64, device=comm)
    int_buffer = torch.zeros(int_len, dtype=torch.long, device=comm)
    local_floats = torch.cat([part.to(comm, torch.float64) for part in float_parts])
    local_ints = torch.cat([part.to(comm, torch.long) for part in int_parts])
    float_buffer[: local_floats.numel()] = local_floats
    int_buffer[: local_ints.numel()] = local_ints
    all_floats = _all_gather(float_buffer, world_size, group)
    all_ints = _all_gather(int_buffer, world_size, group)

    # 4. Assemble the full graph, identically on every rank.
    full_distances = torch.empty((n, width), dtype=torch.float64, device=x.device)
    full_indices = torch.empty((n, width), dtype=torch.long, device=x.device)
    firsts, seconds, dists = [], [], []
    for r in range(world_size):
        rows, p = rows_per_rank[r], pair_counts[r]
        floats, ints = all_floats[r].to(x.device), all_ints[r].to(x.device)
        shard = shard_queries(n, r, world_size).to(x.device)
        full_distances[shard] = floats[: rows * width].view(rows, width)
        full_indices[shard] = ints[: rows * width].view(rows, width)
        dists.append(floats[rows * width : rows * width + p])
        firsts.append(ints[rows * width : rows * width + p])
        seconds.append(ints[rows * width + p : rows * width + 2 * p])
    graph_pairs: tuple[Tensor | None, Tensor | None, Tensor | None] = (None, None, None)
    if labels is not None:
        graph_pairs = merge_pairs(torch.cat(firsts), torch.cat(seconds), torch.cat(dists), n_pairs)
    labelled = labels is not None
    return NeighborGraph(
        distances=full_distances[:, :k],
        indices=full_indices[:, :k],
        query_indices=torch.arange(n, device=x.device),
        pair_first=graph_pairs[0],
        pair_second=graph_pairs[1],
        pair_distances=graph_pairs[2],
        other_indices=full_indices[:, k] if labelled else None,
        other_distances=full_distances[:, k] if labelled else None,
        n_refined=int(gathered_counts[:, 1].sum()),
    )
