"""Block layout and per-block primitives of the fast pass behind ``BlockSearch``."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "GROUPS",
    "MAX_BLOCK",
    "SPARSE_FRACTION",
    "as_positions",
    "entries_below",
    "group_minima",
    "interleaved",
    "outside",
    "symmetric_blocks",
    "take_sorted",
]

# Largest block side: larger blocks gain nothing in the matmul and lose cache in the selection.
MAX_BLOCK = 2048
# Diagonal blocks are split into triangles down to squares of this many points.
_LEAF = 512
# The prefilter merges only the entries below the lists' worst candidates, unless a row has more
# than 1/SPARSE_FRACTION of the block's columns among them (then a plain topk per row is
# cheaper); it looks for them through the minima of groups of GROUPS entries.
SPARSE_FRACTION = 8
GROUPS = 8
_Block = tuple[int, int, int, int]


def as_positions(index: Tensor | slice, device: torch.device) -> Tensor:
    """Positions named by a slice or an index tensor, as a tensor."""
    if isinstance(index, slice):
        return torch.arange(index.start, index.stop, device=device)
    return index


def outside(cols: slice, start: int, stop: int) -> list[tuple[int, int, int]]:
    """The columns of ``cols`` outside the sorted positions ``[start, stop)`` (one class), as
    ``(first, stop, offset)`` ranges of local columns, ``offset`` the position of column 0."""
    c0, c1 = cols.start, cols.stop
    ranges = [(0, min(c1, start) - c0, c0), (max(c0, stop) - c0, c1 - c0, c0)]
    return [(a, b, offset) for a, b, offset in ranges if a < b]


def take_sorted(values: Tensor, indices: Tensor, order: Tensor) -> tuple[Tensor, Tensor]:
    return torch.gather(values, 1, order), torch.gather(indices, 1, order)


def group_minima(block: Tensor) -> Tensor | None:
    """Minimum over each group of ``GROUPS`` columns ``{j, j + w, j + 2w, ...}`` of ``block``:
    ``(n_rows, w)`` with ``w = n_cols // GROUPS``; ``None`` when ``w == 0``. One cheap,
    vectorised pass (on a transposed view too: then the groups are rows of the original)."""
    width = block.shape[1] // GROUPS
    if width == 0:
        return None
    main = width * GROUPS
    if block.stride(1) == 1:
        return block[:, :main].unflatten(1, (GROUPS, width)).amin(dim=1)
    return block.T[:main].unflatten(0, (GROUPS, width)).amin(dim=0).T


def entries_below(
    block: Tensor, threshold: Tensor, group_min: Tensor | None
) -> tuple[Tensor, Tensor, Tensor] | None:
    """The entries ``(row, column, value)`` of ``block`` with ``value < threshold[row]``, rows
    ascending; ``None`` when there may be more than half the block.

    A comparison and a ``nonzero`` over the whole block cost about as much as a ``topk``.
    Instead only the members of the groups (``group_min``, see :func:`group_minima`) whose
    minimum is below the threshold are looked at.
    """
    n_rows, n_cols = block.shape
    limit = n_rows * n_cols // 2
    width = n_cols // GROUPS
    main = width * GROUPS
    device = block.device
    parts: list[tuple[Tensor, Tensor, Tensor]] = []
    if group_min is not None:
        below_min = (group_min < threshold[:, None]).contiguous()
        g_rows, g_cols = below_min.nonzero(as_tuple=True)
        if g_rows.numel() * GROUPS > limit:
            return None
        members = g_cols[:, None] + width * torch.arange(GROUPS, device=device)[None, :]
        values = block[g_rows[:, None], members]
        hit, member = (values < threshold[g_rows][:, None]).nonzero(as_tuple=True)
        parts.append((g_rows[hit], members[hit, member], values[hit, member]))
    if main < n_cols:
        rest = block[:, main:]
        rows, cols = (rest < threshold[:, None]).nonzero(as_tuple=True)
        parts.append((rows, cols + main, rest[rows, cols]))
    if len(parts) == 1:
        return parts[0]
    rows, cols, values = (torch.cat(column) for column in zip(*parts, strict=True))
    order = torch.argsort(rows, stable=True)
    return rows[order], cols[order], values[order]


def _split_triangle(start: int, stop: int, leaves: list[_Block], inner: list[_Block]) -> None:
    """Cover the upper triangle of the diagonal block ``[start, stop)^2`` with smaller blocks.

    Squares of at most ``_LEAF`` points are computed whole (their lower half is the transpose of
    their upper half); larger triangles split in two halves plus the block between them, so a
    diagonal block costs little more than its triangle.
    """
    if stop - start <= _LEAF:
        leaves.append((start, stop, start, stop))
        return
    mid = start + (stop - start) // 2
    _split_triangle(start, mid, leaves, inner)
    _split_triangle(mid, stop, leaves, inner)
    inner.append((start, mid, mid, stop))


def symmetric_blocks(n: int, block: int) -> list[_Block]:
    """Blocks ``(row_start, row_stop, col_start, col_stop)`` covering the upper triangle once.

    Diagonal leaves come first, then the rest of each diagonal block, then the off-diagonal
    blocks: every candidate list is full (from its own block) before the off-diagonal blocks,
    whose entries the prefilter of :meth:`_BlockSearch._merge` then mostly rejects cheaply.
    """
    leaves: list[_Block] = []
    inner: list[_Block] = []
    starts = list(range(0, n, block))
    for a in starts:
        _split_triangle(a, min(a + block, n), leaves, inner)
    outer = [
        (a, min(a + block, n), b, min(b + block, n))
        for i, a in enumerate(starts)
        for b in starts[i + 1 :]
    ]
    return leaves + inner + outer


def interleaved(blocks: list[_Block], block: int) -> list[_Block]:
    """The blocks of :func:`symmetric_blocks` in an order where consecutive blocks mostly touch
    different ranges of ``block`` points (so that concurrent workers rarely wait for the same
    candidate lists), the diagonal leaves still first, then the rest of the diagonal blocks,
    then the off-diagonal blocks."""

    def key(item: _Block) -> tuple[int, int, int, int]:
        r0, _, c0, _ = item
        if r0 == c0:
            return (0, r0 % block, r0, c0)
        if r0 // block == c0 // block:
            return (1, r0 % block, c0 % block, r0)
        distance, first = (c0 - r0) // block, r0 // block
        return (2, distance, first % 2, first)

    return sorted(blocks, key=key)
