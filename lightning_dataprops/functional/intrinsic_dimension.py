"""Intrinsic dimension: Levina-Bickel MLE and TwoNN from one exact neighbour pass.

With ``T_j(x)`` the distance from ``x`` to its j-th nearest neighbour (``x`` itself excluded) and
``S(x) = sum_{j<k} log(T_k(x) / T_j(x))``:

* MLE, MacKay-Ghahramani pooling (default, consistent): ``d = (k - 1) n / sum_x S(x)``;
  this is scikit-dimension's ``MLE().fit(X, n_neighbors=k)``;
* MLE, Levina-Bickel arithmetic mean (consistent): ``d = mean_x (k - 2) / S(x)``;
* MLE, the paper's code: ``d = (k - 2) n / sum_x S(x)`` (mixes the two; reads low by (k-2)/(k-1));
* TwoNN (Facco et al. 2017): ``mu = T_2 / T_1`` is Pareto(1, d); closed-form MLE
  ``d = (n - 1) / sum log mu`` with standard error ``d / sqrt(n)``, or the paper's linear fit of
  ``-log(1 - F(mu))`` against ``log mu`` (10% largest ``mu`` discarded).

Duplicates and near-duplicates are collapsed to one representative before estimating.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, TypeVar

import torch
from torch import Tensor

from lightning_dataprops.functional._precision import full_precision_matmul
from lightning_dataprops.functional._validation import as_points, check_choice, check_k
from lightning_dataprops.functional.constants import (
    DEFAULT_DUPLICATE_RTOL,
    DEFAULT_K,
    DEFAULT_TIE_RTOL,
    MAX_TIE_FRACTION,
)
from lightning_dataprops.functional.distributed import checked_on_every_rank, sharded_knn_search
from lightning_dataprops.functional.duplicates import (
    DuplicateReport,
    duplicate_pairs,
    duplicate_threshold,
    group_duplicates,
)
from lightning_dataprops.functional.knn import NeighborGraph, knn_search
from lightning_dataprops.functional.results import IntrinsicDimensionResult

Estimator = Literal["mle", "twonn"]
MLEVariant = Literal["mackay_ghahramani", "levina_bickel", "paper"]
TwoNNVariant = Literal["closed_form", "linear_fit"]
ESTIMATORS: tuple[str, ...] = ("mle", "twonn")
MLE_VARIANTS: tuple[str, ...] = ("mackay_ghahramani", "levina_bickel", "paper")
TWONN_VARIANTS: tuple[str, ...] = ("closed_form", "linear_fit")
_MAX_DEDUP_ROUNDS = 20


@dataclass(frozen=True)
class UniqueNeighbours:
    """Exact neighbour distances of the kept (de-duplicated) samples."""

    distances: Tensor
    kept: Tensor
    duplicates: DuplicateReport


def unique_neighbours(
    points: Tensor,
    k: int,
    *,
    graph: NeighborGraph | None = None,
    duplicate_rtol: float = DEFAULT_DUPLICATE_RTOL,
    memory_budget_mb: float | None = None,
    progress: bool | None = None,
) -> UniqueNeighbours:
    """Neighbour distances with (near-)duplicates collapsed to one representative each.

    Only the kept samples whose neighbour lists contained a removed duplicate are searched again,
    so the extra cost is proportional to the number of duplicates.
    """
    n = int(points.shape[0])
    if graph is None:
        graph = knn_search(points, k, memory_budget_mb=memory_budget_mb, progress=progress)
    threshold = duplicate_threshold(graph, duplicate_rtol)
    distances = graph.distances.clone()
    indices = graph.indices.clone()
    removed = torch.zeros(n, dtype=torch.bool, device=points.device)
    found_a: list[Tensor] = []
    found_b: list[Tensor] = []
    found_d: list[Tensor] = []
    current = graph
    for _ in range(_MAX_DEDUP_ROUNDS):
        a, b, d = duplicate_pairs(current, threshold)
        if a.numel() == 0:
            break
        found_a.append(a)
        found_b.append(b)
        found_d.append(d)
        groups = group_duplicates(torch.cat(found_a), torch.cat(found_b))
        for group in groups:
            removed[list(group[1:])] = True
        kept = (~removed).nonzero().flatten()
        if kept.numel() < k + 1:
            raise ValueError(
                f"Only {kept.numel()} distinct samples remain after collapsing duplicates "
                f"({n - kept.numel()} of {n} samples are duplicates), but k={k} needs at least "
                f"{k + 1}; pass more distinct samples or lower k."
            )
        stale = (~removed) & removed[indices.clamp(min=0)].any(dim=1)
        stale_rows = stale.nonzero().flatten()
        if stale_rows.numel() == 0:
            break
        position = torch.full((n,), -1, dtype=torch.long, device=points.device)
        position[kept] = torch.arange(kept.numel(), device=points.device)
        local = knn_search(
            points[kept], k, queries=position[stale_rows], memory_budget_mb=memory_budget_mb
        )
        distances[stale_rows] = local.distances
        indices[stale_rows] = kept[local.indices]
        current = NeighborGraph(
            distances=local.distances, indices=kept[local.indices], query_indices=stale_rows
        )
    kept = (~removed).nonzero().flatten()
    if found_a:
        pair_a, pair_b, pair_d = torch.cat(found_a), torch.cat(found_b), torch.cat(found_d)
        exact = torch.stack([torch.minimum(pair_a, pair_b), torch.maximum(pair_a, pair_b)])
        report = DuplicateReport(
            groups=group_duplicates(pair_a, pair_b),
            threshold=threshold,
            rtol=duplicate_rtol,
            n_exact_pairs=int(torch.unique(exact[:, pair_d == 0], dim=1).shape[1]),
            removed=tuple(removed.nonzero().flatten().tolist()),
        )
    else:
        report = DuplicateReport(threshold=threshold, rtol=duplicate_rtol)
    kept_distances = distances[kept]
    if not bool((kept_distances[:, 0] > 0).all()):
        raise RuntimeError("internal error: a zero neighbour distance survived de-duplication")
    return UniqueNeighbours(distances=kept_distances, kept=kept, duplicates=report)


class Estimate(NamedTuple):
    """One estimator's value, standard error, variant, neighbours used and tied samples."""

    value: float
    stderr: float | None
    variant: str
    k: int
    n_ties: int


