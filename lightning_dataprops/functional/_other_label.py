"""Each point's nearest differently-labelled point, tracked through the fast pass's blocks."""

from __future__ import annotations

import bisect
import itertools
import math

import torch
from torch import Tensor

from lightning_dataprops.functional._block_kernels import GROUPS, as_positions, outside

__all__ = ["OtherLabelTracker"]


class OtherLabelTracker:
    """Per point (in label order): the smallest approximate squared distance to a point of
    another class (``min``), that point's position (``arg``), and the smallest such distance to
    any *other* point of another class (``runner_up``).

    The runner-up is what certifies the minimum: every other differently-labelled point is at
    least ``runner_up - bound`` away, so if the exact distance to ``arg`` is within that, ``arg``
    is the nearest (see :meth:`uncertain`).
    """

    def __init__(self, sorted_labels: Tensor | None, n: int, device: torch.device) -> None:
        self.class_bounds: list[tuple[int, int]] = []
        if sorted_labels is not None:
            counts = torch.unique_consecutive(sorted_labels, return_counts=True)[1].tolist()
            stops = list(itertools.accumulate(counts))
            self.class_bounds = [(stop - c, stop) for stop, c in zip(stops, counts, strict=True)]
        self.class_starts = [start for start, _ in self.class_bounds]
        self.min = torch.full((n,), math.inf, device=device)
        self.runner_up = torch.full((n,), math.inf, device=device)
        self.arg = torch.full((n,), -1, dtype=torch.long, device=device)

    def class_runs(self, rows: Tensor | slice) -> list[tuple[int, int, int, int]]:
        """Runs of one class among label-sorted rows: ``(first, stop, class_start, class_stop)``,
        the run in local row numbers, the class's extent in sorted positions."""
        if isinstance(rows, slice):
            lo, hi = rows.start, rows.stop
        else:
            lo, hi = int(rows[0]), int(rows[-1]) + 1
        runs = []
        first = bisect.bisect_right(self.class_starts, lo) - 1
        for start, stop in self.class_bounds[first : bisect.bisect_left(self.class_starts, hi)]:
            if isinstance(rows, slice):
                runs.append((max(start, lo) - lo, min(stop, hi) - lo, start, stop))
            else:
                found = torch.searchsorted(rows, torch.tensor([start, stop], device=rows.device))
                runs.append((int(found[0]), int(found[1]), start, stop))
        return runs

    def merge(
        self,
        d2: Tensor,
        rows: Tensor | slice,
        cols: slice,
        minima: tuple[Tensor | None, Tensor | None],
    ) -> None:
        """Lower each point's distance to its nearest differently-labelled point: the rows', and
        the columns' too where ``minima[1]`` (the columns' group minima) is given.

        Points are in label order, so the other-labelled columns of a run of one class are at
        most two ranges of the block: reductions over views, no mask and no copy of the block.
        Where they are the whole block, the group minima of the selection serve.
        """
        self.merge_rows(d2, rows, cols, minima[0])
        if minima[1] is not None:
            assert isinstance(rows, slice)
            self.merge_columns(d2, rows, cols, minima[1])

    def merge_rows(
        self, d2: Tensor, rows: Tensor | slice, cols: slice, group_min: Tensor | None
    ) -> None:
        """The rows' part of :meth:`merge` (it touches the rows' entries only)."""
        row_positions = as_positions(rows, self.min.device)
        for first, stop, c_start, c_stop in self.class_runs(rows):
            if first < stop:
                ranges = outside(cols, c_start, c_stop)
                run_min = None if group_min is None else group_min[first:stop]
                self._lower(d2[first:stop], row_positions[first:stop], ranges, run_min)

    def merge_columns(self, d2: Tensor, rows: slice, cols: slice, group_min: Tensor | None) -> None:
        """The columns' part of :meth:`merge` (it touches the columns' entries only)."""
        col_positions = as_positions(cols, self.min.device)
        for first, stop, c_start, c_stop in self.class_runs(cols):
            ranges = outside(rows, c_start, c_stop)
            block, at = d2[:, first:stop].T, col_positions[first:stop]
            run_min = None if group_min is None else group_min[first:stop]
            self._lower(block, at, ranges, run_min)

    def _lower(
        self,
        block: Tensor,
        at: Tensor,
        ranges: list[tuple[int, int, int]],
        group_min: Tensor | None,
    ) -> None:
        """Lower ``min[at]`` (and the runner-up) with ``block``'s columns in ``ranges`` (each
        ``(first, stop, offset)``: local columns and the sorted position of column 0)."""
        if not ranges:
            return
        whole = len(ranges) == 1 and ranges[0][:2] == (0, block.shape[1])
        if whole and group_min is not None and block.shape[1] % GROUPS == 0:
            values = group_min.amin(dim=1)
        else:
            group_min = None
            values = torch.stack([block[:, a:b].amin(dim=1) for a, b, _ in ranges]).amin(dim=0)
        current = self.min[at]
        lower = values < current
        # Where the minimum stays, the block's minimum may be the new runner-up; where it moves,
        # the old minimum may be.
        self.runner_up[at] = torch.minimum(self.runner_up[at], torch.where(lower, current, values))
        better = lower.nonzero().flatten()
        if better.numel() == 0:  # the usual case: then no arg-minimum is needed
            return
        offset = ranges[0][2]
        if group_min is not None:  # the arg-minimum is one of its group's members
            width = group_min.shape[1]
            best_groups = group_min[better]
            group = best_groups.argmin(dim=1)
            members = group[:, None] + width * torch.arange(GROUPS, device=block.device)
            member_values = block[better[:, None], members]
            pick = member_values.argmin(dim=1, keepdim=True)
            local = torch.gather(members, 1, pick)[:, 0]
            # The runner-up within the block: the best group's other members, or another group.
            second = torch.minimum(
                member_values.scatter_(1, pick, math.inf).amin(dim=1),
                best_groups.scatter_(1, group[:, None], math.inf).amin(dim=1),
            )
        else:
            rows = block[better]
            best = torch.full((better.numel(),), math.inf, device=block.device)
            local = torch.zeros(better.numel(), dtype=torch.long, device=block.device)
            for a, b, _ in ranges:
                value, found = rows[:, a:b].min(dim=1)
                improves = value < best
                best = torch.where(improves, value, best)
                local = torch.where(improves, found + a, local)
            rows[torch.arange(better.numel(), device=block.device), local] = math.inf
            second = torch.stack([rows[:, a:b].amin(dim=1) for a, b, _ in ranges]).amin(dim=0)
        # The block's second smallest entry in the ranges also bounds the runner-up.
        self.runner_up[at[better]] = torch.minimum(self.runner_up[at[better]], second)
        self.min[at[better]] = values[better]
        self.arg[at[better]] = local + offset
