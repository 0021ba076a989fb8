"""Typed result objects: a value plus everything that produced it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from torch import Tensor

from lightning_dataprops.functional._json import json_float
from lightning_dataprops.functional.duplicates import DuplicateReport


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
        estimator: the registered estimator's name (``"mle"``, ``"twonn"``, ...; see
            :func:`~lightning_dataprops.functional.estimators.available_estimators`).
        variant: the estimator's form (``"mackay_ghahramani"``, ``"levina_bickel"``, ``"paper"``
            for MLE; ``"closed_form"`` or ``"linear_fit"`` for TwoNN).
        k: neighbours used (2 for TwoNN).
        n: samples that entered the estimate (after collapsing duplicates).
        n_input: samples given.
        input_shape: shape of one input sample.
        stderr: standard error (TwoNN's asymptotic one, or the bootstrap's), if known.
        ci95: a 95% confidence interval of the sampling noise (not of the estimator's bias:
            docs/methods.md), if known.
        n_bootstrap: number of bootstrap resamples behind ``stderr`` (0: none).
        duplicates: the duplicates that were found and collapsed.
        n_ties: samples whose neighbour distances were tied (equal within a relative
            ``DEFAULT_TIE_RTOL``: discrete data); their log-ratio counts as 0. More than
            ``MAX_TIE_FRACTION`` of the samples tied is an error, never an estimate.
        kept_indices: indices of the samples that entered the estimate.
        note: a sentence to read with the value (e.g. a fallback the estimator took), if any.
        details: further named numbers the estimator reported (e.g. its value at each scale).
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
    n_ties: int = 0
    kept_indices: Tensor | None = field(default=None, repr=False, compare=False)
    note: str | None = None
    details: Mapping[str, float] = field(default_factory=dict, compare=False)

    def __float__(self) -> float:
        return self.value

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "value": json_float(self.value),
            "estimator": self.estimator,
            "note": self.note,
            "details": {name: json_float(v) for name, v in self.details.items()},
            "variant": self.variant,
            "k": self.k,
            "n": self.n,
            "n_input": self.n_input,
            "input_shape": list(self.input_shape),
            "stderr": json_float(self.stderr),
            "ci95": None if self.ci95 is None else [json_float(v) for v in self.ci95],
            "n_bootstrap": self.n_bootstrap,
            "duplicates": _duplicates_dict(self.duplicates),
            "n_ties": self.n_ties,
        }

    def _repr_html_(self) -> str:
        """A compact card for notebooks (:func:`lightning_dataprops.findings.cards.result_card`)."""
        from lightning_dataprops.findings.cards import result_card

        return result_card(self)


Label = int | float | tuple[float, ...]
"""A target as reported with a pair: a class id, a regression value, or the vector of a
multi-output regression target (``(n, t)`` targets, ``t > 1``)."""


@dataclass(frozen=True)
class SharpPair:
    """Two samples with different labels and their sharpness ``|y_i - y_j| / ||x_i - x_j||``
    (``||y_i - y_j||`` for vector targets, whose labels are the vectors)."""

    i: int
    j: int
    distance: float
    label_i: Label
    label_j: Label
    sharpness: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "i": self.i,
            "j": self.j,
            "distance": self.distance,
            "label_i": self.label_i,
            "label_j": self.label_j,
            "sharpness": json_float(self.sharpness),
        }


def pairs_at(pairs: Sequence[SharpPair], positions: Sequence[int]) -> tuple[SharpPair, ...]:
    """``pairs`` measured on a subset, with their indices turned into ``positions[i]``: indices
    among the samples the subset was taken from.

    Example:
        >>> pair = SharpPair(i=0, j=1, distance=2.0, label_i=0, label_j=1, sharpness=0.5)
        >>> moved = pairs_at([pair], [4, 9])[0]
        >>> moved.i, moved.j
        (4, 9)
    """
    return tuple(replace(p, i=positions[p.i], j=positions[p.j]) for p in pairs)


@dataclass(frozen=True)
class RobustSharpness:
    """Distribution-based sharpness statistics of a class-labelled sample.

    Attributes:
        quantiles: ``q -> K_F(q) = 1 / quantile_q(d_i)`` (``inf`` when that quantile is 0).
        median: ``K_F(0.5)``, the median sharpness (1 / median distance to the nearest
            differently-labelled point).
        n: number of points.
        per_class_pair: ``(a, b) -> (K_F(0.5), count)`` over the points of ``a`` whose nearest
            differently-labelled point is in ``b`` and vice versa (``a < b``); only pairs that
            are someone's nearest.
        conflicts: near-identical differently-labelled pairs (each unordered pair once,
            closest first), indices into the sample.
        conflict_threshold: the distance below which a pair is a conflict
            (``conflict_rtol`` x the median nearest-neighbour distance).
        conflict_rtol: the relative threshold used.
        scale: the median positive nearest-neighbour distance of the sample (any label): how
            close points typically are, in input units.
        other_distances: ``(n,)`` float64 ``d_i`` of every point.
    """

    quantiles: dict[float, float]
    median: float
    n: int
    per_class_pair: dict[tuple[int, int], tuple[float, int]]
    conflicts: tuple[SharpPair, ...]
    conflict_threshold: float
    conflict_rtol: float
    scale: float
    other_distances: Tensor = field(repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "quantiles": {str(q): json_float(v) for q, v in self.quantiles.items()},
            "median": json_float(self.median),
            "n": self.n,
            "per_class_pair": [
                {"classes": [a, b], "median": json_float(v), "count": c}
                for (a, b), (v, c) in sorted(self.per_class_pair.items())
            ],
            "conflicts": [pair.to_dict() for pair in self.conflicts],
            "conflict_threshold": self.conflict_threshold,
            "conflict_rtol": self.conflict_rtol,
            "scale": self.scale,
        }


@dataclass(frozen=True)
class LabelSharpnessResult:
    """Label sharpness ``K_F`` of a labelled sample.

    Attributes:
        value: ``K_F = max |y_i - y_j| / ||x_i - x_j||`` (``inf`` for a label conflict: two
            identical inputs with different labels).
        n: number of samples measured (the labelled ones).
        input_shape: shape of one input sample.
        pairs: the sharpest pairs, sharpest first (indices among the samples given).
        method: ``"exact"`` or ``"sampled"``.
        target_type: ``"class"`` or ``"regression"``.
        n_classes: number of distinct classes (``None`` for regression).
        conflicts: pairs of near-identical (or identical) inputs with different labels; for
            class labels with the exact method, every point's nearest differently-labelled
            point closer than ``robust.conflict_threshold`` (see :class:`RobustSharpness`),
            else the identical pairs found.
        n_pairs_evaluated: pairs examined by the sampled method (``None`` when exact).
        robust: distribution-based statistics (``K_F`` at quantiles, per class pair) for class
            labels with the exact method; ``None`` otherwise (its ``other_distances`` follow
            the measured samples).
        n_unlabelled: samples given but left out: their class id is negative (unlabelled,
            e.g. scikit-learn's ``-1``).
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
    robust: RobustSharpness | None = None
    n_unlabelled: int = 0

    def __float__(self) -> float:
        return self.value

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "value": json_float(self.value),
            "n": self.n,
            "input_shape": list(self.input_shape),
            "method": self.method,
            "target_type": self.target_type,
            "n_classes": self.n_classes,
            "pairs": [pair.to_dict() for pair in self.pairs],
            "conflicts": [pair.to_dict() for pair in self.conflicts],
            "n_pairs_evaluated": self.n_pairs_evaluated,
            "robust": None if self.robust is None else self.robust.to_dict(),
            "n_unlabelled": self.n_unlabelled,
        }

    def _repr_html_(self) -> str:
        """A compact card for notebooks (:func:`lightning_dataprops.findings.cards.result_card`)."""
        from lightning_dataprops.findings.cards import result_card

        return result_card(self)


