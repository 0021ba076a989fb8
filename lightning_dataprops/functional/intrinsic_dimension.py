"""Intrinsic dimension of a sample by one registered estimator, from one exact neighbour pass.

The estimators live in :mod:`lightning_dataprops.functional.estimators`, one per file
(MLE: :mod:`~lightning_dataprops.functional.estimators.mle`, TwoNN:
:mod:`~lightning_dataprops.functional.estimators.twonn`, ...). Duplicates and near-duplicates
are collapsed to one representative before estimating.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch

from lightning_dataprops.functional._precision import full_precision_matmul
from lightning_dataprops.functional._validation import as_points, check_choice, check_k
from lightning_dataprops.functional.constants import (
    DEFAULT_DUPLICATE_RTOL,
    DEFAULT_K,
)
from lightning_dataprops.functional.distributed import checked_on_every_rank, sharded_knn_search
from lightning_dataprops.functional.estimators import (
    Estimate,
    Neighbours,
    chosen_estimators,
    estimator_results,
    neighbours_needed,
    unique_neighbours,
)
from lightning_dataprops.functional.estimators.mle import MLE_VARIANTS, mle_from_distances
from lightning_dataprops.functional.estimators.twonn import TWONN_VARIANTS, twonn_from_distances
from lightning_dataprops.functional.results import IntrinsicDimensionResult

__all__ = [
    "ESTIMATORS",
    "MLE_VARIANTS",
    "TWONN_VARIANTS",
    "Estimate",
    "Estimator",
    "MLEVariant",
    "TwoNNVariant",
    "UniqueNeighbours",
    "intrinsic_dimension",
    "mle_from_distances",
    "mle_k_curve",
    "twonn_from_distances",
    "unique_neighbours",
]

Estimator = str
"""A registered estimator's name (``"mle"``, ``"twonn"``, ...)."""
MLEVariant = Literal["mackay_ghahramani", "levina_bickel", "paper"]
TwoNNVariant = Literal["closed_form", "linear_fit"]
ESTIMATORS: tuple[str, ...] = ("mle", "twonn")
"""The two classic estimators (every registered one is accepted: ``available_estimators()``)."""
UniqueNeighbours = Neighbours
"""The former name of :class:`~lightning_dataprops.functional.estimators.Neighbours`."""


