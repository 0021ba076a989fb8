"""Run the chosen estimators on one neighbour pass, and one subsampling bootstrap for them all."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from lightning_dataprops.functional.estimators.neighbours import Neighbours, unique_neighbours
from lightning_dataprops.functional.estimators.registry import Estimate, get_estimator
from lightning_dataprops.functional.knn import NeighborGraph
from lightning_dataprops.functional.results import IntrinsicDimensionResult

__all__ = [
    "bootstrap_resamples",
    "chosen_estimators",
    "estimate_all",
    "estimator_results",
    "neighbours_needed",
]


def chosen_estimators(always: Sequence[str], extra: Sequence[str] | str) -> tuple[str, ...]:
    """``always`` then ``extra`` (a name or names), each once, all registered (else ValueError)."""
    if isinstance(extra, str):
        extra = (extra,)
    chosen = tuple(dict.fromkeys([*always, *extra]))
    for name in chosen:
        get_estimator(name)
    return chosen


def neighbours_needed(names: Sequence[str], k: int) -> int:
    """The neighbours per sample the estimators ``names`` need when the call asks for ``k``."""
    return max(get_estimator(name).neighbours_needed(k) for name in names)


def estimate_all(neighbours: Neighbours, names: Sequence[str]) -> dict[str, Estimate]:
    """Each estimator's :class:`Estimate` from the same :class:`Neighbours` object."""
    return {name: get_estimator(name).run(neighbours) for name in names}


def bootstrap_resamples(
    points: Tensor,
    estimate: Callable[[Tensor], Mapping[str, float]],
    *,
    n_bootstrap: int,
    fraction: float,
    seed: int,
) -> dict[str, float]:
    """Standard errors by the subsampling bootstrap: ``estimate`` (name -> value) on
    ``n_bootstrap`` subsamples of ``m = fraction * n`` points drawn without replacement (kNN
    recomputed each time); each spread is rescaled by ``sqrt(m / (n - m))`` to the full ``n``.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"bootstrap_fraction must be in (0, 1), got {fraction}.")
    if n_bootstrap < 2:
        raise ValueError(f"n_bootstrap must be 0 (off) or at least 2, got {n_bootstrap}.")
    n = int(points.shape[0])
    m = round(fraction * n)
    generator = torch.Generator().manual_seed(seed)
    resampled: list[Mapping[str, float]] = []
    for _ in range(n_bootstrap):
        subset = torch.randperm(n, generator=generator)[:m].to(points.device)
        resampled.append(estimate(points[subset]))
    scale = math.sqrt(m / (n - m))
    return {
        name: float(torch.tensor([r[name] for r in resampled], dtype=torch.float64).std()) * scale
        for name in resampled[0]
    }


def _result(
    found: Estimate,
    name: str,
    neighbours: Neighbours,
    *,
    input_shape: tuple[int, ...],
    n_input: int,
    stderr: float | None,
    n_bootstrap: int,
) -> IntrinsicDimensionResult:
    value = found.value
    return IntrinsicDimensionResult(
        value=value,
        estimator=name,
        variant=found.variant,
        k=int(found.k or 0),
        n=neighbours.n,
        n_input=n_input,
        input_shape=input_shape,
        stderr=stderr,
        ci95=None if stderr is None else (value - 1.96 * stderr, value + 1.96 * stderr),
        n_bootstrap=n_bootstrap,
        duplicates=neighbours.duplicates,
        n_ties=found.n_ties,
        kept_indices=neighbours.kept,
        note=found.note,
        details=dict(found.details),
    )


def estimator_results(
    points: Tensor,
    names: Sequence[str],
    *,
    k: int,
    input_shape: tuple[int, ...],
    graph: NeighborGraph | None = None,
    options: Mapping[str, Any] | None = None,
    duplicate_rtol: float,
    memory_budget_mb: float | None,
    progress: bool | None = None,
    n_bootstrap: int = 0,
    bootstrap_fraction: float = 0.5,
    seed: int = 0,
) -> tuple[dict[str, IntrinsicDimensionResult], Neighbours]:
    """Every estimator in ``names`` from one exact neighbour pass, and one bootstrap for all.

    Args:
        points: ``(n, D)`` samples.
        names: registered estimator names.
        k: the call's neighbour count (estimators registered with ``k=None`` use it).
        input_shape: the shape of one sample, for the results.
        graph: a neighbour pass of ``points`` already made (with at least
            :func:`neighbours_needed` neighbours); else one is made.
        options: estimator options (``mle_variant``, ``twonn_variant``).
        n_bootstrap: subsampling-bootstrap resamples for the standard errors (0: none; then
            an estimator's own standard error, if it has one, is reported).

    Returns:
        ``(name -> result, the neighbours object they were computed from)``.
    """
    k_max = neighbours_needed(names, k)

    def neighbours_of(
        sample: Tensor, graph: NeighborGraph | None = None, show: bool | None = False
    ) -> Neighbours:
        return unique_neighbours(
            sample,
            k_max,
            graph=graph,
            progress=show,
            k_call=k,
            options=options,
            duplicate_rtol=duplicate_rtol,
            memory_budget_mb=memory_budget_mb,
        )

    neighbours = neighbours_of(points, graph, progress)
    found = estimate_all(neighbours, names)
    stderrs: Mapping[str, float | None] = {name: est.stderr for name, est in found.items()}
    if n_bootstrap > 0:
        stderrs = bootstrap_resamples(
            points,
            lambda sample: {
                name: est.value for name, est in estimate_all(neighbours_of(sample), names).items()
            },
            n_bootstrap=n_bootstrap,
            fraction=bootstrap_fraction,
            seed=seed,
        )
    results = {
        name: _result(
            est,
            name,
            neighbours,
            input_shape=input_shape,
            n_input=int(points.shape[0]),
            stderr=stderrs[name],
            n_bootstrap=n_bootstrap,
        )
        for name, est in found.items()
    }
    return results, neighbours