@dataclass(frozen=True)
class EstimatorSpread:
    """How far the intrinsic-dimension estimators of one sample agree.

    Attributes:
        values: each estimator's value, by name.
        uncertainties: the standard error used for each (its own, the bootstrap's, or
            ``value / sqrt(n)`` when it has none).
        low_name, high_name: the estimators giving the lowest and the highest value.
        relative: ``(high - low) / median`` of the values.
        disagree: the spread exceeds both the statistical uncertainty (twice the combined
            standard error of the two extremes) and the tolerance ``rtol``.
        rtol: the relative tolerance (``high / low - 1``) below which the estimators agree.
        message: what a user should read when they disagree, else ``None``.
    """

    values: Mapping[str, float]
    uncertainties: Mapping[str, float]
    low_name: str
    high_name: str
    relative: float
    disagree: bool
    rtol: float
    message: str | None = None

    @property
    def low(self) -> float:
        """The lowest estimate."""
        return self.values[self.low_name]

    @property
    def high(self) -> float:
        """The highest estimate."""
        return self.values[self.high_name]

    def describe(self) -> str:
        """One line: the range of the estimates and the verdict."""
        values = ", ".join(f"{name} {value:.1f}" for name, value in self.values.items())
        verdict = "DISAGREE" if self.disagree else "agree"
        return (
            f"Estimators ({values}): {self.low:.1f} to {self.high:.1f}, the highest "
            f"{100 * (self.high / self.low - 1):.0f}% above the lowest (a spread of "
            f"{100 * self.relative:.0f}% of the median); they {verdict}."
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "values": {name: json_float(v) for name, v in self.values.items()},
            "uncertainties": {name: json_float(v) for name, v in self.uncertainties.items()},
            "low": json_float(self.low),
            "high": json_float(self.high),
            "low_name": self.low_name,
            "high_name": self.high_name,
            "relative": json_float(self.relative),
            "disagree": self.disagree,
            "rtol": self.rtol,
            "message": self.message,
        }


