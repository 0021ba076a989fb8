"""The fit-start monitor's checkpointed state: plain values only (a resumed fit shows the same
values and picture without reading or measuring anything again).

One layout serves a full measurement and ``K_F`` measured alone; the sharpest pairs' finding is
kept without its inputs, which travel beside it as one tensor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from lightning_dataprops.data.normalization import Normalization
from lightning_dataprops.findings import SharpPairsFinding

__all__ = ["fit_start_state", "pair_inputs", "plain_pairs"]


def fit_start_state(
    metrics: dict[str, float],
    n: int,
    input_shape: Sequence[int],
    pairs: list[dict[str, Any]],
    normalization: Normalization | None,
    *,
    duplicates: int | None = None,
    message: str | None = None,
    estimators_disagree: str | None = None,
    estimator_notes: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The checkpointed fit-start state, plain values only: one layout for a full measurement
    and for K_F measured alone (``duplicates``, the verdict and the estimators' findings are
    then absent)."""
    return {
        "metrics": metrics,
        "n": n,
        "input_shape": list(input_shape),
        "duplicates": duplicates,
        "pairs": pairs,
        "sharpest_pairs": None,  # the pairs' finding, without its inputs (set by _measure)
        "normalization": None if normalization is None else list(normalization),
        "assessment": None if message is None else {"is_sharp": True, "message": message},
        "estimators_disagree": estimators_disagree,
        "estimator_notes": estimator_notes or {},
    }


def plain_pairs(finding: SharpPairsFinding) -> dict[str, Any]:
    """The finding without its inputs, in plain types (it goes into checkpoints)."""
    return {
        "K_F": finding.K_F,
        "n": finding.n,
        "n_conflicts": finding.n_conflicts,
        "pairs": [
            {
                "index_i": p.index_i,
                "index_j": p.index_j,
                "label_i": p.label_i,
                "label_j": p.label_j,
                "distance": p.distance,
                "sharpness": p.sharpness,
                "conflict": p.conflict,
            }
            for p in finding.pairs
        ],
    }


def pair_inputs(finding: SharpPairsFinding) -> torch.Tensor | None:
    """``(pairs, 2, ...)``: both inputs of every pair, or ``None`` when some were not kept."""
    rows = [(p.input_i, p.input_j) for p in finding.pairs]
    if not rows or any(i is None or j is None for i, j in rows):
        return None
    return torch.stack([torch.stack([i, j]) for i, j in rows if i is not None and j is not None])