def _untie(log_ratios: Tensor, per_sample: float, what: str, remedy: str) -> tuple[Tensor, int]:
    """Snap tied log-ratios (below ``TIE_RTOL * per_sample``) to 0; refuse when too many tie.

    Discrete data (a lattice, quantised values) puts several neighbours at the same distance.
    The float rounding of the input then decides whether their log-ratio is exactly 0 or about
    1e-16, and an estimator dividing by the sum of such ratios returns an absurd value. Ties
    are therefore detected with a relative tolerance, counted, and refused when they are more
    than ``MAX_TIE_FRACTION`` of the samples, so no estimate divides by a near-zero sum.
    """
    tied = log_ratios <= DEFAULT_TIE_RTOL * per_sample
    n, n_ties = int(log_ratios.numel()), int(tied.sum())
    if n_ties > MAX_TIE_FRACTION * n:
        raise ValueError(
            f"{n_ties} of {n} samples ({100 * n_ties / n:.0f}%) have {what} at the same distance "
            f"(within a relative {DEFAULT_TIE_RTOL:g}): the data is discrete (a lattice or "
            f"quantised values) and the estimate would be meaningless. {remedy}"
        )
    return log_ratios.masked_fill(tied, 0.0), n_ties


def mle_from_distances(distances: Tensor, variant: str = "mackay_ghahramani") -> tuple[float, int]:
    """MLE intrinsic dimension and the number of tied samples from sorted neighbour distances
    ``(n, k)`` (all positive); a sample is tied when all its ``k`` neighbours are equidistant."""
    check_choice(variant, "MLE variant", MLE_VARIANTS)
    k = int(distances.shape[1])
    if variant != "mackay_ghahramani" and k < 3:
        raise ValueError(
            f"The MLE variant {variant!r} uses (k - 2) in its numerator, which is 0 for k={k}; "
            "pass k >= 3, or the default variant 'mackay_ghahramani'."
        )
    raw = torch.log(distances[:, -1:].double() / distances[:, :-1].double()).sum(dim=1)
    log_ratios, n_ties = _untie(
        raw,
        k - 1,
        f"all {k} nearest neighbours",
        "Pass a larger k, or add noise at the scale of the quantisation.",
    )
    n = int(distances.shape[0])
    if variant == "levina_bickel":
        untied = log_ratios[log_ratios > 0]
        return float(((k - 2) / untied).mean()), n_ties
    numerator = k - 1 if variant == "mackay_ghahramani" else k - 2
    return numerator * n / float(log_ratios.sum()), n_ties


