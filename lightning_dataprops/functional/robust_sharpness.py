"""Robust label-sharpness statistics and label conflicts, from the same neighbour pass as ``K_F``.

Exact ``K_F = 1 / min_i d_i`` is set by a single pair, where ``d_i`` is the distance from point
``i`` to its nearest differently-labelled point. The statistics here use the whole distribution
of ``d_i`` instead (the neighbour pass that finds ``K_F`` yields every ``d_i`` for free):

- ``K_F`` at quantile ``q``: ``K_F(q) = 1 / quantile_q({d_i})``. ``K_F(0)`` is the exact ``K_F``;
  ``K_F(0.5)`` (the *median* sharpness) is what the sharp-label check compares with references.
  Units: one over the input distance (the same units as ``K_F``). In ``N`` it grows very slowly,
  like ``N^(1/d)`` for data of intrinsic dimension ``d``, whereas the exact maximum also picks up
  the rarest coincidence as ``N`` grows.
- per class pair ``{a, b}``: ``K_F(0.5)`` over the points of ``a`` whose nearest
  differently-labelled point is in ``b`` and vice versa: which classes come closest.
- label conflicts: points whose nearest differently-labelled point is *near-identical*, closer
  than ``conflict_rtol`` times the median nearest-neighbour distance of the sample (a relative,
  scale-free threshold). Such pairs are often labelling errors or duplicated images; exact
  duplicates with different labels make ``K_F`` infinite.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

from lightning_dataprops._warnings import warn_from_rank_zero
from lightning_dataprops.functional.constants import DEFAULT_CONFLICT_RTOL
from lightning_dataprops.functional.results import RobustSharpness, SharpPair

__all__ = ["DEFAULT_QUANTILES", "LabelConflictWarning", "robust_sharpness", "warn_conflicts"]

DEFAULT_QUANTILES: tuple[float, ...] = (0.01, 0.05, 0.1, 0.25, 0.5)
"""Quantiles ``q`` of ``K_F(q)`` reported by default."""


class LabelConflictWarning(UserWarning):
    """Near-identical (or identical) inputs carry different labels."""


def _inverse(distance: float) -> float:
    return math.inf if distance <= 0 else 1.0 / distance


def _quantile(values: Tensor, q: float) -> float:
    return float(torch.quantile(values, q)) if values.numel() else math.nan


def _per_class_pair(
    labels: Tensor, other_labels: Tensor, distances: Tensor
) -> dict[tuple[int, int], tuple[float, int]]:
    low = torch.minimum(labels, other_labels)
    high = torch.maximum(labels, other_labels)
    out: dict[tuple[int, int], tuple[float, int]] = {}
    for a, b in torch.unique(torch.stack([low, high], dim=1), dim=0).tolist():
        chosen = distances[(low == a) & (high == b)]
        out[(int(a), int(b))] = (_inverse(_quantile(chosen, 0.5)), int(chosen.numel()))
    return out


def _conflicts(
    labels: Tensor, other_indices: Tensor, distances: Tensor, threshold: float
) -> tuple[SharpPair, ...]:
    rows = (distances <= threshold).nonzero().flatten().tolist()
    seen: dict[tuple[int, int], float] = {}
    for i in rows:
        j = int(other_indices[i])
        key = (min(i, j), max(i, j))
        seen.setdefault(key, float(distances[i]))
    ordered = sorted(seen.items(), key=lambda item: (item[1], item[0]))
    return tuple(
        SharpPair(i, j, d, int(labels[i]), int(labels[j]), _inverse(d)) for (i, j), d in ordered
    )


def warn_conflicts(conflicts: Sequence[SharpPair], *, stacklevel: int = 3) -> None:
    """One :class:`LabelConflictWarning` listing the first conflicting pairs (none: silent)."""
    if not conflicts:
        return
    from lightning_dataprops.findings.format import format_label  # a leaf module

    shown = ", ".join(
        f"({p.i}, {p.j}: labels {format_label(p.label_i)} vs {format_label(p.label_j)}, "
        f"distance {p.distance:.3g})"
        for p in conflicts[:5]
    )
    more = f" and {len(conflicts) - 5} more" if len(conflicts) > 5 else ""
    identical = sum(p.distance == 0 for p in conflicts)
    warn_from_rank_zero(
        f"Label conflict: {len(conflicts)} pair(s) of near-identical inputs carry different "
        f"labels ({identical} identical, which make K_F infinite): {shown}{more}. These are "
        "often labelling errors or duplicated images; check them.",
        LabelConflictWarning,
        stacklevel=stacklevel,
    )


@contextlib.contextmanager
def conflicts_said_elsewhere() -> Iterator[None]:
    """Silence :class:`LabelConflictWarning` in the block: for callers whose own result carries
    the conflicts (the sharp-label check, the fit-start report) and says them there."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LabelConflictWarning)
        yield


def robust_sharpness(
    labels: Tensor,
    other_indices: Tensor,
    other_distances: Tensor,
    nearest_distances: Tensor,
    *,
    quantiles: tuple[float, ...] = DEFAULT_QUANTILES,
    conflict_rtol: float = DEFAULT_CONFLICT_RTOL,
) -> RobustSharpness:
    """Robust sharpness statistics from each point's nearest differently-labelled neighbour.

    Args:
        labels: ``(n,)`` int64 class ids.
        other_indices: ``(n,)`` index of each point's nearest differently-labelled point.
        other_distances: ``(n,)`` its distance ``d_i``.
        nearest_distances: ``(n,)`` each point's nearest-neighbour distance (any label), for the
            scale of the conflict threshold.
        quantiles: the ``q`` of ``K_F(q)`` to report (0.5 is always included).
        conflict_rtol: conflicts are pairs closer than this times the median positive
            nearest-neighbour distance.

    Raises:
        ValueError: ``conflict_rtol`` or a quantile outside its range.

    Example:
        >>> import torch
        >>> from lightning_dataprops.functional import knn_search
        >>> x = torch.tensor([[0.0], [1.0], [1.05], [3.0], [4.0]])
        >>> y = torch.tensor([0, 0, 1, 1, 1])
        >>> graph = knn_search(x, 1, labels=y)
        >>> stats = robust_sharpness(y, graph.other_indices, graph.other_distances,
        ...                          graph.distances[:, 0])
        >>> round(stats.median, 3), [(p.i, p.j) for p in stats.conflicts]
        (0.952, [(1, 2)])
    """
    if not 0 < conflict_rtol < 1:
        raise ValueError(f"conflict_rtol must lie in (0, 1), got {conflict_rtol!r}.")
    if any(not 0 <= q <= 1 for q in quantiles):
        raise ValueError(f"quantiles must lie in [0, 1], got {quantiles!r}.")
    labels = labels.to(other_indices.device)
    valid = other_indices >= 0
    distances = other_distances.to(torch.float64)
    found = distances[valid]
    stats = {float(q): _inverse(_quantile(found, q)) for q in sorted({*quantiles, 0.5})}
    positive = nearest_distances[nearest_distances > 0].to(torch.float64)
    scale = float(positive.median()) if positive.numel() else 0.0
    threshold = conflict_rtol * scale
    safe_other = other_indices.clamp(min=0)
    return RobustSharpness(
        quantiles=stats,
        median=stats[0.5],
        n=int(labels.numel()),
        per_class_pair=_per_class_pair(labels[valid], labels[safe_other][valid], found),
        conflicts=_conflicts(
            labels, safe_other, torch.where(valid, distances, math.inf), threshold
        ),
        conflict_threshold=threshold,
        conflict_rtol=float(conflict_rtol),
        scale=scale,
        other_distances=distances,
    )