@full_precision_matmul()
def intrinsic_dimension(
    x: Any,
    estimator: Estimator = "mle",
    k: int = DEFAULT_K,
    *,
    mle_variant: MLEVariant = "mackay_ghahramani",
    twonn_variant: TwoNNVariant = "closed_form",
    duplicate_rtol: float = DEFAULT_DUPLICATE_RTOL,
    n_bootstrap: int = 0,
    bootstrap_fraction: float = 0.5,
    seed: int = 0,
    memory_budget_mb: float | None = None,
    device: torch.device | str | None = None,
    progress: bool | None = None,
    distributed: bool = False,
    process_group: Any = None,
) -> IntrinsicDimensionResult:
    """Intrinsic dimension of a sample by MLE or TwoNN, exact neighbours, duplicates collapsed.

    Args:
        x: ``(n, ...)`` tensor or array; each sample is flattened.
        estimator: a registered estimator's name: ``"mle"`` (the maximum-likelihood estimator
            of Levina & Bickel, pooled as ``mle_variant`` says: MacKay-Ghahramani by default),
            ``"twonn"``, or any of
            :func:`~lightning_dataprops.functional.estimators.available_estimators`.
        k: neighbours for MLE (20 in the paper); TwoNN uses the first two.
        mle_variant: ``"mackay_ghahramani"`` (default, ``(k-1)`` with pooled mean, equals
            scikit-dimension's ``MLE``), ``"levina_bickel"`` (``(k-2)`` with arithmetic mean) or
            ``"paper"`` (``(k-2)`` with pooled mean, as the paper's code; reads low).
        twonn_variant: ``"closed_form"`` (MLE of the Pareto law) or ``"linear_fit"`` (Facco's fit).
        duplicate_rtol: samples closer than this times the median k-th neighbour distance are
            duplicates; they are collapsed to one representative and reported.
        n_bootstrap: number of subsampling-bootstrap resamples for the standard error (0: none).
        bootstrap_fraction: fraction of the samples drawn per resample.
        seed: seed of the bootstrap's private generator.
        memory_budget_mb: bound on the working memory of the neighbour search.
        device: where to compute (default: where ``x`` is).
        progress: show a progress bar.
        distributed: share the neighbour search of the full sample among the ranks of
            ``process_group`` (see :func:`~lightning_dataprops.functional.distributed.
            sharded_knn_search`): every rank must call this with the same ``x`` and arguments,
            and every rank gets the same result. The duplicate re-search and the bootstrap
            resamples run on every rank. Without an initialised group of more than one rank,
            this has no effect.
        process_group: the group for ``distributed`` (default: the world).

    Returns:
        An :class:`IntrinsicDimensionResult`; ``float(result)`` is the estimate.

    Example:
        >>> import torch
        >>> from lightning_dataprops.functional import intrinsic_dimension
        >>> g = torch.Generator().manual_seed(0)
        >>> plane = torch.randn(2000, 2, generator=g) @ torch.randn(2, 50, generator=g)
        >>> result = intrinsic_dimension(plane, "twonn")
        >>> round(result.value)
        2
    """
    (name,) = chosen_estimators((), estimator)
    check_choice(mle_variant, "MLE variant", MLE_VARIANTS)
    check_choice(twonn_variant, "TwoNN variant", TWONN_VARIANTS)
    needed = neighbours_needed((name,), k)

    def validated() -> tuple[torch.Tensor, tuple[int, ...]]:
        points, input_shape = as_points(x, device=device)
        check_k(needed, int(points.shape[0]), what=f"intrinsic dimension ({name})")
        return points, input_shape

    # Distributed: a rank whose inputs are refused makes every rank raise (nobody waits).
    points, input_shape = checked_on_every_rank(validated, process_group, enabled=distributed)
    graph = None
    if distributed:
        graph = sharded_knn_search(
            points,
            needed,
            memory_budget_mb=memory_budget_mb,
            group=process_group,
            progress=progress,
        )
    results, _ = estimator_results(
        points,
        (name,),
        k=k,
        input_shape=input_shape,
        graph=graph,
        options={"mle_variant": mle_variant, "twonn_variant": twonn_variant},
        duplicate_rtol=duplicate_rtol,
        memory_budget_mb=memory_budget_mb,
        progress=progress,
        n_bootstrap=n_bootstrap,
        bootstrap_fraction=bootstrap_fraction,
        seed=seed,
    )
    return results[name]


@full_precision_matmul()
def mle_k_curve(
    x: Any,
    ks: Sequence[int] = (5, 10, 15, 20, 30, 40),
    *,
    memory_budget_mb: float | None = None,
    device: torch.device | str | None = None,
    progress: bool | None = None,
) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """The MLE intrinsic dimension (MacKay-Ghahramani pooling) at several neighbour counts k,
    from one exact neighbour search with the largest k (duplicates collapsed, as in
    :func:`intrinsic_dimension`).

    How much the estimate moves with k shows how far it can be trusted: on a flat manifold it is
    nearly constant; curvature and noise make it drift (Levina & Bickel 2004).

    Args:
        x: ``(n, ...)`` samples, flattened to ``(n, D)``.
        ks: neighbour counts (each >= 2); those not below the number of distinct samples are
            dropped.

    Returns:
        ``(ks, values)``: the ks used, increasing, and the estimate at each.

    Raises:
        ValueError: no usable k (too few samples), or bad samples (see :func:`intrinsic_dimension`).

    Example:
        >>> import torch
        >>> from lightning_dataprops.functional.intrinsic_dimension import mle_k_curve
        >>> g = torch.Generator().manual_seed(0)
        >>> ks, values = mle_k_curve(torch.rand(500, 3, generator=g), ks=(10, 20))
        >>> ks, [round(v) for v in values]
        ((10, 20), [3, 3])
    """
    points, _ = as_points(x, device=device)
    usable = sorted({int(k) for k in ks if 2 <= int(k) < len(points)})
    if not usable:
        raise ValueError(f"no k in {tuple(ks)} is usable with {len(points)} samples (2 <= k < n).")
    neighbours = unique_neighbours(
        points, usable[-1], memory_budget_mb=memory_budget_mb, progress=progress
    )
    values = tuple(mle_from_distances(neighbours.distances[:, :k])[0] for k in usable)
    return tuple(usable), values