def twonn_from_distances(
    first: Tensor, second: Tensor, variant: str = "closed_form", discard_fraction: float = 0.1
) -> tuple[float, float, int]:
    """TwoNN estimate, its standard error and the number of tied samples (first and second
    neighbours equidistant) from first- and second-neighbour distances."""
    check_choice(variant, "TwoNN variant", TWONN_VARIANTS)
    log_mu, n_ties = _untie(
        torch.log(second.double() / first.double()),
        1.0,
        "their first and second neighbours",
        "TwoNN needs distinct neighbour distances: use estimator='mle' (k neighbours), or add "
        "noise at the scale of the quantisation.",
    )
    n = int(log_mu.numel())
    if variant == "closed_form":
        value = (n - 1) / float(log_mu.sum())
    else:
        sorted_log_mu, _ = torch.sort(log_mu)
        kept = max(2, math.floor(n * (1.0 - discard_fraction)))
        empirical = torch.arange(1, n + 1, dtype=torch.float64, device=log_mu.device) / n
        x = sorted_log_mu[:kept]
        y = -torch.log1p(-empirical[:kept])
        value = float((x * y).sum() / (x * x).sum())
    return value, value / math.sqrt(n), n_ties


def estimate_from_neighbours(
    neighbours: UniqueNeighbours,
    estimator: str,
    *,
    k: int,
    mle_variant: str = "mackay_ghahramani",
    twonn_variant: str = "closed_form",
) -> Estimate:
    """One estimator's :class:`Estimate` from de-duplicated neighbour distances."""
    if estimator == "mle":
        value, n_ties = mle_from_distances(neighbours.distances[:, :k], mle_variant)
        return Estimate(value, None, mle_variant, k, n_ties)
    value, stderr, n_ties = twonn_from_distances(
        neighbours.distances[:, 0], neighbours.distances[:, 1], twonn_variant
    )
    return Estimate(value, stderr, twonn_variant, 2, n_ties)


def make_result(
    found: Estimate,
    estimator: str,
    neighbours: UniqueNeighbours,
    *,
    input_shape: tuple[int, ...],
    n_input: int,
    stderr: float | None = None,
    n_bootstrap: int = 0,
) -> IntrinsicDimensionResult:
    """The :class:`IntrinsicDimensionResult` of an estimate (``stderr``: a bootstrap's, if any)."""
    stderr = found.stderr if stderr is None else stderr
    value = found.value
    return IntrinsicDimensionResult(
        value=value,
        estimator=estimator,
        variant=found.variant,
        k=found.k,
        n=int(neighbours.kept.numel()),
        n_input=n_input,
        input_shape=input_shape,
        stderr=stderr,
        ci95=None if stderr is None else (value - 1.96 * stderr, value + 1.96 * stderr),
        n_bootstrap=n_bootstrap,
        duplicates=neighbours.duplicates,
        n_ties=found.n_ties,
        kept_indices=neighbours.kept,
    )


