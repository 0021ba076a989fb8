"""Typed result objects: a value plus everything that produced it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from lightning_dataprops.functional.duplicates import DuplicateReport


def _json_float(value: float | None) -> float | str | None:
    """JSON has no inf/nan: spell them as strings."""
    if value is None or math.isfinite(value):
        return value
    return "inf" if value > 0 else ("-inf" if value < 0 else "nan")


def _duplicates_dict(report: DuplicateReport) -> dict[str, Any]:
    return {
        "n_duplicates": report.n_duplicates,
        "n_groups": report.n_groups,
        "n_exact_pairs": report.n_exact_pairs,
        "threshold": report.threshold,
        "groups": [list(group) for group in report.groups],
    }


@dataclass(frozen=True)
class IntrinsicDimensionResult:
    """An intrinsic-dimension estimate and how it was obtained.

    Attributes:
        value: the estimated intrinsic dimension.
        estimator: ``"mle"`` or ``"twonn"``.
        variant: the estimator's form (``"mackay_ghahramani"``, ``"levina_bickel"``, ``"paper"``
            for MLE; ``"closed_form"`` or ``"linear_fit"`` for TwoNN).
        k: neighbours used (2 for TwoNN).
        n: samples that entered the estimate (after collapsing duplicates).
        n_input: samples given.
        input_shape: shape of one input sample.
        stderr: standard error (TwoNN's asymptotic one, or the bootstrap's), if known.
        ci95: a 95% confidence interval, if known.
        n_bootstrap: number of bootstrap resamples behind ``stderr`` (0: none).
        duplicates: the duplicates that were found and collapsed.
        kept_indices: indices of the samples that entered the estimate.
    """

    value: float
    estimator: str
    variant: str
    k: int
    n: int
    n_input: int
    input_shape: tuple[int, ...]
    stderr: float | None = None
    ci95: tuple[float, float] | None = None
    n_bootstrap: int = 0
    duplicates: DuplicateReport = field(default_factory=DuplicateReport)
    kept_indices: Tensor | None = field(default=None, repr=False, compare=False)

    def __float__(self) -> float:
        return self.value

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "value": _json_float(self.value),
            "estimator": self.estimator,
            "variant": self.variant,
            "k": self.k,
            "n": self.n,
            "n_input": self.n_input,
            "input_shape": list(self.input_shape),
            "stderr": _json_float(self.stderr),
            "ci95": None if self.ci95 is None else [_json_float(v) for v in self.ci95],
            "n_bootstrap": self.n_bootstrap,
            "duplicates": _duplicates_dict(self.duplicates),
        }


@dataclass(frozen=True)
class SharpPair:
    """Two samples with different labels and their sharpness ``|y_i - y_j| / ||x_i - x_j||``."""

    i: int
    j: int
    distance: float
    label_i: float | int
    label_j: float | int
    sharpness: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "i": self.i,
            "j": self.j,
            "distance": self.distance,
            "label_i": self.label_i,
            "label_j": self.label_j,
            "sharpness": _json_float(self.sharpness),
        }


@dataclass(frozen=True)
class LabelSharpnessResult:
    """Label sharpness ``K_F`` of a labelled sample.

    Attributes:
        value: ``K_F = max |y_i - y_j| / ||x_i - x_j||`` (``inf`` for a label conflict: two
            identical inputs with different labels).
        n: number of samples.
        input_shape: shape of one input sample.
        pairs: the sharpest pairs, sharpest first.
        method: ``"exact"`` or ``"sampled"``.
        target_type: ``"class"`` or ``"regression"``.
        n_classes: number of distinct classes (``None`` for regression).
        conflicts: pairs of identical inputs with different labels.
        n_pairs_evaluated: pairs examined by the sampled method (``None`` when exact).
    """

    value: float
    n: int
    input_shape: tuple[int, ...]
    pairs: tuple[SharpPair, ...]
    method: str = "exact"
    target_type: str = "class"
    n_classes: int | None = None
    conflicts: tuple[SharpPair, ...] = ()
    n_pairs_evaluated: int | None = None

    def __float__(self) -> float:
        return self.value

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "value": _json_float(self.value),
            "n": self.n,
            "input_shape": list(self.input_shape),
            "method": self.method,
            "target_type": self.target_type,
            "n_classes": self.n_classes,
            "pairs": [pair.to_dict() for pair in self.pairs],
            "conflicts": [pair.to_dict() for pair in self.conflicts],
            "n_pairs_evaluated": self.n_pairs_evaluated,
        }


@dataclass(frozen=True)
class DatasetProperties:
    """Intrinsic dimension (MLE and TwoNN) and label sharpness of one sample, from one kNN pass.

    Attributes:
        mle: d_data by MLE.
        twonn: d_data by TwoNN.
        label_sharpness: K_F, or ``None`` without labels.
        n: number of samples given.
        input_shape: shape of one input sample.
        intrinsic_dimension_mle: detailed MLE result.
        intrinsic_dimension_twonn: detailed TwoNN result.
        label_sharpness_result: detailed K_F result, or ``None``.
        duplicates: duplicates found (and collapsed for the ID estimates).
    """

    mle: float
    twonn: float
    label_sharpness: float | None
    n: int
    input_shape: tuple[int, ...]
    intrinsic_dimension_mle: IntrinsicDimensionResult
    intrinsic_dimension_twonn: IntrinsicDimensionResult
    label_sharpness_result: LabelSharpnessResult | None
    duplicates: DuplicateReport

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (the command line's ``--json`` output)."""
        sharpness = self.label_sharpness_result
        return {
            "n": self.n,
            "input_shape": list(self.input_shape),
            "intrinsic_dim": {
                "mle": _json_float(self.mle),
                "twonn": _json_float(self.twonn),
                "mle_detail": self.intrinsic_dimension_mle.to_dict(),
                "twonn_detail": self.intrinsic_dimension_twonn.to_dict(),
            },
            "label_sharpness": None if sharpness is None else sharpness.to_dict(),
            "duplicates": _duplicates_dict(self.duplicates),
        }
