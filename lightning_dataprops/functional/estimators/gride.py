"""Multiscale GRIDE, the generalised ratios ID estimator (Denti et al. 2022).

For each sample ``mu = T_{n2} / T_{n1}``, the ratio of its distances to its ``n2``-th and
``n1``-th neighbours, has under local uniformity the density
``d (mu^d - 1)^(n2 - n1 - 1) / (B(n2 - n1, n1) mu^((n2 - 1) d + 1))``, ``mu > 1``. The estimate
is the root of the score of that likelihood (concave in ``d``: one root), and its standard error
``1 / sqrt(observed information)``. DADApy's conventions are followed, as scikit-dimension's
``GRIDE`` does: ``(N - 1) log d`` in place of ``N log d`` (unbiased at ``n1 = 1``, where GRIDE is
TwoNN's closed form), and ratios above ``q50 + 20 (q95 - q50)`` discarded as overlapping points.

Multiscale: the estimate at ``n1 = 1, 2, 4, ...`` with ``n2 = 2 n1 <= k`` (scales that need no
more neighbours than the call's ``k``); :attr:`Estimate.details` holds each scale's value and
the reported value is the largest scale's, the least sensitive to noise at short distances.

Source: Denti, Doimo, Laio & Mira, "The generalized ratios intrinsic dimension estimator",
Scientific Reports 12, 20005 (2022); DADApy (Glielmo et al., Patterns 2022).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lightning_dataprops.functional.estimators.neighbours import Neighbours
from lightning_dataprops.functional.estimators.registry import Estimate, register_estimator

__all__ = ["gride", "gride_at", "gride_scales"]

_BISECTIONS = 200


def _score(log_mu: Tensor, d: float, n1: int, n2: int) -> float:
    """``d log L / d d`` at ``d`` (``mu^d / (mu^d - 1) = 1 / (1 - exp(-d log mu))``)."""
    n = int(log_mu.numel())
    tail = float((log_mu / -torch.expm1(-d * log_mu)).sum()) if n2 - n1 > 1 else 0.0
    return (n - 1) / d + (n2 - n1 - 1) * tail - (n2 - 1) * float(log_mu.sum())


def gride_at(distances: Tensor, n1: int, n2: int) -> tuple[float, float]:
    """GRIDE's estimate and standard error at the scale ``(n1, n2)`` from sorted neighbour
    distances ``(n, >= n2)`` (all positive).

    Raises:
        ValueError: ``1 <= n1 < n2 <= distances.shape[1]`` does not hold, or fewer than two
            samples have distinct ``n1``-th and ``n2``-th neighbour distances.
    """
    if not 1 <= n1 < n2 <= int(distances.shape[1]):
        raise ValueError(f"GRIDE needs 1 <= n1 < n2 <= {distances.shape[1]}; got {n1}, {n2}.")
    log_mu = torch.log(distances[:, n2 - 1].double() / distances[:, n1 - 1].double())
    log_mu = log_mu[log_mu > 0]
    if log_mu.numel() >= 2:
        mu = log_mu.exp()
        q50, q95 = torch.quantile(mu, torch.tensor([0.5, 0.95], dtype=torch.float64)).tolist()
        log_mu = log_mu[mu < 20 * (q95 - q50) + q50]
    if log_mu.numel() < 2:
        raise ValueError(
            f"GRIDE ({n1}, {n2}): fewer than 2 samples with distinct neighbour distances."
        )
    # The score falls from +inf (d -> 0) to -n1 sum(log mu) < 0 (d -> inf): bracket, bisect.
    low, high = 1e-8, 1.0
    while _score(log_mu, high, n1, n2) > 0:
        low, high = high, 2 * high
    for _ in range(_BISECTIONS):
        middle = math.sqrt(low * high) if low > 0 else high / 2
        if _score(log_mu, middle, n1, n2) > 0:
            low = middle
        else:
            high = middle
        if high - low <= 1e-12 * high:
            break
    d = 0.5 * (low + high)
    # Observed information; mu^d / (mu^d - 1)^2 = 1 / (4 sinh^2(d log mu / 2)).
    curvature = (log_mu / (2 * torch.sinh(d * log_mu / 2))).square().sum()
    info = (log_mu.numel() - 1) / d**2 + (n2 - n1 - 1) * float(curvature)
    return d, 1.0 / math.sqrt(info)


def gride_scales(k: int) -> tuple[int, ...]:
    """The multiscale ``n1`` values ``1, 2, 4, ...`` with ``2 n1 <= k``."""
    return tuple(2**i for i in range(max(1, k.bit_length())) if 2 ** (i + 1) <= k)


def gride(neighbours: Neighbours) -> Estimate:
    """Multiscale GRIDE with ``n2 = 2 n1 <= k`` (the call's ``k``); the largest scale reported."""
    scales = gride_scales(neighbours.k)
    values: dict[str, float] = {}
    found = (math.nan, math.nan)
    for n1 in scales:
        found = gride_at(neighbours.distances, n1, 2 * n1)
        values[f"n1={n1}"] = found[0]
    n1 = scales[-1]
    return Estimate(found[0], found[1], f"n1={n1},n2={2 * n1}", 2 * n1, details=values)


register_estimator(
    "gride", gride, description="multiscale GRIDE (Denti et al. 2022), largest scale n2 <= k"
)