T = TypeVar("T")


def bootstrap_resamples(
    points: Tensor,
    estimate: Callable[[Tensor], T],
    *,
    n_bootstrap: int,
    fraction: float,
    seed: int,
) -> tuple[list[T], float]:
    """Run ``estimate`` on subsamples drawn without replacement (kNN recomputed each time).

    Returns the estimates and the factor ``sqrt(m / (n - m))`` that rescales their spread to the
    standard error at the full sample size ``n`` (subsampling bootstrap, ``m = fraction * n``).
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"bootstrap_fraction must be in (0, 1), got {fraction}.")
    if n_bootstrap < 2:
        raise ValueError(f"n_bootstrap must be 0 (off) or at least 2, got {n_bootstrap}.")
    n = int(points.shape[0])
    m = round(fraction * n)
    generator = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(n_bootstrap):
        subset = torch.randperm(n, generator=generator)[:m].to(points.device)
        values.append(estimate(points[subset]))
    return values, math.sqrt(m / (n - m))


def spread(values: list[float], scale: float) -> float:
    """Sample standard deviation of ``values`` times ``scale``."""
    return float(torch.tensor(values, dtype=torch.float64).std()) * scale


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
        estimator: ``"mle"`` (Levina-Bickel) or ``"twonn"``.
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
            ``None``: the :func:`~lightning_dataprops.config_context` setting
            (512 MiB unless changed).
        device: where to compute (default: where ``x`` is).
        progress: show a progress bar.
            ``None``: the :func:`~lightning_dataprops.config_context` setting
            (off unless changed).
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
    check_choice(estimator, "estimator", ESTIMATORS)
    check_choice(mle_variant, "MLE variant", MLE_VARIANTS)
    check_choice(twonn_variant, "TwoNN variant", TWONN_VARIANTS)
    neighbours_needed = k if estimator == "mle" else 2

    def validated() -> tuple[Tensor, tuple[int, ...]]:
        points, input_shape = as_points(x, device=device)
        check_k(neighbours_needed, int(points.shape[0]), what=f"intrinsic dimension ({estimator})")
        return points, input_shape

    # Distributed: a rank whose inputs are refused makes every rank raise (nobody waits).
    if distributed:
        points, input_shape = checked_on_every_rank(validated, process_group)
    else:
        points, input_shape = validated()
    n = int(points.shape[0])

    def estimate(
        sample: Tensor, show: bool | None = False, graph: NeighborGraph | None = None
    ) -> tuple[Estimate, UniqueNeighbours]:
        neighbours = unique_neighbours(
            sample,
            neighbours_needed,
            graph=graph,
            duplicate_rtol=duplicate_rtol,
            memory_budget_mb=memory_budget_mb,
            progress=show,
        )
        found = estimate_from_neighbours(
            neighbours,
            estimator,
            k=neighbours_needed,
            mle_variant=mle_variant,
            twonn_variant=twonn_variant,
        )
        return found, neighbours

    graph = None
    if distributed:
        graph = sharded_knn_search(
            points,
            neighbours_needed,
            memory_budget_mb=memory_budget_mb,
            group=process_group,
            progress=progress,
        )
    found, neighbours = estimate(points, progress, graph)
    stderr = found.stderr
    if n_bootstrap > 0:
        values, scale = bootstrap_resamples(
            points,
            lambda sample: estimate(sample)[0].value,
            n_bootstrap=n_bootstrap,
            fraction=bootstrap_fraction,
            seed=seed,
        )
        stderr = spread(values, scale)
    return make_result(
        found,
        estimator,
        neighbours,
        input_shape=input_shape,
        n_input=n,
        stderr=stderr,
        n_bootstrap=n_bootstrap,
    )


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
