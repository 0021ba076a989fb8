"""Tied neighbour distances (discrete data): detected with a relative tolerance, then refused."""

from __future__ import annotations

from torch import Tensor

from lightning_dataprops.functional.constants import DEFAULT_TIE_RTOL, MAX_TIE_FRACTION


def untie(log_ratios: Tensor, per_sample: float, what: str, remedy: str) -> tuple[Tensor, int]:
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
