"""``K_F`` alone, when the fit-start sample has too few distinct inputs for ``d_data``.

``d_data`` needs ``k + 1`` distinct samples; ``K_F`` needs two labelled ones. A training set of
near-copies labelled differently (one image, two labels) is exactly where ``K_F`` matters most
(it is infinite: a label conflict), so the fit-start monitor measures it alone there, in the
same pixel units, rather than losing it with ``d_data``.
"""

from __future__ import annotations

from typing import cast

from lightning_dataprops import names
from lightning_dataprops._warnings import warn_each_time
from lightning_dataprops.data import Sample
from lightning_dataprops.data.normalization import Normalization, pixel_inputs
from lightning_dataprops.functional import LabelSharpnessResult, label_sharpness
from lightning_dataprops.functional._validation import TooFewSamplesError
from lightning_dataprops.functional.targets import TargetType

__all__ = ["k_f_alone"]


def k_f_alone(
    sample: Sample,
    normalization: Normalization | None,
    error: TooFewSamplesError,
    *,
    top_pairs: int,
    owner: str,
) -> tuple[dict[str, float], LabelSharpnessResult]:
    """``(metrics, result)``: the fit-start metrics of ``K_F`` measured alone (no ``d_data``)
    and the exact ``K_F`` result, said once with why ``d_data`` is missing.

    Raises:
        TooFewSamplesError: ``error`` again when the sample has no targets (nothing is left to
            measure) or fewer than two labelled samples.
    """
    if sample.targets is None:
        raise error
    x = pixel_inputs(sample.inputs, normalization)
    try:
        result = label_sharpness(
            x, sample.targets, top_pairs=top_pairs, target_type=cast(TargetType, sample.target_type)
        )
    except ValueError:
        raise error from None
    conflicts = len(result.conflicts)
    said = f"{conflicts} label conflict(s): near-identical inputs with different labels; " * bool(
        conflicts
    )
    warn_each_time(
        f"{owner}: d_data is not measured ({error}). K_F is measured alone on the same "
        f"{result.n} samples: K_F = {result.value:.4g} ({said}see dataprops/K_F and the "
        "sharpest pairs). The scaling-law forecast needs d_data and is not made."
    )
    metrics = {
        names.K_F: result.value,
        names.N_SAMPLES: float(len(sample)),
        names.N_LABEL_CONFLICTS: float(conflicts),
    }
    return metrics, result
