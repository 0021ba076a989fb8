"""Duplicate and near-duplicate detection from a neighbour graph.

Duplicates make ``log(T_k / T_j)`` infinite and break every intrinsic-dimension estimator (public
libraries return 0 or NaN). Here a pair is a (near-)duplicate when its exact distance is at most
``rtol`` times the median distance to the k-th neighbour: the scale at which the estimators look.
Groups are the connected components of the duplicate pairs; the lowest index of each group is its
representative.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from lightning_dataprops.functional.constants import DEFAULT_DUPLICATE_RTOL
from lightning_dataprops.functional.knn import NeighborGraph


@dataclass(frozen=True)
class DuplicateReport:
    """Duplicates found in a sample.

    Attributes:
        groups: groups of sample indices whose members are (near-)duplicates of each other; each
            group is sorted and its first index is the representative that is kept.
        threshold: the absolute distance at or below which two samples counted as duplicates.
        rtol: the relative tolerance the threshold was derived from.
        n_exact_pairs: how many of the detected pairs are at distance exactly zero.
    """

    groups: tuple[tuple[int, ...], ...] = ()
    threshold: float = 0.0
    rtol: float = DEFAULT_DUPLICATE_RTOL
    n_exact_pairs: int = 0
    removed: tuple[int, ...] = field(default=(), repr=False)

    @property
    def n_duplicates(self) -> int:
        """Number of samples removed as duplicates of a kept representative."""
        return sum(len(group) - 1 for group in self.groups)

    @property
    def n_groups(self) -> int:
        """Number of duplicate groups."""
        return len(self.groups)

    def __bool__(self) -> bool:
        return bool(self.groups)

    def summary(self, max_groups: int = 3) -> str:
        """One line describing the duplicates, e.g. for a warning or a report."""
        if not self.groups:
            return "no duplicates"
        shown = "; ".join(str(list(group)) for group in self.groups[:max_groups])
        more = f" and {self.n_groups - max_groups} more" if self.n_groups > max_groups else ""
        return (
            f"{self.n_duplicates} duplicate sample(s) in {self.n_groups} group(s) "
            f"(distance <= {self.threshold:.3g}; {self.n_exact_pairs} exact pair(s)): {shown}{more}"
        )


def duplicate_threshold(graph: NeighborGraph, rtol: float) -> float:
    """Absolute duplicate threshold: ``rtol`` times the median k-th neighbour distance."""
    kth = graph.distances[:, -1]
    finite = kth[torch.isfinite(kth)]
    if finite.numel() == 0:
        return 0.0
    return float(rtol * finite.median())


def duplicate_pairs(graph: NeighborGraph, threshold: float) -> tuple[Tensor, Tensor, Tensor]:
    """The (query, neighbour, distance) triples of the graph at distance ``<= threshold``."""
    close = (graph.distances <= threshold) & (graph.indices >= 0)
    rows, cols = close.nonzero(as_tuple=True)
    return graph.query_indices[rows], graph.indices[rows, cols], graph.distances[rows, cols]


def group_duplicates(pairs_a: Tensor, pairs_b: Tensor) -> tuple[tuple[int, ...], ...]:
    """Connected components (size >= 2) of the undirected graph given by the pairs."""
    parent: dict[int, int] = {}

    def find(item: int) -> int:
        root = item
        while parent.setdefault(root, root) != root:
            root = parent[root]
        while parent[item] != root:
            parent[item], item = root, parent[item]
        return root

    for a, b in zip(pairs_a.tolist(), pairs_b.tolist(), strict=True):
        root_a, root_b = find(a), find(b)
        if root_a != root_b:
            parent[max(root_a, root_b)] = min(root_a, root_b)
    components: dict[int, list[int]] = {}
    for item in list(parent):
        components.setdefault(find(item), []).append(item)
    groups = [tuple(sorted(members)) for members in components.values() if len(members) > 1]
    return tuple(sorted(groups))
