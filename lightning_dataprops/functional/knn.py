"""Exact, chunked k-nearest-neighbour search: the one distance pass behind every estimator.

The search runs in two stages:

1. a fast float32 pass (``|q|^2 + |r|^2 - 2 q.r`` on mean-centred data, TF32 disabled) over
   blocks of the distance matrix keeps a few more candidates than asked for;
2. the candidates' distances are recomputed exactly (difference-based, accumulated in float64),
   re-ranked and *certified*: a rigorous bound on the float32 error proves that no other point
   can be closer. Rows that cannot be certified this way are searched again with every reference
   whose approximate distance is within the error bound, recomputed exactly.

Memory is bounded by ``memory_budget_mb``: no ``n x n`` matrix is ever built. When the queries are
the whole set, the pass exploits symmetry: each block of the distance matrix updates the
candidates of both its rows and its columns. A query subset (``queries=``) lets callers shard the
work, e.g. across DDP ranks.

With class labels the same pass also finds the closest *differently-labelled* pairs (the
bichromatic closest-pair problem behind label sharpness). Points are visited in label order, so
most blocks hold one class against another (no masking needed) or one class against itself
(skipped).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from lightning_dataprops.functional._progress import progress_bar

_FLOAT32_UNIT_ROUNDOFF = 2.0**-24
DEFAULT_MEMORY_BUDGET_MB = 512.0
_MAX_BLOCK = 2048


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
        n_refined: rows whose fast ranking could not be certified from the candidates alone
            and were searched again.
    """

    distances: Tensor
    indices: Tensor
    query_indices: Tensor
    pair_first: Tensor | None = None
    pair_second: Tensor | None = None
    pair_distances: Tensor | None = None
    n_refined: int = 0

    @property
    def k(self) -> int:
        """Number of neighbours per query."""
        return int(self.distances.shape[1])


def _precision_backends() -> list[Any]:
    """Backends with the ``fp32_precision`` setting (PyTorch >= 2.9) that affect matmul."""
    backends = [torch.backends.cuda.matmul]
    mkldnn_matmul = getattr(getattr(torch.backends, "mkldnn", None), "matmul", None)
    if mkldnn_matmul is not None:
        backends.append(mkldnn_matmul)
    return [b for b in backends if hasattr(b, "fp32_precision")]


@contextlib.contextmanager
def full_precision_matmul() -> Iterator[None]:
    """IEEE float32 matmul inside the block: no TF32 on CUDA, no bf16 on oneDNN.

    ``torch.set_float32_matmul_precision("medium")``, which Lightning users often call, lets
    float32 matmuls run in TF32 (CUDA) or bfloat16 (oneDNN, on the CPU); distances computed
    that way lose most of their digits. The previous settings are restored afterwards.
    """
    backends = _precision_backends()
    if backends:
        previous = [backend.fp32_precision for backend in backends]
        for backend in backends:
            backend.fp32_precision = "ieee"
        try:
            yield
        finally:
            for backend, value in zip(backends, previous, strict=True):
                backend.fp32_precision = value
        return
    previous_precision = torch.get_float32_matmul_precision()
    previous_tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.set_float32_matmul_precision("highest")
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous_precision)
        torch.backends.cuda.matmul.allow_tf32 = previous_tf32


