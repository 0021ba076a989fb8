"""Levina-Bickel MLE of the intrinsic dimension (the paper's estimator, k neighbours).

With ``T_j(x)`` the distance from ``x`` to its j-th nearest neighbour and
``S(x) = sum_{j<k} log(T_k(x) / T_j(x))``:

* MacKay-Ghahramani pooling (default, consistent): ``d = (k - 1) n / sum_x S(x)``; this is
  scikit-dimension's ``MLE().fit(X, n_neighbors=k)``;
* Levina-Bickel arithmetic mean (consistent): ``d = mean_x (k - 2) / S(x)``;
* the paper's code: ``d = (k - 2) n / sum_x S(x)`` (mixes the two; reads low by (k-2)/(k-1)).

Sources: Levina & Bickel, NeurIPS 2004; MacKay & Ghahramani, "Comments on Levina and Bickel"
(2005); Konz & Mazurowski, ICLR 2024.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lightning_dataprops.functional._validation import check_choice
from lightning_dataprops.functional.estimators._ties import untie
from lightning_dataprops.functional.estimators.neighbours import Neighbours
from lightning_dataprops.functional.estimators.registry import (
    Estimate,
    EstimatorFn,
    register_estimator,
)

__all__ = ["MLE_VARIANTS", "mle", "mle_at", "mle_from_distances"]

MLE_VARIANTS: tuple[str, ...] = ("mackay_ghahramani", "levina_bickel", "paper")


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
    log_ratios, n_ties = untie(
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


def mle(neighbours: Neighbours) -> Estimate:
    """MLE with the call's ``k`` and ``mle_variant`` option (default MacKay-Ghahramani)."""
    variant = str(neighbours.options.get("mle_variant", "mackay_ghahramani"))
    value, n_ties = mle_from_distances(neighbours.distances[:, : neighbours.k], variant)
    return Estimate(value, None, variant, neighbours.k, n_ties)


def mle_at(k: int) -> EstimatorFn:
    """An estimator: the MacKay-Ghahramani MLE with a fixed ``k`` (whatever the call's ``k``)."""

    def fixed(neighbours: Neighbours) -> Estimate:
        value, n_ties = mle_from_distances(neighbours.distances[:, :k])
        return Estimate(value, None, "mackay_ghahramani", k, n_ties)

    return fixed


register_estimator(
    "mle", mle, description="Levina-Bickel MLE, k neighbours (MacKay-Ghahramani pooling)"
)
for _k in (5, 10):
    register_estimator(
        f"mle_k{_k}", mle_at(_k), k=_k, description=f"MLE at k={_k} (MacKay-Ghahramani pooling)"
    )
