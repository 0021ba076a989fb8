"""The blocked float32 search with exact, certified finish behind :func:`~.knn.knn_search`."""

from __future__ import annotations

import math
import threading

import torch
from torch import Tensor

from lightning_dataprops.functional._block_kernels import (
    MAX_BLOCK,
    SPARSE_FRACTION,
    entries_below,
    group_minima,
    interleaved,
    outside,
    symmetric_blocks,
    take_sorted,
)
from lightning_dataprops.functional._gram import KernelName, make_gram
from lightning_dataprops.functional._other_label import OtherLabelTracker
from lightning_dataprops.functional._parallel import (
    available_cpus,
    map_tasks,
    row_ranges,
    run_tasks,
)
from lightning_dataprops.functional._progress import progress_bar
from lightning_dataprops.functional.config import resolve_memory_budget
from lightning_dataprops.functional.neighbor_graph import (
    NeighborGraph,
    exact_distances,
    top_unique_pairs,
)

__all__ = ["BlockSearch"]


class BlockSearch:
    """The fast pass (a :mod:`._gram` kernel) and its exact, certified finish."""

    def __init__(
        self,
        x: Tensor,
        labels: Tensor | None,
        n_candidates: int,
        n_pairs: int,
        memory_budget_mb: float | None,
        kernel: KernelName = "auto",
        k: int | None = None,
    ) -> None:
        self.x = x
        self.n = int(x.shape[0])
        self.dim = int(x.shape[1])
        self.labels = labels
        self.n_pairs = n_pairs
        # Visit points in label order: most blocks then need no label mask.
        self.order = None if labels is None else torch.argsort(labels, stable=True)
        self.sorted_labels = None if labels is None or self.order is None else labels[self.order]
        self.other = OtherLabelTracker(self.sorted_labels, self.n, x.device)
        self.gram = make_gram(x, self.order, kernel, k=k, n_candidates=n_candidates)
        self.n_candidates = min(n_candidates + self.gram.extra_candidates, self.n - 1)
        self.budget_bytes = resolve_memory_budget(memory_budget_mb) * 2**20
        # About five 4-byte block x block matrices live at once per worker (one is the kernel's
        # product), and up to ``available_cpus()`` workers run blocks at once.
        per_worker = self.budget_bytes / (20 * available_cpus())
        self.block = max(64, min(MAX_BLOCK, int(math.sqrt(per_worker))))
        device = x.device
        self.best_d = torch.empty(0, device=device)
        self.best_i = torch.empty(0, dtype=torch.long, device=device)
        self.worst = torch.empty(0, device=device)
        # Blocks run concurrently (:func:`run_tasks`): each worker has its own scratch memory,
        # and the candidate lists of each range of ``block`` points have a lock.
        self.local = threading.local()
        self.locks = [threading.Lock() for _ in range(0, self.n, self.block)]

    # ----------------------------------------------------------------- fast pass
    def _init_lists(self, n_rows: int) -> None:
        device = self.x.device
        self.best_d = torch.full((n_rows, self.n_candidates), math.inf, device=device)
        self.best_i = torch.full((n_rows, self.n_candidates), -1, dtype=torch.long, device=device)
        self.worst = torch.full((n_rows,), math.inf, device=device)

    def _sq_dists(self, rows: Tensor | slice, cols: slice) -> Tensor:
        """Approximate squared distances ``|q|^2 + |r|^2 - 2 q.r`` of a block (float32)."""
        n_rows = rows.stop - rows.start if isinstance(rows, slice) else int(rows.numel())
        out = torch.empty(n_rows, cols.stop - cols.start, device=self.x.device)
        return self.gram.sq_dists(self.gram.operands[rows], self.gram.sq_norms[rows], cols, out)

    def _scratch(self, n_rows: int, n_cols: int) -> Tensor:
        """One reused block of memory per worker for the fast pass (a fresh one per block
        page-faults)."""
        buffer = getattr(self.local, "buffer", None)
        if buffer is None or buffer.numel() < n_rows * n_cols:
            buffer = self.local.buffer = torch.empty(n_rows * n_cols, device=self.x.device)
        return buffer[: n_rows * n_cols].view(n_rows, n_cols)

    def _lists_lock(self, first: int) -> threading.Lock:
        """The lock of the candidate lists of the range holding position ``first``."""
        return self.locks[first // self.block]

    def _merge(self, lists: slice, block: Tensor, offset: int, group_min: Tensor | None) -> None:
        """Merge a block (rows: the lists ``lists``; columns: points ``offset + j``) into the
        candidate lists.

        Once the lists are full, only the few entries below a list's current worst candidate
        can enter it: :func:`entries_below` finds them and only they are merged. Otherwise the
        block's best entries per row are taken with ``topk``. Either way each list keeps the
        ``n_candidates`` smallest entries seen (ties arbitrary), so every entry left out is at
        least its final worst candidate.
        """
        threshold = self.worst[lists]
        found = None
        if bool(torch.isfinite(threshold).all()):
            found = entries_below(block, threshold, group_min)
        n_rows, n_cols = block.shape
        if found is not None:
            rows, cols, values = found
            if rows.numel() == 0:
                return
            counts = torch.bincount(rows, minlength=n_rows)
            width = int(counts.max())
            if width * SPARSE_FRACTION <= n_cols:
                self._merge_entries(lists, rows, cols + offset, values, counts, width)
                return
        take = min(self.n_candidates, n_cols)
        top_d, top_pos = torch.topk(block, take, dim=1, largest=False, sorted=False)
        self._keep_best(lists, top_d, (top_pos + offset).masked_fill_(~torch.isfinite(top_d), -1))

    def _merge_entries(
        self, lists: slice, rows: Tensor, cols: Tensor, values: Tensor, counts: Tensor, width: int
    ) -> None:
        """Merge entries ``(rows[e], cols[e], values[e])`` into the lists (``rows`` ascending and
        local to ``lists``, ``counts`` entries per row, at most ``width``)."""
        first = torch.cumsum(counts, dim=0).sub_(counts)
        position = torch.arange(rows.numel(), device=rows.device).sub_(first[rows])
        n_rows = int(counts.numel())
        new_d = torch.full((n_rows, width), math.inf, device=values.device)
        new_i = torch.full((n_rows, width), -1, dtype=torch.long, device=rows.device)
        new_d[rows, position] = values
        new_i[rows, position] = cols
        self._keep_best(lists, new_d, new_i)

    def _keep_best(self, lists: slice, new_d: Tensor, new_i: Tensor) -> None:
        """Replace the lists by the ``n_candidates`` best of themselves and the new entries."""
        cat_d = torch.cat([self.best_d[lists], new_d], dim=1)
        cat_i = torch.cat([self.best_i[lists], new_i], dim=1)
        keep_d, keep_pos = torch.topk(cat_d, self.n_candidates, dim=1, largest=False, sorted=False)
        self.best_d[lists] = keep_d
        self.best_i[lists] = torch.gather(cat_i, 1, keep_pos)
        self.worst[lists] = keep_d.amax(dim=1)

    def run_symmetric(self, progress: bool | None) -> None:
        """All points as queries: each block of the upper triangle updates its rows and columns."""
        self._init_lists(self.n)
        blocks = interleaved(symmetric_blocks(self.n, self.block), self.block)
        run_tasks(
            progress_bar(blocks, enabled=progress, desc="neighbours"),
            self._symmetric_block,
            self.x.device,
        )
        if self.order is not None:
            best_d, best_i = torch.empty_like(self.best_d), torch.empty_like(self.best_i)
            best_d[self.order], best_i[self.order] = self.best_d, self.best_i
            self.best_d, self.best_i = best_d, best_i

    def _symmetric_block(self, block: tuple[int, int, int, int]) -> None:
        """One block of :meth:`run_symmetric`; the lists of its rows, then of its columns, are
        updated under their range's lock (one lock held at a time)."""
        r0, r1, c0, c1 = block
        rows, cols = slice(r0, r1), slice(c0, c1)
        scratch = self._scratch(r1 - r0, c1 - c0)
        d2 = self.gram.sq_dists(self.gram.operands[rows], self.gram.sq_norms[rows], cols, scratch)
        diagonal = r0 == c0
        if diagonal:
            d2.fill_diagonal_(math.inf)
        row_min = group_minima(d2)
        col_min = None if diagonal else group_minima(d2.T)
        with self._lists_lock(r0):
            self._merge(rows, d2, c0, row_min)
            if self.sorted_labels is not None:
                self.other.merge_rows(d2, rows, cols, row_min)
        if diagonal:
            return
        with self._lists_lock(c0):
            self._merge(cols, d2.T, r0, col_min)
            if self.sorted_labels is not None:
                self.other.merge_columns(d2, rows, cols, col_min)

    def run_queries(self, query_indices: Tensor, progress: bool | None) -> None:
        """A subset of queries against every reference point."""
        # Queries in label order too, so that their blocks rarely need a label mask.
        self.query_pos, perm = torch.sort(self._to_sorted(query_indices), stable=True)
        self._init_lists(int(self.query_pos.numel()))
        q_starts = list(range(0, int(self.query_pos.numel()), self.block))
        r_starts = list(range(0, self.n, self.block))
        # Consecutive tasks update different query lists, so concurrent workers rarely wait.
        pairs = [(a, b) for b in r_starts for a in q_starts]
        self.query_locks = [threading.Lock() for _ in q_starts]
        run_tasks(
            progress_bar(pairs, enabled=progress, desc="neighbours"),
            self._query_block,
            self.x.device,
        )
        best_d, best_i = torch.empty_like(self.best_d), torch.empty_like(self.best_i)
        best_d[perm], best_i[perm] = self.best_d, self.best_i
        self.best_d, self.best_i = best_d, best_i

    def _query_block(self, pair: tuple[int, int]) -> None:
        """The queries ``a : a + block`` against the references ``b : b + block``."""
        a, b = pair
        q_pos = self.query_pos[a : a + self.block]
        cols = slice(b, min(b + self.block, self.n))
        d2 = self.gram.sq_dists(
            self.gram.operands[q_pos],
            self.gram.sq_norms[q_pos],
            cols,
            self._scratch(q_pos.numel(), cols.stop - b),
        )
        inside = ((q_pos >= b) & (q_pos < cols.stop)).nonzero().flatten()
        d2[inside, q_pos[inside] - b] = math.inf
        minima = group_minima(d2)
        with self.query_locks[a // self.block]:
            self._merge(slice(a, a + q_pos.numel()), d2, b, minima)
            if self.sorted_labels is not None:
                self.other.merge_rows(d2, q_pos, cols, minima)

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
        """Rigorous bound on the fast pass's error in any squared distance of these rows."""
        return self.gram.error_bound(positions)

    def _exact(self, rows_original: Tensor, cand_positions: Tensor) -> Tensor:
        return exact_distances(self.x, rows_original, self._to_original(cand_positions))

    def _exact_unique(self, rows_original: Tensor, cand_positions: Tensor) -> Tensor:
        """Like :meth:`_exact`, computing each unordered pair once (kNN lists share many pairs);
        ``inf`` where a candidate is ``-1``."""
        width = cand_positions.shape[1]
        second = self._to_original(cand_positions)
        valid = (second >= 0).flatten()
        first = rows_original[:, None].expand_as(second)
        # key = low * n + high, built in place (kNN lists of large sets are tens of MB each).
        key = torch.minimum(first, second).mul_(self.n).add_(torch.maximum(first, second))
        unique_key, inverse = torch.unique(key.flatten()[valid], return_inverse=True)
        del key, second
        dist = exact_distances(self.x, unique_key // self.n, (unique_key % self.n)[:, None])[:, 0]
        out = torch.full((valid.numel(),), math.inf, dtype=torch.float64, device=valid.device)
        out[valid] = dist[inverse]
        return out.view(-1, width)

    def finish(self, query_indices: Tensor, k: int) -> NeighborGraph:
        positions = self._to_sorted(query_indices)
        approx, cand = self.best_d.double(), self.best_i
        order = torch.argsort(approx, dim=1, stable=True)
        approx, cand = take_sorted(approx, cand, order)
        bound = self._error_bound(positions)
        # Stage 1: the k best by approximate distance (all candidates, for a kernel with a wide
        # bound), certified against the next candidate's approximate distance.
        first = k if self.gram.extra_candidates == 0 else approx.shape[1]
        dist, idx, certified = self._certify(query_indices, approx, cand, bound, first, k)
        # Stage 2: all candidates of the rows stage 1 could not certify.
        rows = (~certified).nonzero().flatten()
        n_refined = 0
        if rows.numel() > 0 and approx.shape[1] > first:
            dist[rows], idx[rows], certified[rows] = self._certify(
                query_indices[rows], approx[rows], cand[rows], bound[rows], approx.shape[1], k
            )
        # Stage 3: every reference within the error bound, for the rows still uncertain.
        rows = (~certified).nonzero().flatten()
        if rows.numel() > 0:
            n_refined = int(rows.numel())
            dist[rows], idx[rows] = self._exhaustive(
                query_indices[rows], positions[rows], dist[rows, -1], bound[rows], k
            )
        order = torch.argsort(dist, dim=1, stable=True)
        dist, idx = take_sorted(dist, idx, order)
        pairs: tuple[Tensor | None, Tensor | None, Tensor | None] = (None, None, None)
        other_i: Tensor | None = None
        other_d: Tensor | None = None
        if self.labels is not None:
            pairs = self._closest_pairs(positions)
            other_i, other_d = self._nearest_other(query_indices, positions, bound, dist, idx)
        return NeighborGraph(
            distances=dist,
            indices=self._to_original(idx),
            query_indices=query_indices,
            pair_first=pairs[0],
            pair_second=pairs[1],
            pair_distances=pairs[2],
            other_indices=other_i,
            other_distances=other_d,
            n_refined=n_refined,
        )

    def _certify(
        self,
        query_indices: Tensor,
        approx: Tensor,
        cand: Tensor,
        bound: Tensor,
        width: int,
        k: int,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """The ``k`` best of the first ``width`` candidates by exact distance, and whether they
        are certified: every point left out is at least the next candidate's approximate
        distance (past the last one, the list's worst), so none is closer if the ``k``-th exact
        squared distance is within the bound of it; and none is left out where the lists hold
        every point and all of them were recomputed."""
        cand = cand[:, :width]
        exact = self._exact_unique(query_indices, cand[:, :k])
        if width > k:
            # The k-th exact distance is at most ``upper``, the largest of the first k exact
            # ones (any k points bound it), so a candidate whose approximate squared distance is
            # more than the bound above ``upper^2`` cannot be among the k nearest, nor one more
            # than twice the bound above the k-th approximate distance; only the others are
            # recomputed (the kernel's actual error is far below its bound, so few are).
            upper = exact.amax(dim=1)
            reach = torch.minimum(approx[:, k - 1] + 2.0 * bound, upper.square() + bound)
            cand = torch.cat(
                [cand[:, :k], torch.where(approx[:, k:width] <= reach[:, None], cand[:, k:], -1)],
                dim=1,
            )
            exact = torch.cat([exact, self._exact_unique(query_indices, cand[:, k:])], dim=1)
        order = torch.argsort(exact, dim=1, stable=True)[:, :k]
        dist, idx = take_sorted(exact, cand, order)
        if width >= approx.shape[1] and self.n_candidates >= self.n - 1:
            # Every point was a candidate, and every candidate was recomputed.
            return dist, idx, torch.ones_like(bound, dtype=torch.bool)
        limit = approx[:, width] if approx.shape[1] > width else approx[:, -1]
        return dist, idx, dist[:, -1].square() <= limit - bound

    def _nearest_other(
        self,
        query_indices: Tensor,
        positions: Tensor,
        bound: Tensor,
        knn_dist: Tensor,
        knn_pos: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """Each query's exact nearest differently-labelled point and distance (``-1`` and
        ``inf`` where there is none).

        Where the exact, sorted neighbour list (``knn_dist``, ``knn_pos``) holds a point of
        another class, the first one is the nearest. Elsewhere the fast pass's arg-minimum is
        certified when its exact squared distance is within the bound of the runner-up;
        otherwise every differently-labelled point whose approximate distance could be as small
        is recomputed exactly (ties go to the smallest index).
        """
        assert self.sorted_labels is not None
        other_pos = self.other.arg[positions]
        found = other_pos >= 0
        other_i = torch.where(found, self._to_original(other_pos.clamp(min=0)), other_pos)
        in_list = (knn_pos >= 0) & (
            self.sorted_labels[knn_pos.clamp(min=0)] != self.sorted_labels[positions][:, None]
        )
        listed = in_list.any(dim=1)
        first = in_list.to(torch.int8).argmax(dim=1)[listed]
        # The listed rows' distance is already exact; only the others are recomputed.
        other_d = torch.full_like(bound, math.inf)
        other_d[listed] = knn_dist[listed, first]
        other_i[listed] = self._to_original(knn_pos[listed, first])
        rest = (~listed).nonzero().flatten()
        other_d[rest] = exact_distances(self.x, query_indices[rest], other_i[rest, None])[:, 0]
        certified = listed | (other_d.square() <= self.other.runner_up[positions].double() - bound)
        rows = (found & ~certified).nonzero().flatten()
        if rows.numel() == 0:
            return other_i, other_d
        # A query given twice is searched once (and its slot must not be overwritten).
        unique, inverse = torch.unique(query_indices[rows], return_inverse=True)
        limit = torch.zeros(unique.numel(), dtype=torch.float64, device=rows.device)
        limit.scatter_reduce_(0, inverse, other_d[rows].square() + bound[rows], reduce="amax")
        first, second, dist = self._pairs_within(self._to_sorted(unique), limit)
        slot = torch.full((self.n,), -1, dtype=torch.long, device=rows.device)
        slot[unique] = torch.arange(unique.numel(), device=rows.device)
        at = slot[first]
        best = torch.full((unique.numel(),), math.inf, dtype=torch.float64, device=rows.device)
        best.scatter_reduce_(0, at, dist, reduce="amin")
        hit = dist == best[at]
        pick = torch.full((unique.numel(),), self.n, dtype=torch.long, device=rows.device)
        pick.scatter_reduce_(0, at[hit], second[hit], reduce="amin")
        other_d[rows], other_i[rows] = best[inverse], pick[inverse]
        return other_i, other_d

    def _row_chunks(self, n_rows: int) -> list[range]:
        """Row ranges for pooled work on rows against up to all ``n`` points, a few per worker,
        each within its share of the memory budget (a float32 and a float64 copy, a masked
        float64 copy and two masks: 22 bytes an entry)."""
        workers = available_cpus() if self.x.device.type == "cpu" else 1
        fits = max(1, int(self.budget_bytes // (24 * self.n * workers)))
        return row_ranges(n_rows, max_rows=fits)

    def _exhaustive(
        self, rows_original: Tensor, rows_pos: Tensor, kth: Tensor, bound: Tensor, k: int
    ) -> tuple[Tensor, Tensor]:
        """Exact top-k for rows by recomputing every reference that could be within ``kth``."""
        n_rows = int(rows_pos.numel())
        out_d = torch.empty((n_rows, k), dtype=torch.float64, device=rows_pos.device)
        out_i = torch.empty((n_rows, k), dtype=torch.long, device=rows_pos.device)

        def search(rows: range) -> None:
            part = slice(rows.start, rows.stop)
            pos = rows_pos[part]
            d2 = self._sq_dists(pos, slice(0, self.n)).double()
            d2[torch.arange(pos.numel(), device=pos.device), pos] = math.inf
            within = (d2 <= (kth[part].square() + bound[part])[:, None]) & torch.isfinite(d2)
            width = max(k, int(within.sum(dim=1).max()))
            d2 = d2.masked_fill(~within, math.inf)
            top = torch.topk(d2, width, dim=1, largest=False)
            cand = torch.where(
                torch.isfinite(top.values), top.indices, torch.full_like(top.indices, -1)
            )
            exact = self._exact(rows_original[part], cand)
            order = torch.argsort(exact, dim=1, stable=True)[:, :k]
            out_d[part], out_i[part] = take_sorted(exact, cand, order)

        run_tasks(self._row_chunks(n_rows), search, rows_pos.device)
        return out_d, out_i

    def _closest_pairs(self, positions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Exact closest differently-labelled pairs ``(query, reference)``.

        Each such pair's two ends have it as an upper bound on their nearest differently-labelled
        distance, so only points whose approximate nearest such distance is within the error
        bound of an upper bound on the ``n_pairs``-th pair distance can take part. Those few
        rows are searched exhaustively and every reference within reach is recomputed exactly.
        """
        assert self.sorted_labels is not None
        device = self.x.device
        row_min = self.other.min[positions].double()
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
        first, second, dist = top_unique_pairs(first, second, dist, self.n_pairs)
        upper = float(dist[-1]) ** 2 if dist.numel() >= self.n_pairs else math.inf
        rows = (row_min - bound <= upper).nonzero().flatten()
        limit = torch.full((rows.numel(),), upper, dtype=torch.float64, device=device) + bound[rows]
        first, second, dist = self._pairs_within(positions[rows], limit)
        return top_unique_pairs(first, second, dist, self.n_pairs)

    def _pairs_within(self, rows_pos: Tensor, limit: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Every differently-labelled pair (row, reference) with approximate squared distance
        ``<= limit[row]``, with exact distances (original indices).

        Points are in label order, so a run of rows of one class meets its differently-labelled
        references in at most two ranges: only those are computed.
        """
        assert self.sorted_labels is not None
        device = rows_pos.device
        firsts = [torch.empty(0, dtype=torch.long, device=device)]
        seconds = [torch.empty(0, dtype=torch.long, device=device)]
        order = torch.argsort(rows_pos)
        rows_pos, limit = rows_pos[order], limit[order]
        # Compared in float32, rounded up: a pair too many only costs an exact distance.
        limit32 = limit.to(torch.float32)
        limit32 = torch.where(
            limit32.double() < limit,
            torch.nextafter(limit32, torch.full_like(limit32, math.inf)),
            limit32,
        )
        runs = self.other.class_runs(rows_pos) if rows_pos.numel() > 0 else []
        tasks = [
            (range(run_start + rows.start, run_start + rows.stop), a, b)
            for run_start, run_stop, c_start, c_stop in runs
            for a, b, _ in outside(slice(0, self.n), c_start, c_stop)
            for rows in self._row_chunks(run_stop - run_start)
        ]

        def search(task: tuple[range, int, int]) -> tuple[Tensor, Tensor]:
            rows, a, b = task
            pos = rows_pos[rows.start : rows.stop]
            hits = self._sq_dists(pos, slice(a, b)) <= limit32[rows.start : rows.stop, None]
            within_r, within_c = hits.nonzero(as_tuple=True)
            return pos[within_r], within_c + a

        found = map_tasks(tasks, search, device)
        firsts += [first for first, _ in found]
        seconds += [second for _, second in found]
        first = self._to_original(torch.cat(firsts))
        second = self._to_original(torch.cat(seconds))
        return first, second, exact_distances(self.x, first, second[:, None])[:, 0]