@dataclass(frozen=True)
class DatasetProperties:
    """Intrinsic dimension (several estimators) and label sharpness of one sample, one kNN pass.

    Attributes:
        d_data: the data's intrinsic dimension by the default estimator (:attr:`default_estimator`:
            the paper's MLE, pooled as MacKay & Ghahramani, unless ``mle_variant`` said otherwise).
        d_data_twonn: the data's intrinsic dimension by TwoNN (Facco et al. 2017).
        K_F: label sharpness ``max |y_i - y_j| / ||x_i - x_j||``, or ``None`` without labels.
        n: number of samples given.
        input_shape: shape of one input sample.
        mle_result: the detailed MLE result behind ``d_data`` (k, variant, stderr, ...).
        twonn_result: the detailed TwoNN result behind ``d_data_twonn``.
        label_sharpness_result: the detailed result behind ``K_F`` (sharpest pairs, conflicts),
            or ``None`` without labels.
        duplicates: duplicates found (and collapsed for the ID estimates).
        estimates: every estimator computed (``mle``, ``twonn`` and those chosen with
            ``estimators=``), by name, all from the same neighbour pass.
        default_estimator: the name of the estimator behind :attr:`d_data`.
        spread: how far the estimators in :attr:`estimates` agree, with a flag and a message
            when they disagree beyond their uncertainty (``None`` with a single estimator).
    """

    d_data: float
    d_data_twonn: float
    K_F: float | None
    n: int
    input_shape: tuple[int, ...]
    mle_result: IntrinsicDimensionResult
    twonn_result: IntrinsicDimensionResult
    label_sharpness_result: LabelSharpnessResult | None
    duplicates: DuplicateReport
    estimates: Mapping[str, IntrinsicDimensionResult] = field(default_factory=dict)
    default_estimator: str = "mle"
    spread: EstimatorSpread | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (the command line's ``--json`` output): the three values
        under their field names, then each detailed result under its attribute name."""
        sharpness = self.label_sharpness_result
        return {
            "n": self.n,
            "input_shape": list(self.input_shape),
            "d_data": json_float(self.d_data),
            "d_data_twonn": json_float(self.d_data_twonn),
            "K_F": json_float(self.K_F),
            "mle_result": self.mle_result.to_dict(),
            "twonn_result": self.twonn_result.to_dict(),
            "label_sharpness_result": None if sharpness is None else sharpness.to_dict(),
            "duplicates": _duplicates_dict(self.duplicates),
            "default_estimator": self.default_estimator,
            "estimates": {name: result.to_dict() for name, result in self.estimates.items()},
            "spread": None if self.spread is None else self.spread.to_dict(),
        }

    def _repr_html_(self) -> str:
        """A compact card for notebooks (:func:`lightning_dataprops.findings.cards.result_card`)."""
        from lightning_dataprops.findings.cards import result_card

        return result_card(self)