def knn_search(
    x: Tensor,
    k: int,
    *,
    labels: Tensor | None = None,
    n_pairs: int = 1,
    queries: Tensor | None = None,
    memory_budget_mb: float = DEFAULT_MEMORY_BUDGET_MB,
    candidate_margin: int | None = None,
    progress: bool = False,
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
        candidate_margin: extra candidates kept by the fast pass (default ``4 + k // 10``).
        progress: show a progress bar.

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
    margin = 4 + k // 10 if candidate_margin is None else candidate_margin
    with full_precision_matmul(), torch.no_grad():
        search = _BlockSearch(x, labels, min(k + margin, n - 1), max(1, n_pairs), memory_budget_mb)
        if queries is None:
            query_indices = torch.arange(n, device=x.device)
            search.run_symmetric(progress)
        else:
            query_indices = queries.to(device=x.device, dtype=torch.long).flatten()
            search.run_queries(query_indices, progress)
        return search.finish(query_indices, k)


def exact_distances(x: Tensor, first: Tensor, candidates: Tensor) -> Tensor:
    """Exact ``||x[first[i]] - x[candidates[i, j]]||`` (float64; ``inf`` where ``candidates < 0``).

    Difference-based (no cancellation), accumulated in float64, in cache-sized chunks.
    """
    n_rows, n_cand = candidates.shape
    out = torch.full((n_rows, n_cand), math.inf, dtype=torch.float64, device=x.device)
    if n_rows == 0 or n_cand == 0:
        return out
    dim = int(x.shape[1])
    chunk_bytes = (4 if x.device.type == "cpu" else 256) * 2**20
    rows_per_chunk = max(1, int(chunk_bytes // (x.element_size() * n_cand * dim)))
    for start in range(0, n_rows, rows_per_chunk):
        stop = min(start + rows_per_chunk, n_rows)
        cand = candidates[start:stop]
        neighbours = x[cand.clamp(min=0).flatten()].view(stop - start, n_cand, dim)
        neighbours.sub_(x[first[start:stop]][:, None, :])
        dist = torch.linalg.vector_norm(neighbours, dim=2, dtype=torch.float64)
        out[start:stop] = torch.where(cand >= 0, dist, torch.full_like(dist, math.inf))
    return out


def _take_sorted(values: Tensor, indices: Tensor, order: Tensor) -> tuple[Tensor, Tensor]:
    return torch.gather(values, 1, order), torch.gather(indices, 1, order)


class _BlockSearch:
    """The fast float32 pass and its exact, certified finish."""

    def __init__(
        self,
        x: Tensor,
        labels: Tensor | None,
        n_candidates: int,
        n_pairs: int,
        memory_budget_mb: float,
    ) -> None:
        self.x = x
        self.n = int(x.shape[0])
        self.dim = int(x.shape[1])
        self.labels = labels
        self.n_candidates = n_candidates
        self.n_pairs = n_pairs
        centred = x.to(torch.float32)
        centred = centred - centred.mean(dim=0, keepdim=True)
        # Visit points in label order: most blocks then need no label mask.
        self.order = None if labels is None else torch.argsort(labels, stable=True)
        self.points = centred if self.order is None else centred[self.order]
        self.sorted_labels = None if labels is None or self.order is None else labels[self.order]
        self.sq_norms = (self.points * self.points).sum(dim=1)
        self.norms = self.sq_norms.sqrt()
        self.max_norm = float(self.norms.max())
        # About four float32 block x block matrices live at once.
        budget_block = int(math.sqrt(memory_budget_mb * 2**20 / 16))
        self.block = max(64, min(_MAX_BLOCK, budget_block))
        device = x.device
        self.best_d = torch.empty(0, device=device)
        self.best_i = torch.empty(0, dtype=torch.long, device=device)
        # Approximate squared distance from each point to its nearest differently-labelled one.
        self.other_min = torch.full((self.n,), math.inf, device=device)

    # ----------------------------------------------------------------- fast pass
    def _init_lists(self, n_rows: int) -> None:
        device = self.x.device
        self.best_d = torch.full((n_rows, self.n_candidates), math.inf, device=device)
        self.best_i = torch.full((n_rows, self.n_candidates), -1, dtype=torch.long, device=device)

    def _sq_dists(self, rows: Tensor | slice, cols: slice) -> Tensor:
        d2 = torch.addmm(
            self.sq_norms[cols][None, :], self.points[rows], self.points[cols].T, alpha=-2.0
        )
        d2.add_(self.sq_norms[rows][:, None])
        return d2.clamp_(min=0.0)

    def _merge_rows(self, rows: slice, block_d: Tensor, first_col: int) -> None:
        """Merge a block's best entries per row into the running candidate lists."""
        take = min(self.n_candidates, block_d.shape[1])
        top_d, top_pos = torch.topk(block_d, take, dim=1, largest=False, sorted=False)
        top_i = torch.where(
            torch.isfinite(top_d), top_pos + first_col, torch.full_like(top_pos, -1)
        )
        cat_d = torch.cat([self.best_d[rows], top_d], dim=1)
        cat_i = torch.cat([self.best_i[rows], top_i], dim=1)
        keep_d, keep_pos = torch.topk(cat_d, self.n_candidates, dim=1, largest=False, sorted=False)
        self.best_d[rows] = keep_d
        self.best_i[rows] = torch.gather(cat_i, 1, keep_pos)

    def _other_label_block(
        self, d2: Tensor, row_labels: Tensor, col_labels: Tensor
    ) -> Tensor | None:
        """The block with same-label entries masked out; ``None`` when all entries share a label."""
        row_min, row_max = int(row_labels.min()), int(row_labels.max())
        col_min, col_max = int(col_labels.min()), int(col_labels.max())
        if row_min == row_max == col_min == col_max:
            return None
        if row_max < col_min or col_max < row_min:
            return d2
        return d2.masked_fill(row_labels[:, None] == col_labels[None, :], math.inf)

    def _merge_other(self, d2: Tensor, rows: Tensor | slice, cols: slice, both: bool) -> None:
        """Lower each point's distance to its nearest differently-labelled point."""
        assert self.sorted_labels is not None
        masked = self._other_label_block(d2, self.sorted_labels[rows], self.sorted_labels[cols])
        if masked is None:
            return
        self.other_min[rows] = torch.minimum(self.other_min[rows], masked.amin(dim=1))
        if both:
            self.other_min[cols] = torch.minimum(self.other_min[cols], masked.amin(dim=0))

    def run_symmetric(self, progress: bool) -> None:
        """All points as queries: visit each block pair (i <= j) once, update rows and columns."""
        self._init_lists(self.n)
        starts = list(range(0, self.n, self.block))
        pairs = [(a, b) for ia, a in enumerate(starts) for b in starts[ia:]]
        for a, b in progress_bar(pairs, enabled=progress, desc="neighbours"):
            rows, cols = (
                slice(a, min(a + self.block, self.n)),
                slice(b, min(b + self.block, self.n)),
            )
            d2 = self._sq_dists(rows, cols)
            if a == b:
                d2.fill_diagonal_(math.inf)
            self._merge_rows(rows, d2, b)
            if a != b:
                self._merge_rows(cols, d2.T, a)
            if self.sorted_labels is not None:
                self._merge_other(d2, rows, cols, both=a != b)
        if self.order is not None:
            best_d, best_i = torch.empty_like(self.best_d), torch.empty_like(self.best_i)
            best_d[self.order], best_i[self.order] = self.best_d, self.best_i
            self.best_d, self.best_i = best_d, best_i

    def run_queries(self, query_indices: Tensor, progress: bool) -> None:
        """A subset of queries against every reference point."""
        # Queries in label order too, so that their blocks rarely need a label mask.
        self.query_pos, perm = torch.sort(self._to_sorted(query_indices), stable=True)
        self._init_lists(int(self.query_pos.numel()))
        q_starts = list(range(0, int(self.query_pos.numel()), self.block))
        r_starts = list(range(0, self.n, self.block))
        pairs = [(a, b) for a in q_starts for b in r_starts]
        for a, b in progress_bar(pairs, enabled=progress, desc="neighbours"):
            q_pos = self.query_pos[a : a + self.block]
            cols = slice(b, min(b + self.block, self.n))
            d2 = self._sq_dists(q_pos, cols)
            inside = ((q_pos >= b) & (q_pos < cols.stop)).nonzero().flatten()
            d2[inside, q_pos[inside] - b] = math.inf
            self._merge_rows(slice(a, a + q_pos.numel()), d2, b)
            if self.sorted_labels is not None:
                self._merge_other(d2, q_pos, cols, both=False)
        best_d, best_i = torch.empty_like(self.best_d), torch.empty_like(self.best_i)
        best_d[perm], best_i[perm] = self.best_d, self.best_i
        self.best_d, self.best_i = best_d, best_i

    def _to_sorted(self, original: Tensor) -> Tensor:
        """Positions in the label-sorted order of points given by original indices."""
        if self.order is None:
            return original
        inverse = torch.empty_like(self.order)
        inverse[self.order] = torch.arange(self.n, device=self.order.device)
        return inverse[original]

    def _to_original(self, positions: Tensor) -> Tensor:
        if self.order is None:
            return positions
        return torch.where(positions >= 0, self.order[positions.clamp(min=0)], positions)

    # ----------------------------------------------------------------- exact finish
    def _error_bound(self, positions: Tensor) -> Tensor:
        """Rigorous bound on the float32 error of a squared distance computed by expansion."""
        gamma = (self.dim + 8) * _FLOAT32_UNIT_ROUNDOFF
        gamma = gamma / (1.0 - gamma)
        return gamma * (self.norms[positions].double() + self.max_norm) ** 2

    def _exact(self, rows_original: Tensor, cand_positions: Tensor) -> Tensor:
        return exact_distances(self.x, rows_original, self._to_original(cand_positions))

    def _exact_unique(self, rows_original: Tensor, cand_positions: Tensor) -> Tensor:
        """Like :meth:`_exact`, computing each unordered pair once (kNN lists share many pairs)."""
        width = cand_positions.shape[1]
        first = rows_original[:, None].expand(-1, width).flatten()
        second = self._to_original(cand_positions).flatten()
        low, high = torch.minimum(first, second), torch.maximum(first, second)
        key = low * self.n + high
        unique_key, inverse = torch.unique(key, return_inverse=True)
        dist = exact_distances(self.x, unique_key // self.n, (unique_key % self.n)[:, None])[:, 0]
        return dist[inverse].view(-1, width)

    def finish(self, query_indices: Tensor, k: int) -> NeighborGraph:
        positions = self._to_sorted(query_indices)
        approx, cand = self.best_d.double(), self.best_i
        order = torch.argsort(approx, dim=1, stable=True)
        approx, cand = _take_sorted(approx, cand, order)
        bound = self._error_bound(positions)
        # Stage 1: the k best by approximate distance, certified against the (k+1)-th.
        exact = self._exact_unique(query_indices, cand[:, :k])
        kth = exact.max(dim=1).values
        next_approx = approx[:, k] if approx.shape[1] > k else torch.full_like(kth, math.inf)
        certified = kth.square() <= next_approx - bound
        dist, idx = exact, cand[:, :k]
        # Stage 2: all candidates of the rows stage 1 could not certify.
        rows = (~certified).nonzero().flatten()
        n_refined = 0
        if rows.numel() > 0 and approx.shape[1] > k:
            exact_all = torch.cat(
                [exact[rows], self._exact(query_indices[rows], cand[rows, k:])], dim=1
            )
            order = torch.argsort(exact_all, dim=1, stable=True)[:, :k]
            dist_rows, idx_rows = _take_sorted(exact_all, cand[rows], order)
            dist[rows], idx[rows] = dist_rows, idx_rows
            worst = approx[rows, -1]
            full = (cand[rows] >= 0).all(dim=1)
            kth_rows = dist_rows[:, -1]
            ok = (~full) | (kth_rows.square() <= worst - bound[rows])
            certified[rows] = ok
        # Stage 3: every reference within the error bound, for the rows still uncertain.
        rows = (~certified).nonzero().flatten()
        if rows.numel() > 0:
            n_refined = int(rows.numel())
            dist[rows], idx[rows] = self._exhaustive(
                query_indices[rows], positions[rows], dist[rows, -1], bound[rows], k
            )
        order = torch.argsort(dist, dim=1, stable=True)
        dist, idx = _take_sorted(dist, idx, order)
        pairs: tuple[Tensor | None, Tensor | None, Tensor | None] = (None, None, None)
        if self.labels is not None:
            pairs = self._closest_pairs(positions)
        return NeighborGraph(
            distances=dist,
            indices=self._to_original(idx),
            query_indices=query_indices,
            pair_first=pairs[0],
            pair_second=pairs[1],
            pair_distances=pairs[2],
            n_refined=n_refined,
        )

    def _exhaustive(
        self, rows_original: Tensor, rows_pos: Tensor, kth: Tensor, bound: Tensor, k: int
    ) -> tuple[Tensor, Tensor]:
        """Exact top-k for rows by recomputing every reference that could be within ``kth``."""
        out_d, out_i = [], []
        rows_per_chunk = max(1, int(64 * 2**20 // (4 * self.n)))
        for start in range(0, int(rows_pos.numel()), rows_per_chunk):
            pos = rows_pos[start : start + rows_per_chunk]
            d2 = self._sq_dists(pos, slice(0, self.n)).double()
            d2[torch.arange(pos.numel(), device=pos.device), pos] = math.inf
            limit = kth[start : start + pos.numel()].square() + bound[start : start + pos.numel()]
            within = (d2 <= limit[:, None]) & torch.isfinite(d2)
            width = max(k, int(within.sum(dim=1).max()))
            d2 = d2.masked_fill(~within, math.inf)
            top = torch.topk(d2, width, dim=1, largest=False)
            cand = torch.where(
                torch.isfinite(top.values), top.indices, torch.full_like(top.indices, -1)
            )
            exact = self._exact(rows_original[start : start + pos.numel()], cand)
            order = torch.argsort(exact, dim=1, stable=True)[:, :k]
            chosen_d, chosen_i = _take_sorted(exact, cand, order)
            out_d.append(chosen_d)
            out_i.append(chosen_i)
        return torch.cat(out_d), torch.cat(out_i)

    def _closest_pairs(self, positions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Exact closest differently-labelled pairs ``(query, reference)``.

        Each such pair's two ends have it as an upper bound on their nearest differently-labelled
        distance, so only points whose approximate nearest such distance is within the error
        bound of an upper bound on the ``n_pairs``-th pair distance can take part. Those few
        rows are searched exhaustively and every reference within reach is recomputed exactly.
        """
        assert self.sorted_labels is not None
        device = self.x.device
        row_min = self.other_min[positions].double()
        empty = torch.empty(0, dtype=torch.long, device=device)
        if not bool(torch.isfinite(row_min).any()):
            return empty, empty, empty.double()
        bound = self._error_bound(positions)
        # An upper bound on the n_pairs-th distance: exact distances of the best rows' pairs.
        seeds = torch.topk(row_min, min(2 * self.n_pairs + 8, row_min.numel()), largest=False)
        seed_rows = seeds.indices[torch.isfinite(seeds.values)]
        first, second, dist = self._pairs_within(
            positions[seed_rows], row_min[seed_rows] + bound[seed_rows]
        )
        first, second, dist = _top_unique_pairs(first, second, dist, self.n_pairs)
        upper = float(dist[-1]) ** 2 if dist.numel() >= self.n_pairs else math.inf
        rows = (row_min - bound <= upper).nonzero().flatten()
        limit = torch.full((rows.numel(),), upper, dtype=torch.float64, device=device) + bound[rows]
        first, second, dist = self._pairs_within(positions[rows], limit)
        return _top_unique_pairs(first, second, dist, self.n_pairs)

    def _pairs_within(self, rows_pos: Tensor, limit: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Every differently-labelled pair (row, reference) with approximate squared distance
        ``<= limit[row]``, with exact distances (original indices)."""
        assert self.sorted_labels is not None
        firsts, seconds = [], []
        rows_per_chunk = max(1, int(64 * 2**20 // (4 * self.n)))
        for start in range(0, int(rows_pos.numel()), rows_per_chunk):
            pos = rows_pos[start : start + rows_per_chunk]
            d2 = self._sq_dists(pos, slice(0, self.n)).double()
            d2[torch.arange(pos.numel(), device=pos.device), pos] = math.inf
            d2.masked_fill_(
                self.sorted_labels[pos][:, None] == self.sorted_labels[None, :], math.inf
            )
            within = (d2 <= limit[start : start + pos.numel(), None]) & torch.isfinite(d2)
            within_r, within_c = within.nonzero(as_tuple=True)
            firsts.append(pos[within_r])
            seconds.append(within_c)
        first = self._to_original(torch.cat(firsts))
        second = self._to_original(torch.cat(seconds))
        return first, second, exact_distances(self.x, first, second[:, None])[:, 0]


def _top_unique_pairs(
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
    return _top_unique_pairs(first, second, dist, n_pairs)
