"""TwoNN (Facco et al. 2017): ``mu = T_2 / T_1`` is Pareto(1, d).

Closed-form MLE ``d = (n - 1) / sum log mu`` with standard error ``d / sqrt(n)`` (default), or
the paper's linear fit of ``-log(1 - F(mu))`` against ``log mu`` (10% largest ``mu`` discarded).

Source: Facco, d'Errico, Rodriguez & Laio, "Estimating the intrinsic dimension of datasets by a
minimal neighborhood information", Scientific Reports 7, 2017.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lightning_dataprops.functional._validation import check_choice
from lightning_dataprops.functional.estimators._ties import untie
from lightning_dataprops.functional.estimators.neighbours import Neighbours
from lightning_dataprops.functional.estimators.registry import Estimate, register_estimator

__all__ = ["TWONN_VARIANTS", "twonn", "twonn_from_distances"]

TWONN_VARIANTS: tuple[str, ...] = ("closed_form", "linear_fit")


def twonn_from_distances(
    first: Tensor, second: Tensor, variant: str = "closed_form", discard_fraction: float = 0.1
) -> tuple[float, float, int]:
    """TwoNN estimate, its standard error and the number of tied samples (first and second
    neighbours equidistant) from first- and second-neighbour distances."""
    check_choice(variant, "TwoNN variant", TWONN_VARIANTS)
    log_mu, n_ties = untie(
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


def twonn(neighbours: Neighbours) -> Estimate:
    """TwoNN with the call's ``twonn_variant`` option (default: the closed form)."""
    variant = str(neighbours.options.get("twonn_variant", "closed_form"))
    value, stderr, n_ties = twonn_from_distances(
        neighbours.distances[:, 0], neighbours.distances[:, 1], variant
    )
    return Estimate(value, stderr, variant, 2, n_ties)


register_estimator("twonn", twonn, k=2, description="TwoNN (Facco et al. 2017), 2 neighbours")
