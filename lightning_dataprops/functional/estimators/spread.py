"""Disagreement is a finding: the spread of the estimators computed on one sample.

The estimators answer the same question with different biases (boundary, curvature, density,
noise, scale). Where their values lie further apart than both their statistical uncertainty and
a tolerance, no single number describes the data well, and the result says so.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping

from lightning_dataprops.functional.results import EstimatorSpread, IntrinsicDimensionResult

__all__ = ["DISAGREEMENT_RTOL", "estimator_spread"]

DISAGREEMENT_RTOL = 0.25
"""Estimators within 25% of each other (``high / low - 1``) agree. On the 24 benchmark
manifolds, where the data fit the estimators' assumptions, MLE, TwoNN and GRIDE stay within
this of each other on all but the curved, non-uniform ones (docs/benchmarks.md)."""


def estimator_spread(
    results: Mapping[str, IntrinsicDimensionResult],
    *,
    default: str,
    rtol: float = DISAGREEMENT_RTOL,
) -> EstimatorSpread | None:
    """The :class:`EstimatorSpread` of ``results`` (``None`` for fewer than two estimators).

    Each estimator's uncertainty is its standard error (its own or the bootstrap's), else
    ``value / sqrt(n)``, TwoNN's order of error. They disagree when ``high - low`` exceeds
    twice the combined standard error of the two extremes and ``high / low - 1 > rtol``.

    Example:
        >>> import torch
        >>> from lightning_dataprops.functional import dataset_properties
        >>> g = torch.Generator().manual_seed(0)
        >>> props = dataset_properties(torch.rand(1000, 3, generator=g), k=10)
        >>> props.spread.disagree
        False
    """
    if len(results) < 2:
        return None
    values = {name: r.value for name, r in results.items()}
    uncertainties = {
        name: r.stderr if r.stderr is not None else r.value / math.sqrt(max(r.n, 1))
        for name, r in results.items()
    }
    low_name = min(values, key=values.__getitem__)
    high_name = max(values, key=values.__getitem__)
    low, high = values[low_name], values[high_name]
    combined = math.hypot(uncertainties[low_name], uncertainties[high_name])
    relative = (high - low) / statistics.median(values.values())
    disagree = high - low > 2 * combined and high / low - 1 > rtol
    message = None
    if disagree:
        message = (
            f"The intrinsic-dimension estimators disagree: from {low:.1f} ({low_name}) to "
            f"{high:.1f} ({high_name}), {100 * (high / low - 1):.0f}% apart, beyond their "
            f"statistical uncertainty (about +-{combined:.1f}). d_data = "
            f"{values[default]:.1f} ({default}) is one reading of a quantity these data do not "
            "pin down: the estimators' biases (boundary, curvature, non-uniform density, "
            "noise, scale) differ here. Read d_data, and forecasts built on it "
            "(N^(-1/d_data)), as uncertain across that range."
        )
    return EstimatorSpread(
        values=values,
        uncertainties=uncertainties,
        low_name=low_name,
        high_name=high_name,
        relative=relative,
        disagree=disagree,
        rtol=rtol,
        message=message,
    )
