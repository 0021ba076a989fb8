"""Label sharpness ``K_F = max_{j != k} |y_j - y_k| / ||x_j - x_k||_2`` (Konz & Mazurowski, 2024).

For class labels the numerator is ``1(y_j != y_k)``, so ``K_F`` is one over the smallest distance
between two differently-labelled inputs: a bichromatic closest-pair problem, solved exactly by the
neighbour engine. For float (regression) targets the numerator is ``|y_j - y_k|`` (the Euclidean
norm for vector targets), maximised over all pairs in a blocked pass whose best candidates are
re-ranked with exact distances.

Two identical inputs with different labels give ``K_F = inf``: a label conflict, reported with
the offending indices through :class:`LabelConflictWarning`.
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import partial
from typing import Any, Literal

import torch
from torch import Tensor

from lightning_dataprops.functional._kf_targets import kf_targets
from lightning_dataprops.functional._precision import full_precision_matmul
from lightning_dataprops.functional._progress import progress_bar
from lightning_dataprops.functional._validation import (
    as_points,
    check_choice,
    power_of_two_scale,
    warn_if_byte_images,
)
from lightning_dataprops.functional.config import resolve_memory_budget
from lightning_dataprops.functional.constants import DEFAULT_CONFLICT_RTOL
from lightning_dataprops.functional.distributed import sharded_knn_search
from lightning_dataprops.functional.knn import NeighborGraph, exact_distances, knn_search
from lightning_dataprops.functional.results import Label, LabelSharpnessResult, SharpPair
from lightning_dataprops.functional.robust_sharpness import (
    robust_sharpness,
    warn_conflicts,
)
from lightning_dataprops.functional.targets import TargetType

Method = Literal["exact", "sampled"]
METHODS: tuple[str, ...] = ("exact", "sampled")


def _in_moderate_units(
    points: Tensor, targets: Tensor, kind: str
) -> tuple[Tensor, Tensor, int, int]:
    """Points and (regression) targets scaled by powers of two into moderate ranges (exact):
    ``(points, targets, e_x, e_y)``; a distance of these times ``2^e_x`` and a sharpness times
    ``2^(e_y - e_x)`` are those of the originals. Squared differences of values near 1e154
    would overflow float64, those near 1e-200 underflow, without it."""
    scaled_points, e_x = power_of_two_scale(points)
    e_y = 0
    if kind == "regression":
        targets, e_y = power_of_two_scale(targets)
    return scaled_points, targets, e_x, e_y


def _in_given_units(
    result: LabelSharpnessResult, targets: Tensor, e_x: int, e_y: int
) -> LabelSharpnessResult:
    """``result`` (of :func:`_in_moderate_units`' values) in the units of the data given, its
    labels read from the given ``targets``."""
    if e_x == 0 and e_y == 0:
        return result

    def back(pair: SharpPair) -> SharpPair:
        try:
            sharpness = math.ldexp(pair.sharpness, e_y - e_x)  # exact: a power of two
        except OverflowError:
            raise ValueError(
                f"K_F is {pair.sharpness:g} x 2^{e_y - e_x}, beyond the float64 range: the "
                "targets are far larger than the input distances. Rescale the targets (or the "
                "inputs) first; K_F scales with them."
            ) from None
        return replace(
            pair,
            distance=math.ldexp(pair.distance, e_x),
            label_i=_label_value(targets, pair.i),
            label_j=_label_value(targets, pair.j),
            sharpness=sharpness,
        )

    pairs = tuple(back(pair) for pair in result.pairs)
    return replace(
        result,
        value=pairs[0].sharpness,
        pairs=pairs,
        conflicts=tuple(back(pair) for pair in result.conflicts),
    )


def _label_value(targets: Tensor, index: int) -> Label:
    value = targets[index]
    if value.ndim == 0:
        return int(value) if not value.is_floating_point() else float(value)
    return float(value[0]) if value.numel() == 1 else tuple(float(v) for v in value.flatten())


def _pairs_from_candidates(
    a: Tensor, b: Tensor, distances: Tensor, sharpness: Tensor, targets: Tensor, top_pairs: int
) -> tuple[list[SharpPair], list[SharpPair]]:
    """Unique pairs, sharpest first (ties by distance, then indices); and all conflicts."""
    valid = (b >= 0) & (a != b)
    a, b, distances, sharpness = a[valid], b[valid], distances[valid], sharpness[valid]
    # Each pair can appear twice (i -> j and j -> i): 2 * top_pairs entries hold the best pairs.
    if sharpness.numel() > 2 * top_pairs:
        cutoff = torch.topk(sharpness, 2 * top_pairs).values[-1]
        keep = (sharpness >= cutoff) | (distances == 0)
        a, b, distances, sharpness = a[keep], b[keep], distances[keep], sharpness[keep]
    low, high = torch.minimum(a, b), torch.maximum(a, b)
    keyed = sorted(
        set(zip(low.tolist(), high.tolist(), distances.tolist(), sharpness.tolist(), strict=True)),
        key=lambda item: (-item[3], item[2], item[0], item[1]),
    )
    seen: set[tuple[int, int]] = set()
    pairs: list[SharpPair] = []
    conflicts: list[SharpPair] = []
    for i, j, distance, sharp in keyed:
        if (i, j) in seen:
            continue
        seen.add((i, j))
        pair = SharpPair(i, j, distance, _label_value(targets, i), _label_value(targets, j), sharp)
        if distance == 0.0:
            conflicts.append(pair)
        if len(pairs) < top_pairs:
            pairs.append(pair)
    return pairs, conflicts


def _result(
    pairs: list[SharpPair],
    conflicts: list[SharpPair],
    n: int,
    input_shape: tuple[int, ...],
    **details: Any,
) -> LabelSharpnessResult:
    """The result of the sharpest ``pairs`` (conflicts reported by a warning)."""
    warn_conflicts(conflicts, stacklevel=5)
    return LabelSharpnessResult(
        value=pairs[0].sharpness,
        n=n,
        input_shape=input_shape,
        pairs=tuple(pairs),
        conflicts=tuple(conflicts),
        **details,
    )


def sharpness_from_graph(
    graph: NeighborGraph,
    labels: Tensor,
    *,
    input_shape: tuple[int, ...],
    n_classes: int,
    top_pairs: int,
    conflict_rtol: float = DEFAULT_CONFLICT_RTOL,
) -> LabelSharpnessResult:
    """Class-label K_F from a neighbour graph that holds nearest differently-labelled neighbours."""
    if graph.pair_first is None or graph.pair_second is None or graph.pair_distances is None:
        raise ValueError("The neighbour graph was built without labels; pass labels to knn_search.")
    a, b, distances = graph.pair_first, graph.pair_second, graph.pair_distances
    sharpness = torch.where(distances > 0, 1.0 / distances, torch.full_like(distances, math.inf))
    pairs, conflicts = _pairs_from_candidates(a, b, distances, sharpness, labels, top_pairs)
    robust = None
    if graph.other_indices is not None and graph.other_distances is not None:
        robust = robust_sharpness(
            labels,
            graph.other_indices,
            graph.other_distances,
            graph.distances[:, 0],
            conflict_rtol=conflict_rtol,
        )
        conflicts = list(robust.conflicts)
    return _result(
        pairs,
        conflicts,
        int(labels.numel()),
        input_shape,
        method="exact",
        target_type="class",
        n_classes=n_classes,
        robust=robust,
    )


def _regression_sharpness(
    points: Tensor,
    targets: Tensor,
    *,
    input_shape: tuple[int, ...],
    top_pairs: int,
    memory_budget_mb: float | None,
    progress: bool | None,
) -> LabelSharpnessResult:
    """Exact max of ``|y_i - y_j| / ||x_i - x_j||`` over all pairs, in blocks."""
    n = int(points.shape[0])
    width = min(top_pairs + 8, n - 1)
    centred = points.to(torch.float32)
    centred = centred - centred.mean(dim=0, keepdim=True)
    sq = (centred * centred).sum(dim=1)
    y = targets.to(points.device)
    block = max(64, int(math.sqrt(resolve_memory_budget(memory_budget_mb) * 2**20 / 24)))
    best_r = torch.full((n, width), -math.inf, dtype=torch.float64, device=points.device)
    best_j = torch.full((n, width), -1, dtype=torch.long, device=points.device)
    starts = list(range(0, n, block))
    block_pairs = [(a, b) for ia, a in enumerate(starts) for b in starts[ia:]]
    with full_precision_matmul(), torch.no_grad():
        for a, b in progress_bar(block_pairs, enabled=progress, desc="label sharpness"):
            rows = slice(a, min(a + block, n))
            cols = torch.arange(b, min(b + block, n), device=points.device)
            d2 = torch.addmm(sq[cols][None, :], centred[rows], centred[cols].T, alpha=-2.0)
            d2.add_(sq[rows][:, None]).clamp_(min=0.0)
            # Direct differences: the matmul form cancels for targets far from 0 (1e12 + y).
            dy = torch.cdist(y[rows], y[cols], compute_mode="donot_use_mm_for_euclid_dist")
            ratio = torch.where(dy > 0, dy / d2.double().sqrt(), torch.zeros_like(dy))
            if a == b:
                ratio.fill_diagonal_(-math.inf)
            take = min(width, ratio.shape[1])
            top_r, top_pos = torch.topk(ratio, take, dim=1)
            cat_r = torch.cat([best_r[rows], top_r], dim=1)
            cat_j = torch.cat([best_j[rows], cols[top_pos]], dim=1)
            keep_r, keep_pos = torch.topk(cat_r, width, dim=1)
            best_r[rows] = keep_r
            best_j[rows] = torch.gather(cat_j, 1, keep_pos)
    query = torch.arange(n, device=points.device)
    best_j = torch.where(best_r > 0, best_j, torch.full_like(best_j, -1))
    distances = exact_distances(points, query, best_j)
    dy = torch.linalg.vector_norm(y[query][:, None, :] - y[best_j.clamp(min=0)], dim=2)
    sharpness = torch.where(distances > 0, dy / distances, torch.full_like(dy, math.inf))
    first = query[:, None].expand(-1, width).flatten()
    pairs, conflicts = _pairs_from_candidates(
        first, best_j.flatten(), distances.flatten(), sharpness.flatten(), targets, top_pairs
    )
    if not pairs:
        raise ValueError("All targets are equal: label sharpness is 0 and carries no information.")
    return _result(pairs, conflicts, n, input_shape, method="exact", target_type="regression")


def _sampled_sharpness(
    points: Tensor,
    targets: Tensor,
    target_type: str,
    *,
    input_shape: tuple[int, ...],
    n_pairs: int,
    top_pairs: int,
    seed: int,
    n_classes: int | None,
) -> LabelSharpnessResult:
    """The original code's estimate: the maximum over random pairs (multiclass fixed)."""
    n = int(points.shape[0])
    generator = torch.Generator().manual_seed(seed)
    first = torch.randint(0, n, (n_pairs,), generator=generator)
    offset = torch.randint(1, n, (n_pairs,), generator=generator)
    second = (first + offset) % n
    first, second = first.to(points.device), second.to(points.device)
    x64 = points.to(torch.float64)
    distances = torch.linalg.vector_norm(x64[first] - x64[second], dim=1)
    if target_type == "class":
        numerator = (targets[first] != targets[second]).to(torch.float64)
    else:
        numerator = torch.linalg.vector_norm(targets[first] - targets[second], dim=1)
    sharpness = torch.where(
        distances > 0,
        numerator / distances,
        torch.where(numerator > 0, math.inf, 0.0).to(torch.float64),
    )
    informative = numerator > 0
    if not bool(informative.any()):
        raise ValueError(
            f"None of the {n_pairs} sampled pairs has different labels; increase n_pairs or use "
            "method='exact'."
        )
    pairs, conflicts = _pairs_from_candidates(
        first[informative],
        second[informative],
        distances[informative],
        sharpness[informative],
        targets,
        top_pairs,
    )
    return _result(
        pairs,
        conflicts,
        n,
        input_shape,
        method="sampled",
        target_type=target_type,
        n_classes=n_classes,
        n_pairs_evaluated=n_pairs,
    )


@full_precision_matmul()
def label_sharpness(
    x: Any,
    y: Any,
    *,
    method: Method = "exact",
    target_type: TargetType = "auto",
    top_pairs: int = 10,
    n_pairs: int = 2000,
    seed: int = 0,
    memory_budget_mb: float | None = None,
    device: torch.device | str | None = None,
    progress: bool | None = None,
    conflict_rtol: float = DEFAULT_CONFLICT_RTOL,
    distributed: bool = False,
    process_group: Any = None,
) -> LabelSharpnessResult:
    """Label sharpness ``K_F`` of a labelled sample, exact by default.

    Args:
        x: ``(n, ...)`` inputs (tensor or array); each sample is flattened.
        y: targets: ``(n,)`` integer class ids, ``(n, C)`` one-hot rows, ``(n,)`` class names
            (strings, with ``target_type="class"``: numbered in sorted order), or float
            regression targets ``(n,)`` / ``(n, t)``. Samples with a negative class id (``-1``:
            unlabelled) are left out, with a warning; ``result.n_unlabelled`` counts them and
            the pairs keep the indices of the samples given. Regression targets of any finite
            magnitude are measured exactly (a power-of-two rescale, undone on the result).
        method: ``"exact"`` (bichromatic closest pair / all-pairs maximum) or ``"sampled"``
            (the original code's maximum over ``n_pairs`` random pairs, for comparison with
            published numbers; biased low).
        target_type: ``"auto"`` (integer dtype: classes; float dtype: regression), ``"class"`` or
            ``"regression"``.
        top_pairs: how many of the sharpest pairs to report.
        n_pairs: pairs drawn by ``method="sampled"``.
        seed: seed of the private generator used by ``method="sampled"``.
        memory_budget_mb: bound on the working memory of the exact search.
            ``None``: the :func:`~lightning_dataprops.config_context` setting
            (512 MiB unless changed).
        device: where to compute (default: where ``x`` is).
        progress: show a progress bar.
            ``None``: the :func:`~lightning_dataprops.config_context` setting
            (off unless changed).
        conflict_rtol: class labels, exact method: differently-labelled pairs closer than this
            times the median nearest-neighbour distance are label conflicts (``result.conflicts``,
            :class:`LabelConflictWarning`); see
            :func:`~lightning_dataprops.functional.robust_sharpness`.
        distributed: class labels, exact method: share the closest-pair search among the ranks
            of ``process_group`` (see :func:`~lightning_dataprops.functional.distributed.
            sharded_knn_search`): every rank must call this with the same ``x``, ``y`` and
            arguments, and every rank gets the same result. Regression targets and the sampled
            method run on every rank. Without an initialised group of more than one rank, this
            has no effect.
        process_group: the group for ``distributed`` (default: the world).

    Returns:
        A :class:`LabelSharpnessResult`; ``float(result)`` is ``K_F``; with class labels and the
        exact method, ``result.robust`` holds the distribution-based statistics.

    Raises:
        ValueError: NaN or infinite inputs or targets, mismatched lengths, fewer than two
            classes among the labelled samples, all regression targets equal, a regression
            ``K_F`` beyond the float64 range.
        TypeError: complex or non-numeric inputs, targets mixing strings and other values.

    Example:
        >>> import torch
        >>> from lightning_dataprops.functional import label_sharpness
        >>> x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [3.0, 0.0], [3.0, 0.5]])
        >>> y = torch.tensor([0, 0, 1, 1])
        >>> result = label_sharpness(x, y)
        >>> result.value  # 1 / distance between samples 0 and 2
        0.3333333333333333
        >>> (result.pairs[0].i, result.pairs[0].j)
        (0, 2)
    """
    check_choice(method, "method", METHODS)
    points, input_shape = as_points(x, device=device)
    labelled = kf_targets(y, int(points.shape[0]), target_type)
    warn_if_byte_images(points, input_shape, "label_sharpness")
    if top_pairs < 1:
        raise ValueError(f"top_pairs must be >= 1, got {top_pairs}.")
    if method == "sampled" and n_pairs < 1:
        raise ValueError(f"n_pairs must be >= 1, got {n_pairs}.")
    points = labelled.rows(points)
    given = labelled.values.to(points.device)
    kind, n_classes = labelled.kind, labelled.n_classes
    if method == "exact" and kind == "class":
        assert n_classes is not None
        search = partial(sharded_knn_search, group=process_group) if distributed else knn_search
        graph = search(
            points,
            1,
            labels=given,
            n_pairs=top_pairs,
            memory_budget_mb=memory_budget_mb,
            progress=progress,
        )
        result = sharpness_from_graph(
            graph,
            given,
            input_shape=input_shape,
            n_classes=n_classes,
            top_pairs=top_pairs,
            conflict_rtol=conflict_rtol,
        )
        return labelled.restore(result)
    points, targets, e_x, e_y = _in_moderate_units(points, given, kind)
    if method == "sampled":
        result = _sampled_sharpness(
            points,
            targets,
            kind,
            input_shape=input_shape,
            n_pairs=n_pairs,
            top_pairs=top_pairs,
            seed=seed,
            n_classes=n_classes,
        )
    else:
        result = _regression_sharpness(
            points,
            targets,
            input_shape=input_shape,
            top_pairs=top_pairs,
            memory_budget_mb=memory_budget_mb,
            progress=progress,
        )
    return labelled.restore(_in_given_units(result, given, e_x, e_y))
